"""The limit is judged by *arrivals* (when requests reach Gemini), never by the limiter's own
view: for any latency before the send, on the wire (within the wire margin) and of the
answer, and any interleaving of several pools, no window of arrivals holds more requests
or tokens than the limits (hypothesis, real Redis); and pools in separate processes
against a strict stand-in that counts arrivals draw no 429."""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path

import anyio
import pytest
import redis as sync_redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from ratelimit.config import LimiterConfig, Quota
from ratelimit.limiter import GeminiLimiter
from tests.support.quota_server import ArrivalQuota, serve_arrival_quota

MODEL = "gemini-2.5-flash"
WINDOW = 0.4
MARGIN = 0.03
WAKE = 0.005
"""the event loop's lateness allowed to a sleep: a request is on the wire for at most
MARGIN - WAKE as drawn, so that it is there within the margin once it wakes"""
TPM = 1_000

Call = tuple[int, float, float, float, int]
"""pool, seconds before the send, on the wire (within the margin), thinking, tokens"""

calls_strategy = st.lists(
    st.tuples(
        st.integers(0, 3),
        st.floats(0, 0.15),
        st.floats(0, MARGIN - WAKE),
        st.floats(0, 0.5),
        st.integers(1, 400),
    ),
    min_size=4,
    max_size=12,
)


async def run_pools(
    redis_url: str, limit: int, pools: int, calls: list[Call], starts: list[float]
) -> list[tuple[float, int]]:
    """Each pool is a limiter of its own (own Redis connection); every call acquires,
    builds for a while, goes through `wire()`, travels, is counted by the fake Gemini on
    arrival, thinks, and is reconciled. Returns (arrival, tokens) of every call."""
    prefix = f"test:arrivals:{uuid.uuid4().hex[:10]}:"
    config = LimiterConfig(
        Quota(limit, TPM),
        window_seconds=WINDOW,
        max_poll_seconds=0.02,
        wire_margin_seconds=MARGIN,
        lead_seconds=0.1,
    )
    clients = [Redis.from_url(redis_url) for _ in range(pools)]
    limiters = [GeminiLimiter(client, config, prefix=prefix) for client in clients]
    arrivals: list[tuple[float, int]] = []

    async def one(pool: int, call: Call, start: float) -> None:
        _, before, wire, thinking, tokens = call
        limiter = limiters[pool]
        await anyio.sleep(start)
        reservation = await limiter.acquire(MODEL, tokens, early=True)
        await anyio.sleep(before)
        await limiter.wire(reservation)
        await anyio.sleep(wire)
        arrivals.append((time.monotonic(), tokens))
        await anyio.sleep(thinking)
        await limiter.reconcile(reservation, tokens)

    try:
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for call, start in zip(calls, starts, strict=True):
                    tg.start_soon(one, call[0] % pools, call, start)
    finally:
        for limiter, client in zip(limiters, clients, strict=True):
            await limiter.aclose()
            await client.aclose()
        client_sync = sync_redis.Redis.from_url(redis_url)
        keys = list(client_sync.scan_iter(match=f"{prefix}*"))
        if keys:
            client_sync.delete(*keys)
        client_sync.close()
    return sorted(arrivals)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    limit=st.integers(1, 4),
    pools=st.integers(2, 4),
    calls=calls_strategy,
    starts=st.lists(st.floats(0, 0.3), min_size=12, max_size=12),
)
def test_arrivals_never_exceed_the_limits_in_any_window(
    redis_url: str, limit: int, pools: int, calls: list[Call], starts: list[float]
) -> None:
    arrivals = anyio.run(run_pools, redis_url, limit, pools, calls, starts[: len(calls)])
    times = [t for t, _ in arrivals]
    assert len(times) == len(calls)
    # requests: the (i + limit)-th arrival is at least a window after the i-th
    for i in range(len(times) - limit):
        assert times[i + limit] - times[i] >= WINDOW, (i, times)
    # tokens: no window [t - WINDOW, t] ending at an arrival holds more than the limit
    for t, _ in arrivals:
        inside = sum(tokens for u, tokens in arrivals if t - WINDOW < u <= t)
        assert inside <= TPM, (t, arrivals)


@pytest.mark.anyio
async def test_pools_in_separate_processes_draw_no_429_from_a_strict_stand_in(
    redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    limit, window, seconds = 10, 2.0, 8.0
    quota = ArrivalQuota(limit, window, latency=(0.2, 0.8))
    start = time.time() + 4  # every process imported and connected by then
    async with serve_arrival_quota(quota):
        options = {
            "--redis-url": redis_url,
            "--prefix": redis_prefix,
            "--base-url": quota.base_url,
            "--release": "wire",
            "--seconds": str(seconds),
            "--window": str(window),
            "--rpm": str(limit),
            "--start-at": str(start),
            "--workers": "4",
        }
        flags = [part for pair in options.items() for part in pair]
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for n in range(3):
                    command = [sys.executable, "-m", "tests.support.limiter_pool", *flags]
                    tg.start_soon(anyio.run_process, [*command, "--seed", str(n)])
    statuses = [a.status for a in quota.arrivals]
    print(
        f"\n{len(statuses)} arrivals from {len({a.pool for a in quota.arrivals})} pools; "
        f"{statuses.count(429)} answered 429; fullest window {quota.fullest_window()}/{limit}"
    )
    assert len({a.pool for a in quota.arrivals}) == 3
    assert statuses.count(200) >= limit  # a backlog went through
    assert statuses.count(429) == 0
    assert quota.fullest_window() <= limit
