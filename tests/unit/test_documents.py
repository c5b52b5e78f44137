"""workers.documents: where `supabase_path` points, and fetching it to a private
temporary file — from real local files, a real local HTTP server and a fake of the
Supabase Storage REST endpoint."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import socket
import stat
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
from aiohttp import web

from workers.documents import (
    MB,
    NO_STORAGE_HINT,
    FetchConfig,
    FetchedDocument,
    Local,
    Storage,
    StorageKeyRefused,
    StorageTarget,
    Url,
    fetch_document,
    resolve_location,
)
from workers.errors import (
    DocumentError,
    DocumentMissing,
    JobError,
    RetryableJobError,
    ServiceUnavailable,
)

pytestmark = pytest.mark.anyio

KEY = "service-key-not-to-be-shown"
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"


# --- resolve_location (pure) -----------------------------------------------------


@pytest.mark.parametrize(
    ("location", "storage", "expected"),
    [
        ("/data/scans/a.pdf", True, Local(Path("/data/scans/a.pdf"))),
        ("/data/scans/a.pdf", False, Local(Path("/data/scans/a.pdf"))),
        ("file:///data/scans/a.pdf", True, Local(Path("/data/scans/a.pdf"))),
        ("file://localhost/data/a.pdf", True, Local(Path("/data/a.pdf"))),
        ("FILE:///data/a%20b%C3%A9.pdf", True, Local(Path("/data/a bé.pdf"))),
        ("  /data/a.pdf \n", True, Local(Path("/data/a.pdf"))),
        ("https://example.org/a.pdf?sig=x", True, Url("https://example.org/a.pdf?sig=x")),
        ("HTTP://example.org/a.pdf", False, Url("HTTP://example.org/a.pdf")),
        # <bucket>/<key>, as the registre extractor writes it: the first segment is the
        # bucket, the rest the key (split once, before any percent-decoding).
        (
            "index/1234-Laval-1.pdf",
            True,
            Storage("index", "1234-Laval-1.pdf", ("1234-Laval-1.pdf",)),
        ),
        ("actes/2024/abc.pdf", True, Storage("actes", "2024/abc.pdf", ("2024", "abc.pdf"))),
        ("plans-cadastraux/p.pdf", True, Storage("plans-cadastraux", "p.pdf", ("p.pdf",))),
        ("2024/abc.pdf", True, Storage("2024", "abc.pdf", ("abc.pdf",))),
        ("my bucket/a.pdf", True, Storage("my bucket", "a.pdf", ("a.pdf",))),
        ("index/a%20b.pdf", True, Storage("index", "a%20b.pdf", ("a b.pdf",))),
        ("index/2024:x.pdf", True, Storage("index", "2024:x.pdf", ("2024:x.pdf",))),
        ("actes//x.pdf", True, Storage("actes", "/x.pdf", ("x.pdf",))),  # as storage3 strips
        # A bare key: the bucket comes from the row's document_source (None here).
        ("abc.pdf", True, Storage(None, "abc.pdf", ("abc.pdf",))),
        ("a%20b.pdf", True, Storage(None, "a%20b.pdf", ("a b.pdf",))),
        # A leading / is a local absolute path, even one that looks like a bucket.
        ("/actes/abc.pdf", True, Local(Path("/actes/abc.pdf"))),
        # Without Storage configured, relative paths stay local.
        ("2024/abc.pdf", False, Local(Path("2024/abc.pdf"))),
        ("actes/abc.pdf", False, Local(Path("actes/abc.pdf"))),
        ("abc.pdf", False, Local(Path("abc.pdf"))),
        ("../abc.pdf", False, Local(Path("../abc.pdf"))),
    ],
)
def test_resolve_location(location: str, storage: bool, expected: object) -> None:
    assert resolve_location(location, storage) == expected


@pytest.mark.parametrize(
    ("location", "storage", "message"),
    [
        ("", True, "location is empty"),
        ("   ", False, "location is empty"),
        ("s3://bucket/a.pdf", True, "unsupported scheme 's3'"),
        ("ftp://host/a.pdf", False, "unsupported scheme 'ftp'"),
        ("file://server/share/a.pdf", True, "file URI on another host"),
        ("file:relative/a.pdf", True, "without an absolute path"),
        ("file:///a.pdf?x=1", True, "query or fragment"),
        ("https:///a.pdf", True, "without a host"),
        ("2024/../../secret.pdf", True, "'.' or '..' segments"),
        ("2024/%2E%2E/secret.pdf", True, "'.' or '..' segments"),
        ("./a.pdf", True, "'.' or '..' segments"),
        ("../a.pdf", True, "'.' or '..' segments"),
        ("index/..", True, "'.' or '..' segments"),
        ("2024/%FF.pdf", True, "not UTF-8"),
        ("%FF.pdf", True, "not UTF-8"),
        ("actes/", True, "location 'actes/' names the bucket 'actes' but no object in it"),
        ("actes///", True, "location 'actes///' names the bucket 'actes' but no object in it"),
        ("actes/%2F", True, "location 'actes/%2F' names no object"),
        ("%2E%2E/a.pdf", True, "does not start with a valid storage bucket name ('%2E%2E')"),
        ("a\\b/a.pdf", True, "does not start with a valid storage bucket name"),
        (f"{'b' * 101}/a.pdf", True, "does not start with a valid storage bucket name"),
        ("a\x00b.pdf", False, "NUL byte"),
    ],
)
def test_resolve_location_refuses(location: str, storage: bool, message: str) -> None:
    with pytest.raises(DocumentError, match=re.escape(message)):
        resolve_location(location, storage)


def test_config_is_checked_and_frozen() -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        FetchConfig(max_bytes=0)
    with pytest.raises(ValueError, match="timeout_seconds"):
        FetchConfig(timeout_seconds=0)
    buckets = {"index": "idx"}
    config = FetchConfig(buckets=buckets)
    buckets["acte"] = "changed later"
    assert dict(config.buckets) == {"index": "idx"}
    # The extractor's buckets by default.
    assert dict(FetchConfig().buckets) == {"index": "index", "acte": "actes"}
    assert KEY not in repr(StorageTarget("http://x", KEY))


# --- helpers ---------------------------------------------------------------------


def _config(tmp_path: Path, **overrides: Any) -> FetchConfig:
    """A config spooling into `tmp_path/spool`, so tests can see what is left there."""
    spool = tmp_path / "spool"
    spool.mkdir(exist_ok=True)
    return dataclasses.replace(FetchConfig(temp_dir=spool, timeout_seconds=10.0), **overrides)


def _spool_is_empty(config: FetchConfig) -> bool:
    assert config.temp_dir is not None
    return not any(config.temp_dir.iterdir())


async def _fetch_ok(
    location: str,
    config: FetchConfig,
    *,
    source: str = "index",
    storage: StorageTarget | None = None,
    session: aiohttp.ClientSession | None = None,
) -> tuple[bytes, Path]:
    """Fetch, check the temporary copy while it exists, and that it is gone after."""
    async with fetch_document(
        location, source, config, storage=storage, session=session
    ) as fetched:
        assert isinstance(fetched, FetchedDocument)
        data = fetched.path.read_bytes()
        assert stat.S_IMODE(fetched.path.stat().st_mode) == 0o600
        assert config.temp_dir is not None
        assert fetched.path.parent == config.temp_dir
        assert fetched.size == len(data)
        assert fetched.sha256 == hashlib.sha256(data).hexdigest()
        assert KEY not in fetched.label
        path = fetched.path
    assert not path.exists()
    assert _spool_is_empty(config)
    return data, path


async def _fetch_fails(
    location: str,
    config: FetchConfig,
    kind: type[JobError],
    *,
    source: str = "index",
    storage: StorageTarget | None = None,
) -> str:
    """Fetch, expecting exactly `kind`; the message is one line, secret-free, and the
    spool directory is empty afterwards."""

    async def fetch() -> None:
        async with fetch_document(location, source, config, storage=storage):
            pytest.fail("the body must not run")

    with pytest.raises(JobError) as raised:
        await fetch()
    assert type(raised.value) is kind, raised.value
    message = raised.value.message
    assert "\n" not in message
    assert KEY not in message
    assert _spool_is_empty(config)
    return message


# --- local files -----------------------------------------------------------------


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "acte é 1.pdf").write_bytes(PDF)
    (root / "empty.pdf").write_bytes(b"")
    (tmp_path / "outside.pdf").write_bytes(PDF)
    (root / "link-out.pdf").symlink_to(tmp_path / "outside.pdf")
    (root / "link-in.pdf").symlink_to(root / "sub" / "acte é 1.pdf")
    return root


async def test_local_absolute_path_and_file_uri(docs: Path, tmp_path: Path) -> None:
    config = _config(tmp_path, local_roots=(docs,))
    target = docs / "sub" / "acte é 1.pdf"
    assert (await _fetch_ok(str(target), config))[0] == PDF
    assert (await _fetch_ok(target.as_uri(), config))[0] == PDF  # what `enqueue` writes
    assert (await _fetch_ok(str(docs / "link-in.pdf"), config))[0] == PDF


async def test_local_relative_path_without_storage(
    docs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(docs)
    config = _config(tmp_path, local_roots=(docs,))
    assert (await _fetch_ok("sub/acte é 1.pdf", config))[0] == PDF
    # A relative path that is not there, or outside the roots, most likely was meant
    # for Storage: the message says this environment has none configured.
    message = await _fetch_fails("../outside.pdf", config, DocumentError)
    assert message == (
        f"document ../outside.pdf (→ {tmp_path / 'outside.pdf'}) is outside OCR_LOCAL_ROOTS "
        f"({NO_STORAGE_HINT})"
    )
    message = await _fetch_fails("actes/1234-Laval-1.pdf", config, DocumentMissing)
    assert message == (
        f"document actes/1234-Laval-1.pdf (→ {docs / 'actes' / '1234-Laval-1.pdf'}) not found "
        f"({NO_STORAGE_HINT})"
    )
    assert "{ENV}_SUPABASE_URL and {ENV}_SUPABASE_SERVICE_KEY" in message
    # An absolute path gets no such hint: it never was a Storage key.
    missing = docs / "later.pdf"
    assert await _fetch_fails(str(missing), config, DocumentMissing) == (
        f"document {missing} not found"
    )


async def test_local_roots_are_enforced(docs: Path, tmp_path: Path) -> None:
    config = _config(tmp_path, local_roots=(docs,))
    outside = tmp_path / "outside.pdf"
    message = await _fetch_fails(str(outside), config, DocumentError)
    assert message == f"document {outside} is outside OCR_LOCAL_ROOTS"
    # `..` cannot climb out, nor can a symlink pointing out.
    climbing = f"{docs}/sub/../../outside.pdf"
    message = await _fetch_fails(climbing, config, DocumentError)
    assert message == f"document {climbing} (→ {outside}) is outside OCR_LOCAL_ROOTS"
    message = await _fetch_fails(str(docs / "link-out.pdf"), config, DocumentError)
    assert "is outside OCR_LOCAL_ROOTS" in message
    # Without roots, any local path will do.
    assert (await _fetch_ok(str(docs / "link-out.pdf"), _config(tmp_path)))[0] == PDF


async def test_local_missing_directory_empty_special(docs: Path, tmp_path: Path) -> None:
    config = _config(tmp_path, local_roots=(docs,))
    missing = docs / "later.pdf"
    assert await _fetch_fails(str(missing), config, DocumentMissing) == (
        f"document {missing} not found"
    )
    assert await _fetch_fails(str(docs / "sub"), config, DocumentError) == (
        f"document {docs / 'sub'} is a directory, not a file"
    )
    assert await _fetch_fails(str(docs / "empty.pdf"), config, DocumentError) == (
        f"document {docs / 'empty.pdf'} is an empty file (0 bytes)"
    )
    fifo = docs / "pipe.pdf"
    os.mkfifo(fifo)  # opening it for reading would block forever without O_NONBLOCK
    with anyio.fail_after(5):
        message = await _fetch_fails(str(fifo), config, DocumentError)
    assert message == f"document {fifo} is not a regular file"


async def test_local_cap(docs: Path, tmp_path: Path) -> None:
    big = docs / "big.pdf"
    big.write_bytes(PDF * 10)
    config = _config(tmp_path, max_bytes=len(PDF) * 10 - 1)
    message = await _fetch_fails(str(big), config, DocumentError)
    assert message == (
        f"document {big} is larger than the {len(PDF) * 10 - 1}-byte cap ({len(PDF) * 10} bytes)"
    )
    exact = _config(tmp_path, max_bytes=len(PDF) * 10, chunk_size=1000)
    assert (await _fetch_ok(str(big), exact))[0] == PDF * 10


async def test_local_unreadable_is_retryable(docs: Path, tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads any file")
    locked = docs / "locked.pdf"
    locked.write_bytes(PDF)
    locked.chmod(0)
    message = await _fetch_fails(str(locked), _config(tmp_path), RetryableJobError)
    assert message == f"document {locked} cannot be read: Permission denied"


# --- temporary file lifetime -------------------------------------------------------


async def test_temp_file_removed_when_the_body_raises(docs: Path, tmp_path: Path) -> None:
    config = _config(tmp_path)
    seen: list[Path] = []

    async def ocr_that_fails() -> None:
        async with fetch_document(str(docs / "sub" / "acte é 1.pdf"), "acte", config) as f:
            seen.append(f.path)
            assert f.path.exists()
            raise RuntimeError("OCR failed")

    with pytest.raises(RuntimeError, match="OCR failed"):
        await ocr_that_fails()
    assert not seen[0].exists()
    assert _spool_is_empty(config)


async def test_temp_file_removed_when_the_body_is_cancelled(docs: Path, tmp_path: Path) -> None:
    config = _config(tmp_path)
    seen: list[Path] = []
    with anyio.move_on_after(0.05) as scope:
        async with fetch_document(str(docs / "sub" / "acte é 1.pdf"), "acte", config) as f:
            seen.append(f.path)
            await anyio.sleep(10)
    assert scope.cancelled_caught
    assert not seen[0].exists()
    assert _spool_is_empty(config)


# --- HTTP --------------------------------------------------------------------------


@dataclass
class Served:
    base: str
    sent: dict[str, int] = field(default_factory=dict)  # bytes written per endless path
    finished: dict[str, anyio.Event] = field(default_factory=dict)  # saw the disconnect

    def done(self, name: str) -> anyio.Event:
        return self.finished.setdefault(name, anyio.Event())

    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)


async def _serve(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def _endless(served: Served, name: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A body that never ends, a 64 KB chunk every 5 ms, counting what it sent."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_type = "application/pdf"
        await response.prepare(request)
        served.sent[name] = 0
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                await response.write(b"%PDF-1.7\n".ljust(64 * 1024, b"x"))
                served.sent[name] += 64 * 1024
                await anyio.sleep(0.005)
        except (ConnectionError, RuntimeError):
            pass
        finally:
            served.done(name).set()
        return response

    return handler


@pytest.fixture
async def http_server() -> AsyncIterator[Served]:
    served = Served("")

    async def doc(request: web.Request) -> web.Response:
        served.requests.append((request.path_qs, dict(request.headers)))
        return web.Response(body=PDF, content_type="application/pdf")

    async def status(request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["code"]), text="nope")

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound("/doc.pdf")

    async def loop(request: web.Request) -> web.Response:
        raise web.HTTPFound("/loop")

    async def empty(request: web.Request) -> web.Response:
        return web.Response(body=b"", content_type="application/pdf")

    async def stall(request: web.Request) -> web.Response:
        await anyio.sleep(3)
        return web.Response(body=PDF)

    async def huge_length(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": str(10 * 1024 * MB)})
        await response.prepare(request)
        served.sent["huge-length"] = 0
        try:
            for _ in range(50):
                await response.write(b"x" * 65536)
                served.sent["huge-length"] += 65536
                await anyio.sleep(0.01)
        except (ConnectionError, RuntimeError):
            pass
        return response

    async def short(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": str(len(PDF) * 2)})
        await response.prepare(request)
        await response.write(PDF)
        assert request.transport is not None
        request.transport.close()  # the connection dies half way
        return response

    app = web.Application()
    app.router.add_get("/doc.pdf", doc)
    app.router.add_get("/status/{code}", status)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/loop", loop)
    app.router.add_get("/empty.pdf", empty)
    app.router.add_get("/stall", stall)
    app.router.add_get("/huge-length", huge_length)
    app.router.add_get("/short", short)
    app.router.add_get("/endless", _endless(served, "endless"))
    async for base in _serve(app):
        served.base = base
        yield served


async def test_http_download(http_server: Served, tmp_path: Path) -> None:
    config = _config(tmp_path)
    data, _ = await _fetch_ok(f"{http_server.base}/doc.pdf?token=abc", config)
    assert data == PDF
    assert (await _fetch_ok(f"{http_server.base}/redirect", config))[0] == PDF
    # Plain URLs never get the storage key, even when a StorageTarget is configured.
    storage = StorageTarget("http://storage.invalid", KEY)
    await _fetch_ok(f"{http_server.base}/doc.pdf", config, storage=storage)
    assert all(KEY not in str(headers) for _, headers in http_server.requests)


async def test_http_with_a_shared_session(http_server: Served, tmp_path: Path) -> None:
    async with aiohttp.ClientSession() as session:
        config = _config(tmp_path)
        for _ in range(3):
            data, _ = await _fetch_ok(f"{http_server.base}/doc.pdf", config, session=session)
            assert data == PDF
        assert not session.closed


@pytest.mark.parametrize(
    ("code", "kind", "words"),
    [
        (404, DocumentMissing, "not found (HTTP 404)"),
        (500, RetryableJobError, "download failed (HTTP 500)"),
        (503, RetryableJobError, "download failed (HTTP 503)"),
        (429, RetryableJobError, "download failed (HTTP 429)"),
        (403, DocumentError, "download was refused (HTTP 403)"),
        (410, DocumentError, "download was refused (HTTP 410)"),
    ],
)
async def test_http_statuses(
    http_server: Served, tmp_path: Path, code: int, kind: type[JobError], words: str
) -> None:
    base = http_server.base.replace("http://", "http://user:hunter2@")
    message = await _fetch_fails(f"{base}/status/{code}?sig=s3cret#frag", _config(tmp_path), kind)
    assert message == f"document {http_server.base}/status/{code} {words}"
    for secret in ("hunter2", "user", "s3cret", "frag"):
        assert secret not in message


async def test_http_redirect_loop_empty_and_short_body(http_server: Served, tmp_path: Path) -> None:
    config = _config(tmp_path)
    base = http_server.base
    assert await _fetch_fails(f"{base}/loop", config, DocumentError) == (
        f"document {base}/loop redirects too many times"
    )
    assert await _fetch_fails(f"{base}/empty.pdf", config, DocumentError) == (
        f"document {base}/empty.pdf is an empty file (0 bytes)"
    )
    message = await _fetch_fails(f"{base}/short", config, RetryableJobError)
    assert message.startswith(f"document {base}/short download failed: ClientPayloadError")


async def test_http_timeout_and_refused_connection(http_server: Served, tmp_path: Path) -> None:
    config = _config(tmp_path, timeout_seconds=0.3)
    message = await _fetch_fails(f"{http_server.base}/stall", config, RetryableJobError)
    assert message == f"document {http_server.base}/stall download timed out after 0.3 s"
    port = _closed_port()
    message = await _fetch_fails(f"http://127.0.0.1:{port}/a.pdf", config, RetryableJobError)
    assert message == (
        f"document http://127.0.0.1:{port}/a.pdf download failed: "
        f"cannot connect to 127.0.0.1:{port}"
    )


def _closed_port() -> int:
    """A local port with nothing listening on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_http_content_length_over_cap_reads_nothing(
    http_server: Served, tmp_path: Path
) -> None:
    config = _config(tmp_path, max_bytes=MB)
    message = await _fetch_fails(f"{http_server.base}/huge-length", config, DocumentError)
    assert message == (
        f"document {http_server.base}/huge-length is larger than the 1 MB cap "
        f"(Content-Length: {10 * 1024 * MB} bytes)"
    )


