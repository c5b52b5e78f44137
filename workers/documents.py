"""Fetching a queue row's document to a private temporary file.

`supabase_path` says where the PDF is; `resolve_location` (pure) reads it, following
the registre extractor that fills the queue:

- `file:///…` or an absolute path (`/…`): a **local** file;
- `http://…`, `https://…`: a **URL**, downloaded;
- `<bucket>/<key>` (any other relative path with a `/`; the extractor writes
  `index/…`, `actes/…`, `plans-cadastraux/…`): the object `<key>` of the Supabase
  Storage bucket its first segment names, whatever the row's `document_source`;
- a bare `<key>` (no `/`; older rows): the object `<key>` of the bucket configured for
  the row's `document_source` (`FetchConfig.buckets`, from `OCR_STORAGE_BUCKET_INDEX` /
  `OCR_STORAGE_BUCKET_ACTE`: `index` / `actes` by default, as the extractor names them);
- any other `scheme://`: refused.

Both Storage forms need a `StorageTarget` (the environment's `{ENV}_SUPABASE_URL` and
`{ENV}_SUPABASE_SERVICE_KEY`). Without one, a relative path is a local path relative
to the current directory (as it always was); when such a file is missing
or outside `OCR_LOCAL_ROOTS`, the message says the environment has no Storage
configured. `<bucket>/` with no key, a bucket name Storage would not accept (its
characters: letters, digits, `_!.*'() &$=@;:+,?-`, at most 100) and `.`/`..`
segments anywhere are refused for good.

`fetch_document` copies or streams it to a temporary file created 0600 in
`FetchConfig.temp_dir`, by default the pool's own temporary directory
(`workers/tempdirs.py`: `<tmp>/ocr-pool/<pool-id>/`, or the system's when no pool claimed
one), computing size and SHA-256 on the way and stopping as soon as `max_bytes` is
passed. The file is removed when the `async with` block ends, however it ends (success,
error, cancellation); if the process is killed instead, the pool's directory goes with
the next start's sweep.

Local files are resolved (`Path.resolve()`: symlinks followed, `..` collapsed) and,
when `FetchConfig.local_roots` is not empty, must lie under one of them. Only regular
files are read (a FIFO or a device is refused without being opened for a blocking
read).

Storage: we stream the very endpoint `storage3` (the Supabase client) calls for
`storage.from_(bucket).download(key)` — `GET {url}/storage/v1/object/{bucket}/{key}`,
the key percent-decoded, split on `/`, refused if it has `.` or `..` segments and
re-quoted segment by segment by `yarl`, exactly as storage3's `relative_path_to_parts`
and `URL.joinpath` do — with the same `apikey` / `Authorization: Bearer` headers (the
service key). The bucket segment is taken as written (the extractor splits the raw
`supabase_path` on its first `/`), only checked. We do not call `download()` itself:
it returns `bytes`, so it buffers the whole file in memory and cannot stop at a size
cap. (Storage also serves the same objects under `/object/authenticated/{bucket}/{key}`;
we keep to the client's path.) A `http(s)` location on the configured Supabase host
gets the same headers and error reading; no other URL ever sees the key. Storage
requests do not follow redirects.

Errors, one line naming the location (URLs without userinfo, query or fragment;
never the key):

- `DocumentMissing` (retryable): the local file does not exist; HTTP 404; Supabase's
  `400 {"statusCode": "404", ...}` (its way of saying "not found", also for a missing
  bucket);
- `RetryableJobError`: network errors, timeouts, 5xx, 408/425/429, a local file that
  cannot be read (permissions, I/O error), no bucket configured for a bare key's
  `document_source`;
- `StorageKeyRefused` (a `ServiceUnavailable`, not a `JobError`): Storage or its
  gateway refusing the service key (401/403, or a 400 whose `statusCode` says so): a
  configuration problem, not the document's. The worker gives the job back untouched
  (no attempt counted) and pauses, so a wrong key fails no row;
- `DocumentError` (permanent): outside `OCR_LOCAL_ROOTS`, a directory or other
  non-regular file, an unsupported or malformed location (including the Storage
  forms' refusals above), other 4xx, larger than the cap, empty (0 bytes).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import stat
import tempfile
import urllib.parse
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import aiohttp
import anyio.to_thread
from yarl import URL

from workers import tempdirs
from workers.errors import (
    DocumentError,
    DocumentMissing,
    JobError,
    RetryableJobError,
    ServiceUnavailable,
)

MB = 1024 * 1024
_NETWORK_CHUNK = 64 * 1024
_ERROR_BODY_LIMIT = 4096
_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
#: The characters Supabase Storage accepts in a bucket name, 1 to 100 of them.
_BUCKET_NAME_RE = re.compile(r"^[A-Za-z0-9_!.*'() &$=@;:+,?-]{1,100}$")
NO_STORAGE_HINT = (
    "read as a local path: this environment has no Supabase Storage configured; set "
    "{ENV}_SUPABASE_URL and {ENV}_SUPABASE_SERVICE_KEY to read it from Storage"
)


class StorageKeyRefused(ServiceUnavailable):
    """Supabase Storage (or its gateway) refused the service key: no document is at fault."""


@dataclass(frozen=True)
class FetchConfig:
    max_bytes: int = 200 * MB
    #: Local documents must resolve under one of these; empty: any local path.
    local_roots: tuple[Path, ...] = ()
    #: Storage bucket per `document_source`, for a bare key (no `<bucket>/` in front).
    buckets: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType({"index": "index", "acte": "actes"})
    )
    #: Whole-request limit for a download (connect, headers and body).
    timeout_seconds: float = 120.0
    #: Where temporary copies go; None: the pool's directory (`tempdirs.scratch_dir()`),
    #: else the system's temporary directory.
    temp_dir: Path | None = None
    #: Bytes read or written per step (and per hand-off to the writer thread).
    chunk_size: int = MB

    def __post_init__(self) -> None:
        if self.max_bytes < 1:
            raise ValueError(f"max_bytes must be at least 1, not {self.max_bytes}")
        if not self.timeout_seconds > 0:
            raise ValueError(f"timeout_seconds must be positive, not {self.timeout_seconds}")
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1, not {self.chunk_size}")
        object.__setattr__(self, "local_roots", tuple(Path(r) for r in self.local_roots))
        object.__setattr__(self, "buckets", MappingProxyType(dict(self.buckets)))


@dataclass(frozen=True)
class StorageTarget:
    supabase_url: str
    service_key: str = field(repr=False)

    def object_url(self, bucket: str, parts: tuple[str, ...]) -> URL:
        """The URL storage3's `download` requests for `bucket` / `parts`."""
        base = self.supabase_url if self.supabase_url.endswith("/") else self.supabase_url + "/"
        return URL(base).joinpath("storage", "v1", "object", bucket, *parts)

    def headers(self) -> dict[str, str]:
        return {"apikey": self.service_key, "Authorization": f"Bearer {self.service_key}"}

    def serves(self, url: URL) -> bool:
        """Whether `url` points at this project's Storage API (same origin and path)."""
        mine = URL(self.supabase_url)
        try:
            same_origin = url.origin() == mine.origin()
        except ValueError:
            return False
        return same_origin and url.path.startswith("/storage/v1/")


