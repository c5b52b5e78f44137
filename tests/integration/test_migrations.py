"""Migrations: idempotent, additive over a production-shaped table, recorded once; the
step format, the lock timeout and its retries, CONCURRENTLY steps, superseded texts,
the SQL-editor script."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import pytest

from domain import DocumentSource, Status
from pool.cli.migrate import step_progress
from store.migrations import (
    Migration,
    combined_sql,
    discover,
    parse_superseded,
    superseded_checksums,
)
from store.migrations.runner import (
    LockPolicy,
    MigrationError,
    StepEvent,
    apply_migrations,
    backoff_seconds,
    next_backoff,
    with_lock_retries,
)
from store.migrations.steps import StepFormatError, split_steps
from store.postgres import PostgresStore
from store.sql import load_queries, parse_queries
from tests.support.live_migration import EARLIER_RELEASE, earlier_release
from tests.support.live_migration import S as LS
from tests.support.sql import Q

pytestmark = pytest.mark.anyio
FreshDatabase = Callable[..., AbstractAsyncContextManager[str]]
PRODUCTION_SHAPE = (Path(__file__).parents[1] / "support" / "production_shape.sql").read_text()
LM = load_queries(Path(__file__).parents[1] / "support" / "runner.sql")


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
            assert second.rewritten == []
            assert await snapshot(conn) == before
            ledger = [r["version"] for r in await conn.fetch(Q["ledger"])]
            assert ledger == [m.version for m in discover()]
            statuses = [(r["id"], r["name"]) for r in await conn.fetch(Q["statuses"])]
            assert statuses[2] == (3, "COMPLETE")
            assert statuses[5] == (6, "OCR_EN_TRAITEMENT")
        finally:
            await conn.close()


async def test_every_step_can_run_again(fresh_database: FreshDatabase) -> None:
    """A step may run twice (a retry, a run interrupted before its ledger row):
    right after its migration, every step of it runs again and changes nothing."""
    async with fresh_database(migrate=False) as url:
        conn = await asyncpg.connect(url)
        try:
            shipped = discover()
            for upto, migration in enumerate(shipped, start=1):
                await apply_migrations(conn, migrations=shipped[:upto])
                before = await snapshot(conn)
                for step in split_steps(migration.sql):
                    # a transactional step as one implicit transaction; CONCURRENTLY alone
                    await conn.execute(step.sql)
                assert await snapshot(conn) == before, f"{migration.label}"
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
                # Every original column and value is intact; only ocr-pool's columns were
                # added (ocr_*, and 0007's file_content_json).
                assert {k: after[k] for k in before} == before
                added = after.keys() - before.keys()
                assert all(k.startswith("ocr_") or k == "file_content_json" for k in added)
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


# --- The step format (pure) ---------------------------------------------------------


def test_steps_split_at_markers_and_text_before_the_first_is_a_step() -> None:
    sql = (
        "CREATE TABLE a (x int);\n"
        "-- step: add y\n"
        "ALTER TABLE a ADD COLUMN IF NOT EXISTS y int;\n"
        "  -- step:   two statements  \n"
        "INSERT INTO a VALUES (1); INSERT INTO a VALUES (2);\n"
    )
    steps = split_steps(sql)
    assert [(s.number, s.title, s.statements) for s in steps] == [
        (1, "", 1),
        (2, "add y", 1),
        (3, "two statements", 2),
    ]
    assert steps[1].sql == "ALTER TABLE a ADD COLUMN IF NOT EXISTS y int;"
    assert steps[1].label == "step 2 (add y)"
    assert steps[0].label == "step 1"
    assert not any(s.concurrent for s in steps)
    # A file without markers is one step, whatever it holds.
    (only,) = split_steps("SELECT 1; SELECT 2;\nSELECT 3")
    assert (only.number, only.title, only.statements) == (1, "", 3)


def test_steps_without_a_statement_are_skipped() -> None:
    sql = (
        "-- 0099: a header\n--\n-- more words\n\n"
        "-- step: one\n/* nothing */\n-- step: two\nSELECT 2;\n"
    )
    assert [(s.number, s.title) for s in split_steps(sql)] == [(1, "two")]
    assert split_steps("-- only comments\n") == []


def test_markers_and_semicolons_inside_quotes_and_bodies_do_not_count() -> None:
    sql = (
        "CREATE FUNCTION f() RETURNS text LANGUAGE plpgsql AS $body$\n"
        "BEGIN\n"
        "-- step: not a marker, inside a function body\n"
        "  RETURN 'a; b';\n"
        "END\n"
        "$body$;\n"
        "SELECT 'it''s; -- step: no', E'\\'; still a string', \"odd;name\"\n"
        "FROM t /* a; /* nested; */ b */;\n"
        "SELECT $1::int, $$;$$;\n"
    )
    (step,) = split_steps(sql)
    assert step.statements == 3
    assert "not a marker" in step.sql


def test_concurrently_outside_comments_and_strings_makes_a_concurrent_step() -> None:
    plain = split_steps(
        "-- built CONCURRENTLY later\nSELECT 'CONCURRENTLY'; SELECT 1 AS \"concurrently\";"
    )
    assert not plain[0].concurrent
    (step,) = split_steps(
        "-- the claim index\ncreate unique index concurrently if not exists My_Idx on t (x);"
    )
    assert step.concurrent
    assert step.index_name == "my_idx"
    (quoted,) = split_steps('CREATE INDEX CONCURRENTLY IF NOT EXISTS "Odd ""idx""" ON t (x)')
    assert quoted.index_name == 'Odd "idx"'
    (other,) = split_steps("REINDEX INDEX CONCURRENTLY some_idx;")
    assert other.concurrent
    assert other.index_name is None


