"""`ocr-pool cleanup`: the duration and retention policy (pure), and the batched
deletes against a real migrated database: old rows of ocr-pool's own tables go,
young ones and every queue row stay, locked rows are skipped, a locked table is
waited out."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from pool.cli.cleanup_rules import (
    KEPT,
    TARGETS,
    TableResult,
    clean_environment,
    clean_table,
    format_duration,
    ocr_tables,
    parse_duration,
)
from pool.wiring.settings import QueueEnvironment
from store.sql import load_queries

K = load_queries(Path(__file__).parents[1] / "support" / "operator_kit.sql")
DAY = timedelta(days=1)
TARGET = {t.table: t for t in TARGETS}


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("90m", timedelta(minutes=90)),
        (" 7D ", timedelta(days=7)),
        ("36500d", timedelta(days=36_500)),
    ],
)
def test_parse_duration(text: str, span: timedelta) -> None:
    assert parse_duration(text) == span


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("30", "a unit d, h or m"),
        ("d", "a unit d, h or m"),
        ("1.5d", "a unit d, h or m"),
        ("-3d", "a unit d, h or m"),
        ("3w", "a unit d, h or m"),
        ("30 days", "a unit d, h or m"),
        ("", "a unit d, h or m"),
        ("0d", "longer than 0"),
        ("36501d", "at most 36500d"),
        ("99999999999999d", "at most 36500d"),
    ],
)
def test_parse_duration_refuses(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_duration(text)


@given(st.integers(1, 36_500 * 24 * 60))
def test_format_duration_round_trips(minutes: int) -> None:
    span = timedelta(minutes=minutes)
    assert parse_duration(format_duration(span)) == span


def test_retention_never_below_a_floor() -> None:
    assert TARGET["ocr_result_cache"].retention(timedelta(minutes=5)) == timedelta(minutes=5)
    assert TARGET["ocr_pool_allocations"].retention(timedelta(hours=1)) == timedelta(hours=1)
    for table in ("ocr_queue_outages", "ocr_gemini_day_usage"):
        assert TARGET[table].retention(timedelta(hours=1)) == 2 * DAY
        assert TARGET[table].retention(30 * DAY) == 30 * DAY


def test_report_lines() -> None:
    cache = TableResult(TARGET["ocr_result_cache"], 30 * DAY, rows=1234)
    assert cache.line("prod", dry_run=False) == (
        "prod: ocr_result_cache: deleted 1,234 cached results last used more than 30d ago"
    )
    outages = TableResult(TARGET["ocr_queue_outages"], timedelta(hours=12), rows=2)
    assert outages.line("dev", dry_run=True) == (
        "dev: ocr_queue_outages: would delete 2 outage reports ended more than 2d ago "
        "(kept 2d at least: the reaper reads them for a day's lease and one lease after)"
    )


def test_no_target_or_kept_table_is_a_queue_table() -> None:
    tables = {t.table for t in TARGETS} | set(KEPT)
    assert not tables & {"extraction_queue", "extraction_status"}
    assert all(t.startswith("ocr_") for t in tables)


# --- against a database ------------------------------------------------------------


def sha(n: int) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()


async def run(url: str, name: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(K[name], *args)
    finally:
        await conn.close()


async def counts(url: str) -> dict[str, int]:
    return dict((await run(url, "own_table_counts"))[0])


def env_of(url: str) -> QueueEnvironment:
    return QueueEnvironment("default", SecretStr(url), None, None)


@pytest.fixture
async def seeded(migrated_url: str) -> str:
    """Per table, rows just younger and older than 30 days (and than the floors), plus
    a year-old queue row of every status."""
    await run(migrated_url, "truncate_own_tables")
    hour = timedelta(hours=1)
    for age in (29 * DAY, 31 * DAY, 40 * DAY, hour):
        await run(migrated_url, "seed_allocation", age)
    # stored 40 days ago: reused 1 day ago (kept), reused 31 days ago, never reused
    await run(migrated_url, "seed_cache", sha(1), 40 * DAY, DAY)
    await run(migrated_url, "seed_cache", sha(2), 40 * DAY, 31 * DAY)
    await run(migrated_url, "seed_cache", sha(3), 40 * DAY, None)
    await run(migrated_url, "seed_cache", sha(4), 2 * DAY, None)
    for age in (hour, 3 * DAY, 31 * DAY):
        await run(migrated_url, "seed_outage", age)
    await run(migrated_url, "seed_day_usage", "gemini-2.5-flash", 0, timedelta(minutes=1))
    await run(migrated_url, "seed_day_usage", "gemini-2.5-flash", 1, DAY)
    await run(migrated_url, "seed_day_usage", "gemini-2.5-flash", 5, 4 * DAY)
    await run(migrated_url, "seed_day_usage", "gemini-2.5-pro", 40, 40 * DAY)
    await run(migrated_url, "seed_old_queue")
    return migrated_url


@pytest.mark.anyio
async def test_every_ocr_table_has_a_decision(migrated_url: str) -> None:
    conn = await asyncpg.connect(migrated_url)
    try:
        tables = set(await ocr_tables(conn))
    finally:
        await conn.close()
    decided = {t.table for t in TARGETS} | set(KEPT)
    assert tables == decided, (
        "a new ocr_* table: add it to pool/cli/cleanup_rules.py TARGETS or KEPT"
    )


@pytest.mark.anyio
async def test_dry_run_counts_and_deletes_nothing(seeded: str) -> None:
    before = await counts(seeded)
    lines = await clean_environment(env_of(seeded), 30 * DAY, dry_run=True)
    assert lines == [
        "default: ocr_pool_allocations: would delete 2 allocation decisions made more than 30d ago",
        "default: ocr_result_cache: would delete 2 cached results last used more than 30d ago",
        "default: ocr_queue_outages: would delete 1 outage reports ended more than 30d ago",
        "default: ocr_gemini_day_usage: would delete 1 daily Gemini counts last updated more "
        "than 30d ago",
    ]
    assert await counts(seeded) == before


@pytest.mark.anyio
async def test_deletes_old_rows_in_batches_never_queue_rows(seeded: str) -> None:
    lines = await clean_environment(env_of(seeded), 30 * DAY, batch_size=1)
    assert [line.split(": ")[2].split(" ")[:2] for line in lines] == [["deleted", "2"]] * 2 + [
        ["deleted", "1"]
    ] * 2
    assert await counts(seeded) == {
        "allocations": 2,
        "cache": 2,
        "outages": 2,
        "day_usage": 3,
        "queue": 6,
    }
    assert [r[0] for r in await run(seeded, "cache_keys")] == sorted([sha(1), sha(4)])
    # Again: nothing left to delete.
    again = await clean_environment(env_of(seeded), 30 * DAY)
    assert all(": deleted 0 " in line for line in again)


@pytest.mark.anyio
async def test_floors_keep_what_the_pool_still_reads(seeded: str) -> None:
    await clean_environment(env_of(seeded), timedelta(minutes=1), batch_size=2)
    assert await counts(seeded) == {
        # everything older than a minute
        "allocations": 0,
        "cache": 0,
        # outages: the one of an hour ago (2 days kept); day counts: today and yesterday
        "outages": 1,
        "day_usage": 2,
        "queue": 6,
    }


@pytest.mark.anyio
async def test_a_row_in_use_is_skipped_not_waited_for(seeded: str) -> None:
    holder = await asyncpg.connect(seeded)
    try:
        async with holder.transaction():
            await holder.execute(K["lock_cache_row"], sha(2))
            with anyio.fail_after(10):
                conn = await asyncpg.connect(seeded)
                try:
                    result = await clean_table(
                        conn,
                        "default",
                        TARGET["ocr_result_cache"],
                        30 * DAY,
                        dry_run=False,
                        batch_size=1000,
                        lock_timeout_ms=200,
                    )
                finally:
                    await conn.close()
    finally:
        await holder.close()
    assert result.rows == 1
    assert sha(2) in [r[0] for r in await run(seeded, "cache_keys")]


@pytest.mark.anyio
async def test_a_locked_table_is_waited_out(seeded: str) -> None:
    holder = await asyncpg.connect(seeded)
    conn = await asyncpg.connect(seeded)
    try:
        tx = holder.transaction()
        await tx.start()
        await holder.execute(K["lock_allocations"])

        async def release() -> None:
            await anyio.sleep(1.0)
            await tx.rollback()

        async with anyio.create_task_group() as tg:
            tg.start_soon(release)
            result = await clean_table(
                conn,
                "default",
                TARGET["ocr_pool_allocations"],
                30 * DAY,
                dry_run=False,
                batch_size=1000,
                lock_timeout_ms=50,
            )
    finally:
        await conn.close()
        await holder.close()
    assert result.lock_retries >= 1
    assert result.rows == 2