@dataclass(frozen=True)
class Local:
    path: Path


@dataclass(frozen=True)
class Url:
    url: str


@dataclass(frozen=True)
class Storage:
    #: The bucket the location names (`<bucket>/<key>`); None for a bare key, whose
    #: bucket is the one configured for the row's `document_source`.
    bucket: str | None
    #: The key as written in the queue, without the bucket (shown in messages).
    key: str
    #: Its segments, percent-decoded, as storage3 sends them.
    parts: tuple[str, ...]


Location = Local | Url | Storage


@dataclass(frozen=True)
class FetchedDocument:
    #: The private temporary copy (mode 0600); gone once the `async with` ends.
    path: Path
    size: int
    sha256: str
    #: How messages name the document (no secrets).
    label: str


def resolve_location(location: str, storage_available: bool) -> Location:
    """Where `location` (a `supabase_path` value) points. Pure: touches nothing.

    With `storage_available`, a relative path is a Storage object: `<bucket>/<key>`
    (split on the first `/`) or a bare key (`Storage.bucket` None: the caller picks the
    bucket of the row's `document_source`). Without it, a relative path is local.
    `DocumentError` for a location that cannot be fetched whatever happens.
    """
    text = location.strip()
    if not text:
        raise DocumentError("document location is empty (supabase_path is blank)")
    if "\x00" in text:
        raise DocumentError(f"document location {_shown(text)!r} contains a NUL byte")
    lowered = text.lower()
    if lowered.startswith("file:"):
        return Local(_file_uri_path(text))
    if lowered.startswith(("http://", "https://")):
        try:
            url = URL(text)
        except (ValueError, TypeError):
            raise DocumentError(f"document location {_shown(text)} is not a valid URL") from None
        if not url.host:
            raise DocumentError(f"document location {_shown(text)} is a URL without a host")
        return Url(text)
    if _SCHEME_RE.match(text):
        scheme = text.split(":", 1)[0]
        raise DocumentError(
            f"document location {_shown(text)} has an unsupported scheme {scheme!r} "
            "(expected a path, file://, http(s):// or a storage key)"
        )
    if text.startswith("/"):
        return Local(Path(text))
    if not storage_available:
        return Local(Path(text))
    return _storage_location(text)


