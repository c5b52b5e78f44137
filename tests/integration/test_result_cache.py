"""The result cache (migrations/0004): a document already OCR'd by the same pipeline
reuses its result. Run against both adapters, on a real migrated database."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import anyio
import asyncpg
import pytest

from store import CachedResult, QueueStore, StoreError
from store.migrations import discover
from store.migrations.runner import apply_migrations
from store.postgres import PostgresStore
from store.supabase import SupabaseStore
from tests.support.postgrest import serve_postgrest
from tests.support.sql import Q

pytestmark = pytest.mark.anyio
INDEX_V1 = "index:v1:gemini-2.5-flash"
ACTE_V1 = "acte:v1:gemini-2.5-flash+gemini-2.5-flash"

FRENCH = (
    "ACTE DE VENTE — Circonscription foncière de Québec\n"
    "Par-devant Me Éloïse Côté, notaire, ont comparu : « Hydro-Québec » et "
    "M. François Lefèvre, né à Trois-Rivières, lot 1 234 567 du cadastre du Québec.\n"
    "Prix : 250 000,00 $ ; hypothèque de 1er rang ; œuvre, cœur, naïveté, ½ ¼ ¾ — 𝔄 ✓\n"
)


def new_sha() -> str:
    """The SHA-256 of a document no other test uses."""
    return hashlib.sha256(uuid.uuid4().bytes).hexdigest()


async def cache_row(url: str, sha256: str, pipeline: str) -> Any:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchrow(Q["cache_row"], sha256, pipeline)
    finally:
        await conn.close()


async def test_unknown_document_is_a_miss(store: QueueStore, migrated_url: str) -> None:
    sha = new_sha()
    assert await store.cached_result(sha, INDEX_V1) is None
    assert await cache_row(migrated_url, sha, INDEX_V1) is None  # a miss writes nothing


@pytest.mark.parametrize(
    ("file_content", "boosted"),
    [
        pytest.param('{"lines": []}', None, id="index-no-boost"),
        pytest.param(FRENCH, FRENCH.upper(), id="acte-french"),
        pytest.param("", None, id="empty"),
        pytest.param(FRENCH * 12_000, "\n".join([FRENCH] * 9_000), id="large-3mb"),
    ],
)
async def test_stored_result_comes_back_unchanged(
    store: QueueStore, file_content: str, boosted: str | None
) -> None:
    sha = new_sha()
    await store.store_result(sha, ACTE_V1, file_content, boosted)
    assert await store.cached_result(sha, ACTE_V1) == CachedResult(file_content, boosted)


async def test_other_pipeline_or_document_is_a_miss(store: QueueStore) -> None:
    sha = new_sha()
    await store.store_result(sha, "index:v1:gemini-2.5-flash", "v1 flash", None)
    assert await store.cached_result(sha, "index:v2:gemini-2.5-flash") is None
    assert await store.cached_result(sha, "index:v1:gemini-2.5-pro") is None
    assert await store.cached_result(sha, "acte:v1:gemini-2.5-flash") is None
    assert await store.cached_result(new_sha(), "index:v1:gemini-2.5-flash") is None
    # The same document under another pipeline is its own entry.
    await store.store_result(sha, "index:v1:gemini-2.5-pro", "v1 pro", "boosted")
    assert await store.cached_result(sha, "index:v1:gemini-2.5-flash") == CachedResult(
        "v1 flash", None
    )
    assert await store.cached_result(sha, "index:v1:gemini-2.5-pro") == CachedResult(
        "v1 pro", "boosted"
    )


async def test_later_put_replaces_the_content(store: QueueStore, migrated_url: str) -> None:
    sha = new_sha()
    await store.store_result(sha, ACTE_V1, "premier", "premier corrigé")
    assert await store.cached_result(sha, ACTE_V1) == CachedResult("premier", "premier corrigé")
    first = await cache_row(migrated_url, sha, ACTE_V1)
    await store.store_result(sha, ACTE_V1, "second", None)
    assert await store.cached_result(sha, ACTE_V1) == CachedResult("second", None)
    second = await cache_row(migrated_url, sha, ACTE_V1)
    assert second["created_at"] >= first["created_at"]  # when this content was stored
    assert second["hits"] == 2  # hits count reuses of the key, across puts


async def test_hits_are_counted(store: QueueStore, migrated_url: str) -> None:
    sha = new_sha()
    await store.store_result(sha, INDEX_V1, "x", None)
    stored = await cache_row(migrated_url, sha, INDEX_V1)
    assert (stored["hits"], stored["last_hit_at"]) == (0, None)
    for _ in range(3):
        assert await store.cached_result(sha, INDEX_V1) is not None
    assert await store.cached_result(sha, "index:v9:other") is None  # a miss counts nowhere
    after = await cache_row(migrated_url, sha, INDEX_V1)
    assert after["hits"] == 3
    assert after["last_hit_at"] is not None
    assert after["last_hit_at"] >= after["created_at"]

    # Concurrent hits on one entry are all counted.
    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(store.cached_result, sha, INDEX_V1)
    assert (await cache_row(migrated_url, sha, INDEX_V1))["hits"] == 23


@pytest.mark.parametrize(
    "sha256",
    [
        pytest.param("", id="empty"),
        pytest.param("abc123", id="short"),
        pytest.param("A" * 64, id="uppercase"),
        pytest.param("g" * 64, id="not-hex"),
        pytest.param("a" * 65, id="too-long"),
        pytest.param(" " + "a" * 63, id="space"),
    ],
)
async def test_bad_sha256_is_rejected(store: QueueStore, sha256: str) -> None:
    with pytest.raises(
        StoreError, match=r"queue database 'test': sha256 must be 64 lowercase hex digits"
    ):
        await store.store_result(sha256, INDEX_V1, "x", None)
    with pytest.raises(StoreError, match="sha256 must be 64 lowercase hex digits"):
        await store.cached_result(sha256, INDEX_V1)


async def test_bad_pipeline_and_null_content_are_rejected(store: QueueStore) -> None:
    sha = new_sha()
    for pipeline in ("", "   ", "p" * 201):
        with pytest.raises(StoreError, match="pipeline must be a non-blank key"):
            await store.store_result(sha, pipeline, "x", None)
        with pytest.raises(StoreError, match="pipeline must be a non-blank key"):
            await store.cached_result(sha, pipeline)
    with pytest.raises(StoreError, match="file_content must not be null"):
        await store.store_result(sha, INDEX_V1, None, "boosted")  # type: ignore[arg-type]
    assert await store.cached_result(sha, INDEX_V1) is None


async def test_rerunning_the_migration_keeps_the_cache(fresh_database: Any) -> None:
    async with fresh_database(migrate=False) as url:
        conn = await asyncpg.connect(url)
        try:
            await apply_migrations(conn)
            sha = new_sha()
            await conn.fetchval(Q["cache_put"], sha, ACTE_V1, FRENCH, None)
            before = dict(await conn.fetchrow(Q["cache_row"], sha, ACTE_V1) or {})
            # Twice through the runner (recorded: no-op), then the file itself again,
            # as a re-paste into the Supabase SQL editor would.
            assert (await apply_migrations(conn)).applied == []
            (cache_migration,) = [m for m in discover() if m.name == "result_cache"]
            await conn.execute(cache_migration.sql)
            await conn.execute(cache_migration.sql)
            assert dict(await conn.fetchrow(Q["cache_row"], sha, ACTE_V1) or {}) == before
            assert await conn.fetchval(Q["cache_rls"]) is True
        finally:
            await conn.close()


async def test_rls_keeps_other_roles_out(migrated_url: str) -> None:
    """With Supabase's default grants (anon may touch every table in `public`), row
    level security without policies still keeps the anon key from reading the cache
    or planting a result; the service role and the owner bypass it."""
    sha = new_sha()
    conn = await asyncpg.connect(migrated_url)
    try:
        tx = conn.transaction()
        await tx.start()
        try:
            await conn.fetchval(Q["cache_put"], sha, INDEX_V1, "owner's result", None)
            await conn.execute(Q["rls_probe_role"])
            await conn.execute(Q["rls_probe_grant"])
            await conn.execute(Q["rls_probe_become"])
            assert await conn.fetch(Q["cache_get"], sha, INDEX_V1) == []
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
                await conn.fetchval(Q["cache_put"], new_sha(), INDEX_V1, "planted", None)
        finally:
            await tx.rollback()  # the role and the row go with it
    finally:
        await conn.close()


async def test_database_without_the_cache_migration_is_named(fresh_database: Any) -> None:
    async with fresh_database(migrate=False) as url:
        conn = await asyncpg.connect(url)
        try:
            await apply_migrations(conn, migrations=[m for m in discover() if m.version < 4])
        finally:
            await conn.close()
        pg = await PostgresStore.connect("dev", url)
        try:
            with pytest.raises(StoreError, match="'dev' is not migrated"):
                await pg.cached_result(new_sha(), INDEX_V1)
        finally:
            await pg.close()
        async with serve_postgrest(url, "k") as (base_url, _):
            sb = await SupabaseStore.connect("dev", base_url, "k")
            try:
                with pytest.raises(StoreError, match="'dev' is not migrated"):
                    await sb.store_result(new_sha(), INDEX_V1, "x", None)
            finally:
                await sb.close()
