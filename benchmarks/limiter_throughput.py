"""Gemini limiter throughput and latency, before (1b66f58) and after, side by side with the
`limits` library, and the Redis time a refused request costs.

    .venv/bin/python -m benchmarks.limiter_throughput [--seconds 5] [--rounds 5] [--runs 1]
      [--concurrency 1 16 64] [--grants 100 1000 5000] [--redis-url URL]

Without --redis-url a private redis-server is started (no other client's commands in its
INFO commandstats). Rows, each on the same Redis in the same run, with limits high enough
never to bind, each measured for --seconds in --rounds slices taken in turn (row 1, row 2,
..., row 1, ...), so a change in the machine's load reaches every row alike; ops/s is the
calls over the time the slices took. --runs repeats it all and ends with each ratio's median
and range over the runs. Rows:
- ocr-pool, one call as the client makes it: acquire (early) + wire + reconcile; the
  settlement rides on the next acquire (one round trip per request);
- ocr-pool, acquire only;
- 1b66f58 acquire+reconcile (two round trips) and acquire only: the previous release,
  loaded from benchmarks/limiter_1b66f58;
- `limits` MovingWindowRateLimiter.hit (RPM only: no tokens, no refund, no reconcile).
Then a window holding N live grants of 100 tokens (the token limit full) and one waiter
asking for half of it: the Redis time of each refused attempt (INFO commandstats), mean
over 200 attempts, for both releases. Figures, not pass/fail.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from tempfile import TemporaryDirectory

import anyio
from limits import RateLimitItemPerMinute
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import Redis

from benchmarks.limiter_1b66f58.config import LimiterConfig as OldConfig
from benchmarks.limiter_1b66f58.config import Quota as OldQuota
from benchmarks.limiter_1b66f58.limiter import GeminiLimiter as OldLimiter
from ratelimit import GeminiLimiter, LimiterConfig, Quota
from tests.support.redis_server import redis_server

MODEL = "gemini-2.5-flash"
Cycle = Callable[[], Awaitable[object]]


async def measure(cycle: Cycle, concurrency: int, seconds: float, latencies: list[float]) -> float:
    """`concurrency` tasks run `cycle` for `seconds`; each cycle's latency is added to
    `latencies`. Returns the time taken (until the last cycle ended)."""
    started = time.monotonic()
    until = started + seconds

    async def loop() -> None:
        while time.monotonic() < until:
            started = time.perf_counter()
            await cycle()
            latencies.append(time.perf_counter() - started)

    async with anyio.create_task_group() as tg:
        for _ in range(concurrency):
            tg.start_soon(loop)
    return time.monotonic() - started


def cycles(redis: Redis, redis_url: str, prefix: str) -> list[tuple[str, Cycle]]:
    """The rows' operations, each on keys of its own under `prefix`."""
    config = LimiterConfig(Quota(10**9, 10**12), window_seconds=60)
    ours = GeminiLimiter(redis, config, prefix=f"{prefix}a:")
    ours_only = GeminiLimiter(redis, config, prefix=f"{prefix}b:")
    old_config = OldConfig(OldQuota(10**9, 10**12), window_seconds=60)
    old = OldLimiter(redis, old_config, prefix=f"{prefix}c:")
    old_only = OldLimiter(redis, old_config, prefix=f"{prefix}d:")
    storage = RedisStorage(f"async+{redis_url}", implementation="redispy")
    theirs = MovingWindowRateLimiter(storage)
    item = RateLimitItemPerMinute(10**7)

    async def call() -> None:
        reservation = await ours.acquire(MODEL, 1_000, early=True)
        await ours.wire(reservation)
        await ours.reconcile(reservation, 900)

    async def acquire_only() -> None:
        await ours_only.acquire(MODEL, 1_000)

    async def old_call() -> None:
        reservation = await old.acquire(MODEL, 1_000)
        await old.reconcile(reservation, 900)

    async def old_acquire_only() -> None:
        await old_only.acquire(MODEL, 1_000)

    async def limits_hit() -> None:
        if not await theirs.hit(item, prefix, "moving"):
            raise RuntimeError("the limits benchmark limit bound; raise it")

    return [
        ("ocr-pool acquire+wire+reconcile", call),
        ("ocr-pool acquire only", acquire_only),
        ("1b66f58 acquire+reconcile", old_call),
        ("1b66f58 acquire only", old_acquire_only),
        ("limits moving-window hit", limits_hit),
    ]


async def evalsha_usec(redis: Redis) -> tuple[int, int]:
    """(calls, microseconds) Redis spent in EVALSHA so far."""
    stats = await redis.info("commandstats")
    entry = stats.get("cmdstat_evalsha", {})
    return int(entry.get("calls", 0)), int(entry.get("usec", 0))


