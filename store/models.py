"""Plain values exchanged with a queue store (both adapters return these)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from domain import AllocationRecord, DocumentSource, JobId


class FailOutcome(StrEnum):
    REQUEUED = "requeued"
    """Back at status 3, to be retried (after the delay given)."""
    FAILED = "failed"
    """At status 4: permanent error or attempts used up."""
    LOST = "lost"
    """The caller no longer held the lease; nothing was written."""


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    env: str
    worker: str
    id: JobId
    source: DocumentSource
    supabase_path: str
    attempt: int
    max_attempts: int
    lease_token: UUID | str
    lease_expires_at: datetime | str
    created_at: datetime | str

    @classmethod
    def from_row(cls, env: str, worker: str, row: Any) -> ClaimedJob:
        return cls(
            env=env,
            worker=worker,
            id=row["id"],
            source=DocumentSource(row["document_source"]),
            supabase_path=row["supabase_path"] or "",
            attempt=int(row["attempt"]),
            max_attempts=int(row["max_attempts"]),
            lease_token=row["lease_token"],
            lease_expires_at=row["lease_expires_at"],
            created_at=row["created_at"],
        )


@dataclass(frozen=True, slots=True)
class RecoveredJob:
    id: JobId
    source: str
    status_id: int
    worker_id: str | None
    attempt_counted: bool = True
    """False: the lease ran out during a reported outage of the database (0009)."""


@dataclass(frozen=True, slots=True)
class SourceComposition:
    claimable: int
    delayed: int
    in_progress: int


@dataclass(frozen=True, slots=True)
class EnqueueResult:
    supabase_path: str
    id: JobId
    created: bool
    status_id: int


@dataclass(frozen=True, slots=True)
class CachedResult:
    """A result from the cache (`ocr_result_cache`): what an earlier run of the same
    pipeline wrote for a document with the same SHA-256."""

    file_content: str
    boosted_file_content: str | None
    file_content_json: dict[str, Any] | None = None

    @classmethod
    def from_row(cls, row: Any) -> CachedResult:
        structured = row["file_content_json"]
        if isinstance(structured, str):  # asyncpg hands jsonb over as text
            structured = json.loads(structured)
        return cls(
            file_content=row["file_content"],
            boosted_file_content=row["boosted_file_content"],
            file_content_json=structured if isinstance(structured, dict) else None,
        )


@dataclass(frozen=True, slots=True)
class SourceStats:
    document_source: str
    pending: int
    in_progress: int
    failed: int
    completed_today: int
    completed_last_hour: int
    avg_wait_seconds: float | None
    oldest_pending_seconds: float | None
    p50_processing_seconds: float | None
    p95_processing_seconds: float | None

    @classmethod
    def from_row(cls, row: Any) -> SourceStats:
        def opt(key: str) -> float | None:
            value = row[key]
            return None if value is None else float(value)

        return cls(
            document_source=str(row["document_source"]),
            pending=int(row["pending"]),
            in_progress=int(row["in_progress"]),
            failed=int(row["failed"]),
            completed_today=int(row["completed_today"]),
            completed_last_hour=int(row["completed_last_hour"]),
            avg_wait_seconds=opt("avg_wait_seconds"),
            oldest_pending_seconds=opt("oldest_pending_seconds"),
            p50_processing_seconds=opt("p50_processing_seconds"),
            p95_processing_seconds=opt("p95_processing_seconds"),
        )


def allocation_params(record: AllocationRecord) -> dict[str, Any]:
    """Named arguments of `ocr_record_allocation`."""
    return {
        "p_pool_id": record.pool_id,
        "p_server_id": record.server_id,
        "p_pool_size": record.pool_size,
        "p_index_workers": record.index_workers,
        "p_acte_workers": record.acte_workers,
        "p_index_waiting": record.index_waiting,
        "p_acte_waiting": record.acte_waiting,
        "p_index_seconds": record.index_seconds,
        "p_acte_seconds": record.acte_seconds,
        "p_reason": record.reason,
    }
