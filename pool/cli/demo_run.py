"""`ocr-pool demo`: the whole path on this machine in one command.

A database of its own (created on the local server unless DATABASE_URL is set),
migrated; sample index and acte PDFs written and queued; the Gemini simulator started
in-process (unless GEMINI_API_KEY is set: then real Gemini); a pool run with the status
panel until the queue is drained; a summary at the end.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import asyncpg
from rich.console import Console

from domain import DocumentSource
from gemini_simulator import SimulatorConfig, run_simulator
from pool.cli.demo import ensure_database
from pool.cli.samples import write_samples
from pool.manager import PoolManager
from pool.status.snapshot import PoolSnapshot
from pool.status.stats import StatsSnapshot
from pool.status.tables import Column, FitTable
from pool.wiring.runtime import open_runtime
from pool.wiring.settings import Settings, load_settings
from store.migrations.runner import apply_migrations
from store.postgres import connection_options

DEMO_DATABASE = "ocr_pool_demo"
LOCAL_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


async def _migrate(url: str) -> None:
    dsn, options = connection_options(url)
    conn = await asyncpg.connect(dsn, timeout=10, **options)
    try:
        await apply_migrations(conn)
    finally:
        await conn.close()


@asynccontextmanager
async def _gemini(settings: Settings, samples: Path) -> AsyncIterator[dict[str, Any]]:
    """Real Gemini when a key is set (or a base URL is given), else the simulator."""
    if settings.gemini_api_key is not None or settings.gemini_base_url:
        yield {}
        return
    config = SimulatorConfig(
        port=0, corpus=(samples,), latency_ms=400, latency_per_1k_tokens_ms=40, seed=1
    )
    async with run_simulator(config) as sim:
        yield {"gemini_base_url": sim.url, "gemini_api_key": "simulator"}


async def run_demo(
    documents: int,
    samples_root: Path,
    admin_url: str,
    console: Console,
    on_status: Callable[[PoolSnapshot], None],
) -> PoolManager:
    """`samples_root` must be absolute (the queue holds file:// URIs under it)."""
    base = load_settings()
    url = (
        base.database_url.get_secret_value()
        if base.database_url is not None
        else await ensure_database(admin_url, DEMO_DATABASE)
    )
    await _migrate(url)
    run = int(time.time())
    samples = samples_root / f"run-{run}"
    index_files, acte_files = await anyio.to_thread.run_sync(
        write_samples, samples, documents, documents, run % 10_000
    )
    console.print(
        f"demo: {len(index_files)} index + {len(acte_files)} acte sample PDFs in {samples}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    async with _gemini(base, samples) as gemini:
        console.print(
            "demo: Gemini = "
            + (f"simulator at {gemini['gemini_base_url']}" if gemini else "the real API"),
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        settings = load_settings(
            database_url=url,
            ocr_local_roots=str(samples_root),
            ocr_status_interval_ms=min(base.ocr_status_interval_ms, 5000),
            ocr_rebalance_interval_ms=min(base.ocr_rebalance_interval_ms, 5000),
            **gemini,
        )
        async with open_runtime(settings) as runtime:
            store = runtime.targets[0].store
            for source, files in (
                (DocumentSource.INDEX, index_files),
                (DocumentSource.ACTE, acte_files),
            ):
                await store.enqueue(
                    source,
                    [p.as_uri() for p in files],
                    [0] * len(files),
                    settings.ocr_max_attempts,
                )
            manager = PoolManager(runtime, until_empty=True, on_status=on_status)
            await manager.run()
            return manager


def summary_table(manager: PoolManager) -> FitTable:
    return summary_of(manager.stats.snapshot())


def summary_of(stats: StatsSnapshot) -> FitTable:
    """The demo's last table: per type, what was done and what it cost."""
    table = FitTable(
        (
            Column("type", justify="left", key=True),
            Column("done"),
            Column("failed"),
            Column("retried"),
            Column("cached"),
            Column("calls"),
            Column("tokens"),
            Column("s/job"),
        ),
        title=f"demo summary: {stats.uptime_seconds:.1f} s",
    )
    for source in ("index", "acte"):
        jobs = stats.jobs.get(source, {})
        durations = stats.durations.get(source)
        mean = (
            f"{durations.sum_seconds / durations.count:.1f}"
            if durations is not None and durations.count
            else "-"
        )
        table.add_row(
            source,
            str(jobs.get("completed", 0)),
            str(jobs.get("failed", 0)),
            str(jobs.get("requeued", 0)),
            str(stats.cache_hits.get(source, 0)),
            f"{stats.gemini_calls.get(source, 0):,}",
            f"{stats.input_tokens.get(source, 0):,}",
            mean,
        )
    return table
