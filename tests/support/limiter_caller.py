"""One pool for the cooldown test: N workers calling a Gemini endpoint through the limiter.

    python -m tests.support.limiter_caller --redis-url URL --prefix P --base-url URL
        [--workers 5] [--seconds 6]

A 429 is read for its RetryInfo and reported to the limiter (fleet cooldown); a 200 is
reconciled with the usage the server returned.
"""

from __future__ import annotations

import argparse
import os
import time

import aiohttp
import anyio
from redis.asyncio import Redis

from ratelimit.config import LimiterConfig, Quota
from ratelimit.limiter import GeminiLimiter
from ratelimit.quota_error import parse_quota_error

MODEL = "gemini-2.5-flash"


async def worker(
    limiter: GeminiLimiter, http: aiohttp.ClientSession, url: str, until: float
) -> None:
    while time.time() < until:
        reservation = await limiter.acquire(MODEL, 1_000)
        async with http.post(url, json={"contents": []}) as response:
            body = await response.json()
        if response.status == 429:
            signal = parse_quota_error(body)
            await limiter.report_quota_error(MODEL, signal, reservation=reservation)
        else:
            await limiter.reconcile(reservation, body["usageMetadata"]["promptTokenCount"])


async def main(args: argparse.Namespace) -> None:
    redis = Redis.from_url(args.redis_url)
    config = LimiterConfig(Quota(100_000, 100_000_000), window_seconds=60, max_poll_seconds=0.05)
    limiter = GeminiLimiter(redis, config, prefix=args.prefix)
    url = f"{args.base_url}/v1beta/models/{MODEL}:generateContent"
    until = time.time() + args.seconds
    headers = {"x-pool": str(os.getpid())}
    async with aiohttp.ClientSession(headers=headers) as http, anyio.create_task_group() as tg:
        for _ in range(args.workers):
            tg.start_soon(worker, limiter, http, url, until)
    await redis.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--workers", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=6.0)
    anyio.run(main, parser.parse_args())
