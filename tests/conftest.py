"""Shared fixtures: a migrated database per test module, fresh databases on
demand, and both queue adapters over an empty queue."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import asyncpg
import pytest
import redis as sync_redis

from store import QueueStore
from store.postgres import PostgresStore
from store.supabase import SupabaseStore
from tests.support.databases import (
    temporary_database,
    temporary_database_async,
    truncate_queue,
)
from tests.support.postgrest import serve_postgrest
from tests.support.redis_server import RedisServer, redis_server
from tests.support.sql import Q

SERVICE_KEY = "test-service-key"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def migrated_url() -> Iterator[str]:
    with temporary_database() as url:
        yield url


@pytest.fixture
async def database(migrated_url: str) -> str:
    """The module's migrated database with an empty queue and result cache."""
    conn = await asyncpg.connect(migrated_url)
    try:
        await conn.execute(Q["truncate_queue_and_cache"])
    finally:
        await conn.close()
    return migrated_url


@pytest.fixture
def fresh_database() -> Callable[..., AbstractAsyncContextManager[str]]:
    return temporary_database_async


@pytest.fixture(params=["postgres", "supabase"])
async def store(request: pytest.FixtureRequest, migrated_url: str) -> AsyncIterator[QueueStore]:
    """Each queue adapter over an empty, migrated queue."""
    await truncate_queue(migrated_url)
    if request.param == "postgres":
        pg = await PostgresStore.connect("test", migrated_url)
        try:
            yield pg
        finally:
            await pg.close()
        return
    async with serve_postgrest(migrated_url, SERVICE_KEY) as (base_url, _):
        sb = await SupabaseStore.connect("test", base_url, SERVICE_KEY)
        try:
            yield sb
        finally:
            await sb.close()


@pytest.fixture
def redis_url() -> str:
    """The shared test Redis (from scripts/services.sh)."""
    return os.environ.get("OCR_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix no other test uses: tests on the shared Redis never collide.
    Every key under it is deleted when the test ends."""
    prefix = f"test:{uuid.uuid4().hex[:10]}:"
    yield prefix
    client = sync_redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, which it may stop, kill and restart."""
    with redis_server(tmp_path) as server:
        yield server
