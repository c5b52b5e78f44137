"""The one small interface both queue adapters implement."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, Protocol

from domain import AllocationRecord, DocumentSource
from store.models import (
    CachedResult,
    ClaimedJob,
    EnqueueResult,
    FailOutcome,
    RecoveredJob,
    SourceComposition,
    SourceStats,
)


class StoreError(RuntimeError):
    """A queue operation failed; the message names the environment, never a secret."""


class StoreUnavailable(StoreError):
    """The queue database cannot be reached (connection refused, DNS, auth, timeout)."""


class ResultRefused(Exception):
    """The database refused the result itself, e.g. a text over the 1 MB tsvector limit of
    the table's full-text indexes: writing it again would fail the same way. Not a
    `StoreError` on purpose: it must never be retried as an outage is."""


class QueueStore(Protocol):
    """A queue database. Every method runs one SQL function of the migration."""

    env: str
    transport: str

    async def ping(self) -> None: ...

    async def claim(
        self, worker: str, source: DocumentSource, lease_seconds: float
    ) -> ClaimedJob | None: ...

    async def heartbeat(self, job: ClaimedJob, lease_seconds: float) -> bool:
        """Extend the lease, taking it back when it ran out or was recovered while nobody
        claimed the row since (an outage kept us from renewing). False: another worker
        has the row, or it is finished: stop working on it."""
        ...

    async def complete(
        self,
        job: ClaimedJob,
        file_content: str,
        boosted_file_content: str | None = None,
        file_content_json: dict[str, Any] | None = None,
    ) -> bool:
        """Write the result (status 5) while the row carries our lease (expired, or
        recovered without a new claim, included); False: another worker claimed it since,
        or it is finished. Raises `ResultRefused` when the table cannot take the result."""
        ...

    async def fail(
        self, job: ClaimedJob, error: str, *, retryable: bool, retry_delay_seconds: float = 0.0
    ) -> FailOutcome:
        """Record the failed attempt while the row carries our lease (as `complete`);
        `LOST` when another worker has it."""
        ...

    async def release(self, job: ClaimedJob) -> bool:
        """Give the row back untouched while it carries our lease (as `complete`)."""
        ...

    async def recover_expired(self, limit: int = 1000) -> list[RecoveredJob]:
        """The reaper: expired leases back to the queue, without an attempt charged when
        they ran out during a reported outage (and only a lease after it ended)."""
        ...

    async def requeue_failed(self, source: DocumentSource | None = None) -> int: ...

    async def composition(self) -> dict[DocumentSource, SourceComposition]: ...

    async def stats(self) -> list[SourceStats]: ...

    async def enqueue(
        self,
        source: DocumentSource,
        paths: Sequence[str],
        priorities: Sequence[int],
        max_attempts: int,
    ) -> list[EnqueueResult]: ...

    async def cached_result(self, sha256: str, pipeline: str) -> CachedResult | None:
        """The result stored for this document (lowercase hex SHA-256) and pipeline key
        (version and models), counting the hit; None on a miss."""
        ...

    async def store_result(
        self,
        sha256: str,
        pipeline: str,
        file_content: str,
        boosted_file_content: str | None,
        file_content_json: dict[str, Any] | None = None,
    ) -> None:
        """Store a successful result for reuse; replaces an earlier one for the same key."""
        ...

    async def record_allocation(self, record: AllocationRecord) -> None: ...

    async def merge_gemini_day_usage(
        self, quota_day: date, requests: Mapping[str, int]
    ) -> dict[str, int]:
        """Merge the Gemini requests counted on `quota_day` per model into the durable
        copy (each stored count becomes the greater of the two, never lower) and return
        the stored count of every model of that day (`{}` given: just read the day)."""
        ...

    async def close(self) -> None: ...


PROGRAM_LIMIT_EXCEEDED = "54000"
"""SQLSTATE of a value over one of Postgres's limits (e.g. "string is too long for
tsvector (1234567 bytes, max 1048575 bytes)")."""


def refusal(reason: object, file_content: str) -> str:
    """The `ocr_error` of a result the table refused."""
    detail = " ".join(str(reason).split())[:200]
    return (
        f"result refused by the queue table ({len(file_content):,} characters of text): "
        f"{detail}; the production full-text indexes take at most 1 MB of tsvector per "
        "column, so this document's text cannot be stored there"
    )