async def test_http_endless_body_stops_at_the_cap(http_server: Served, tmp_path: Path) -> None:
    config = _config(tmp_path, max_bytes=MB, timeout_seconds=15)
    started = time.monotonic()
    message = await _fetch_fails(f"{http_server.base}/endless", config, DocumentError)
    elapsed = time.monotonic() - started
    assert message.startswith(
        f"document {http_server.base}/endless is larger than the 1 MB cap (stopped after "
    )
    # 1 MB at 64 KB / 5 ms is ~0.1 s; the 15 s timeout and 20 s body never came into it.
    assert elapsed < 3
    with anyio.fail_after(5):  # the server sees the connection drop and stops writing
        await http_server.done("endless").wait()
    assert http_server.sent["endless"] < 16 * MB  # the cap plus socket buffers at most


async def test_cancelled_download_leaves_no_file(http_server: Served, tmp_path: Path) -> None:
    config = _config(tmp_path, max_bytes=1024 * MB)
    with anyio.move_on_after(0.3) as scope:
        async with fetch_document(f"{http_server.base}/endless", "index", config):
            pytest.fail("an endless download cannot finish")
    assert scope.cancelled_caught
    assert _spool_is_empty(config)


# --- Supabase Storage (a fake of its REST endpoint) --------------------------------