@contextlib.asynccontextmanager
async def fetch_document(
    location: str,
    source: str,
    config: FetchConfig,
    *,
    storage: StorageTarget | None = None,
    session: aiohttp.ClientSession | None = None,
) -> AsyncIterator[FetchedDocument]:
    """Copy or download the document to a private temporary file, removed on exit.

    `session` is used for downloads when given (and left open); otherwise one is made
    for this call. The request timeout is `config.timeout_seconds` either way.
    """
    target = resolve_location(location, storage is not None)
    directory = config.temp_dir or tempdirs.scratch_dir()
    # No await between creating the file and entering `try`: nothing can leak it.
    fd, name = tempfile.mkstemp(prefix="ocr-pool-", suffix=".pdf", dir=directory)
    temp = Path(name)
    sink = _Sink(fd)
    try:
        try:
            if isinstance(target, Local):
                label = str(target.path)
                # Only a relative path without Storage is local and not absolute.
                hint = "" if target.path.is_absolute() else NO_STORAGE_HINT
                await anyio.to_thread.run_sync(_copy_local, target.path, sink, config, hint)
            else:
                label = await _download(target, source, config, storage, session, sink)
        finally:
            sink.close()
        if sink.size == 0:
            raise DocumentError(f"document {label} is an empty file (0 bytes)")
        yield FetchedDocument(temp, sink.size, sink.sha256.hexdigest(), label)
    finally:
        # Synchronous on purpose: one syscall, and it must run even when this task is
        # being cancelled (an await here would be cancelled with it).
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


# --- locations -------------------------------------------------------------------


def _file_uri_path(text: str) -> Path:
    split = urllib.parse.urlsplit(text)
    if split.netloc not in ("", "localhost"):
        raise DocumentError(
            f"document location {_shown(text)} is a file URI on another host ({split.netloc})"
        )
    if split.query or split.fragment:
        raise DocumentError(
            f"document location {_shown(text)} is a file URI with a query or fragment"
        )
    path = urllib.parse.unquote(split.path)
    if not path.startswith("/"):
        raise DocumentError(
            f"document location {_shown(text)} is a file URI without an absolute path"
        )
    if "\x00" in path:
        raise DocumentError(f"document location {_shown(text)} contains a NUL byte")
    return Path(path)


def _storage_location(text: str) -> Storage:
    """`<bucket>/<key>` or a bare `<key>`, split as the extractor splits it."""
    bucket, slash, key = text.partition("/")
    if not slash:
        return Storage(None, text, _storage_parts(text, text))
    if bucket in (".", ".."):
        raise DocumentError(f"document location {text!r} has '.' or '..' segments")
    if not _BUCKET_NAME_RE.match(bucket):
        raise DocumentError(
            f"document location {text!r} does not start with a valid storage bucket name "
            f"({bucket!r})"
        )
    if not key.strip("/"):
        raise DocumentError(
            f"document location {text!r} names the bucket {bucket!r} but no object in it"
        )
    return Storage(bucket, key, _storage_parts(key, text))


