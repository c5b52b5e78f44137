"""Real Postgres databases for tests: created fresh, migrated, dropped afterwards.
The server comes from `scripts/services.sh` (the test command starts it); the
default matches a local Postgres on the usual port."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from urllib.parse import urlsplit, urlunsplit

import anyio
import asyncpg

from store.migrations.runner import apply_migrations
from tests.support.sql import Q

ADMIN_URL = os.environ.get("OCR_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("OCR_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SERVICE_KEY = "test-service-key-" + uuid.uuid4().hex


def database_url(name: str) -> str:
    parts = urlsplit(ADMIN_URL)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _create_database(name: str, migrate: bool) -> str:
    await _admin(f'CREATE DATABASE "{name}"')
    url = database_url(name)
    if migrate:
        conn = await asyncpg.connect(url)
        try:
            await apply_migrations(conn)
        finally:
            await conn.close()
    return url


async def _drop_database(name: str) -> None:
    await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def temporary_database(migrate: bool = True) -> Iterator[str]:
    """A brand-new database (dropped afterwards); migrated unless told otherwise."""
    name = f"ocr_test_{uuid.uuid4().hex[:12]}"
    url = anyio.run(_create_database, name, migrate)
    try:
        yield url
    finally:
        anyio.run(_drop_database, name)


@asynccontextmanager
async def temporary_database_async(migrate: bool = True) -> AsyncIterator[str]:
    """`temporary_database` for async tests."""
    name = f"ocr_test_{uuid.uuid4().hex[:12]}"
    url = await _create_database(name, migrate)
    try:
        yield url
    finally:
        await _drop_database(name)


async def truncate_queue(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(Q["truncate_queue"])
    finally:
        await conn.close()