async def refused_cost(redis: Redis, grants: int, release: str, attempts: int = 200) -> float:
    """Redis microseconds per refused attempt of one waiter asking for half the tokens of
    a window holding `grants` live grants of 100 tokens (the token limit full)."""
    prefix = f"bench:refused:{uuid.uuid4().hex[:8]}:"
    tpm = grants * 100
    ask = tpm // 2
    if release == "1b66f58":
        old = OldLimiter(redis, OldConfig(OldQuota(10**6, tpm), window_seconds=600), prefix=prefix)
        for _ in range(grants):
            await old.reconcile(await old.acquire(MODEL, 100), 100)
        script = old._scripts.acquire
        args: list[str | int | float | bytes] = [
            prefix, MODEL, "waiter", 0, ask, 10**6, tpm, 0, 600_000_000, 5_000_000, 0, "",
            "e1", "", 120_000_000, 0.05,
        ]  # fmt: skip
    else:
        new = GeminiLimiter(
            redis, LimiterConfig(Quota(10**6, tpm), window_seconds=600), prefix=prefix
        )
        for _ in range(grants):
            reservation = await new.acquire(MODEL, 100, early=True)
            await new.wire(reservation)
            await new.reconcile(reservation, 100)
        await new.flush()
        script = new._scripts.acquire
        args = [new._model_settings(MODEL, 300_000_000), f"waiter|0|{ask}||", 0]
    reply = await script(keys=[], args=args)
    fields = reply if release == "1b66f58" else reply.decode().split("|")
    assert int(fields[0]) == 0, "the waiter was granted: the window is not full"
    # the waiter's arrival: it polls again with its ticket
    if release == "1b66f58":
        args[3] = int(fields[3])
    else:
        args[1] = f"waiter|{fields[3]}|{ask}||"
    calls, usec = await evalsha_usec(redis)
    for _ in range(attempts):
        reply = await script(keys=[], args=args)
        assert (reply if release == "1b66f58" else reply.decode().split("|"))[0] in (0, "0")
    calls_after, usec_after = await evalsha_usec(redis)
    keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
    await redis.delete(*keys)
    return (usec_after - usec) / max(1, calls_after - calls)


@contextmanager
def private_redis(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    with TemporaryDirectory() as tmp, redis_server(Path(tmp)) as server:
        yield server.url


async def main(args: argparse.Namespace) -> None:
    with private_redis(args.redis_url) as url:
        redis = Redis.from_url(url)
        try:
            await run(redis, url, args)
        finally:
            await redis.aclose()


Row = tuple[str, float, float, float]
"""name, ops/s, p50 ms, p99 ms"""


async def throughput(
    redis: Redis, url: str, concurrency: int, args: argparse.Namespace
) -> list[Row]:
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"  # every concurrency: empty windows
    rows = cycles(redis, url, prefix)
    latencies: dict[str, list[float]] = {name: [] for name, _ in rows}
    elapsed = dict.fromkeys(latencies, 0.0)
    for _ in range(args.rounds):
        for name, cycle in rows:
            elapsed[name] += await measure(
                cycle, concurrency, args.seconds / args.rounds, latencies[name]
            )
    keys = [key async for key in redis.scan_iter(match=f"*{prefix}*")]
    for start in range(0, len(keys), 1000):
        await redis.delete(*keys[start : start + 1000])
    result: list[Row] = []
    for name, samples in latencies.items():
        cuts = statistics.quantiles(samples, n=100, method="inclusive")
        result.append((name, len(samples) / elapsed[name], cuts[49] * 1000, cuts[98] * 1000))
    return result


async def run(redis: Redis, url: str, args: argparse.Namespace) -> None:
    ratios: dict[tuple[str, int], list[float]] = {}
    for run in range(args.runs):
        if args.runs > 1:
            print(f"run {run + 1} of {args.runs}")
        print(
            f"{'limiter':<32} {'tasks':>5} {'ops/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
            f"{'vs limits':>9}"
        )
        for concurrency in args.concurrency:
            rows = await throughput(redis, url, concurrency, args)
            limits_rate = rows[-1][1]
            for name, rate, p50, p99 in rows:
                ratios.setdefault((name, concurrency), []).append(rate / limits_rate)
                print(
                    f"{name:<32} {concurrency:>5} {rate:>9,.0f} {p50:>8.2f} {p99:>8.2f} "
                    f"{rate / limits_rate:>8.2f}x"
                )
    if args.runs > 1:
        print(f"\nvs limits over {args.runs} runs: median [lowest, highest]")
        for (name, concurrency), values in ratios.items():
            if not name.startswith("limits"):
                print(
                    f"{name:<32} {concurrency:>5} {statistics.median(values):>6.2f}x "
                    f"[{min(values):.2f}, {max(values):.2f}]"
                )
    if not args.grants:
        return
    print("\nRedis time per refused attempt (a waiter asking for half of a full token window)")
    print(f"{'live grants':>11} {'1b66f58 us':>11} {'ocr-pool us':>12}")
    for grants in args.grants:
        before = await refused_cost(redis, grants, "1b66f58")
        after = await refused_cost(redis, grants, "current")
        print(f"{grants:>11,} {before:>11.1f} {after:>12.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per row and concurrency")
    parser.add_argument("--rounds", type=int, default=5, help="slices the seconds are cut in")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument(
        "--grants", type=int, nargs="*", default=[100, 1000, 5000], help="none: skip"
    )
    parser.add_argument("--redis-url", default=None, help="default: a private redis-server")
    anyio.run(main, parser.parse_args())