# What the fake serves: bytes are files; the other values are behaviours. (The
# Storage stand-in of tests/support/storage_server.py serves the end-to-end tests; this
# fake adds failures Storage rarely shows: endless bodies, 5xx, odd statuses.)
OBJECTS: dict[tuple[str, str], bytes | str] = {
    ("index", "2024/abc.pdf"): PDF,
    ("index", "abc.pdf"): PDF + b"bare index",
    ("index", "2024/dossier é/n° 12 #1?.pdf"): PDF + b"accents",
    ("actes", "2024/abc.pdf"): PDF + b"acte",
    ("actes", "abc.pdf"): PDF + b"bare acte",
    ("index", "2024/empty.pdf"): b"",
    ("index", "2024/endless.pdf"): "endless",
    ("index", "2024/real-404.pdf"): "404",
    ("index", "2024/boom.pdf"): "500",
    ("index", "2024/teapot.pdf"): "418",
}


@pytest.fixture
async def storage_server() -> AsyncIterator[Served]:
    served = Served("")
    endless = _endless(served, "storage-endless")

    async def get_object(request: web.Request) -> web.StreamResponse:
        served.requests.append((request.raw_path, dict(request.headers)))
        if request.headers.get("apikey") != KEY or (
            request.headers.get("Authorization") != f"Bearer {KEY}"
        ):
            return web.json_response(
                {"statusCode": "403", "error": "Unauthorized", "message": "invalid signature"},
                status=400,
            )
        bucket, key = request.match_info["bucket"], request.match_info["key"]
        found = OBJECTS.get((bucket, key))
        if found is None:
            if bucket not in {b for b, _ in OBJECTS}:
                body = {"statusCode": "404", "error": "Bucket not found"}
                body["message"] = "Bucket not found"
                return web.json_response(body, status=400)
            return web.json_response(
                {"statusCode": "404", "error": "not_found", "message": "Object not found"},
                status=400,
            )
        if found == "endless":
            return await endless(request)
        if isinstance(found, str):
            return web.json_response(
                {"statusCode": found, "error": "Error", "message": f"status {found}"},
                status=int(found),
            )
        return web.Response(body=found, content_type="application/pdf")

    app = web.Application()
    app.router.add_get("/storage/v1/object/{bucket}/{key:.+}", get_object)
    async for base in _serve(app):
        served.base = base
        yield served


