"""`ocr-pool cleanup`: delete old rows of ocr-pool's own tables, never a queue row.

What grows without end in each queue database besides the queue itself: the
allocation log, the result cache, the outage reports and the daily Gemini counts.
Each is cleaned by its own rule (`TARGETS`); some keep a least age whatever the
period asked (`Target.floor`), because the pool still reads them. Deletes go in
small batches, each its own short transaction under a lock timeout, skipping rows
another transaction holds: safe while pools run.

The policy (durations, rules, retention) is pure; `clean_environment` does the I/O.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import anyio
import asyncpg

from pool.wiring.settings import QueueEnvironment
from store import StoreError
from store.sql import load_queries

_Q = load_queries(Path(__file__).with_name("cleanup.sql"))

_DURATION = re.compile(r"^\s*(\d+)\s*([dhm])\s*$", re.IGNORECASE)
_UNITS = {"d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1)}
_MOST = timedelta(days=36_500)

LOCK_RETRY_SECONDS = 60.0
"""How long a batch that meets a lock (DDL running) is retried before the run stops."""


def parse_duration(text: str) -> timedelta:
    """`30d`, `12h`, `90m` (days, hours, minutes) as a timedelta; ValueError otherwise."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(
            f"expected a whole number and a unit d, h or m (e.g. 30d, 12h, 90m), got {text!r}"
        )
    amount = int(match.group(1))
    unit = _UNITS[match.group(2).lower()]
    if amount == 0:
        raise ValueError(f"must be longer than 0, got {text!r}")
    if amount > _MOST // unit:
        raise ValueError(f"must be at most 36500d (100 years), got {text!r}")
    return amount * unit


def format_duration(span: timedelta) -> str:
    """The shortest of `Nd`, `Nh`, `Nm` that is exact (`parse_duration`'s inverse)."""
    minutes = int(span.total_seconds()) // 60
    if minutes % (24 * 60) == 0:
        return f"{minutes // (24 * 60)}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


@dataclass(frozen=True, slots=True)
class Target:
    """One table cleanup deletes from, and its rule."""

    table: str
    rows: str
    """What its rows are, plural, for the report ("allocation decisions")."""
    rule: str
    """What makes a row old, completed by a duration ("made more than")."""
    query: str
    """Prefix of its named queries in cleanup.sql (`<query>_count`, `<query>_delete`)."""
    start_key: tuple[Any, ...]
    """A key below every row's (the keyset walk starts after it)."""
    floor: timedelta = timedelta(0)
    """Rows younger than this are kept whatever the period asked."""
    why_floor: str = ""

    def retention(self, older_than: timedelta) -> timedelta:
        """The age past which rows go: the period asked, but never less than the floor."""
        return max(older_than, self.floor)


TARGETS: tuple[Target, ...] = (
    Target(
        "ocr_pool_allocations",
        "allocation decisions",
        "made more than",
        "allocations",
        (-(2**63),),
    ),
    Target(
        "ocr_result_cache",
        "cached results",
        "last used more than",
        "cache",
        ("", ""),
    ),
    Target(
        "ocr_queue_outages",
        "outage reports",
        "ended more than",
        "outages",
        (-(2**63),),
        floor=timedelta(days=2),
        why_floor="the reaper reads them for a day's lease and one lease after",
    ),
    Target(
        "ocr_gemini_day_usage",
        "daily Gemini counts",
        "last updated more than",
        "day_usage",
        ("", date.min),
        floor=timedelta(days=2),
        why_floor="the limiter's day may still be running",
    ),
)

KEPT: dict[str, str] = {
    "ocr_pool_migrations": "the migration ledger",
    "ocr_pool_created_tables": "which shared tables ocr-pool created (lockdown reads it)",
}
"""ocr-pool's tables cleanup never deletes from, and why. The queue tables
(`extraction_queue`, `extraction_status`) are never touched either."""