def _storage_parts(key: str, location: str) -> tuple[str, ...]:
    """storage3's `relative_path_to_parts`, with our error type (naming `location`)."""
    try:
        parts = urllib.parse.unquote(key, errors="strict").lstrip("/").split("/")
    except UnicodeDecodeError:
        raise DocumentError(
            f"document location {location!r} has percent-escapes that are not UTF-8"
        ) from None
    if "." in parts or ".." in parts:
        raise DocumentError(f"document location {location!r} has '.' or '..' segments")
    if not any(parts):
        raise DocumentError(f"document location {location!r} names no object")
    return tuple(parts)


def _shown(url_or_path: str) -> str:
    """A location fit for a message: URLs lose userinfo, query and fragment."""
    if "://" not in url_or_path:
        return url_or_path
    try:
        url = URL(url_or_path)
        return str(url.with_user(None).with_query(None).with_fragment(None))
    except (ValueError, TypeError):
        scheme, _, rest = url_or_path.partition("://")
        host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
        return f"{scheme}://{host}/…"


def _format_cap(max_bytes: int) -> str:
    if max_bytes % MB == 0:
        return f"{max_bytes // MB} MB"
    if max_bytes >= MB:
        return f"{max_bytes / MB:.1f} MB"
    return f"{max_bytes}-byte"


def _too_large(label: str, config: FetchConfig, detail: str) -> DocumentError:
    return DocumentError(
        f"document {label} is larger than the {_format_cap(config.max_bytes)} cap ({detail})"
    )


# --- writing ---------------------------------------------------------------------


class _Sink:
    """The temporary file being filled, with its running size and SHA-256."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.size = 0
        self.sha256 = hashlib.sha256()
        self._closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Blocking: call from a worker thread."""
        self.sha256.update(data)
        view = memoryview(data)
        try:
            while view:
                written = os.write(self.fd, view)
                view = view[written:]
        except OSError as exc:  # a full disk is not the document's fault: retry later
            raise RetryableJobError(
                f"cannot write the temporary copy: {exc.strerror or type(exc).__name__}"
            ) from None
        self.size += len(data)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            os.close(self.fd)


# --- local files -----------------------------------------------------------------


def _copy_local(given: Path, sink: _Sink, config: FetchConfig, hint: str = "") -> None:
    """Blocking: runs in a worker thread. `hint` is added to "outside" and "not found"."""
    why = f" ({hint})" if hint else ""
    try:
        path = given.resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (3.11)
        raise DocumentError(f"document {given} cannot be resolved: {exc}") from None
    label = str(given) if path == given else f"{given} (→ {path})"
    if config.local_roots and not any(
        path.is_relative_to(root.resolve()) for root in config.local_roots
    ):
        raise DocumentError(f"document {label} is outside OCR_LOCAL_ROOTS{why}")
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise DocumentMissing(f"document {label} not found{why}") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a symlink swapped in since resolve()
            raise DocumentError(f"document {label} changed into a symlink while opened") from None
        raise RetryableJobError(
            f"document {label} cannot be read: {exc.strerror or type(exc).__name__}"
        ) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise DocumentError(f"document {label} is a directory, not a file")
        if not stat.S_ISREG(info.st_mode):
            raise DocumentError(f"document {label} is not a regular file")
        if info.st_size > config.max_bytes:
            raise _too_large(label, config, f"{info.st_size} bytes")
        while True:
            try:
                chunk = os.read(fd, config.chunk_size)
            except OSError as exc:
                raise RetryableJobError(
                    f"document {label} cannot be read: {exc.strerror or type(exc).__name__}"
                ) from None
            if not chunk:
                return
            if sink.size + len(chunk) > config.max_bytes:  # it grew while we read
                raise _too_large(label, config, f"more than {sink.size + len(chunk)} bytes")
            sink.write(chunk)
    finally:
        os.close(fd)


# --- downloads -------------------------------------------------------------------