async def test_storage_download(storage_server: Served, tmp_path: Path) -> None:
    config = _config(tmp_path)
    storage = StorageTarget(storage_server.base, KEY)
    # <bucket>/<key>: the bucket is the first segment, whatever the source.
    assert (await _fetch_ok("index/2024/abc.pdf", config, storage=storage))[0] == PDF
    data, _ = await _fetch_ok("actes/2024/abc.pdf", config, storage=storage, source="acte")
    assert data == PDF + b"acte"
    data, _ = await _fetch_ok("actes/2024/abc.pdf", config, storage=storage, source="index")
    assert data == PDF + b"acte"
    # A bare key: the bucket configured for the source (index → index, acte → actes).
    data, _ = await _fetch_ok("abc.pdf", config, storage=storage, source="index")
    assert data == PDF + b"bare index"
    data, _ = await _fetch_ok("abc.pdf", config, storage=storage, source="acte")
    assert data == PDF + b"bare acte"
    # A trailing slash on the URL changes nothing.
    storage_slash = StorageTarget(storage_server.base + "/", KEY)
    await _fetch_ok("index/2024/abc.pdf", config, storage=storage_slash)
    assert [path for path, _ in storage_server.requests] == [
        "/storage/v1/object/index/2024/abc.pdf",
        "/storage/v1/object/actes/2024/abc.pdf",
        "/storage/v1/object/actes/2024/abc.pdf",
        "/storage/v1/object/index/abc.pdf",
        "/storage/v1/object/actes/abc.pdf",
        "/storage/v1/object/index/2024/abc.pdf",
    ]
    for _, headers in storage_server.requests:
        assert headers["apikey"] == KEY
        assert headers["Authorization"] == f"Bearer {KEY}"


