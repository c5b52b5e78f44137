"""Direct-Postgres queue adapter (asyncpg, pooled).

Works behind a transaction pooler (Supabase's Supavisor on port 6543, PgBouncer):
such a URL, or one carrying `?pgbouncer=true`, turns off asyncpg's named
prepared-statement cache, which transaction pooling cannot keep.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from domain import AllocationRecord, DocumentSource
from store.base import ResultRefused, StoreError, StoreUnavailable, refusal
from store.models import (
    CachedResult,
    ClaimedJob,
    EnqueueResult,
    FailOutcome,
    RecoveredJob,
    SourceComposition,
    SourceStats,
    allocation_params,
)
from store.reachability import OutageWatch
from store.sql import load_queries

_Q = load_queries(Path(__file__).with_name("queries.sql"))
_POOLER_PORT = 6543
T = TypeVar("T")

_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.InvalidAuthorizationSpecificationError,
    asyncpg.exceptions.InvalidCatalogNameError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    # A pooled connection the server closed while it was reading an error (the server
    # shutting down): "cannot switch to state …; another operation is in progress".
    # The connection is replaced once its socket is seen closed.
    asyncpg.exceptions.InternalClientError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.InterfaceError,
)


class _QuietReconnects(logging.Filter):
    """asyncpg's pool logs a WARNING with a full traceback each time it cannot restore
    its connection floor: every couple of seconds while the server is down. The store's
    outage watch says it once; those tracebacks go to DEBUG (dropped unless the logger
    is at DEBUG)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, _UNAVAILABLE):
            return True
        if not logging.getLogger(record.name).isEnabledFor(logging.DEBUG):
            return False
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


logging.getLogger("asyncpg.pool").addFilter(_QuietReconnects())


def reporter() -> str:
    """Who reports an outage (`ocr_queue_outages.reporter`)."""
    return f"{socket.gethostname()} pid {os.getpid()}"


def connection_options(url: str) -> tuple[str, dict[str, Any]]:
    """Split a URL into (dsn for asyncpg, extra options) and detect transaction poolers."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    pgbouncer = any(k == "pgbouncer" and v.lower() in {"1", "true"} for k, v in query)
    kept = [(k, v) for k, v in query if k != "pgbouncer"]
    dsn = urlunsplit(parts._replace(query=urlencode(kept)))
    behind_pooler = pgbouncer or parts.port == _POOLER_PORT
    options: dict[str, Any] = {"statement_cache_size": 0 if behind_pooler else 256}
    return dsn, options


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Pool release hook. asyncpg's default resets every connection on release
    (RESET ALL, UNLISTEN *, ...): one more round trip per query. Queue calls keep
    no session state (functions pin their own search_path), so there is nothing
    to reset."""


def first_line(exc: BaseException) -> str:
    if isinstance(exc, asyncpg.exceptions.InternalClientError):
        return "the server closed a connection in use"
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def describe_error(env: str, exc: BaseException) -> str:
    """One line for an operator; hints at the usual fix, never prints the URL's password."""
    text = first_line(exc)
    if isinstance(exc, asyncpg.exceptions.UndefinedFunctionError | asyncpg.UndefinedTableError):
        return f"queue database '{env}' is not migrated ({text}); run `ocr-pool migrate`"
    return f"queue database '{env}': {text}"


