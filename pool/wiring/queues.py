"""Open the queue stores of the configured environments (settings → adapters)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from pool.wiring.settings import QueueEnvironment, Settings
from store import QueueStore, open_store


async def open_environment(env: QueueEnvironment, settings: Settings) -> QueueStore:
    return await open_store(
        env.name,
        database_url=None if env.database_url is None else env.database_url.get_secret_value(),
        supabase_url=env.supabase_url,
        supabase_key=(
            None
            if env.supabase_service_key is None
            else env.supabase_service_key.get_secret_value()
        ),
        pool_size=settings.ocr_db_pool_size,
        display_target=env.display_target,
    )


@asynccontextmanager
async def queue_stores(
    settings: Settings, envs: list[QueueEnvironment]
) -> AsyncIterator[list[QueueStore]]:
    """Stores for `envs`, in the same (polling) order; all closed on exit."""
    async with AsyncExitStack() as stack:
        stores: list[QueueStore] = []
        for env in envs:
            store = await open_environment(env, settings)
            stack.push_async_callback(store.close)
            stores.append(store)
        yield stores