async def test_storage_bucket_names_are_settable(storage_server: Served, tmp_path: Path) -> None:
    config = _config(tmp_path, buckets={"index": "actes", "acte": "index"})
    storage = StorageTarget(storage_server.base, KEY)
    data, _ = await _fetch_ok("abc.pdf", config, storage=storage, source="index")
    assert data == PDF + b"bare acte"
    # An explicit bucket is not remapped.
    assert (await _fetch_ok("index/abc.pdf", config, storage=storage))[0] == PDF + b"bare index"


async def test_storage_key_quoting_matches_storage3(storage_server: Served, tmp_path: Path) -> None:
    """The same request path as `storage.from_("index").download(key)` would send."""
    from storage3._async.file_api import relative_path_to_parts
    from yarl import URL

    key = "2024/dossier é/n° 12 #1?.pdf"
    storage = StorageTarget(storage_server.base, KEY)
    data, _ = await _fetch_ok(f"index/{key}", _config(tmp_path), storage=storage)
    assert data == PDF + b"accents"
    storage3_url = URL(storage_server.base + "/storage/v1/").joinpath(
        "object", "index", *relative_path_to_parts(key)
    )
    assert storage_server.requests[-1][0] == storage3_url.raw_path
    # An already percent-encoded key is decoded first, as storage3 does.
    await _fetch_ok(
        "index/2024/dossier%20%C3%A9/n%C2%B0%2012%20%231%3F.pdf", _config(tmp_path), storage=storage
    )
    assert storage_server.requests[-1][0] == storage3_url.raw_path


