"""One process of the limiter stress test: N acquirers asking for random token counts.

    python -m tests.support.limiter_stress --redis-url URL --prefix P --out FILE
        [--acquirers 25] [--seconds 16] [--window 2] [--rpm 200] [--tpm 3000000]
        [--start-at EPOCH] [--seed N]

Each acquirer loops: acquire(1k-60k tokens), then (1 in 20) refund it unsent, or send it
(`wire`: wait for its slot, mark the send) and "call" for 5-30 ms, then reconcile with
70-100 % of the estimate. Every grant is written to FILE as a JSON line: g (when the request
left, wall clock in us: the same clock as Redis TIME on this machine; the grant time for a
refund), r (tokens reserved), f (tokens finally charged: the actual count; 0 if refunded),
c (counts as a request: false for a refund), w (seconds waited), a (ask time).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from typing import Any

import anyio
from redis.asyncio import Redis

from ratelimit.config import LimiterConfig, Quota
from ratelimit.limiter import GeminiLimiter, Reservation

MODEL = "gemini-2.5-flash"


async def acquirer(
    limiter: GeminiLimiter, rng: random.Random, until: float, log: list[dict[str, Any]], name: str
) -> None:
    while time.time() < until:
        tokens = rng.randint(1_000, 60_000)
        asked = time.time()
        reservation: Reservation | None = None
        with anyio.move_on_after(max(0.0, until - asked)):
            reservation = await limiter.acquire(MODEL, tokens, worker=name, early=True)
        if reservation is None:
            return
        sent_us = reservation.granted_at_us
        if rng.random() < 0.05:
            await anyio.sleep(rng.uniform(0.005, 0.03))
            await limiter.refund(reservation, worker=name)
            final, counted = 0, False
        else:
            await limiter.wire(reservation)
            sent_us = round(time.time() * 1e6)
            await anyio.sleep(rng.uniform(0.005, 0.03))
            actual = int(tokens * rng.uniform(0.7, 1.0))
            await limiter.reconcile(reservation, actual, worker=name)
            final, counted = actual, True
        log.append(
            {
                "g": sent_us,
                "r": tokens,
                "f": final,
                "c": counted,
                "w": reservation.waited,
                "a": asked,
                "t": reservation.granted_at_us,
            }
        )


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    redis = Redis.from_url(args.redis_url, socket_timeout=2, socket_connect_timeout=2)
    config = LimiterConfig(
        Quota(args.rpm, args.tpm),
        window_seconds=args.window,
        max_poll_seconds=args.max_poll,
    )
    limiter = GeminiLimiter(redis, config, prefix=args.prefix)
    rng = random.Random(args.seed)
    log: list[dict[str, Any]] = []
    await anyio.sleep(max(0.0, args.start_at - time.time()))
    until = time.time() + args.seconds
    async with anyio.create_task_group() as tg:
        for n in range(args.acquirers):
            tg.start_soon(acquirer, limiter, random.Random(rng.random()), until, log, f"p{n}")
    await limiter.aclose()
    await redis.aclose()
    return log


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--acquirers", type=int, default=25)
    parser.add_argument("--seconds", type=float, default=16.0)
    parser.add_argument("--window", type=float, default=2.0)
    parser.add_argument("--max-poll", type=float, default=0.05)
    parser.add_argument("--rpm", type=int, default=200)
    parser.add_argument("--tpm", type=int, default=3_000_000)
    parser.add_argument("--start-at", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    grants = anyio.run(run, arguments)
    with open(arguments.out, "w", encoding="utf-8") as out:
        out.writelines(json.dumps(entry) + "\n" for entry in grants)
