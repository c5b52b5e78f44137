"""`supabase_path` in every form the production queue holds, read from a Supabase Storage
stand-in (tests/support/storage_server.py: real HTTP, refusing requests without the
service key) by the real worker, on real Postgres and Redis, with the Gemini simulator.

The registre extractor writes `<bucket>/<file>` (`index/…`, `actes/…`); older rows hold
a bare `<file>` whose bucket follows `document_source`; `enqueue` writes `file://` URIs
and absolute paths. All of them must complete, and Storage must be asked for the
extractor's buckets. A wrong service key is the configuration's fault: it fails no
document, and once the key is right every row completes."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import asyncpg
import pytest

from domain import DocumentSource, Status
from gemini_simulator import SimulatorConfig, run_simulator
from pool.cli.samples import acte_paragraphs, index_lines, write_pdf
from pool.wiring.runtime import Runtime, open_runtime
from pool.wiring.settings import Settings
from tests.integration.test_workers_e2e import settings_for as e2e_settings_for
from tests.support.pool_run import run_until_idle
from tests.support.sql import Q
from tests.support.storage_server import (
    INVALID_API_KEY,
    NO_API_KEY,
    StorageStandIn,
    serve_storage,
)
from workers.documents import FetchConfig, StorageTarget, fetch_document
from workers.errors import DocumentError, DocumentMissing, ServiceUnavailable
from workers.worker import JobReport, Outcome

pytestmark = pytest.mark.anyio
INDEX, ACTE = DocumentSource.INDEX, DocumentSource.ACTE
KEY = "storage-service-key-never-shown"
WRONG_KEY = "a-wrong-service-key-never-shown"
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 8 + b"\n%%EOF\n"


# --- the stand-in answers like Supabase Storage ------------------------------------


async def _get(url: str, headers: dict[str, str]) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as answer:
        body = await answer.read()
        if answer.content_type == "application/json":
            return answer.status, await answer.json()
        return answer.status, body


def _auth(key: str) -> dict[str, str]:
    return {"apikey": key, "Authorization": f"Bearer {key}"}


async def test_stand_in_serves_objects_only_with_the_service_key(tmp_path: Path) -> None:
    (tmp_path / "actes" / "2024").mkdir(parents=True)
    (tmp_path / "actes" / "2024" / "b é.pdf").write_bytes(PDF + b"dir")
    (tmp_path / "secret.pdf").write_bytes(b"outside every bucket")
    async with serve_storage(KEY, {("index", "a.pdf"): PDF}, root=tmp_path) as storage:
        base = f"{storage.url}/storage/v1/object"
        assert await _get(f"{base}/index/a.pdf", _auth(KEY)) == (200, PDF)
        assert await _get(f"{base}/actes/2024/b%20%C3%A9.pdf", _auth(KEY)) == (200, PDF + b"dir")
        # The gateway: no key, or not the project's key.
        assert await _get(f"{base}/index/a.pdf", {}) == (401, NO_API_KEY)
        assert await _get(f"{base}/index/a.pdf", _auth(WRONG_KEY)) == (401, INVALID_API_KEY)
        # Storage: the right apikey but no or a wrong JWT.
        status, body = await _get(f"{base}/index/a.pdf", {"apikey": KEY})
        assert (status, body["statusCode"], body["error"]) == (400, "403", "Unauthorized")
        wrong_bearer = {"apikey": KEY, "Authorization": f"Bearer {WRONG_KEY}"}
        status, body = await _get(f"{base}/index/a.pdf", wrong_bearer)
        assert (status, body["statusCode"], body["message"]) == (400, "403", "invalid signature")
        # Missing objects and buckets: 400 carrying Storage's 404.
        status, body = await _get(f"{base}/index/nope.pdf", _auth(KEY))
        assert status == 400
        assert body == {
            "statusCode": "404",
            "code": "NoSuchKey",
            "error": "not_found",
            "message": "Object not found",
        }
        status, body = await _get(f"{base}/acte/2024/b%20%C3%A9.pdf", _auth(KEY))
        assert (status, body["statusCode"], body["error"]) == (400, "404", "Bucket not found")
        # Nothing outside a bucket's directory is ever served.
        status, body = await _get(f"{base}/actes/..%2Fsecret.pdf", _auth(KEY))
        assert (status, body["statusCode"]) == (400, "404")

        assert [(r.method, r.bucket, r.key, r.key_ok, r.status) for r in storage.requests] == [
            ("GET", "index", "a.pdf", True, 200),
            ("GET", "actes", "2024/b é.pdf", True, 200),
            ("GET", "index", "a.pdf", False, 401),
            ("GET", "index", "a.pdf", False, 401),
            ("GET", "index", "a.pdf", False, 400),
            ("GET", "index", "a.pdf", False, 400),
            ("GET", "index", "nope.pdf", True, 400),
            ("GET", "acte", "2024/b é.pdf", True, 400),
            ("GET", "actes", "../secret.pdf", True, 400),
        ]
        assert storage.requests[1].path == "/storage/v1/object/actes/2024/b%20%C3%A9.pdf"
        assert storage.object_path("actes", "2024/b é.pdf") == storage.requests[1].path


# --- fetch_document against the stand-in ------------------------------------------


def _config(tmp_path: Path) -> FetchConfig:
    spool = tmp_path / "spool"
    spool.mkdir(exist_ok=True)
    return FetchConfig(temp_dir=spool, timeout_seconds=10.0)


async def _fetched(
    location: str, source: str, config: FetchConfig, storage: StorageTarget
) -> tuple[bytes, str]:
    async with fetch_document(location, source, config, storage=storage) as fetched:
        return fetched.path.read_bytes(), fetched.label


async def test_fetch_reads_the_extractor_buckets(tmp_path: Path) -> None:
    objects = {
        ("index", "12 345-Montréal-2024.pdf"): PDF + b"index",
        ("actes", "98765-Laval-1700000000000.pdf"): PDF + b"deed",
        ("index", "legacy-index.pdf"): PDF + b"legacy index",
        ("actes", "legacy-acte.pdf"): PDF + b"legacy acte",
        ("plans-cadastraux", "2024/plan 1.pdf"): PDF + b"plan",
    }
    deed = "98765-Laval-1700000000000.pdf"
    async with serve_storage(KEY, objects) as storage:
        target = StorageTarget(storage.url, KEY)
        config = _config(tmp_path)
        cases = [
            # (supabase_path, document_source) → (bucket, key) asked for
            ("index/12 345-Montréal-2024.pdf", "index", ("index", "12 345-Montréal-2024.pdf")),
            (f"actes/{deed}", "acte", ("actes", deed)),
            # the first segment names the bucket, whatever the row's source
            (f"actes/{deed}", "index", ("actes", deed)),
            ("plans-cadastraux/2024/plan 1.pdf", "index", ("plans-cadastraux", "2024/plan 1.pdf")),
            # a bare key: the bucket of the row's document_source
            ("legacy-index.pdf", "index", ("index", "legacy-index.pdf")),
            ("legacy-acte.pdf", "acte", ("actes", "legacy-acte.pdf")),
        ]
        for location, source, (bucket, key) in cases:
            data, label = await _fetched(location, source, config, target)
            assert data == objects[(bucket, key)], location
            assert label == f"storage:{bucket}/{key}"
            assert storage.requests[-1].path == storage.object_path(bucket, key)
            assert storage.requests[-1].key_ok
        assert not any(config.temp_dir.iterdir())  # type: ignore[union-attr]

        with pytest.raises(DocumentMissing) as missing:
            await _fetched("acte/98765-Laval-1700000000000.pdf", "acte", config, target)
        assert missing.value.message == (
            "document storage:acte/98765-Laval-1700000000000.pdf not found "
            "(HTTP 400: Bucket not found - Bucket not found)"
        )
        with pytest.raises(DocumentMissing) as missing:
            await _fetched("actes/absent.pdf", "acte", config, target)
        assert missing.value.message == (
            "document storage:actes/absent.pdf not found (HTTP 400: not_found - Object not found)"
        )
        with pytest.raises(DocumentError, match="'actes/' names the bucket 'actes' but no object"):
            await _fetched("actes/", "acte", config, target)
        assert not any(config.temp_dir.iterdir())  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("key", "said"),
    [
        (WRONG_KEY, "HTTP 401: Invalid API key"),  # the gateway refuses it
        ("", "HTTP 401: No API key found in request"),
    ],
)
async def test_fetch_with_a_refused_key_blames_no_document(
    tmp_path: Path, key: str, said: str
) -> None:
    async with serve_storage(KEY, {("index", "a.pdf"): PDF}) as storage:
        config = _config(tmp_path)
        with pytest.raises(ServiceUnavailable) as refused:
            await _fetched("index/a.pdf", "index", config, StorageTarget(storage.url, key))
        message = str(refused.value)
        assert message == (
            f"Supabase Storage refused the service key ({said}) for document storage:index/a.pdf"
        )
        assert WRONG_KEY not in message
        assert not any(config.temp_dir.iterdir())  # type: ignore[union-attr]
        assert [r.key_ok for r in storage.requests] == [False]


# --- end to end: the real worker, Postgres, Redis, the Gemini simulator ------------


def settings_for(database_url: str, prefix: str, sim_url: str, **extra: Any) -> Settings:
    """The e2e pool settings, the queue as environment `dev` (whose Storage is the stand-in)."""
    return e2e_settings_for(
        database_url, prefix, sim_url, env="dev", gemini_timeout_seconds=10, **extra
    )


class Queue:
    """The rows of one test: each form of `supabase_path`, its PDF, and where it lives."""

    def __init__(self, tmp_path: Path) -> None:
        self.storage_root = tmp_path / "storage"  # <root>/<bucket>/<key>, served
        self.local = tmp_path / "local"  # read from disk
        self.local.mkdir(parents=True)
        #: supabase_path → (document_source, raw path the stand-in must see, or None)
        self.rows: dict[str, tuple[DocumentSource, str | None]] = {}
        self._seed = 0

    def _pdf(self, path: Path, source: DocumentSource) -> None:
        self._seed += 1
        path.parent.mkdir(parents=True, exist_ok=True)
        seed = 4242 + 100 * self._seed
        if source == INDEX:
            write_pdf(path, [index_lines(seed + p, 8) for p in range(2)])
        else:
            write_pdf(path, [acte_paragraphs(seed + p, 4) for p in range(2)])

    def in_storage(self, location: str, source: DocumentSource, bucket: str, key: str) -> None:
        self._pdf(self.storage_root / bucket / key, source)
        self.rows[location] = (source, StorageStandIn.object_path(bucket, key))

    def on_disk(self, name: str, source: DocumentSource) -> Path:
        path = self.local / name
        self._pdf(path, source)
        return path

    def add_local(self, location: str, source: DocumentSource) -> None:
        self.rows[location] = (source, None)

    def storage_paths(self) -> list[str]:
        return sorted(p for _, p in self.rows.values() if p is not None)


def every_form(tmp_path: Path, storage_url: str | None) -> Queue:
    queue = Queue(tmp_path)
    # The extractor's form: <bucket>/<file>.
    queue.in_storage("index/1234567-Montreal-Cadastre_du_Quebec-1.pdf", INDEX, "index",
                     "1234567-Montreal-Cadastre_du_Quebec-1.pdf")  # fmt: skip
    queue.in_storage("actes/7654321-Montreal-1.pdf", ACTE, "actes", "7654321-Montreal-1.pdf")
    queue.in_storage("index/2024/sous dossier/lot é 2.pdf", INDEX, "index",
                     "2024/sous dossier/lot é 2.pdf")  # fmt: skip
    # Older rows: a bare <file>, bucket from document_source.
    queue.in_storage("legacy-index-3.pdf", INDEX, "index", "legacy-index-3.pdf")
    queue.in_storage("legacy-acte-4.pdf", ACTE, "actes", "legacy-acte-4.pdf")
    # Local: a file:// URI and an absolute path.
    queue.add_local(queue.on_disk("local-index-5.pdf", INDEX).as_uri(), INDEX)
    queue.add_local(str(queue.on_disk("local-acte-6.pdf", ACTE)), ACTE)
    if storage_url is not None:
        # A URL on the project's own Storage host: fetched with the key as well.
        queue.in_storage(
            f"{storage_url}/storage/v1/object/actes/url-acte-7.pdf", ACTE, "actes", "url-acte-7.pdf"
        )
    return queue


async def enqueue(runtime: Runtime, queue: Queue, max_attempts: int = 3) -> None:
    store = runtime.targets[0].store
    for source in (INDEX, ACTE):
        paths = [p for p, (s, _) in queue.rows.items() if s == source]
        await store.enqueue(source, paths, [0] * len(paths), max_attempts)


async def rows_by_path(database_url: str) -> dict[str, asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        return {r["supabase_path"]: r for r in await conn.fetch(Q["outcome_rows"])}
    finally:
        await conn.close()


@pytest.mark.slow
async def test_every_path_form_completes(database: str, redis_prefix: str, tmp_path: Path) -> None:
    async with serve_storage(KEY, root=tmp_path / "storage") as storage:
        queue = every_form(tmp_path, storage.url)
        sim_config = SimulatorConfig(port=0, corpus=(tmp_path,), latency_ms=5, seed=3)
        async with run_simulator(sim_config) as sim:
            settings = settings_for(
                database,
                redis_prefix,
                sim.url,
                dev_supabase_url=storage.url,
                dev_supabase_service_key=KEY,
            )
            async with open_runtime(settings) as runtime:
                assert runtime.targets[0].storage is not None
                await enqueue(runtime, queue)
                reports = await run_until_idle(runtime, {INDEX: 2, ACTE: 2}, within=180)
        rows = await rows_by_path(database)

    assert set(rows) == set(queue.rows)
    for location, (source, _) in queue.rows.items():
        row = rows[location]
        assert row["document_source"] == source.value
        assert (row["status_id"], row["ocr_error"]) == (Status.OCR_COMPLETE, None), location
    assert sorted(r.outcome for r in reports) == [Outcome.COMPLETED] * len(queue.rows)
    # Storage was asked, with the key, for exactly the extractor's buckets and keys:
    # /storage/v1/object/index/… and /storage/v1/object/actes/…, each object once.
    assert sorted(storage.paths()) == queue.storage_paths()
    assert all(r.key_ok and r.status == 200 for r in storage.requests)
    assert {r.bucket for r in storage.requests} == {"index", "actes"}
    assert "/storage/v1/object/actes/legacy-acte-4.pdf" in storage.paths()
    assert "/storage/v1/object/index/legacy-index-3.pdf" in storage.paths()
    assert "/storage/v1/object/actes/7654321-Montreal-1.pdf" in storage.paths()
    assert "/storage/v1/object/index/1234567-Montreal-Cadastre_du_Quebec-1.pdf" in storage.paths()


async def run_until(
    runtime: Runtime,
    modes: dict[DocumentSource, int],
    done: Callable[[], Awaitable[None]],
    *,
    within: float,
) -> list[JobReport]:
    """Run workers until `done()` returns, then stop them and wait for them."""
    reports: list[JobReport] = []
    workers = [
        runtime.worker(f"w-{source.value}-{n}", source, reports.append)
        for source, count in modes.items()
        for n in range(count)
    ]
    async with anyio.create_task_group() as tg:
        for worker in workers:
            tg.start_soon(worker.run)
        with anyio.fail_after(within):
            await done()
        for worker in workers:
            worker.stop()
    return reports


@pytest.mark.slow
async def test_a_wrong_service_key_fails_no_document(
    database: str, redis_prefix: str, tmp_path: Path
) -> None:
    async with serve_storage(KEY, root=tmp_path / "storage") as storage:
        queue = every_form(tmp_path, None)
        for local in [p for p, (_, seen) in queue.rows.items() if seen is None]:
            del queue.rows[local]  # Storage rows only: every one of them meets the wrong key
        sim_config = SimulatorConfig(port=0, corpus=(tmp_path,), latency_ms=5, seed=4)
        async with run_simulator(sim_config) as sim:
            wrong = settings_for(
                database,
                redis_prefix,
                sim.url,
                dev_supabase_url=storage.url,
                dev_supabase_service_key=WRONG_KEY,
            )
            async with open_runtime(wrong) as runtime:
                # One attempt each: a single counted attempt would fail a row for good.
                await enqueue(runtime, queue, max_attempts=1)
                # Let two workers of each mode meet the refusal, four requests at least.
                reports = await run_until(
                    runtime, {INDEX: 2, ACTE: 2}, lambda: storage.wait_for_requests(4), within=60
                )
            refused = list(storage.requests)
            rows = await rows_by_path(database)

            assert len(refused) >= 4
            assert all(not r.key_ok and r.status == 401 for r in refused)
            assert set(storage.paths()) <= set(queue.storage_paths())
            for location, row in rows.items():
                # Back in the queue untouched: no attempt counted, no error written.
                assert row["status_id"] == Status.READY_FOR_OCR, (location, row["ocr_error"])
                assert (row["ocr_attempts"], row["ocr_error"]) == (0, None), location
            assert reports
            assert {r.outcome for r in reports} == {Outcome.RELEASED}
            for report in reports:
                assert report.error is not None
                assert "Supabase Storage refused the service key" in report.error
                assert WRONG_KEY not in report.error
                assert KEY not in report.error

            # The key put right, every row completes.
            right = settings_for(
                database,
                redis_prefix,
                sim.url,
                dev_supabase_url=storage.url,
                dev_supabase_service_key=KEY,
            )
            async with open_runtime(right) as runtime:
                await run_until_idle(runtime, {INDEX: 2, ACTE: 2}, within=180)
            rows = await rows_by_path(database)
    for location, row in rows.items():
        assert (row["status_id"], row["ocr_error"]) == (Status.OCR_COMPLETE, None), location
    assert sorted(storage.paths(key_ok=True)) == queue.storage_paths()


def test_the_queue_pdfs_all_differ(tmp_path: Path) -> None:
    """No result-cache hit can stand in for a fetch: every PDF of the queue is unique."""
    queue = every_form(tmp_path, "http://storage.invalid")
    files = [p for p in tmp_path.rglob("*.pdf")]
    assert len(files) == len(queue.rows)
    assert len({hashlib.sha256(f.read_bytes()).hexdigest() for f in files}) == len(files)
