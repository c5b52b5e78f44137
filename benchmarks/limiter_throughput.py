"""Gemini limiter throughput and latency, side by side with the `limits` library.

    .venv/bin/python -m benchmarks.limiter_throughput [--seconds 5] [--concurrency 1 16 64]
      [--redis-url redis://127.0.0.1:6379/0]

Rows, each on the same Redis in the same run, with limits high enough never to bind:
- ours, acquire + reconcile: one grant (RPM, TPM, RPD, queue, cooldown, ceiling checked
  in one Lua call) then the correction with the API's token count (a second call);
- ours, acquire only: the part comparable with `limits`;
- `limits` MovingWindowRateLimiter.hit (RPM only: it has no token dimension and no refund).
Figures, not pass/fail.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable

import anyio
from limits import RateLimitItemPerMinute
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import Redis

from ratelimit import GeminiLimiter, LimiterConfig, Quota

MODEL = "gemini-2.5-flash"
Cycle = Callable[[], Awaitable[object]]


async def measure(cycle: Cycle, concurrency: int, seconds: float) -> tuple[float, float, float]:
    """(cycles per second, p50 ms, p99 ms) of `concurrency` tasks running `cycle`."""
    latencies: list[float] = []
    until = time.monotonic() + seconds

    async def loop() -> None:
        while time.monotonic() < until:
            started = time.perf_counter()
            await cycle()
            latencies.append(time.perf_counter() - started)

    async with anyio.create_task_group() as tg:
        for _ in range(concurrency):
            tg.start_soon(loop)
    cuts = statistics.quantiles(latencies, n=100)
    return len(latencies) / seconds, cuts[49] * 1000, cuts[98] * 1000


def cycles(redis: Redis, redis_url: str, prefix: str) -> list[tuple[str, Cycle]]:
    """The three rows' operations, each on keys of its own under `prefix`."""
    config = LimiterConfig(Quota(10**9, 10**12), window_seconds=60)
    ours = GeminiLimiter(redis, config, prefix=f"{prefix}a:")
    ours_only = GeminiLimiter(redis, config, prefix=f"{prefix}b:")
    storage = RedisStorage(f"async+{redis_url}", implementation="redispy")
    theirs = MovingWindowRateLimiter(storage)
    item = RateLimitItemPerMinute(10**7)

    async def acquire_reconcile() -> None:
        reservation = await ours.acquire(MODEL, 1_000)
        await ours.reconcile(reservation, 900)

    async def acquire_only() -> None:
        await ours_only.acquire(MODEL, 1_000)

    async def limits_hit() -> None:
        if not await theirs.hit(item, prefix, "moving"):
            raise RuntimeError("the limits benchmark limit bound; raise it")

    return [
        ("ocr-pool acquire+reconcile", acquire_reconcile),
        ("ocr-pool acquire only", acquire_only),
        ("limits moving-window hit", limits_hit),
    ]


async def main(args: argparse.Namespace) -> None:
    redis = Redis.from_url(args.redis_url)
    print(f"{'limiter':<28} {'tasks':>5} {'ops/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    try:
        for concurrency in args.concurrency:
            prefix = f"bench:{uuid.uuid4().hex[:8]}:"  # every concurrency: empty windows
            for name, cycle in cycles(redis, args.redis_url, prefix):
                rate, p50, p99 = await measure(cycle, concurrency, args.seconds)
                print(f"{name:<28} {concurrency:>5} {rate:>9,.0f} {p50:>8.2f} {p99:>8.2f}")
            keys = [key async for key in redis.scan_iter(match=f"*{prefix}*")]
            if keys:
                await redis.delete(*keys)
    finally:
        await redis.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    anyio.run(main, parser.parse_args())