@dataclass(slots=True)
class TableResult:
    target: Target
    requested: timedelta
    rows: int = 0
    batches: int = 0
    lock_retries: int = 0

    @property
    def retention(self) -> timedelta:
        return self.target.retention(self.requested)

    def line(self, env: str, dry_run: bool) -> str:
        """`default: ocr_result_cache: deleted 12 cached results last used more than 30d
        ago`, and why a table kept more when its floor is above the period asked."""
        verb = "would delete" if dry_run else "deleted"
        kept = (
            f" (kept {format_duration(self.target.floor)} at least: {self.target.why_floor})"
            if self.retention > self.requested
            else ""
        )
        return (
            f"{env}: {self.target.table}: {verb} {self.rows:,} {self.target.rows} "
            f"{self.target.rule} {format_duration(self.retention)} ago{kept}"
        )


async def ocr_tables(conn: asyncpg.Connection) -> list[str]:
    """Every `ocr_*` table of the database: each must be a target or kept (a test checks)."""
    return [str(row[0]) for row in await conn.fetch(_Q["ocr_tables"])]


async def _batch(
    conn: asyncpg.Connection,
    target: Target,
    retention: timedelta,
    batch_size: int,
    key: tuple[Any, ...],
    lock_timeout_ms: int,
) -> asyncpg.Record:
    async with conn.transaction():
        await conn.execute(_Q["set_lock_timeout"], f"{lock_timeout_ms}ms")
        row = await conn.fetchrow(_Q[f"{target.query}_delete"], retention, batch_size, *key)
    assert row is not None
    return row


async def clean_table(
    conn: asyncpg.Connection,
    env: str,
    target: Target,
    older_than: timedelta,
    *,
    dry_run: bool,
    batch_size: int,
    lock_timeout_ms: int,
) -> TableResult:
    """Delete (or count) one table's old rows in batches; StoreError if a lock is
    still refused after LOCK_RETRY_SECONDS of retries."""
    result = TableResult(target, older_than)
    retention = result.retention
    if dry_run:
        result.rows = int(await conn.fetchval(_Q[f"{target.query}_count"], retention))
        return result
    key = target.start_key
    waited = 0.0
    while True:
        try:
            row = await _batch(conn, target, retention, batch_size, key, lock_timeout_ms)
        except asyncpg.LockNotAvailableError:
            result.lock_retries += 1
            pause = min(5.0, 0.1 * 2**result.lock_retries) * random.uniform(0.5, 1.0)
            if waited + pause > LOCK_RETRY_SECONDS:
                raise StoreError(
                    f"{env}: cleanup of {target.table}: the table stayed locked for "
                    f"{LOCK_RETRY_SECONDS:.0f} s (a migration or other DDL running?); "
                    f"{result.rows:,} rows deleted so far, run it again later"
                ) from None
            waited += pause
            await anyio.sleep(pause)
            continue
        result.batches += 1
        deleted = int(row["deleted"])
        result.rows += deleted
        last = tuple(row)[1:]
        if last[0] is None or deleted < batch_size:
            return result
        key = last


async def clean_environment(
    env: QueueEnvironment,
    older_than: timedelta,
    *,
    dry_run: bool = False,
    batch_size: int = 1000,
    lock_timeout_ms: int = 200,
) -> list[str]:
    """Clean every target table of one environment; the report lines."""
    from pool.cli.migrate import connect_direct

    conn = await connect_direct(env)
    try:
        lines = []
        for target in TARGETS:
            try:
                result = await clean_table(
                    conn,
                    env.name,
                    target,
                    older_than,
                    dry_run=dry_run,
                    batch_size=batch_size,
                    lock_timeout_ms=lock_timeout_ms,
                )
            except asyncpg.UndefinedTableError:
                raise StoreError(
                    f"queue database '{env.name}' is not migrated ({target.table} is "
                    "missing); run `ocr-pool migrate`"
                ) from None
            lines.append(result.line(env.name, dry_run))
        return lines
    finally:
        await conn.close()