def test_a_concurrent_statement_must_be_alone_and_rerunnable() -> None:
    with pytest.raises(StepFormatError, match=r"step 2 \(idx\): .* alone .* 2 statements"):
        split_steps(
            "SELECT 1;\n-- step: idx\n"
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (x);\nSELECT 2;"
        )
    with pytest.raises(StepFormatError, match="IF NOT EXISTS"):
        split_steps("CREATE INDEX CONCURRENTLY i ON t (x);")
    with pytest.raises(StepFormatError, match="unterminated"):
        split_steps("SELECT $x$ never closed")


def test_shipped_migrations_split_as_intended() -> None:
    planned = {m.label: split_steps(m.sql) for m in discover()}
    first = planned["0001_queue_table"]
    assert [s.index_name for s in first if s.concurrent] == [
        "extraction_queue_ocr_claim_idx",
        "extraction_queue_ocr_leased_idx",
        "extraction_queue_ocr_completed_idx",
        "extraction_queue_supabase_path_idx",
    ]
    # The one ALTER of extraction_queue is a step of its own.
    (alter,) = [s for s in first if "ALTER TABLE extraction_queue" in s.code]
    assert alter.statements == 1
    assert [s.statements for s in first] == [1] * len(first)
    for label in ("0002_queue_functions", "0003_dashboard_views", "0006_lockdown"):
        assert not any(s.concurrent for s in planned[label]), label


# --- Retry policy (pure) -------------------------------------------------------------


def test_backoff_doubles_up_to_its_cap_with_jitter_in_the_upper_half() -> None:
    policy = LockPolicy(first_backoff_seconds=0.05, max_backoff_seconds=2.0)
    ceilings = [backoff_seconds(policy, n, 1.0) for n in range(1, 9)]
    assert ceilings == [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0]
    assert [backoff_seconds(policy, n, 0.0) for n in (1, 7)] == [0.025, 1.0]
    assert backoff_seconds(policy, 10_000, 0.5) == 1.5  # no overflow
    with pytest.raises(ValueError, match="failures"):
        backoff_seconds(policy, 0, 0.5)
    with pytest.raises(ValueError, match="jitter"):
        backoff_seconds(policy, 1, 1.5)


def test_retries_stop_before_the_retry_time_is_used_up() -> None:
    policy = LockPolicy(lock_timeout_ms=200, retry_for_seconds=10.0)
    assert next_backoff(policy, 1, 0.0, 1.0) == 0.05
    # An attempt that could still be waiting for its lock after 10 s is not made.
    assert next_backoff(policy, 7, 7.7, 1.0) == 2.0
    assert next_backoff(policy, 7, 7.9, 1.0) is None
    assert next_backoff(LockPolicy(retry_for_seconds=0), 1, 0.0, 0.0) is None
    # Worst case (always the longest pause): the number of attempts is bounded.
    elapsed, failures = 0.0, 0
    while (pause := next_backoff(policy, failures + 1, elapsed, 1.0)) is not None:
        failures += 1
        elapsed += 0.2 + pause
    assert elapsed <= 10.0
    assert failures == 8
    with pytest.raises(ValueError, match="lock timeout"):
        LockPolicy(lock_timeout_ms=0)


