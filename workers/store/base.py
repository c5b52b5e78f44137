"""The one small interface both queue adapters implement."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from workers.store.models import (
    AllocationRecord,
    CachedResult,
    ClaimedJob,
    DocumentSource,
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


class QueueStore(Protocol):
    """A queue database. Every method runs one SQL function of the migration."""

    env: str
    transport: str

    async def ping(self) -> None: ...

    async def claim(
        self, worker: str, source: DocumentSource, lease_seconds: float
    ) -> ClaimedJob | None: ...

    async def heartbeat(self, job: ClaimedJob, lease_seconds: float) -> bool: ...

    async def complete(
        self, job: ClaimedJob, file_content: str, boosted_file_content: str | None = None
    ) -> bool: ...

    async def fail(
        self, job: ClaimedJob, error: str, *, retryable: bool, retry_delay_seconds: float = 0.0
    ) -> FailOutcome: ...

    async def release(self, job: ClaimedJob) -> bool: ...

    async def recover_expired(self, limit: int = 1000) -> list[RecoveredJob]: ...

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
        self, sha256: str, pipeline: str, file_content: str, boosted_file_content: str | None
    ) -> None:
        """Store a successful result for reuse; replaces an earlier one for the same key."""
        ...

    async def record_allocation(self, record: AllocationRecord) -> None: ...

    async def close(self) -> None: ...
