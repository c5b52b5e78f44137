"""A Supabase Storage stand-in: `GET /storage/v1/object/<bucket>/<key…>` over real HTTP.

Supabase Storage cannot run here, so tests that read PDFs "from Storage" talk to this
aiohttp server instead. It answers the object-download route the way a Supabase
project does, in two layers:

- **the API gateway** (in front of every Supabase service) wants the project's key in
  the `apikey` header (or an `apikey` query parameter): without one, 401
  `{"message": "No API key found in request", "hint": …}`; with a key that is not the
  project's, 401 `{"message": "Invalid API key", "hint": …}`;
- **Storage itself** verifies `Authorization: Bearer <jwt>`: a missing or wrong token
  is its `AccessDenied` error, which Storage sends (like all its 4xx errors) as HTTP
  400 with the real status in the body's `statusCode`:
  `{"statusCode": "403", "code": "AccessDenied", "error": "Unauthorized", "message":
  "invalid signature"}`; a missing bucket is `{"statusCode": "404", "code":
  "NoSuchBucket", "error": "Bucket not found", "message": "Bucket not found"}`, a
  missing object `{"statusCode": "404", "code": "NoSuchKey", "error": "not_found",
  "message": "Object not found"}`, both with HTTP status 400.

(Those bodies are storage-api's `ERRORS.AccessDenied` / `NoSuchBucket` / `NoSuchKey`
as its error handler renders them, with the backwards-compatible `error` field.)

Only the service key given to the stand-in is a key of "the project": there is no
anon key and no row-level security to emulate. The request path is read the way
Storage reads it: everything after `/object/<bucket>/` is the key, each segment
percent-decoded. Objects come from a dict `{(bucket, key): bytes}` and/or a directory
whose first-level subdirectories are buckets (`<root>/<bucket>/<key>`); a bucket exists
when the dict has an object in it, it is listed in `buckets`, or its directory exists.

Every request is recorded (`StorageStandIn.requests`): method, raw path, bucket and
key as understood, whether the service key was right, and the status answered, so a
test can assert which objects were asked for and how. The key itself is never stored
nor echoed.

Run by hand: `python -m tests.support.storage_server --root DIR --service-key KEY`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import re
import urllib.parse
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

OBJECT_PREFIX = "/storage/v1/object/"
#: Characters Storage accepts in a bucket name (storage-api's bucket-name rule).
_BUCKET_NAME = re.compile(r"^[A-Za-z0-9_!.*'() &$=@;:+,?-]{1,100}$")

NO_API_KEY = {
    "message": "No API key found in request",
    "hint": "No `apikey` request header or url param was found.",
}
INVALID_API_KEY = {
    "message": "Invalid API key",
    "hint": "Double check your Supabase `anon` or `service_role` API key.",
}


@dataclass(frozen=True, slots=True)
class StorageRequest:
    """One request the stand-in received."""

    method: str
    #: The path as sent (still percent-encoded), without the query string.
    path: str
    #: The bucket and key the path names (key percent-decoded); None if it names none.
    bucket: str | None
    key: str | None
    #: `apikey` and `Authorization: Bearer` both carried the service key.
    key_ok: bool
    #: The HTTP status answered.
    status: int


def _storage_error(status_code: int, code: str, error: str, message: str) -> web.Response:
    """Storage's rendering of its errors: HTTP 400 (500 stays 500), the status in the body."""
    body = {"statusCode": str(status_code), "code": code, "error": error, "message": message}
    return web.json_response(body, status=500 if status_code == 500 else 400)


