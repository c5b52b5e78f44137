"""Capacity ledger throughput: acquire + release cycles per second and their latency,
from N concurrent holders in one process, against a real Redis.

    .venv/bin/python -m benchmarks.capacity_throughput [--holders 32] [--seconds 10]
      [--redis-url redis://127.0.0.1:6379/0] [--leases 0]

`--leases N` first fills the server with N long-lived leases, since every operation
reads all of a server's leases (O(leases) per call). Figures, not pass/fail.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

import anyio
from redis.asyncio import Redis

from capacity import CapacityLedger, Limits, Resources


async def cycle(ledger: CapacityLedger, holder: str, until: float, latencies: list[float]) -> None:
    while time.monotonic() < until:
        started = time.perf_counter()
        admission = await ledger.acquire(holder, "acte")
        if admission.admitted:
            await ledger.release(holder, admission.token)
        latencies.append(time.perf_counter() - started)


async def main(args: argparse.Namespace) -> None:
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    redis = Redis.from_url(args.redis_url)
    ledger = CapacityLedger(
        redis, "bench", prefix=prefix, limits=Limits(1_000_000, 1_000_000, 0, 0)
    )
    try:
        for n in range(args.leases):
            await ledger.acquire(f"resident-{n}", "x", Resources(1, 1))
        latencies: list[float] = []
        until = time.monotonic() + args.seconds
        async with anyio.create_task_group() as tg:
            for n in range(args.holders):
                tg.start_soon(cycle, ledger, f"h{n}", until, latencies)
        cuts = statistics.quantiles(latencies, n=100)
        print(
            f"{args.holders} holders, {args.leases} resident leases, {args.seconds:g} s: "
            f"{len(latencies) / args.seconds:,.0f} acquire+release cycles/s "
            f"({2 * len(latencies) / args.seconds:,.0f} script calls/s); cycle latency "
            f"p50 {cuts[49] * 1000:.2f} ms, p99 {cuts[98] * 1000:.2f} ms"
        )
    finally:
        keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--holders", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--leases", type=int, default=0)
    anyio.run(main, parser.parse_args())
