"""Supabase queue adapter: the same SQL functions, called through PostgREST rpc.

Used for environments that have `{ENV}_SUPABASE_URL` + `{ENV}_SUPABASE_SERVICE_KEY`
but no direct database URL. The service key bypasses row-level security; the
queue functions are never exposed to the anon key (see migrations).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import httpx
from postgrest.exceptions import APIError
from supabase import AsyncClient, AsyncClientOptions, acreate_client

from domain import AllocationRecord, DocumentSource, JobId
from store.base import (
    PROGRAM_LIMIT_EXCEEDED,
    ResultRefused,
    StoreError,
    StoreUnavailable,
    refusal,
)
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

_MISSING_FUNCTION_CODES = {"PGRST202", "42883"}
_UNREACHABLE_CODES = {
    # PostgREST cannot reach its database (down, starting, no connection in time).
    "PGRST000",
    "PGRST001",
    "PGRST002",
    "PGRST003",
    # A gateway in front of it answering instead (no PostgREST JSON body).
    "502",
    "503",
    "504",
    # Postgres shutting down, crashed, or not accepting connections yet.
    "57P01",
    "57P02",
    "57P03",
}


def database_unreachable(error: APIError) -> bool:
    """An API error that says the database could not be reached, not that it refused."""
    code = error.code or ""
    return code in _UNREACHABLE_CODES or code.startswith("08")


def _json_id(value: JobId) -> str | int:
    return value if isinstance(value, int) else str(value)


class SupabaseStore:
    """Queue store over Supabase's REST API (`/rest/v1/rpc/<function>`)."""

    transport = "supabase"

    def __init__(self, env: str, client: AsyncClient, http: httpx.AsyncClient) -> None:
        self.env = env
        self._client = client
        self._http = http
        self.outages = OutageWatch(env, self._note_outage)

    @classmethod
    async def connect(
        cls, env: str, url: str, service_key: str, *, request_timeout: float = 30.0
    ) -> SupabaseStore:
        # Our own HTTP client: keep-alive pool and timeout under our control, closed by us.
        http = httpx.AsyncClient(timeout=request_timeout)
        options = AsyncClientOptions(
            httpx_client=http, auto_refresh_token=False, persist_session=False
        )
        try:
            client = await acreate_client(url, service_key, options=options)
        except Exception as exc:  # the SDK raises its own exception types for bad input
            await http.aclose()
            raise StoreUnavailable(
                f"cannot set up Supabase client for '{env}' ({url}): {exc}"
            ) from None
        return cls(env, client, http)

    async def _call(self, function: str, params: dict[str, Any]) -> Any:
        try:
            response = await self._client.rpc(function, params).execute()
        except APIError as exc:
            detail = exc.message or str(exc)
            if database_unreachable(exc):
                raise StoreUnavailable(f"queue database '{self.env}': {detail}") from exc
            if exc.code in _MISSING_FUNCTION_CODES:
                raise StoreError(
                    f"queue database '{self.env}' is not migrated ({detail}); "
                    "apply the migrations (see README: Supabase)"
                ) from exc
            raise StoreError(f"queue database '{self.env}': {detail}") from exc
        except (httpx.TransportError, OSError) as exc:
            raise StoreUnavailable(
                f"cannot reach Supabase for '{self.env}': {str(exc) or type(exc).__name__}"
            ) from exc
        return response.data

    async def _note_outage(self, seconds: float) -> None:
        reporter = f"{socket.gethostname()} pid {os.getpid()}"
        await self._call("ocr_note_outage", {"p_seconds": seconds, "p_reporter": reporter})

    async def _rpc(self, function: str, params: dict[str, Any]) -> Any:
        """One queue call; an outage is reported before the first call after it."""
        await self.outages.before_call()
        try:
            data = await self._call(function, params)
        except StoreUnavailable as exc:
            cause = exc.__cause__ or exc
            self.outages.failed(cause, str(cause).strip() or type(cause).__name__)
            raise
        except StoreError:
            self.outages.answered()
            raise
        self.outages.answered()
        return data

    async def ping(self) -> None:
        await self._rpc("ocr_queue_composition", {})

    async def claim(
        self, worker: str, source: DocumentSource, lease_seconds: float
    ) -> ClaimedJob | None:
        rows = await self._rpc(
            "ocr_claim",
            {"p_worker": worker, "p_source": str(source), "p_lease_seconds": lease_seconds},
        )
        return ClaimedJob.from_row(self.env, worker, rows[0]) if rows else None

    def _lease(self, job: ClaimedJob) -> dict[str, Any]:
        return {
            "p_id": _json_id(job.id),
            "p_worker": job.worker,
            "p_lease_token": str(job.lease_token),
        }

    async def heartbeat(self, job: ClaimedJob, lease_seconds: float) -> bool:
        return bool(
            await self._rpc(
                "ocr_lease_renew", {**self._lease(job), "p_lease_seconds": lease_seconds}
            )
        )

    async def complete(
        self,
        job: ClaimedJob,
        file_content: str,
        boosted_file_content: str | None = None,
        file_content_json: dict[str, Any] | None = None,
    ) -> bool:
        params = {
            **self._lease(job),
            "p_file_content": file_content,
            "p_boosted_file_content": boosted_file_content,
            "p_file_content_json": file_content_json,
        }
        try:
            return bool(await self._rpc("ocr_lease_complete", params))
        except StoreError as exc:
            cause = exc.__cause__
            if isinstance(cause, APIError) and cause.code == PROGRAM_LIMIT_EXCEEDED:
                raise ResultRefused(refusal(cause.message or str(cause), file_content)) from None
            raise

    async def fail(
        self, job: ClaimedJob, error: str, *, retryable: bool, retry_delay_seconds: float = 0.0
    ) -> FailOutcome:
        params = {
            **self._lease(job),
            "p_error": error,
            "p_retryable": retryable,
            "p_retry_delay_seconds": retry_delay_seconds,
            "p_attempt": job.attempt,
        }
        return FailOutcome(await self._rpc("ocr_lease_fail", params))

    async def release(self, job: ClaimedJob) -> bool:
        return bool(await self._rpc("ocr_lease_release", self._lease(job)))

    async def recover_expired(self, limit: int = 1000) -> list[RecoveredJob]:
        rows = await self._rpc("ocr_lease_reap", {"p_limit": limit})
        return [
            RecoveredJob(
                r["id"],
                r["document_source"],
                int(r["status_id"]),
                r["worker_id"],
                bool(r["attempt_counted"]),
            )
            for r in rows
        ]

    async def requeue_failed(self, source: DocumentSource | None = None) -> int:
        params = {"p_source": None if source is None else source.value}
        return int(await self._rpc("ocr_requeue_failed", params))

    async def composition(self) -> dict[DocumentSource, SourceComposition]:
        rows = await self._rpc("ocr_queue_composition", {})
        return {
            DocumentSource(r["document_source"]): SourceComposition(
                int(r["claimable"]), int(r["delayed"]), int(r["in_progress"])
            )
            for r in rows
        }

    async def stats(self) -> list[SourceStats]:
        rows = await self._rpc("ocr_queue_stats", {})
        return [SourceStats.from_row(r) for r in rows]

    async def enqueue(
        self,
        source: DocumentSource,
        paths: Sequence[str],
        priorities: Sequence[int],
        max_attempts: int,
    ) -> list[EnqueueResult]:
        rows = await self._rpc(
            "ocr_enqueue",
            {
                "p_source": source.value,
                "p_paths": list(paths),
                "p_priorities": list(priorities),
                "p_max_attempts": max_attempts,
            },
        )
        return [
            EnqueueResult(r["supabase_path"], r["id"], bool(r["created"]), int(r["status_id"]))
            for r in rows
        ]

    async def cached_result(self, sha256: str, pipeline: str) -> CachedResult | None:
        rows = await self._rpc("ocr_cache_fetch", {"p_sha256": sha256, "p_pipeline": pipeline})
        return CachedResult.from_row(rows[0]) if rows else None

    async def store_result(
        self,
        sha256: str,
        pipeline: str,
        file_content: str,
        boosted_file_content: str | None,
        file_content_json: dict[str, Any] | None = None,
    ) -> None:
        await self._rpc(
            "ocr_cache_store",
            {
                "p_sha256": sha256,
                "p_pipeline": pipeline,
                "p_file_content": file_content,
                "p_boosted_file_content": boosted_file_content,
                "p_file_content_json": file_content_json,
            },
        )

    async def record_allocation(self, record: AllocationRecord) -> None:
        await self._rpc("ocr_record_allocation", allocation_params(record))

    async def merge_gemini_day_usage(
        self, quota_day: date, requests: Mapping[str, int]
    ) -> dict[str, int]:
        models = sorted(requests)
        rows = await self._rpc(
            "ocr_gemini_day_usage_merge",
            {
                "p_quota_day": quota_day.isoformat(),
                "p_models": models,
                "p_requests": [requests[m] for m in models],
            },
        )
        return {r["model"]: int(r["requests"]) for r in rows}

    async def close(self) -> None:
        await self._http.aclose()