class PostgresStore:
    """Queue store over a direct Postgres connection pool."""

    transport = "postgres"

    def __init__(self, env: str, pool: asyncpg.Pool, target: str) -> None:
        self.env = env
        self._pool = pool
        self.target = target
        self.outages = OutageWatch(env, self._note_outage)

    @classmethod
    async def connect(
        cls,
        env: str,
        url: str,
        *,
        max_size: int = 10,
        connect_timeout: float = 10.0,
        display_target: str = "",
    ) -> PostgresStore:
        dsn, options = connection_options(url)
        try:
            pool = await asyncpg.create_pool(
                dsn,
                min_size=1,
                max_size=max_size,
                timeout=connect_timeout,
                command_timeout=60,
                server_settings={"application_name": "ocr-pool"},
                reset=_keep_session,
                **options,
            )
        except _UNAVAILABLE as exc:
            raise StoreUnavailable(
                f"cannot reach queue database '{env}' ({display_target or 'postgres'}): "
                f"{str(exc).strip() or type(exc).__name__}"
            ) from None
        return cls(env, pool, display_target)

    async def _call(self, call: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
        try:
            return await call(self._pool)
        except _UNAVAILABLE as exc:
            raise StoreUnavailable(describe_error(self.env, exc)) from exc
        except asyncpg.PostgresError as exc:
            raise StoreError(describe_error(self.env, exc)) from exc

    async def _note_outage(self, seconds: float) -> None:
        await self._call(lambda p: p.execute(_Q["note_outage"], seconds, reporter()))

    async def _run(self, call: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
        """One queue call; an outage is reported before the first call after it."""
        await self.outages.before_call()
        try:
            result = await self._call(call)
        except StoreUnavailable as exc:
            cause = exc.__cause__ or exc
            self.outages.failed(cause, first_line(cause))
            raise
        except StoreError:
            self.outages.answered()
            raise
        self.outages.answered()
        return result

    async def ping(self) -> None:
        await self._run(lambda p: p.fetchval(_Q["ping"]))

    async def claim(
        self, worker: str, source: DocumentSource, lease_seconds: float
    ) -> ClaimedJob | None:
        row = await self._run(lambda p: p.fetchrow(_Q["claim"], worker, str(source), lease_seconds))
        return None if row is None else ClaimedJob.from_row(self.env, worker, row)

    async def heartbeat(self, job: ClaimedJob, lease_seconds: float) -> bool:
        return bool(
            await self._run(
                lambda p: p.fetchval(
                    _Q["heartbeat"], job.id, job.worker, job.lease_token, lease_seconds
                )
            )
        )

    async def complete(
        self,
        job: ClaimedJob,
        file_content: str,
        boosted_file_content: str | None = None,
        file_content_json: dict[str, Any] | None = None,
    ) -> bool:
        structured = None if file_content_json is None else json.dumps(file_content_json)
        try:
            return bool(
                await self._run(
                    lambda p: p.fetchval(
                        _Q["complete"],
                        job.id,
                        job.worker,
                        job.lease_token,
                        file_content,
                        boosted_file_content,
                        structured,
                    )
                )
            )
        except StoreError as exc:
            if isinstance(exc.__cause__, asyncpg.exceptions.ProgramLimitExceededError):
                raise ResultRefused(refusal(exc.__cause__, file_content)) from None
            raise

    async def fail(
        self, job: ClaimedJob, error: str, *, retryable: bool, retry_delay_seconds: float = 0.0
    ) -> FailOutcome:
        outcome = await self._run(
            lambda p: p.fetchval(
                _Q["fail"],
                job.id,
                job.worker,
                job.lease_token,
                error,
                retryable,
                retry_delay_seconds,
                job.attempt,
            )
        )
        return FailOutcome(outcome)

    async def release(self, job: ClaimedJob) -> bool:
        return bool(
            await self._run(
                lambda p: p.fetchval(_Q["release"], job.id, job.worker, job.lease_token)
            )
        )

    async def recover_expired(self, limit: int = 1000) -> list[RecoveredJob]:
        rows = await self._run(lambda p: p.fetch(_Q["recover_expired"], limit))
        return [
            RecoveredJob(
                r["id"],
                r["document_source"],
                r["status_id"],
                r["worker_id"],
                bool(r["attempt_counted"]),
            )
            for r in rows
        ]

    async def requeue_failed(self, source: DocumentSource | None = None) -> int:
        value = await self._run(
            lambda p: p.fetchval(_Q["requeue_failed"], None if source is None else source.value)
        )
        return int(value)

    async def composition(self) -> dict[DocumentSource, SourceComposition]:
        rows = await self._run(lambda p: p.fetch(_Q["composition"]))
        return {
            DocumentSource(r["document_source"]): SourceComposition(
                int(r["claimable"]), int(r["delayed"]), int(r["in_progress"])
            )
            for r in rows
        }

    async def stats(self) -> list[SourceStats]:
        rows = await self._run(lambda p: p.fetch(_Q["stats"]))
        return [SourceStats.from_row(r) for r in rows]

    async def enqueue(
        self,
        source: DocumentSource,
        paths: Sequence[str],
        priorities: Sequence[int],
        max_attempts: int,
    ) -> list[EnqueueResult]:
        rows = await self._run(
            lambda p: p.fetch(
                _Q["enqueue"], source.value, list(paths), list(priorities), max_attempts
            )
        )
        return [
            EnqueueResult(r["supabase_path"], r["id"], bool(r["created"]), int(r["status_id"]))
            for r in rows
        ]

    async def cached_result(self, sha256: str, pipeline: str) -> CachedResult | None:
        row = await self._run(lambda p: p.fetchrow(_Q["cache_get"], sha256, pipeline))
        return None if row is None else CachedResult.from_row(row)

    async def store_result(
        self,
        sha256: str,
        pipeline: str,
        file_content: str,
        boosted_file_content: str | None,
        file_content_json: dict[str, Any] | None = None,
    ) -> None:
        structured = None if file_content_json is None else json.dumps(file_content_json)
        await self._run(
            lambda p: p.execute(
                _Q["cache_put"], sha256, pipeline, file_content, boosted_file_content, structured
            )
        )

    async def record_allocation(self, record: AllocationRecord) -> None:
        await self._run(
            lambda p: p.execute(_Q["record_allocation"], *allocation_params(record).values())
        )

    async def merge_gemini_day_usage(
        self, quota_day: date, requests: Mapping[str, int]
    ) -> dict[str, int]:
        models = sorted(requests)
        rows = await self._run(
            lambda p: p.fetch(
                _Q["gemini_day_usage_merge"], quota_day, models, [requests[m] for m in models]
            )
        )
        return {r["model"]: int(r["requests"]) for r in rows}

    async def close(self) -> None:
        await self._pool.close()
