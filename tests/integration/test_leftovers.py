"""What a pool leaves behind, with real `ocr-pool start` processes, real signals, the real
Redis and Postgres:

- SIGKILL mid-job: its temporary PDFs stay on disk until the next start on the machine,
  whose warm-up removes them (and an earlier release's leftovers); the capacity totals
  (`server:<id>:cpu:allocated` / `ram:allocated`) read nothing once its leases are over,
  although no program touched the ledger since; its workers stay in `gemini:workers` no
  longer than their TTL (the next start takes them out at once);
- SIGTERM: the pool is gone from every fleet key, and its temporary directory from the
  disk, as soon as the process has exited.

Nothing here asserts a duration: the bounds are read from Redis (expiry times)."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from capacity import server_keys
from domain import Status
from gemini_simulator import SimulatorConfig, run_simulator
from ratelimit import LimiterConfig, Quota
from ratelimit.limiter import read_fleet_usage
from tests.support.pool_process import PoolProcess, pool_env, wait_for
from tests.support.queue_fill import enqueue_all, fetch, make_documents

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

CAPACITY_LEASE_S = 3
WORKER_TTL_MS = 120_000  # the limiter's gemini:workers TTL (LimiterConfig.worker_ttl_seconds)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
async def queue(migrated_url: str, tmp_path: Path) -> tuple[str, Path]:
    await enqueue_all(migrated_url, make_documents(tmp_path / "docs", 8))
    return migrated_url, tmp_path


def env_of(url: str, prefix: str, sim_url: str, server: str, tmpdir: Path) -> dict[str, str]:
    return pool_env(
        url,
        prefix,
        sim_url,
        server,
        TMPDIR=str(tmpdir),
        OCR_WORKER_POOL_SIZE=3,
        OCR_LEASE_SECONDS=4,
        OCR_HEARTBEAT_SECONDS=1,
        OCR_CAPACITY_LEASE_SECONDS=CAPACITY_LEASE_S,
        # One acte page per extract request: acte page ranges are temporary PDFs too.
        GEMINI_MAX_OUTPUT_TOKENS_ACTE_EXTRACT=1500,
    )


def pool_dirs(tmpdir: Path) -> list[Path]:
    base = tmpdir / "ocr-pool"
    return sorted(p for p in base.iterdir() if p.is_dir()) if base.exists() else []


def temp_pdfs(tmpdir: Path) -> list[Path]:
    return sorted(tmpdir.rglob("ocr-pool-*.pdf"))


async def redis_ms(redis: Redis) -> int:
    seconds, micros = await redis.time()
    return int(seconds) * 1000 + int(micros) // 1000


async def gemini_workers(redis: Redis, prefix: str, pool_prefix: str) -> dict[str, int]:
    """The pool's workers listed in gemini:workers, with their reap deadlines (ms)."""
    listed = [str(w) for w in await redis.hkeys(f"{prefix}gemini:workers")]
    names = [w for w in listed if w.startswith(pool_prefix)]
    deadlines = {}
    for name in names:
        score = await redis.zscore(f"{prefix}gemini:workers:expires", name)
        deadlines[name] = int((score or 0) // 1000)
    return deadlines


async def kill_mid_job(
    url: str, redis: Redis, prefix: str, sim_url: str, server: str, tmp_path: Path
) -> tuple[str, list[Path], int]:
    """Start a pool, SIGKILL it while it holds temporary PDFs, capacity and Gemini
    workers; returns its pool id, the PDFs it left and the Redis time of the kill."""
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir(exist_ok=True)
    victim = PoolProcess(env_of(url, prefix, sim_url, server, tmpdir), tmp_path / "victim.log")
    keys = server_keys(prefix, server)
    try:

        async def in_the_middle() -> bool:
            dirs = pool_dirs(tmpdir)
            return (
                len(dirs) == 1
                and bool(list(dirs[0].glob("ocr-pool-*.pdf")))
                and await redis.hlen(keys.workers) > 0
                and bool(await gemini_workers(redis, prefix, f"{server}-"))
            )

        await wait_for(in_the_middle, within=60, every=0.02)
        victim.signal(signal.SIGKILL)
        killed_at = await redis_ms(redis)
        assert await victim.wait(within=10) == -signal.SIGKILL
    finally:
        victim.stop()
    (directory,) = pool_dirs(tmpdir)
    return directory.name, temp_pdfs(tmpdir), killed_at


async def test_after_a_sigkill_the_next_start_removes_every_leftover(
    queue: tuple[str, Path], redis: Redis, redis_prefix: str
) -> None:
    url, tmp_path = queue
    server = "left-a"
    tmpdir = tmp_path / "tmpdir"
    keys = server_keys(redis_prefix, server)
    config = SimulatorConfig(port=0, latency_ms=800, latency_sigma=0, corpus=(tmp_path / "docs",))
    async with run_simulator(config) as sim:
        dead, left, killed_at = await kill_mid_job(
            url, redis, redis_prefix, sim.url, server, tmp_path
        )
        # 1. Temporary PDFs of land-registry documents stay on disk: nobody removes them yet.
        assert left
        assert all(path.parent.name == dead for path in left)
        print(f"\nSIGKILL left {len(left)} temporary PDF(s): {[p.name for p in left]}")

        # 2. The ledger's totals: they expire with the latest live lease, at most one
        #    capacity lease after the kill, while no program runs a ledger script.
        assert float(await redis.get(keys.cpu_allocated) or 0) > 0
        expiry = await redis.pexpiretime(keys.cpu_allocated)
        assert killed_at < expiry <= killed_at + CAPACITY_LEASE_S * 1000
        assert await redis.pexpiretime(keys.ram_allocated) == expiry

        async def totals_gone() -> bool:
            return await redis.get(keys.cpu_allocated) is None

        await wait_for(totals_gone, within=CAPACITY_LEASE_S + 30)
        assert await redis.get(keys.ram_allocated) is None
        stale = [str(h) for h in await redis.hkeys(keys.workers)]
        assert stale, "the dead leases are still in the hash: no ledger script ran"
        assert all(h.startswith(f"{server}-{dead}-") for h in stale)

        # 3. gemini:workers: still listed, each with a reap deadline within its TTL.
        listed = await gemini_workers(redis, redis_prefix, f"{server}-{dead}-")
        assert listed
        assert all(deadline <= killed_at + WORKER_TTL_MS for deadline in listed.values())

        legacy = tmpdir / "ocr-pool-earlier-release.pdf"  # what the previous release left
        legacy.write_bytes(b"%PDF-1.7 land registry")
        long_ago = time.time() - 86_400
        os.utime(legacy, (long_ago, long_ago))

        # The next start on this machine: sweep, withdraw the dead pool, work, stop cleanly.
        successor = PoolProcess(
            env_of(url, redis_prefix, sim.url, server, tmpdir),
            tmp_path / "successor.log",
            "--until-empty",
        )
        try:
            code = await successor.wait(within=180)
        finally:
            successor.stop()
        output = successor.output()
    assert code == 0, output[-3000:]
    assert f"removed the temporary directory of dead pool {dead}" in output
    assert f"{len(left)} file(s) it left" in output
    assert "removed 1 temporary file(s) an earlier release left behind" in output
    assert f"dead pool {dead}: withdrawn from the fleet state ({len(listed)} worker(s)" in output
    assert temp_pdfs(tmpdir) == []  # not one temporary PDF on disk
    assert not legacy.exists()
    assert pool_dirs(tmpdir) == []  # the successor's own directory went with its clean stop
    assert await gemini_workers(redis, redis_prefix, f"{server}-") == {}
    assert await redis.hlen(keys.workers) == 0
    assert await redis.get(keys.cpu_allocated) == "0"
    rows = await fetch(url, "all_rows")
    assert {r["status_id"] for r in rows} == {Status.OCR_COMPLETE}


async def test_a_sigkilled_pool_leaves_gemini_workers_within_its_ttl(
    queue: tuple[str, Path], redis: Redis, redis_prefix: str
) -> None:
    """No restart: the limiter's publisher (every pool's, or `ocr-pool gemini`) reaps the
    dead pool's workers once their TTL is over."""
    url, tmp_path = queue
    server = "left-b"
    config = SimulatorConfig(port=0, latency_ms=800, latency_sigma=0, corpus=(tmp_path / "docs",))
    limiter = LimiterConfig(Quota(1600, 6_400_000))
    async with run_simulator(config) as sim:
        dead, _, killed_at = await kill_mid_job(url, redis, redis_prefix, sim.url, server, tmp_path)
        listed = await gemini_workers(redis, redis_prefix, f"{server}-{dead}-")
        assert listed
        assert all(deadline <= killed_at + WORKER_TTL_MS for deadline in listed.values())

        async def reaped() -> bool:
            await read_fleet_usage(redis, redis_prefix, limiter)  # what `ocr-pool gemini` runs
            return not await gemini_workers(redis, redis_prefix, f"{server}-{dead}-")

        await wait_for(reaped, within=WORKER_TTL_MS / 1000 + 30, every=1.0)
    reaped_at = await redis_ms(redis)
    print(
        f"\nSIGKILLed pool's {len(listed)} worker(s) left gemini:workers "
        f"{(reaped_at - killed_at) / 1000:.0f} s after the kill (TTL {WORKER_TTL_MS // 1000} s)"
    )
    # Its temporary PDFs wait for the next start (the test above); clean up here.
    for path in temp_pdfs(tmp_path / "tmpdir"):
        path.unlink()


async def test_sigterm_withdraws_the_pool_from_every_fleet_key_at_once(
    queue: tuple[str, Path], redis: Redis, redis_prefix: str
) -> None:
    url, tmp_path = queue
    server = "left-c"
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    keys = server_keys(redis_prefix, server)
    config = SimulatorConfig(port=0, latency_ms=800, latency_sigma=0, corpus=(tmp_path / "docs",))
    async with run_simulator(config) as sim:
        pool = PoolProcess(env_of(url, redis_prefix, sim.url, server, tmpdir), tmp_path / "p.log")
        try:

            async def busy() -> bool:
                rows = await fetch(url, "in_progress_rows")
                return (
                    len(rows) >= 2
                    and bool(await gemini_workers(redis, redis_prefix, f"{server}-"))
                    and bool(temp_pdfs(tmpdir))
                )

            await wait_for(busy, within=60, every=0.05)
            (directory,) = pool_dirs(tmpdir)
            pool_id = directory.name
            before = await gemini_workers(redis, redis_prefix, f"{server}-{pool_id}-")
            pool.signal(signal.SIGTERM)
            code = await pool.wait(within=60)
        finally:
            pool.stop()
        output = pool.output()
    assert code == 0, output[-3000:]
    # At once: read right after the exit, nothing waited for.
    assert before
    assert await gemini_workers(redis, redis_prefix, f"{server}-") == {}
    assignments = await redis.hgetall(f"{redis_prefix}worker_pool:assignments")
    assert not [w for w in assignments if str(w).startswith(f"{server}-")]
    allocation = json.loads(await redis.get(f"{redis_prefix}worker_pool:allocation") or "{}")
    assert pool_id not in json.dumps(allocation)
    assert await redis.hlen(keys.workers) == 0
    assert await redis.get(keys.cpu_allocated) == "0"
    assert await redis.get(keys.ram_allocated) == "0"
    assert pool_dirs(tmpdir) == []
    assert temp_pdfs(tmpdir) == []
    assert not await fetch(url, "in_progress_rows")  # the jobs in hand were finished
