"""The pressure guard against the real host: a child process holding ~2 GB pushes
memory use above the limit, admission of further leases stops (a pool holding nothing
still gets one: the progress rule); it exits, admission resumes.

The reserve is chosen from the memory use measured now, so that the limit sits
halfway between the current use and the use with the child's memory."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import psutil
import pytest
from redis.asyncio import Redis

from capacity import CapacityLedger, Limits, PressureGuard

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
HOG_GB = 2.0


@pytest.fixture
async def redis(redis_url: str, redis_prefix: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    keys = [key async for key in client.scan_iter(match=f"{redis_prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def memory_percent(samples: int = 5) -> float:
    values = []
    for _ in range(samples):
        values.append(psutil.virtual_memory().percent)
        await anyio.sleep(0.05)
    return statistics.median(values)


async def until_reason(ledger: CapacityLedger, wanted: set[str], limit: float) -> float:
    """Seconds until an acquire answers one of `wanted` (releasing what it got)."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        admission = await ledger.acquire("probe", "acte")
        if admission.admitted:
            await ledger.release("probe", admission.token)
        if admission.reason in wanted:
            return time.monotonic() - started
        await anyio.sleep(0.05)
    pytest.fail(f"no acquire answered {wanted} within {limit} s")


async def test_memory_pressure_blocks_admission_until_the_child_exits(
    redis: Redis, redis_prefix: str
) -> None:
    total_gb = psutil.virtual_memory().total / 2**30
    hog_share = 100 * HOG_GB / total_gb
    baseline = await memory_percent()
    limit = baseline + hog_share / 2
    assert limit < 95, f"host memory already at {baseline:.1f}%: the test cannot run here"
    reserve = 100 - limit
    guard = PressureGuard(0, reserve, min_interval=0.2)  # CPU reserve 0: CPU never blocks
    ledger = CapacityLedger(
        redis, "pressured", prefix=redis_prefix, limits=Limits(64, 256, 0, 0), guard=guard
    )
    opened = await ledger.acquire("probe", "acte")
    assert opened.admitted  # open before the child
    await ledger.release("probe", opened.token)
    # The pool's job in hand: the probes below are further leases, which pressure stops.
    running = await ledger.acquire("running", "acte")
    assert running.admitted
    idle_pool = CapacityLedger(
        redis,
        "pressured",
        prefix=redis_prefix,
        limits=Limits(64, 256, 0, 0),
        guard=PressureGuard(0, reserve, min_interval=0.2),
    )

    child = await anyio.open_process(
        [sys.executable, "-m", "tests.support.capacity_hog", "--gb", str(HOG_GB)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        with anyio.fail_after(60):
            ready_line = await child.stdout.receive()
        assert ready_line.startswith(b"ready"), ready_line
        with_child = await memory_percent()
        blocked_after = await until_reason(ledger, {"pressure"}, 10)
        # It stays shut while the child holds its memory, and nothing reaches the ledger.
        for _ in range(10):
            refused = await ledger.acquire("probe", "acte")
            assert refused.reason == "pressure"
            assert refused.pressure is not None
            assert refused.pressure.over == ("ram",)
            assert refused.pressure.reading.ram_percent > limit
            assert f"ram {refused.pressure.reading.ram_percent:.1f}% > " in refused.describe()
            await anyio.sleep(0.05)
        assert await redis.hkeys(ledger.keys.workers) == [b"running"]
        # Another pool holding nothing is not stopped: its first lease goes through.
        progress = await idle_pool.acquire("other-pool-w00", "acte")
        assert progress.admitted
        assert progress.pressure is not None
        assert progress.pressure.over == ("ram",)
        assert not (await idle_pool.acquire("other-pool-w01", "acte")).admitted
        await idle_pool.release("other-pool-w00", progress.token)
    finally:
        assert child.stdin is not None
        await child.stdin.aclose()  # the child exits when its stdin closes
        with anyio.fail_after(30):
            exited = await child.wait()
        await child.aclose()
    assert exited == 0
    resumed_after = await until_reason(ledger, {"ok"}, 10)
    await ledger.release("running", running.token)
    after = await memory_percent()
    print(
        f"\npressure: host {total_gb:.1f} GB; memory use {baseline:.1f}% before, "
        f"{with_child:.1f}% with the child's {HOG_GB:g} GB, {after:.1f}% after; "
        f"limit {limit:.1f}% (reserve {reserve:.1f}%)"
    )
    print(
        f"pressure: blocked {blocked_after * 1000:.0f} ms after the child was ready; "
        f"admitted again {resumed_after * 1000:.0f} ms after it exited"
    )
    assert with_child > limit > after
    assert blocked_after < 5
    assert resumed_after < 5