async def _download(
    target: Url | Storage,
    source: str,
    config: FetchConfig,
    storage: StorageTarget | None,
    session: aiohttp.ClientSession | None,
    sink: _Sink,
) -> str:
    """Stream `target` into `sink`; returns the label naming it."""
    if isinstance(target, Storage):
        assert storage is not None  # resolve_location gives Storage only with a target
        bucket = target.bucket if target.bucket is not None else config.buckets.get(source)
        if bucket is None:
            raise RetryableJobError(
                f"no storage bucket configured for document source {source!r} "
                f"(document {target.key})"
            )
        url = storage.object_url(bucket, target.parts)
        label = f"storage:{bucket}/{target.key}"
        headers: dict[str, str] = storage.headers()
        is_storage = True
    else:
        url = URL(target.url)
        label = _shown(target.url)
        is_storage = storage is not None and storage.serves(url)
        headers = storage.headers() if is_storage and storage is not None else {}

    timeout = aiohttp.ClientTimeout(total=config.timeout_seconds)
    own_session = session is None
    client = session if session is not None else aiohttp.ClientSession()
    try:
        async with client.get(
            url, headers=headers, timeout=timeout, allow_redirects=not is_storage
        ) as response:
            if not 200 <= response.status < 300:
                body = await _error_body(response)
                raise _status_error(response.status, body, label, is_storage)
            length = response.content_length
            if length is not None and length > config.max_bytes:
                response.close()
                raise _too_large(label, config, f"Content-Length: {length} bytes")
            await _stream(response, sink, config, label)
    except (JobError, StorageKeyRefused):
        raise
    except aiohttp.TooManyRedirects:
        raise DocumentError(f"document {label} redirects too many times") from None
    except (aiohttp.InvalidURL, aiohttp.NonHttpUrlRedirectClientError) as exc:
        raise DocumentError(f"document {label} has an invalid URL ({type(exc).__name__})") from None
    except TimeoutError:
        raise RetryableJobError(
            f"document {label} download timed out after {config.timeout_seconds:g} s"
        ) from None
    except aiohttp.ClientConnectorError as exc:
        raise RetryableJobError(
            f"document {label} download failed: cannot connect to {exc.host}:{exc.port}"
        ) from None
    except (aiohttp.ClientError, OSError) as exc:
        raise RetryableJobError(f"document {label} download failed: {type(exc).__name__}") from None
    finally:
        if own_session:
            await client.close()
    return label


async def _stream(
    response: aiohttp.ClientResponse, sink: _Sink, config: FetchConfig, label: str
) -> None:
    """Body → sink, in batches handed to a thread; abort the moment the cap is passed."""
    batch = bytearray()
    received = 0
    async for chunk in response.content.iter_chunked(_NETWORK_CHUNK):
        received += len(chunk)
        if received > config.max_bytes:
            response.close()  # drop the connection: do not read the rest
            raise _too_large(label, config, f"stopped after {received} bytes")
        batch += chunk
        if len(batch) >= config.chunk_size:
            await anyio.to_thread.run_sync(sink.write, bytes(batch))
            batch.clear()
    if batch:
        await anyio.to_thread.run_sync(sink.write, bytes(batch))


@dataclass(frozen=True)
class _ErrorBody:
    status_code: str = ""
    error: str = ""
    message: str = ""


async def _error_body(response: aiohttp.ClientResponse) -> _ErrorBody:
    """Supabase's JSON error body, if that is what came (read at most 4 KB)."""
    try:
        raw = await response.content.read(_ERROR_BODY_LIMIT)
        data = json.loads(raw)
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return _ErrorBody()
    if not isinstance(data, dict):
        return _ErrorBody()
    return _ErrorBody(
        *(_one_line(str(data.get(k) or ""))[:200] for k in ("statusCode", "error", "message"))
    )


def _status_error(
    status: int, body: _ErrorBody, label: str, is_storage: bool
) -> JobError | StorageKeyRefused:
    effective = status
    if is_storage and status == 400 and body.status_code.isdigit():
        effective = int(body.status_code)  # Supabase wraps 404/403 in a 400
    said = f"HTTP {status}"
    if body.error or body.message:
        said += ": " + " - ".join(p for p in (body.error, body.message) if p)
    if effective == 404 or (is_storage and body.error.lower() == "not_found"):
        return DocumentMissing(f"document {label} not found ({said})")
    if is_storage and effective in (401, 403):
        return StorageKeyRefused(
            f"Supabase Storage refused the service key ({said}) for document {label}"
        )
    if effective in (408, 425, 429) or effective >= 500:
        return RetryableJobError(f"document {label} download failed ({said})")
    if 300 <= effective < 400:
        return DocumentError(f"document {label} answered with an unfollowed redirect ({said})")
    return DocumentError(f"document {label} download was refused ({said})")


def _one_line(text: str) -> str:
    return " ".join(text.split())
