"""The pool manager in-process (real Postgres, Redis, simulator): it divides workers by
the work waiting, records each decision, steals work rather than idle; and `ocr-pool
start` fails fast, in one line, on a wrong setting or an unreachable service."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import asyncpg
import pytest

from domain import DocumentSource, Status
from gemini_simulator import SimulatorConfig, run_simulator
from pool.cli.samples import acte_paragraphs, index_lines, write_pdf
from pool.manager import PoolManager
from pool.wiring.runtime import open_runtime
from pool.wiring.settings import Settings
from tests.integration.test_workers_e2e import settings_for
from tests.support.pool_process import ROOT, pool_env
from tests.support.sql import Q
from tests.unit.test_metrics import parse, value

pytestmark = pytest.mark.anyio
INDEX, ACTE = DocumentSource.INDEX, DocumentSource.ACTE


@pytest.fixture
async def database(migrated_url: str) -> str:
    conn = await asyncpg.connect(migrated_url)
    try:
        await conn.execute(Q["truncate_queue_and_cache"])
        await conn.execute(Q["truncate_allocations"])
    finally:
        await conn.close()
    return migrated_url


def actes(directory: Path, count: int) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(count):
        path = directory / f"acte-{n:02d}.pdf"
        write_pdf(path, [acte_paragraphs(900 + n, 4)])
        paths.append(path)
    return paths


async def rows(url: str, name: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(Q[name]))
    finally:
        await conn.close()


def pool_settings(database: str, prefix: str, sim_url: str, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "ocr_worker_pool_size": 2,
        "ocr_min_index_workers": 1,
        "ocr_min_acte_workers": 1,
        "ocr_rebalance_interval_ms": 500,
        "ocr_status_interval_ms": 60_000,
    }
    values.update(extra)
    return settings_for(database, prefix, sim_url, **values)


@pytest.mark.parametrize("steal", [True, False])
async def test_idle_workers_steal_the_other_type(
    database: str, redis_prefix: str, tmp_path: Path, steal: bool
) -> None:
    paths = actes(tmp_path / "docs", 8)
    config = SimulatorConfig(port=0, latency_ms=150, latency_sigma=0, corpus=(tmp_path,))
    async with run_simulator(config) as sim:
        settings = pool_settings(database, redis_prefix, sim.url, ocr_work_stealing=steal)
        async with open_runtime(settings) as runtime:
            await runtime.targets[0].store.enqueue(ACTE, [str(p) for p in paths], [0] * 8, 3)
            manager = PoolManager(runtime, until_empty=True)
            await manager.run()
    done = [r for r in await rows(database, "all_rows") if r["status_id"] == Status.OCR_COMPLETE]
    assert len(done) == 8
    workers = {r["ocr_worker_id"] for r in done}
    # With only actes waiting, the allocation keeps the index minimum (1 worker);
    # that worker steals actes rather than idle, unless stealing is off.
    assert manager.allocation is not None
    assert (manager.allocation.index, manager.allocation.acte) == (1, 1)
    assert len(workers) == (2 if steal else 1)


async def test_allocation_follows_work_and_is_recorded(
    database: str, redis_prefix: str, tmp_path: Path
) -> None:
    directory = tmp_path / "docs"
    directory.mkdir()
    index_paths = []
    for n in range(6):
        path = directory / f"index-{n}.pdf"
        write_pdf(path, [index_lines(n, 5)])
        index_paths.append(str(path))
    async with run_simulator(SimulatorConfig(port=0, corpus=(directory,))) as sim:
        settings = pool_settings(
            database,
            redis_prefix,
            sim.url,
            ocr_worker_pool_size=6,
            ocr_min_index_workers=1,
            ocr_min_acte_workers=1,
        )
        async with open_runtime(settings) as runtime:
            await runtime.targets[0].store.enqueue(INDEX, index_paths, [0] * 6, 3)
            manager = PoolManager(runtime)
            decided = await manager.rebalance()
            raw = await runtime.redis.get(f"{redis_prefix}worker_pool:allocation")
    assert (decided.index, decided.acte) == (5, 1)  # acte queue empty: its minimum only
    assert sorted(w.mode.value for w in manager.workers).count("index") == 5
    assert raw is not None
    published = json.loads(raw)
    assert published["pools"][manager.pool_id]["index"] == 5
    recorded = await rows(database, "allocation_rows")
    assert [(r["index_workers"], r["acte_workers"], r["index_waiting"]) for r in recorded] == [
        (5, 1, 6)
    ]


def start(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pool.cli", "start", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def last_line(result: subprocess.CompletedProcess[str]) -> str:
    return result.stderr.strip().splitlines()[-1]


def test_start_fails_fast_on_wrong_settings_and_services(
    migrated_url: str, redis_prefix: str
) -> None:
    good = pool_env(migrated_url, redis_prefix, "http://127.0.0.1:9", "fail-fast")
    bad_minimums = start({**good, "OCR_WORKER_POOL_SIZE": "2", "OCR_MIN_INDEX_WORKERS": "3"})
    assert bad_minimums.returncode == 2
    assert "OCR_MIN_INDEX_WORKERS + OCR_MIN_ACTE_WORKERS" in last_line(bad_minimums)

    no_redis = start({**good, "REDIS_URL": "redis://:s3cret-pw@127.0.0.1:1/0"})
    assert no_redis.returncode == 1
    assert "Redis is not reachable" in last_line(no_redis)
    assert "s3cret-pw" not in no_redis.stderr + no_redis.stdout

    no_db = start({**good, "DATABASE_URL": "postgresql://u:s3cret-pw@127.0.0.1:1/x"})
    assert no_db.returncode == 1
    assert "cannot reach" in last_line(no_db) or "database" in last_line(no_db)
    assert "s3cret-pw" not in no_db.stderr + no_db.stdout

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy_port = start({**good, "OCR_METRICS_PORT": str(port)})
    assert busy_port.returncode == 1
    assert f"OCR_METRICS_PORT: cannot listen on 127.0.0.1:{port}" in last_line(busy_port)


async def test_health_and_metrics_of_a_running_pool(
    database: str, redis_prefix: str, tmp_path: Path
) -> None:
    paths = actes(tmp_path / "docs", 2)
    async with run_simulator(SimulatorConfig(port=0, corpus=(tmp_path,))) as sim:
        settings = pool_settings(database, redis_prefix, sim.url, ocr_metrics_port=0)
        async with open_runtime(settings) as runtime:
            await runtime.targets[0].store.enqueue(ACTE, [str(p) for p in paths], [0, 0], 3)
            manager = PoolManager(runtime)
            both_done = anyio.Event()
            manager.add_report_hook(
                lambda _: both_done.set() if len(manager.reports) == 2 else None
            )
            status: dict[str, int] = {}
            async with anyio.create_task_group() as tg, aiohttp.ClientSession() as http:
                tg.start_soon(manager.run)
                with anyio.fail_after(60):
                    await both_done.wait()
                assert manager.health_url is not None
                async with http.get(f"{manager.health_url}/readyz") as response:
                    status["ready"] = response.status
                async with http.get(f"{manager.health_url}/metrics") as response:
                    metrics = await response.text()
                env = pool_env(database, redis_prefix, sim.url, "status-reader")
                fleet = await anyio.to_thread.run_sync(
                    lambda: subprocess.run(
                        [sys.executable, "-m", "pool.cli", "status", "--json"],
                        cwd=ROOT,
                        env=env,
                        capture_output=True,
                        text=True,
                        timeout=60,
                    )
                )
                manager.request_stop()
                async with http.get(f"{manager.health_url}/readyz") as response:
                    status["stopping"] = response.status
    assert status == {"ready": 200, "stopping": 503}
    # Any machine sees the running pool with `ocr-pool status --json`.
    assert fleet.returncode == 0, fleet.stderr
    pools = json.loads(fleet.stdout)["pools"]
    assert pools[manager.pool_id]["index"] + pools[manager.pool_id]["acte"] == 2
    assert len(pools[manager.pool_id]["workers"]) == 2
    assert value(parse(metrics), "ocr_pool_jobs_total", type="acte", outcome="completed") == 2
    assert "ocr_pool_allocation_workers" in metrics
    assert "sim-key" not in metrics


async def test_a_wrong_gemini_key_fails_no_document(
    database: str, redis_prefix: str, tmp_path: Path
) -> None:
    paths = actes(tmp_path / "docs", 4)
    async with run_simulator(SimulatorConfig(port=0, corpus=(tmp_path,))) as sim:
        settings = pool_settings(database, redis_prefix, sim.url, gemini_api_key="invalid-key-123")
        async with open_runtime(settings) as runtime:
            await runtime.targets[0].store.enqueue(ACTE, [str(p) for p in paths], [0] * 4, 3)
            manager = PoolManager(runtime)
            async with anyio.create_task_group() as tg:
                tg.start_soon(manager.run)
                await anyio.sleep(4)  # every worker meets the refusal, pauses, tries again
                manager.request_stop()
    rows = await rows_of(database)
    assert len(rows) == 4
    assert all(r["status_id"] == Status.READY_FOR_OCR for r in rows), rows
    assert all((r["ocr_attempts"] or 0) == 0 for r in rows), rows  # no attempt burnt
    released = [r for r in manager.reports if r.outcome == "released"]
    assert released
    assert all("refused the API key" in (r.error or "") for r in released)


async def rows_of(url: str) -> list[asyncpg.Record]:
    return await rows(url, "all_rows")
