"""Opening a queue store: the one place that picks the adapter for an environment."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from store.base import QueueStore, StoreError


@dataclass(frozen=True, slots=True)
class StoreAddress:
    """Where one environment's queue is: a database URL (direct Postgres), else a
    Supabase project URL and service key. Secrets in clear: keep it out of logs."""

    env: str
    database_url: str | None = None
    supabase_url: str | None = None
    supabase_key: str | None = None
    pool_size: int = 10
    display_target: str = ""
    """How messages name the database (host/db, no credentials)."""


async def open_store(address: StoreAddress) -> QueueStore:
    """Connect to one environment's queue: directly when a database URL is given,
    else through Supabase. Each driver is imported only when needed."""
    if address.database_url:
        from store.postgres import PostgresStore

        return await PostgresStore.connect(
            address.env,
            address.database_url,
            max_size=address.pool_size,
            display_target=address.display_target,
        )
    if address.supabase_url and address.supabase_key:
        from store.supabase import SupabaseStore

        return await SupabaseStore.connect(address.env, address.supabase_url, address.supabase_key)
    raise StoreError(
        f"environment '{address.env}' has neither a database URL nor Supabase credentials"
    )


@asynccontextmanager
async def open_stores(addresses: Sequence[StoreAddress]) -> AsyncIterator[list[QueueStore]]:
    """Stores for `addresses`, in the same (polling) order; all closed on exit."""
    async with AsyncExitStack() as stack:
        stores: list[QueueStore] = []
        for address in addresses:
            store = await open_store(address)
            stack.push_async_callback(store.close)
            stores.append(store)
        yield stores
