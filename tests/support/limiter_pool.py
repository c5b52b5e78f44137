"""One pool of the arrival benchmark and test: workers calling a Gemini stand-in through
the limiter, each request built for a while after its grant (as a real pool renders and
connects), with a standing backlog.

    python -m tests.support.limiter_pool --redis-url URL --prefix P --base-url URL
        --release wire|answer|1b66f58 [--workers 8] [--seconds 60] [--window 60]
        [--rpm 30] [--pre-send 0.05 0.5] [--start-at EPOCH] [--seed 0] [--out FILE]

release: `wire` is this release as the client uses it (early grant, `wire()` just before
the HTTP call: stamped at the send + margin); `answer` is this release without `wire()`
(stamped at the answer: the no-extra-round-trip design); `1b66f58` is the previous
release (stamped at the grant). A 429 is reported to the limiter and the call is tried
again. Each call is written to FILE as a JSON line: asked, sent (wall clock), status.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from typing import Any, Protocol

import aiohttp
import anyio
from redis.asyncio import Redis

from benchmarks.limiter_1b66f58.config import LimiterConfig as OldConfig
from benchmarks.limiter_1b66f58.config import Quota as OldQuota
from benchmarks.limiter_1b66f58.limiter import GeminiLimiter as OldLimiter
from ratelimit.config import LimiterConfig, Quota
from ratelimit.limiter import GeminiLimiter
from ratelimit.quota_error import parse_quota_error

MODEL = "gemini-2.5-flash"
TOKENS = 1_000


class Sender(Protocol):
    async def __call__(self, call: str) -> tuple[int, Any]: ...


async def current_call(
    limiter: GeminiLimiter, send: Sender, pre_send: float, call: str, wire: bool
) -> tuple[int, float]:
    reservation = await limiter.acquire(MODEL, TOKENS, early=wire)
    await anyio.sleep(pre_send)  # building the request, rendering, connecting
    if wire:
        await limiter.wire(reservation)
    sent = time.time()
    status, body = await send(call)
    if status == 429:
        await limiter.report_quota_error(MODEL, parse_quota_error(body), reservation=reservation)
    else:
        await limiter.reconcile(reservation, body["usageMetadata"]["promptTokenCount"])
    return status, sent


async def old_call(
    limiter: OldLimiter, send: Sender, pre_send: float, call: str
) -> tuple[int, float]:
    reservation = await limiter.acquire(MODEL, TOKENS)
    await anyio.sleep(pre_send)
    sent = time.time()
    status, body = await send(call)
    if status == 429:
        await limiter.report_quota_error(MODEL, parse_quota_error(body), reservation=reservation)
    else:
        await limiter.reconcile(reservation, body["usageMetadata"]["promptTokenCount"])
    return status, sent


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    redis = Redis.from_url(args.redis_url, socket_timeout=5, socket_connect_timeout=5)
    new: GeminiLimiter | None = None
    old: OldLimiter | None = None
    if args.release == "1b66f58":
        old = OldLimiter(
            redis,
            OldConfig(OldQuota(args.rpm, 10**9), window_seconds=args.window),
            prefix=args.prefix,
        )
    else:
        config = LimiterConfig(Quota(args.rpm, 10**9), window_seconds=args.window)
        new = GeminiLimiter(redis, config, prefix=args.prefix)
    rng = random.Random(args.seed)
    url = f"{args.base_url}/v1beta/models/{MODEL}:generateContent"
    log: list[dict[str, Any]] = []
    pid = str(os.getpid())

    async with aiohttp.ClientSession(headers={"x-pool": pid}) as http:

        async def send(call: str) -> tuple[int, Any]:
            async with http.post(url, json={"contents": []}, headers={"x-call": call}) as r:
                return r.status, await r.json()

        async def worker(n: int, until: float) -> None:
            count = 0
            while time.time() < until:
                call = f"{pid}-{n}-{count}"
                count += 1
                asked = time.time()
                pre_send = rng.uniform(*args.pre_send)
                with anyio.move_on_after(max(0.0, until - asked)):
                    if old is not None:
                        status, sent = await old_call(old, send, pre_send, call)
                    else:
                        assert new is not None
                        wire = args.release == "wire"
                        status, sent = await current_call(new, send, pre_send, call, wire)
                    log.append({"call": call, "asked": asked, "sent": sent, "status": status})

        await anyio.sleep(max(0.0, args.start_at - time.time()))
        until = time.time() + args.seconds
        async with anyio.create_task_group() as tg:
            for n in range(args.workers):
                tg.start_soon(worker, n, until)
    if new is not None:
        await new.aclose()
    await redis.aclose()
    return log


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--release", choices=["wire", "answer", "1b66f58"], default="wire")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--rpm", type=int, default=30)
    parser.add_argument("--pre-send", type=float, nargs=2, default=[0.05, 0.5])
    parser.add_argument("--start-at", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="")
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    calls = anyio.run(run, arguments)
    if arguments.out:
        with open(arguments.out, "w", encoding="utf-8") as out:
            out.writelines(json.dumps(entry) + "\n" for entry in calls)
