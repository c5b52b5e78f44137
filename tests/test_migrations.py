"""Migrations: idempotent, additive over a production-shaped table, recorded once."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import pytest

from migrations import Migration, discover, parse_queries
from migrations.runner import MigrationError, apply_migrations
from tests.support.sql import Q
from workers.store import DocumentSource, Status
from workers.store.postgres import PostgresStore

pytestmark = pytest.mark.anyio
FreshDatabase = Callable[..., AbstractAsyncContextManager[str]]
PRODUCTION_SHAPE = (Path(__file__).parent / "support" / "production_shape.sql").read_text()


async def snapshot(conn: asyncpg.Connection) -> dict[str, Any]:
    return dict(await conn.fetchrow(Q["schema_snapshot"]) or {})


async def test_second_run_is_a_no_op(fresh_database: FreshDatabase) -> None:
    async with fresh_database(migrate=False) as url:
        conn = await asyncpg.connect(url)
        try:
            first = await apply_migrations(conn)
            assert first.applied == [m.label for m in discover()]
            before = await snapshot(conn)
            second = await apply_migrations(conn)
            assert second.applied == []
            assert second.already == first.applied
            assert await snapshot(conn) == before
            # Each file is idempotent on its own too (the SQL-editor path re-pastes them).
            for migration in discover():
                await conn.execute(migration.sql)
            assert await snapshot(conn) == before
            ledger = [r["version"] for r in await conn.fetch(Q["ledger"])]
            assert ledger == [m.version for m in discover()]
            statuses = [(r["id"], r["name"]) for r in await conn.fetch(Q["statuses"])]
            assert statuses[2] == (3, "COMPLETE")
            assert statuses[5] == (6, "OCR_EN_TRAITEMENT")
        finally:
            await conn.close()


async def test_production_table_keeps_its_columns_and_rows(fresh_database: FreshDatabase) -> None:
    async with fresh_database(migrate=False) as url:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(PRODUCTION_SHAPE)
            rows_before = {r["id"]: r["doc"] for r in await conn.fetch(Q["rows_as_json"])}
            statuses_before = [tuple(r) for r in await conn.fetch(Q["statuses"])]
            assert len(rows_before) == 6 * 3 * 3
            await apply_migrations(conn)
            rows_after = {r["id"]: r["doc"] for r in await conn.fetch(Q["rows_as_json"])}
            assert rows_after.keys() == rows_before.keys()
            for row_id, before_text in rows_before.items():
                before, after = json.loads(before_text), json.loads(rows_after[row_id])
                # Every original column and value is intact; only ocr_* columns were added.
                assert {k: after[k] for k in before} == before
                assert all(k.startswith("ocr_") for k in after.keys() - before.keys())
            assert [tuple(r) for r in await conn.fetch(Q["statuses"])] == statuses_before
            await apply_migrations(conn)  # and again: nothing changes
            assert {r["id"]: r["doc"] for r in await conn.fetch(Q["rows_as_json"])} == rows_after
        finally:
            await conn.close()

        # The functions fit the bigint ids and nullable legacy OCR columns.
        store = await PostgresStore.connect("prod", url)
        try:
            job = await store.claim("w1", DocumentSource.INDEX, 60)
            assert job is not None
            assert isinstance(job.id, int)
            assert job.supabase_path == "index/3.pdf"  # oldest of the ready index rows
            assert await store.complete(job, "{}")
            recovered = await store.recover_expired()  # the old system's stuck rows at 6
            assert {r.source for r in recovered} == {"index", "acte", "plan_cadastraux"}
            assert all(r.status_id == Status.READY_FOR_OCR for r in recovered)
        finally:
            await store.close()


async def test_edited_migration_is_refused(fresh_database: FreshDatabase) -> None:
    async with fresh_database(migrate=False) as url:
        conn = await asyncpg.connect(url)
        try:
            await apply_migrations(conn)
            first = discover()[0]
            edited = [Migration(first.version, first.name, first.sql + "\n-- edited\n")]
            with pytest.raises(MigrationError, match="changed after it was applied"):
                await apply_migrations(conn, migrations=edited)
        finally:
            await conn.close()


async def test_concurrent_migrations_serialise(fresh_database: FreshDatabase) -> None:
    async with fresh_database(migrate=False) as url:
        reports = []

        async def one() -> None:
            conn = await asyncpg.connect(url)
            try:
                reports.append(await apply_migrations(conn))
            finally:
                await conn.close()

        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(one)
        applied = [r.applied for r in reports]
        assert sorted(map(len, applied)) == [0, 0, 0, len(discover())]


def test_parse_queries() -> None:
    text = "-- header\n-- name: a\nSELECT 1;\n\n-- name: b_2\nSELECT\n  2;\n"
    assert parse_queries(text) == {"a": "SELECT 1;", "b_2": "SELECT\n  2;"}
    with pytest.raises(ValueError, match="defined twice"):
        parse_queries("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;")
    with pytest.raises(ValueError, match="empty"):
        parse_queries("-- name: a\n-- name: b\nSELECT 1;")
