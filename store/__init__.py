"""Queue stores: one interface (`QueueStore`), a direct-Postgres and a Supabase adapter."""

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
        from store.postgres import PostgresStore

        return await PostgresStore.connect(
            env, database_url, max_size=pool_size, display_target=display_target
        )
    if supabase_url and supabase_key:
        from store.supabase import SupabaseStore

        return await SupabaseStore.connect(env, supabase_url, supabase_key)
    raise StoreError(f"environment '{env}' has neither a database URL nor Supabase credentials")
