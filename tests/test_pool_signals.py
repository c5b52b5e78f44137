"""`ocr-pool start` as real processes: SIGTERM lets in-flight jobs finish and exits 0;
after a SIGKILL, the surviving pool recovers the dead one's jobs and finishes them all,
and no row is completed twice."""

from __future__ import annotations

import signal
from pathlib import Path

import asyncpg
import pytest

from gemini_simulator import SimulatorConfig, run_simulator
from pool.samples import acte_paragraphs, index_lines, write_pdf
from tests.support.pool_process import PoolProcess, pool_env, wait_for
from tests.support.sql import Q
from workers.store import Status

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


def make_documents(directory: Path, count: int) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(count):
        index = directory / f"index-{n:02d}.pdf"
        write_pdf(index, [index_lines(n * 7 + p, 6) for p in range(2)])
        acte = directory / f"acte-{n:02d}.pdf"
        write_pdf(acte, [acte_paragraphs(n * 7 + p, 5) for p in range(2)])
        paths += [index, acte]
    return paths


async def fetch(url: str, name: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(Q[name]))
    finally:
        await conn.close()


async def enqueue_all(url: str, paths: list[Path]) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(Q["truncate_queue_and_cache"])
        for path in paths:
            source = "index" if path.name.startswith("index") else "acte"
            await conn.execute(Q["enqueue_one"], source, str(path))
    finally:
        await conn.close()


@pytest.fixture
async def queue(migrated_url: str, tmp_path: Path) -> tuple[str, Path]:
    paths = make_documents(tmp_path / "docs", 10)
    await enqueue_all(migrated_url, paths)
    return migrated_url, tmp_path


async def test_sigterm_finishes_jobs_in_hand_and_exits_0(
    queue: tuple[str, Path], redis_prefix: str
) -> None:
    url, tmp_path = queue
    # Slow answers: jobs are surely in flight when the signal comes.
    config = SimulatorConfig(port=0, latency_ms=800, latency_sigma=0, corpus=(tmp_path,))
    async with run_simulator(config) as sim:
        env = pool_env(url, redis_prefix, sim.url, "term-a", OCR_WORKER_POOL_SIZE=4)
        pool = PoolProcess(env, tmp_path / "pool.log")
        try:

            async def some_in_flight() -> bool:
                rows = await fetch(url, "in_progress_rows")
                return len(rows) >= 2

            await wait_for(some_in_flight, within=60)
            in_flight = {r["id"] for r in await fetch(url, "in_progress_rows")}
            pool.signal(signal.SIGTERM)
            code = await pool.wait(within=60)
        finally:
            pool.stop()
        output = pool.output()
    assert code == 0, output[-3000:]
    rows = {r["id"]: r for r in await fetch(url, "all_rows")}
    assert not [r for r in rows.values() if r["status_id"] == Status.OCR_IN_PROGRESS]
    for job in in_flight:  # what was in hand at SIGTERM was finished, not abandoned
        assert rows[job]["status_id"] == Status.OCR_COMPLETE, rows[job]
    left = [r for r in rows.values() if r["status_id"] == Status.READY_FOR_OCR]
    assert left, "the pool stopped claiming: some documents are still waiting"
    assert "SIGTERM" in output


async def test_sigkill_of_one_pool_the_other_finishes_everything(
    queue: tuple[str, Path], redis_prefix: str
) -> None:
    url, tmp_path = queue
    conn = await asyncpg.connect(url)
    await conn.execute(Q["watch_completions"])
    await conn.close()
    config = SimulatorConfig(port=0, latency_ms=400, latency_sigma=0, corpus=(tmp_path,))
    lease = {"OCR_LEASE_SECONDS": 4, "OCR_HEARTBEAT_SECONDS": 1, "OCR_WORKER_POOL_SIZE": 3}
    async with run_simulator(config) as sim:
        victim = PoolProcess(
            pool_env(url, redis_prefix, sim.url, "kill-a", **lease), tmp_path / "a.log"
        )
        survivor = None
        try:

            async def victim_busy() -> bool:
                rows = await fetch(url, "in_progress_rows")
                return any(r["ocr_worker_id"].startswith("kill-a-") for r in rows)

            await wait_for(victim_busy, within=60)
            survivor = PoolProcess(
                pool_env(url, redis_prefix, sim.url, "kill-b", **lease),
                tmp_path / "b.log",
                "--until-empty",
            )
            held = {
                r["id"]
                for r in await fetch(url, "in_progress_rows")
                if r["ocr_worker_id"].startswith("kill-a-")
            }
            victim.signal(signal.SIGKILL)
            assert await victim.wait(within=10) == -signal.SIGKILL
            code = await survivor.wait(within=120)
            output = survivor.output()
        finally:
            victim.stop()
            if survivor is not None:
                survivor.stop()
        completions = [r for r in sim.records() if r.endpoint == "generateContent"]
    assert code == 0, output[-3000:]
    rows = {r["id"]: r for r in await fetch(url, "all_rows")}
    assert all(r["status_id"] == Status.OCR_COMPLETE for r in rows.values()), [
        (r["supabase_path"], r["status_id"], r["ocr_error"]) for r in rows.values()
    ]
    assert held
    for job in held:  # the dead pool's jobs were recovered and finished by the survivor
        assert rows[job]["ocr_worker_id"].startswith("kill-b-"), rows[job]
        assert rows[job]["ocr_attempts"] >= 1  # the lost attempt is counted
    assert "recovered" in output
    # Each row reached status 5 exactly once (a trigger logged every transition).
    counts = {r["id"]: r["n"] for r in await fetch(url, "completion_counts")}
    conn = await asyncpg.connect(url)
    await conn.execute(Q["unwatch_completions"])
    await conn.close()
    assert sorted(counts) == sorted(str(job) for job in rows)
    assert set(counts.values()) == {1}
    assert len(completions) >= 30  # 10 index x 2 pages + 10 acte x 2 calls
