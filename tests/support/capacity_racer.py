"""A process taking part in one server's capacity ledger, for the multi-process tests.

Modes:
  race   --holders N tasks acquire a random worker type, hold it a few ms (sometimes
         resizing or renewing it), release it, for --seconds, checking the
         server totals every acquire answers against what is available; then
         write "summary <JSON counts>" to --out (peak_* are maxima, not counts).
  hold   one lease per --kinds, acquired (waiting for room) and kept alive by
         heartbeats until the process is killed; "held <holder>" lines go to --out.
  reap   the pool's maintenance loop (reap + publish) until killed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from collections import Counter
from typing import TextIO

import anyio
from redis.asyncio import Redis

from capacity import DEFAULT_COSTS, Admission, CapacityLedger, Limits, run_maintenance

KINDS = tuple(DEFAULT_COSTS)


def check(admission: Admission, counts: Counter[str], peak: list[int]) -> None:
    """Every acquire answers the server's totals right after it: none may exceed available."""
    allocated, available = admission.allocated, admission.available
    assert allocated is not None
    assert available is not None
    counts["replies_checked"] += 1
    peak[0] = max(peak[0], allocated.cpu_m)
    peak[1] = max(peak[1], allocated.ram_m)
    if allocated.cpu_m > available.cpu_m or allocated.ram_m > available.ram_m:
        counts["over_allocated"] += 1


async def racer(
    ledger: CapacityLedger, holder: str, until: float, counts: Counter[str], peak: list[int]
) -> None:
    rng = random.Random(f"{holder}-{os.getpid()}")
    while time.monotonic() < until:
        kind = rng.choice(KINDS)
        admission = await ledger.acquire(holder, kind)
        counts["attempts"] += 1
        check(admission, counts, peak)
        if not admission.admitted:
            counts[f"refused_{admission.reason}"] += 1
            await anyio.sleep(rng.uniform(0.001, 0.01))
            continue
        counts["admitted"] += 1
        token = admission.token
        await anyio.sleep(rng.uniform(0, 0.03))
        roll = rng.random()
        if roll < 0.25:
            other = rng.choice(KINDS)
            resized = await ledger.acquire(holder, other, token=token)
            check(resized, counts, peak)
            counts["resized" if resized.admitted else f"resize_refused_{resized.reason}"] += 1
        elif roll < 0.4:
            counts["renewed" if await ledger.renew(holder, token) else "renew_lost"] += 1
        if await ledger.release(holder, token):
            counts["released"] += 1
        else:
            counts["release_lost"] += 1


async def race(ledger: CapacityLedger, args: argparse.Namespace, out: TextIO) -> None:
    counts: Counter[str] = Counter()
    peak = [0, 0]
    until = time.monotonic() + args.seconds
    async with anyio.create_task_group() as tg:
        for n in range(args.holders):
            tg.start_soon(racer, ledger, f"{args.name}-{n}", until, counts, peak)
    counts["peak_cpu_m"], counts["peak_ram_m"] = peak
    out.write(f"summary {json.dumps(dict(counts))}\n")


async def hold(ledger: CapacityLedger, args: argparse.Namespace, out: TextIO) -> None:
    async with anyio.create_task_group() as tg:
        for n, kind in enumerate(args.kinds.split(",")):
            lease = await ledger.lease(f"{args.name}-{n}", kind, wait=True, poll=0.05)
            tg.start_soon(lease.keep_alive)
            out.write(f"held {lease.holder}\n")
            out.flush()


async def main(args: argparse.Namespace, out: TextIO) -> None:
    redis = Redis.from_url(args.redis_url)
    limits = Limits(args.max_cpu, args.max_ram, args.reserve, args.reserve)
    ledger = CapacityLedger(
        redis, args.server, prefix=args.prefix, limits=limits, lease_seconds=args.lease
    )
    try:
        if args.mode == "race":
            await race(ledger, args, out)
        elif args.mode == "hold":
            await hold(ledger, args, out)
        else:
            await run_maintenance(ledger)
    finally:
        await redis.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["race", "hold", "reap"])
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--server", default="racetrack")
    parser.add_argument("--name", default="p")
    parser.add_argument("--out", default=os.devnull)
    parser.add_argument("--holders", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--lease", type=float, default=10.0)
    parser.add_argument("--kinds", default="registre,index,acte")
    parser.add_argument("--max-cpu", type=float, default=10.0)
    parser.add_argument("--max-ram", type=float, default=4.0)
    parser.add_argument("--reserve", type=float, default=25.0)
    arguments = parser.parse_args()
    with open(arguments.out, "a", buffering=1) as log:
        anyio.run(main, arguments, log)