async def test_with_lock_retries_retries_lock_timeouts_only() -> None:
    policy = LockPolicy(first_backoff_seconds=0.001, max_backoff_seconds=0.002)
    calls: list[int] = []
    waits: list[tuple[int, float]] = []

    async def flaky() -> None:
        calls.append(1)
        if len(calls) <= 3:
            raise asyncpg.exceptions.LockNotAvailableError(
                "canceling statement due to lock timeout"
            )

    retries = await with_lock_retries(
        policy, "migration 0099_x step 1", flaky, on_wait=lambda n, p: waits.append((n, p))
    )
    assert (retries, len(calls)) == (3, 4)
    assert [n for n, _ in waits] == [1, 2, 3]

    async def broken() -> None:
        raise asyncpg.exceptions.UndefinedTableError("relation does not exist")

    with pytest.raises(asyncpg.exceptions.UndefinedTableError):
        await with_lock_retries(policy, "x", broken)

    async def always_locked() -> None:
        raise asyncpg.exceptions.LockNotAvailableError("canceling statement due to lock timeout")

    short = LockPolicy(lock_timeout_ms=1, retry_for_seconds=0.05, first_backoff_seconds=0.001)
    with pytest.raises(MigrationError) as caught:
        await with_lock_retries(short, "migration 0099_x step 2 (add a column)", always_locked)
    message = str(caught.value)
    assert message.startswith("migration 0099_x step 2 (add a column): no lock within 1 ms in ")
    assert "\n" not in message


def test_superseded_file_lists_the_earlier_release_texts() -> None:
    assert parse_superseded("# c\n\n0001 " + "a" * 64 + " what it was\n1 " + "b" * 64) == {
        1: frozenset({"a" * 64, "b" * 64})
    }
    with pytest.raises(ValueError, match="line 1"):
        parse_superseded("0001 not-a-checksum")
    shipped = superseded_checksums()
    for version, name in ((1, "0001_queue_table.sql"), (6, "0006_lockdown.sql")):
        text = (EARLIER_RELEASE / name).read_text(encoding="utf-8")
        assert shipped[version] == {hashlib.sha256(text.encode()).hexdigest()}
    current = {m.version: m.checksum for m in discover()}
    assert all(current[v] not in sums for v, sums in shipped.items())


# --- The runner against a real database ------------------------------------------------


async def test_a_database_of_the_earlier_release_gets_the_rewritten_0001_and_0006(
    fresh_database: FreshDatabase,
) -> None:
    async with fresh_database(migrate=False) as url:
        conn = await asyncpg.connect(url)
        try:
            await apply_migrations(conn, migrations=earlier_release())
            ledger_before = [tuple(r) for r in await conn.fetch(LM["ledger"])]
            report = await apply_migrations(conn)
            assert report.rewritten == ["0001_queue_table", "0006_lockdown"]
            assert report.already == [
                "0002_queue_functions",
                "0003_dashboard_views",
                "0004_result_cache",
                "0005_allocation_log",
            ]
            assert report.applied == [m.label for m in discover() if m.version > 6]
            ledger_after = [tuple(r) for r in await conn.fetch(LM["ledger"])]
            current = {m.version: m.checksum for m in discover()}
            # The rewritten files are recorded with their current text; the others as they were.
            assert [(r[0], r[2]) for r in ledger_after[:6]] == [
                (r[0], current[r[0]]) for r in ledger_before
            ]
            assert [r[:3] for r in ledger_after[1:5]] == [r[:3] for r in ledger_before[1:5]]
            again = await apply_migrations(conn)
            assert (again.rewritten, again.applied) == ([], [])
            assert len(again.already) == len(discover())
            # The database now runs the current ocr_lockdown(), which later files call:
            # it leaves the shared queue (pre-existing here) and its grants alone.
            await conn.execute(LM["grant_queue_to_public"])
            await conn.fetchval(LM["run_lockdown"])
            assert await conn.fetchval(LM["public_reads_queue"]) is True
            # Any other mismatch is still refused (here 0002, applied as it ships).
            second = discover()[1]
            edited = [Migration(2, second.name, second.sql + "\n-- edited\n")]
            with pytest.raises(MigrationError, match="0002_queue_functions changed after"):
                await apply_migrations(conn, migrations=edited)
        finally:
            await conn.close()