async def test_storage_url_on_the_supabase_host_gets_the_key(
    storage_server: Served, tmp_path: Path
) -> None:
    storage = StorageTarget(storage_server.base, KEY)
    url = f"{storage_server.base}/storage/v1/object/index/2024/abc.pdf"
    assert (await _fetch_ok(url, _config(tmp_path), storage=storage))[0] == PDF


@pytest.mark.parametrize(
    ("key", "kind", "words"),
    [
        ("2024/nope.pdf", DocumentMissing, "not found (HTTP 400: not_found - Object not found)"),
        ("2024/real-404.pdf", DocumentMissing, "not found (HTTP 404: Error - status 404)"),
        ("2024/boom.pdf", RetryableJobError, "download failed (HTTP 500: Error - status 500)"),
        ("2024/teapot.pdf", DocumentError, "download was refused (HTTP 418: Error - status 418)"),
        ("2024/empty.pdf", DocumentError, "is an empty file (0 bytes)"),
    ],
)
async def test_storage_errors(
    storage_server: Served, tmp_path: Path, key: str, kind: type[JobError], words: str
) -> None:
    storage = StorageTarget(storage_server.base, KEY)
    message = await _fetch_fails(f"index/{key}", _config(tmp_path), kind, storage=storage)
    assert message == f"document storage:index/{key} {words}"


