"""Queue stores: one interface (`QueueStore`), a direct-Postgres and a Supabase adapter,
opened from a `StoreAddress` (`store.opening`). Importing this package loads no driver:
asyncpg and the Supabase SDK are imported when a store of theirs is opened."""

from __future__ import annotations

from store.base import QueueStore, ResultRefused, StoreError, StoreUnavailable
from store.models import (
    CachedResult,
    ClaimedJob,
    EnqueueResult,
    FailOutcome,
    RecoveredJob,
    SourceComposition,
    SourceStats,
)
from store.opening import StoreAddress, open_store, open_stores

__all__ = [
    "CachedResult",
    "ClaimedJob",
    "EnqueueResult",
    "FailOutcome",
    "QueueStore",
    "RecoveredJob",
    "ResultRefused",
    "SourceComposition",
    "SourceStats",
    "StoreAddress",
    "StoreError",
    "StoreUnavailable",
    "open_store",
    "open_stores",
]
