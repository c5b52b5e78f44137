"""Queue stores: one interface (`QueueStore`), a direct-Postgres and a Supabase adapter."""

from __future__ import annotations

from workers.store.base import QueueStore, ResultRefused, StoreError, StoreUnavailable
from workers.store.models import (
    AllocationRecord,
    CachedResult,
    ClaimedJob,
    DocumentSource,
    EnqueueResult,
    FailOutcome,
    JobId,
    RecoveredJob,
    SourceComposition,
    SourceStats,
    Status,
)

__all__ = [
    "AllocationRecord",
    "CachedResult",
    "ClaimedJob",
    "DocumentSource",
    "EnqueueResult",
    "FailOutcome",
    "JobId",
    "QueueStore",
    "RecoveredJob",
    "ResultRefused",
    "SourceComposition",
    "SourceStats",
    "Status",
    "StoreError",
    "StoreUnavailable",
    "open_store",
]


async def open_store(
    env: str,
    *,
    database_url: str | None = None,
    supabase_url: str | None = None,
    supabase_key: str | None = None,
    pool_size: int = 10,
    display_target: str = "",
) -> QueueStore:
    """Connect to one environment's queue: directly when a database URL is given,
    else through Supabase. The Supabase SDK is imported only when needed."""
    if database_url:
        from workers.store.postgres import PostgresStore

        return await PostgresStore.connect(
            env, database_url, max_size=pool_size, display_target=display_target
        )
    if supabase_url and supabase_key:
        from workers.store.supabase import SupabaseStore

        return await SupabaseStore.connect(env, supabase_url, supabase_key)
    raise StoreError(f"environment '{env}' has neither a database URL nor Supabase credentials")
