"""`ocr-pool migrate` on a live copy of the registre extractor's table.

The table of tests/support/original_shape.sql, grown to `rows` rows, while other
programs use it: one writer inserts a row every 50 ms, another updates a row
every 50 ms, each timing every statement; one transaction holds ROW EXCLUSIVE on
the table (it wrote a row and stays open) when the migration starts, and a long
report holds its snapshot open once the first index build starts. The migration
must wait for them politely (lock timeout, roll back, retry) instead of queueing
every writer behind its lock.

Used by tests/integration/test_live_migration.py (asserts) and benchmarks/migrate_live.py
(prints figures).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import anyio
import asyncpg

from store.migrations import Migration, discover
from store.migrations.runner import StepEvent, apply_migrations
from store.sql import load_queries
from tests.support.databases import ADMIN_URL

HERE = Path(__file__).parent
ORIGINAL = load_queries(HERE / "original_shape.sql")
S = load_queries(HERE / "live_migration.sql")
L = load_queries(HERE / "lockdown.sql")
# 0001 and 0006 as the release before the step format shipped them (git 1b66f58).
EARLIER_RELEASE = HERE / "release_1b66f58"
FIXTURE_ROWS = 48  # original_shape.sql `rows`: 8 supabase_path forms x 6 statuses
Variant = Literal["rls_on", "rls_off"]


async def ensure_supabase_roles() -> None:
    """anon, authenticated, service_role (cluster-wide; created only if missing)."""
    admin = await asyncpg.connect(ADMIN_URL)
    try:
        await admin.execute(L["supabase_roles"])
    finally:
        await admin.close()


async def load_original(conn: asyncpg.Connection, variant: Variant, rows: int = 0) -> None:
    """The original's tables, rows and access; grown to `rows` rows if more than the fixture's."""
    await conn.execute(ORIGINAL["schema"])
    await conn.execute(ORIGINAL["rows"])
    await conn.execute(ORIGINAL[f"access_{variant}"])
    if rows > FIXTURE_ROWS:
        await conn.execute(ORIGINAL["grow"], rows - FIXTURE_ROWS)
        await conn.execute(S["vacuum_analyze"])


def earlier_release() -> list[Migration]:
    """0001-0006 as the earlier release applied them: 0001 one transaction with plain
    CREATE INDEX, 0006 locking down pre-existing shared tables too."""
    rewritten = {1: "0001_queue_table.sql", 6: "0006_lockdown.sql"}
    return [
        Migration(m.version, m.name, (EARLIER_RELEASE / rewritten[m.version]).read_text("utf-8"))
        if m.version in rewritten
        else m
        for m in discover()
        if m.version <= 6
    ]


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass
class LiveFigures:
    rows: int
    lock_timeout_ms: int
    hold_seconds: float
    migrate_seconds: float = 0.0
    lock_retries: int = 0
    insert_waits: list[float] = field(default_factory=list)
    update_waits: list[float] = field(default_factory=list)
    waited_steps: dict[str, int] = field(default_factory=dict)  # step -> lock timeouts
    live_rows: int = 0
    invalid_indexes: list[str] = field(default_factory=list)

    @property
    def worst_insert(self) -> float:
        return max(self.insert_waits, default=0.0)

    @property
    def worst_update(self) -> float:
        return max(self.update_waits, default=0.0)

    def lines(self) -> list[str]:
        return [
            f"table rows                {self.rows:,}",
            f"lock timeout              {self.lock_timeout_ms} ms",
            f"held by others            {self.hold_seconds:.1f} s (ROW EXCLUSIVE txn, then a "
            "long read during the first index build)",
            f"migrate duration          {self.migrate_seconds:.2f} s",
            f"lock retries              {self.lock_retries} "
            f"({', '.join(f'{k}: {v}' for k, v in self.waited_steps.items()) or 'none'})",
            f"inserts (every 50 ms)     {len(self.insert_waits)}: worst "
            f"{self.worst_insert * 1000:.0f} ms, p99 {percentile(self.insert_waits, 99) * 1000:.0f}"
            f" ms, p50 {percentile(self.insert_waits, 50) * 1000:.1f} ms",
            f"updates (every 50 ms)     {len(self.update_waits)}: worst "
            f"{self.worst_update * 1000:.0f} ms, p99 {percentile(self.update_waits, 99) * 1000:.0f}"
            f" ms, p50 {percentile(self.update_waits, 50) * 1000:.1f} ms",
        ]


async def run_live_migration(
    url: str,
    rows: int,
    *,
    hold_seconds: float = 2.0,
    lock_timeout_ms: int = 200,
    interval: float = 0.05,
    migrations: list[Migration] | None = None,
) -> LiveFigures:
    """Load and grow the original's table in the (empty) database at `url`, then
    migrate it (`migrations`, default: the package's) while the other programs run;
    figures of what they went through."""
    await ensure_supabase_roles()
    figures = LiveFigures(rows=rows, lock_timeout_ms=lock_timeout_ms, hold_seconds=hold_seconds)
    setup = await asyncpg.connect(url)
    try:
        await load_original(setup, "rls_on", rows)
        ids = [r["id"] for r in await setup.fetch(S["some_ids"], 201)]
    finally:
        await setup.close()
    held_id, update_ids = ids[-1], ids[:-1]

    conns = [await asyncpg.connect(url) for _ in range(5)]
    migrator, inserter, updater, holder, reader = conns
    stop = anyio.Event()
    holding = anyio.Event()
    index_build = anyio.Event()

    async def insert_every() -> None:
        n = 0
        next_at = time.monotonic()
        while not stop.is_set():
            started = time.monotonic()
            await inserter.execute(S["live_insert"], str(n))
            figures.insert_waits.append(time.monotonic() - started)
            n += 1
            next_at = max(next_at + interval, time.monotonic())
            await anyio.sleep(max(0.0, next_at - time.monotonic()))

    async def update_every() -> None:
        n = 0
        next_at = time.monotonic()
        while not stop.is_set():
            started = time.monotonic()
            await updater.execute(S["live_update"], update_ids[n % len(update_ids)])
            figures.update_waits.append(time.monotonic() - started)
            n += 1
            next_at = max(next_at + interval, time.monotonic())
            await anyio.sleep(max(0.0, next_at - time.monotonic()))

    async def hold_row_exclusive() -> None:
        async with holder.transaction():
            await holder.execute(S["touch_row"], held_id)
            holding.set()
            await anyio.sleep(hold_seconds)

    async def hold_snapshot() -> None:
        await index_build.wait()
        async with reader.transaction(isolation="repeatable_read"):
            await reader.fetchval(S["long_read"])
            await anyio.sleep(hold_seconds)

    def on_event(event: StepEvent) -> None:
        if event.kind == "start" and event.step.concurrent:
            index_build.set()
        if event.kind == "lock_wait":
            key = f"{event.migration} {event.step.label}"
            figures.waited_steps[key] = figures.waited_steps.get(key, 0) + 1

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(insert_every)
            tg.start_soon(update_every)
            await anyio.sleep(0.5)  # the writers' ordinary pace first
            tg.start_soon(hold_row_exclusive)
            await holding.wait()
            tg.start_soon(hold_snapshot)
            started = time.monotonic()
            report = await apply_migrations(
                migrator, migrations=migrations, lock_timeout_ms=lock_timeout_ms, on_event=on_event
            )
            figures.migrate_seconds = time.monotonic() - started
            figures.lock_retries = report.lock_retries
            index_build.set()  # (never left waiting)
            await anyio.sleep(0.5)
            stop.set()
        figures.live_rows = await migrator.fetchval(S["live_rows"])
        figures.invalid_indexes = [
            r["name"] for r in await migrator.fetch(S["queue_indexes"]) if not r["valid"]
        ]
    finally:
        for conn in conns:
            await conn.close()
    return figures


async def exposed_own_objects(conn: asyncpg.Connection) -> list[str]:
    """ocr-pool's own relations (not the shared tables) and functions that PUBLIC, anon
    or authenticated can use, by tests/support/lockdown.sql's own probes."""
    found: list[str] = []
    relations = [
        r
        for r in await conn.fetch(L["ocr_relations"])
        if r["name"] not in ("extraction_queue", "extraction_status")
    ]
    functions = await conn.fetch(L["ocr_functions"])
    for role in ("public", "anon", "authenticated"):
        for r in relations:
            if await conn.fetchval(L["can_touch"], role, r["name"]):
                found.append(f"{role} on {r['name']}")
        for f in functions:
            if await conn.fetchval(L["can_execute"], role, f["oid"]):
                found.append(f"{role} on {f['signature']}")
    return found