def _test_migration(version: int, *steps: tuple[str, str]) -> Migration:
    text = "-- a test migration\n" + "".join(f"-- step: {t}\n{sql}\n" for t, sql in steps)
    return Migration(version, "live", text)


async def _hold(url: str, sql: str, held: anyio.Event, release: anyio.Event) -> None:
    """Another program's transaction: it runs `sql` and stays open until `release`."""
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            await conn.execute(sql)
            held.set()
            await release.wait()
    finally:
        await conn.close()


async def _migrated_with_rows(url: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(url)
    await apply_migrations(conn)
    await conn.execute(LM["seed_rows"])
    return conn


async def test_a_step_that_meets_a_busy_table_rolls_back_and_retries(
    fresh_database: FreshDatabase,
) -> None:
    async with fresh_database(migrate=False) as url:
        conn = await _migrated_with_rows(url)
        try:
            migration = _test_migration(
                901,
                ("a table of its own", "CREATE TABLE IF NOT EXISTS ocr_test_live (x int);"),
                ("add a column", LM["add_column"]),
            )
            events: list[StepEvent] = []
            held, release = anyio.Event(), anyio.Event()
            async with anyio.create_task_group() as tg:
                tg.start_soon(_hold, url, LM["touch_one_row"], held, release)
                await held.wait()

                async def release_soon() -> None:
                    await anyio.sleep(0.8)
                    release.set()

                tg.start_soon(release_soon)
                report = await apply_migrations(
                    conn, migrations=[migration], lock_timeout_ms=50, on_event=events.append
                )
            assert report.applied == ["0901_live"]
            assert report.lock_retries >= 2
            waits = [e for e in events if e.kind == "lock_wait"]
            assert {e.step.title for e in waits} == {"add a column"}
            assert [e.attempt for e in waits] == list(range(2, len(waits) + 2))
            assert await conn.fetchval(LM["has_test_column"])
            assert await conn.fetchval(LM["lock_timeout"]) == "0"  # the session's, untouched
        finally:
            await conn.close()


async def test_giving_up_names_the_migration_and_step_and_records_nothing(
    fresh_database: FreshDatabase,
) -> None:
    async with fresh_database(migrate=False) as url:
        conn = await _migrated_with_rows(url)
        migration = _test_migration(
            902,
            ("a table of its own", "CREATE TABLE IF NOT EXISTS ocr_test_live (x int);"),
            ("add a column", LM["add_column"]),
        )
        try:
            held, release = anyio.Event(), anyio.Event()
            async with anyio.create_task_group() as tg:
                tg.start_soon(_hold, url, LM["touch_one_row"], held, release)
                await held.wait()
                with pytest.raises(MigrationError) as caught:
                    await apply_migrations(
                        conn, migrations=[migration], lock_timeout_ms=20, retry_for_seconds=0.5
                    )
                release.set()
            message = str(caught.value)
            assert message.startswith("migration 0902_live step 2 (add a column): no lock within")
            assert "\n" not in message
            assert await conn.fetchval(LM["ledger_has"], 902) is False
            assert await conn.fetchval(LM["test_table_exists"])  # step 1 is in place
            assert not await conn.fetchval(LM["has_test_column"])
            # The other program is gone: the next run does it all and records it.
            report = await apply_migrations(conn, migrations=[migration])
            assert report.applied == ["0902_live"]
            assert await conn.fetchval(LM["has_test_column"])
        finally:
            await conn.close()


async def test_the_ledger_row_is_written_only_after_the_last_step(
    fresh_database: FreshDatabase,
) -> None:
    async with fresh_database(migrate=False) as url:
        conn = await _migrated_with_rows(url)
        try:
            failing = _test_migration(
                903,
                ("a table of its own", "CREATE TABLE IF NOT EXISTS ocr_test_live (x int);"),
                ("a failing step", "SELECT 1 / 0;"),
            )
            with pytest.raises(MigrationError, match=r"0903_live step 2 \(a failing step\): 22012"):
                await apply_migrations(conn, migrations=[failing])
            assert await conn.fetchval(LM["ledger_has"], 903) is False
            assert await conn.fetchval(LM["test_table_exists"])
        finally:
            await conn.close()


async def test_a_file_mixing_concurrently_is_refused_before_anything_runs(
    fresh_database: FreshDatabase,
) -> None:
    async with fresh_database(migrate=False) as url:
        conn = await asyncpg.connect(url)
        try:
            good = _test_migration(904, ("t", "CREATE TABLE IF NOT EXISTS ocr_test_live (x int);"))
            bad = Migration(
                905,
                "mixed",
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON ocr_test_live (x); SELECT 1;",
            )
            with pytest.raises(MigrationError, match=r"0905_mixed: step 1: .* alone"):
                await apply_migrations(conn, migrations=[good, bad])
            assert not await conn.fetchval(LM["test_table_exists"])
            assert not await conn.fetchval(LM["ledger_exists"])
        finally:
            await conn.close()


async def test_an_index_build_waits_for_a_long_transaction_and_replaces_an_invalid_index(
    fresh_database: FreshDatabase,
) -> None:
    async with fresh_database(migrate=False) as url:
        conn = await _migrated_with_rows(url)
        try:
            # An earlier run interrupted by its lock timeout left the index INVALID.
            held, release = anyio.Event(), anyio.Event()
            async with anyio.create_task_group() as tg:
                tg.start_soon(_hold, url, LM["touch_one_row"], held, release)
                await held.wait()
                await conn.execute(LM["short_session_lock_timeout"])
                with pytest.raises(asyncpg.exceptions.LockNotAvailableError):
                    await conn.execute(LM["build_index"])
                await conn.execute(LM["reset_session_lock_timeout"])
                release.set()
            (invalid,) = await conn.fetch(LM["test_index"])
            assert invalid["valid"] is False
            # IF NOT EXISTS alone would leave it as it is.
            await conn.execute(LM["build_index"])
            assert (await conn.fetch(LM["test_index"]))[0]["oid"] == invalid["oid"]

            # The runner drops and rebuilds it, after waiting out another long transaction.
            migration = _test_migration(906, ("the test index", LM["build_index"]))
            events: list[StepEvent] = []
            held, release = anyio.Event(), anyio.Event()
            async with anyio.create_task_group() as tg:
                tg.start_soon(_hold, url, LM["touch_one_row"], held, release)
                await held.wait()

                async def release_soon() -> None:
                    await anyio.sleep(0.6)
                    release.set()

                tg.start_soon(release_soon)
                report = await apply_migrations(
                    conn, migrations=[migration], lock_timeout_ms=50, on_event=events.append
                )
            assert report.applied == ["0906_live"]
            assert report.lock_retries >= 1
            assert any(e.kind == "lock_wait" and e.step.concurrent for e in events)
            (rebuilt,) = await conn.fetch(LM["test_index"])
            assert rebuilt["valid"] is True
            assert rebuilt["oid"] != invalid["oid"]
            assert await conn.fetchval(LM["lock_timeout"]) == "0"  # put back
        finally:
            await conn.close()


# --- The SQL-editor script -----------------------------------------------------------------

_RUN = re.compile(r"^-- ===== run (\d+) of (\d+): (.*) =====$", re.MULTILINE)


def editor_script_runs(script: str) -> list[tuple[bool, str]]:
    """(alone?, text) of each run of `ocr-pool migrate --print-sql`."""
    marks = list(_RUN.finditer(script))
    assert [int(m.group(1)) for m in marks] == list(range(1, len(marks) + 1))
    assert {int(m.group(2)) for m in marks} == {len(marks)}
    return [
        (
            m.group(3).startswith("ALONE"),
            script[m.end() : marks[i + 1].start() if i + 1 < len(marks) else len(script)],
        )
        for i, m in enumerate(marks)
    ]


def test_print_sql_cuts_the_script_at_every_concurrent_step() -> None:
    script = combined_sql(lock_timeout_ms=250)
    runs = editor_script_runs(script)
    alone = [text for is_alone, text in runs if is_alone]
    assert len(alone) == 4
    for text in alone:
        (step,) = split_steps(text)
        assert step.concurrent
        assert step.statements == 1
    for is_alone, text in runs:
        if not is_alone:
            assert not any(s.concurrent for s in split_steps(text))
            assert text.count("BEGIN;") == text.count("COMMIT;") > 0
            assert text.count("SET LOCAL lock_timeout = '250ms';") == text.count("BEGIN;")
    # Every step of every migration is there, once, in order.
    steps = [s.sql.strip() for m in discover() for s in split_steps(m.sql)]
    position = 0
    for text in steps:
        position = script.index(text, position) + len(text)


async def test_print_sql_run_by_run_builds_what_migrate_builds(
    fresh_database: FreshDatabase,
) -> None:
    async with (
        fresh_database(migrate=False) as by_runner,
        fresh_database(migrate=False) as by_editor,
    ):
        conn = await asyncpg.connect(by_runner)
        try:
            await apply_migrations(conn)
            expected = without_ledger(await snapshot(conn))
        finally:
            await conn.close()
        conn = await asyncpg.connect(by_editor)
        try:
            # As the SQL editor does: each run sent as one query string.
            for _, text in editor_script_runs(combined_sql()):
                await conn.execute(text)
            assert without_ledger(await snapshot(conn)) == expected
            assert not await conn.fetchval(LM["ledger_exists"])
        finally:
            await conn.close()


def without_ledger(snap: dict[str, Any]) -> dict[str, Any]:
    columns = [c for c in json.loads(snap["columns"]) if c["table_name"] != "ocr_pool_migrations"]
    indexes = [
        i for i in json.loads(snap["indexes"]) if "ocr_pool_migrations" not in i["indexname"]
    ]
    return {**snap, "columns": columns, "indexes": indexes}


async def test_psql_runs_the_printed_script_as_a_file(
    fresh_database: FreshDatabase, tmp_path: Path
) -> None:
    psql = shutil.which("psql")
    if psql is None:
        pytest.skip("psql is not installed")
    script = tmp_path / "ocr-pool.sql"
    script.write_text(combined_sql(), encoding="utf-8")
    async with fresh_database(migrate=False) as url:
        with anyio.fail_after(120):
            result = await anyio.run_process(
                [psql, url, "-v", "ON_ERROR_STOP=1", "-q", "-f", str(script)], check=False
            )
        assert result.returncode == 0, result.stderr.decode()
        conn = await asyncpg.connect(url)
        try:
            assert await conn.fetchval(LM["valid_ocr_indexes"]) == 4
        finally:
            await conn.close()


@pytest.mark.parametrize("start", ["empty", "production_shape"])
async def test_0001_builds_the_same_queue_as_the_earlier_release(
    fresh_database: FreshDatabase, start: str
) -> None:
    """Rewritten in steps, 0001 still gives the same columns, defaults and indexes."""
    shapes = []
    for first in (earlier_release()[0], discover()[0]):
        async with fresh_database(migrate=False) as url:
            conn = await asyncpg.connect(url)
            try:
                if start == "production_shape":
                    await conn.execute(PRODUCTION_SHAPE)
                await apply_migrations(conn, migrations=[first])
                shapes.append(dict(await conn.fetchrow(LS["queue_shape"]) or {}))
            finally:
                await conn.close()
    assert shapes[0] == shapes[1]
    assert "extraction_queue_ocr_claim_idx" in shapes[1]["indexes"]


def test_migrate_says_when_a_step_met_a_busy_table() -> None:
    (step,) = split_steps("-- step: the columns\nALTER TABLE t ADD COLUMN IF NOT EXISTS c int;")
    said: list[str] = []
    on_event = step_progress("prod", said.append)
    on_event(StepEvent("0001_queue_table", step, "start"))
    for attempt in (2, 3, 4):
        on_event(StepEvent("0001_queue_table", step, "lock_wait", attempt, 0.1))
    on_event(StepEvent("0001_queue_table", step, "done", 4))
    assert said == [
        "prod: 0001_queue_table step 1 (the columns): a busy table held the lock; "
        "rolled back, retrying with back-off",
        "prod: 0001_queue_table step 1 (the columns): done after 3 lock timeout(s)",
    ]
    quiet: list[str] = []
    on_quiet = step_progress("prod", quiet.append)
    on_quiet(StepEvent("0001_queue_table", step, "start"))
    on_quiet(StepEvent("0001_queue_table", step, "done", 1))
    assert quiet == []