async def test_storage_missing_bucket_and_bad_key(storage_server: Served, tmp_path: Path) -> None:
    storage = StorageTarget(storage_server.base, KEY)
    config = _config(tmp_path, buckets={"index": "no-such-bucket"})
    message = await _fetch_fails("abc.pdf", config, DocumentMissing, storage=storage)
    assert message == (
        "document storage:no-such-bucket/abc.pdf not found "
        "(HTTP 400: Bucket not found - Bucket not found)"
    )
    # What the old reading did: the extractor's `actes/…` looked up in bucket `acte`.
    message = await _fetch_fails("acte/2024/abc.pdf", config, DocumentMissing, storage=storage)
    assert message == (
        "document storage:acte/2024/abc.pdf not found "
        "(HTTP 400: Bucket not found - Bucket not found)"
    )
    message = await _fetch_fails(
        "abc.pdf", _config(tmp_path), RetryableJobError, storage=storage, source="plan_cadastraux"
    )
    assert message == (
        "no storage bucket configured for document source 'plan_cadastraux' (document abc.pdf)"
    )


async def test_storage_refusing_the_key_blames_no_document(
    storage_server: Served, tmp_path: Path
) -> None:
    """A refused key is the configuration's problem: `StorageKeyRefused`, a
    `ServiceUnavailable` (the worker gives the job back, no attempt counted), never a
    `JobError` that would cost the row an attempt."""
    config = _config(tmp_path)
    wrong = StorageTarget(storage_server.base, "wrong-key")

    async def fetch() -> None:
        async with fetch_document("index/2024/abc.pdf", "index", config, storage=wrong):
            pytest.fail("the body must not run")

    with pytest.raises(StorageKeyRefused) as refused:
        await fetch()
    assert isinstance(refused.value, ServiceUnavailable)
    assert not isinstance(refused.value, JobError)
    assert str(refused.value) == (
        "Supabase Storage refused the service key (HTTP 400: Unauthorized - invalid signature) "
        "for document storage:index/2024/abc.pdf"
    )
    assert "wrong-key" not in str(refused.value)
    assert _spool_is_empty(config)


async def test_storage_endless_body_stops_at_the_cap(
    storage_server: Served, tmp_path: Path
) -> None:
    config = _config(tmp_path, max_bytes=2 * MB)
    storage = StorageTarget(storage_server.base, KEY)
    with anyio.fail_after(5):
        message = await _fetch_fails(
            "index/2024/endless.pdf", config, DocumentError, storage=storage
        )
    assert message.startswith(
        "document storage:index/2024/endless.pdf is larger than the 2 MB cap (stopped after "
    )
    with anyio.fail_after(5):
        await storage_server.done("storage-endless").wait()
    assert storage_server.sent["storage-endless"] < 16 * MB