class StorageStandIn:
    def __init__(
        self,
        service_key: str,
        objects: Mapping[tuple[str, str], bytes] | None = None,
        *,
        root: Path | None = None,
        buckets: Iterable[str] = (),
    ) -> None:
        if not service_key:
            raise ValueError("the stand-in needs a service key")
        self._key = service_key
        self.objects: dict[tuple[str, str], bytes] = dict(objects or {})
        self.root = root.resolve() if root is not None else None
        self.buckets: set[str] = set(buckets)
        self.requests: list[StorageRequest] = []
        self._arrival = asyncio.Event()
        self.url = ""
        """Base URL (`http://127.0.0.1:<port>`), set once serving; what SUPABASE_URL is."""

    # -- what tests look at ---------------------------------------------------------
    def put(self, bucket: str, key: str, data: bytes) -> None:
        self.objects[(bucket, key)] = data

    def paths(self, *, key_ok: bool | None = None) -> list[str]:
        """Raw request paths in arrival order (only those with/without the key if asked)."""
        return [r.path for r in self.requests if key_ok is None or r.key_ok is key_ok]

    async def wait_for_requests(self, count: int) -> None:
        """Return once at least `count` requests have been answered."""
        while len(self.requests) < count:
            await self._arrival.wait()

    @staticmethod
    def object_path(bucket: str, key: str) -> str:
        """The raw path a client requests for `bucket`/`key` (each segment quoted)."""
        quoted = "/".join(urllib.parse.quote(part, safe="") for part in key.split("/"))
        return f"{OBJECT_PREFIX}{urllib.parse.quote(bucket, safe='')}/{quoted}"

    # -- serving ----------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/storage/v1/object/{tail:.*}", self._get_object)
        return app

    async def _get_object(self, request: web.Request) -> web.StreamResponse:
        bucket, key = self._names(request.rel_url.raw_path)
        apikey = request.headers.get("apikey") or request.rel_url.query.get("apikey")
        bearer = request.headers.get("Authorization", "")
        key_ok = apikey == self._key and bearer == f"Bearer {self._key}"
        response = self._answer(request, apikey, bearer, bucket, key)
        self.requests.append(
            StorageRequest(
                request.method, request.rel_url.raw_path, bucket, key, key_ok, response.status
            )
        )
        self._arrival.set()  # wake every waiter, then arm the next wake-up
        self._arrival = asyncio.Event()
        return response

    @staticmethod
    def _names(raw_path: str) -> tuple[str | None, str | None]:
        tail = raw_path[len(OBJECT_PREFIX) :]
        bucket_raw, slash, key_raw = tail.partition("/")
        try:
            bucket = urllib.parse.unquote(bucket_raw, errors="strict") or None
            key = urllib.parse.unquote(key_raw, errors="strict") if slash else None
        except UnicodeDecodeError:
            return None, None
        return bucket, key or None

    def _answer(
        self,
        request: web.Request,
        apikey: str | None,
        bearer: str,
        bucket: str | None,
        key: str | None,
    ) -> web.Response:
        # The gateway: the project's key, or nothing reaches Storage.
        if not apikey:
            return web.json_response(NO_API_KEY, status=401)
        if apikey != self._key:
            return web.json_response(INVALID_API_KEY, status=401)
        # Storage: the JWT.
        token = bearer[len("Bearer ") :] if bearer.startswith("Bearer ") else ""
        if not token:
            return _storage_error(403, "AccessDenied", "Unauthorized", "jwt must be provided")
        if token != self._key:
            return _storage_error(403, "AccessDenied", "Unauthorized", "invalid signature")
        if bucket is None or key is None:
            return _storage_error(400, "InvalidRequest", "Bad Request", "Invalid object path")
        if not _BUCKET_NAME.match(bucket) or bucket in (".", ".."):
            return _storage_error(400, "InvalidBucketName", "Invalid Input", "Bucket name invalid")
        if not self._bucket_exists(bucket):
            return _storage_error(404, "NoSuchBucket", "Bucket not found", "Bucket not found")
        data = self._object(bucket, key)
        if data is None:
            return _storage_error(404, "NoSuchKey", "not_found", "Object not found")
        return web.Response(
            body=data,
            content_type="application/pdf" if key.lower().endswith(".pdf") else None,
            headers={
                "ETag": f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"',
                "Cache-Control": "max-age=3600",
            },
        )

    def _bucket_exists(self, bucket: str) -> bool:
        if bucket in self.buckets or any(b == bucket for b, _ in self.objects):
            return True
        return self.root is not None and (self.root / bucket).is_dir()

    def _object(self, bucket: str, key: str) -> bytes | None:
        if (bucket, key) in self.objects:
            return self.objects[(bucket, key)]
        if self.root is None:
            return None
        parts = key.split("/")
        if any(p in ("", ".", "..") for p in parts):
            return None  # never a path outside the bucket's directory
        file = (self.root / bucket).joinpath(*parts)
        try:
            if not file.resolve().is_relative_to(self.root / bucket) or not file.is_file():
                return None
            return file.read_bytes()
        except OSError:
            return None


@asynccontextmanager
async def serve_storage(
    service_key: str,
    objects: Mapping[tuple[str, str], bytes] | None = None,
    *,
    root: Path | None = None,
    buckets: Iterable[str] = (),
    host: str = "127.0.0.1",
    port: int = 0,
) -> AsyncIterator[StorageStandIn]:
    """Serve a `StorageStandIn` until the block ends; its `url` is the SUPABASE_URL."""
    stand_in = StorageStandIn(service_key, objects, root=root, buckets=buckets)
    runner = web.AppRunner(stand_in.app(), handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0]
    stand_in.url = f"http://{bound[0]}:{bound[1]}"
    try:
        yield stand_in
    finally:
        await runner.cleanup()


async def _main(root: Path, service_key: str, port: int) -> None:
    async with serve_storage(service_key, root=root, port=port) as stand_in:
        print(f"Storage stand-in at {stand_in.url} serving {root}", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--root", type=Path, required=True, help="<root>/<bucket>/<key>")
    parser.add_argument("--service-key", required=True)
    parser.add_argument("--port", type=int, default=54321)
    args = parser.parse_args()
    asyncio.run(_main(args.root, args.service_key, args.port))
