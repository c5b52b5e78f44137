"""A 429 with RetryInfo stops every pool from sending to that model for the delay it
names (issue: must show 3), checked from the server's own request log."""

from __future__ import annotations

import sys

import anyio
import pytest

from tests.support.quota_server import serve_quota_server

pytestmark = pytest.mark.anyio
POOLS = 3
DELAY = 2.0


async def test_a_429_pauses_every_pool_for_its_retry_delay(
    redis_url: str, redis_prefix: str
) -> None:
    async with serve_quota_server(fail_at=300, pools=POOLS, retry_delay=f"{DELAY:g}s") as server:
        command = [
            sys.executable, "-m", "tests.support.limiter_caller", "--redis-url", redis_url,
            "--prefix", redis_prefix, "--base-url", server.base_url, "--seconds", "6",
        ]  # fmt: skip
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for _ in range(POOLS):
                    tg.start_soon(anyio.run_process, command)

    log = server.log
    failed_at = next(t for t, _, status, _ in log if status == 429)
    before = [t for t, _, _, _ in log if t < failed_at]
    in_flight = [t for t, _, _, _ in log if failed_at < t < failed_at + 0.1]
    paused = [t for t, _, _, _ in log if failed_at + 0.1 <= t < failed_at + DELAY]
    resumed = [t for t, _, _, _ in log if t >= failed_at + DELAY]
    print(
        f"\n{len(log)} requests; 429 after {len(before)}; {len(in_flight)} already granted "
        f"arrived within 0.1 s; {len(paused)} during the {DELAY:g} s pause; first after it "
        f"{resumed[0] - failed_at:.3f} s after the 429; {len(resumed)} after"
    )
    assert paused == []
    assert DELAY <= resumed[0] - failed_at < DELAY + 0.5
    assert len(resumed) > 100
    # every pool was sending before the 429 and after the pause (and none during it)
    assert len({pool for t, _, _, pool in log if t <= failed_at}) == POOLS
    assert len({pool for t, _, _, pool in log if t >= failed_at + DELAY}) == POOLS
