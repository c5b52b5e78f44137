"""The limiter's two calls for keeping the day's count durable (GeminiLimiter.day_counts,
GeminiLimiter.raise_day_count; ratelimit/lua/day_counts.lua) on a real Redis: what they
read, greatest wins, never another day, and the daily limit after a raise."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import anyio
import pytest
from redis.asyncio import Redis

from ratelimit.config import LimiterConfig, Quota, day_offset_seconds
from ratelimit.keys import model_keys
from ratelimit.limiter import GeminiLimiter

pytestmark = pytest.mark.anyio
MODEL = "gemini-2.5-flash"


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


def limiter_of(redis: Redis, prefix: str, rpd: int | None = None) -> GeminiLimiter:
    config = LimiterConfig(Quota(1000, 1_000_000, rpd), window_seconds=1.0, max_poll_seconds=0.02)
    return GeminiLimiter(redis, config, prefix=prefix)


def python_today(limiter: GeminiLimiter) -> int:
    return int(time.time() + day_offset_seconds(limiter.config.day_timezone)) // 86400


async def granted_within(limiter: GeminiLimiter, seconds: float) -> bool:
    with anyio.move_on_after(seconds):
        await limiter.acquire(MODEL, 1)
        return True
    return False


async def test_day_counts_read_what_acquire_counted(redis: Redis, redis_prefix: str) -> None:
    limiter = limiter_of(redis, redis_prefix)
    epoch, today, counts = await limiter.day_counts()
    assert (epoch, counts) == ("", {})  # nothing asked yet under this prefix: no epoch
    assert abs(today - python_today(limiter)) <= 1  # Redis TIME, in the quota's zone
    for _ in range(3):
        await limiter.acquire(MODEL, 10)
    reservation = await limiter.acquire("gemini-2.5-pro", 10)
    await limiter.refund(reservation)  # a call that never went out does not count
    expected = {MODEL: (today, 3), "gemini-2.5-pro": (today, 0)}
    for _ in range(60):  # (a refund may reach Redis a moment later)
        epoch, _, counts = await limiter.day_counts()
        if counts == expected:
            break
        await anyio.sleep(0.05)
    assert epoch != ""
    assert counts == expected


async def test_a_raise_takes_the_greater_count_and_never_lowers_one(
    redis: Redis, redis_prefix: str
) -> None:
    limiter = limiter_of(redis, redis_prefix)
    await limiter.acquire(MODEL, 1)
    await limiter.acquire(MODEL, 1)
    _, today, _ = await limiter.day_counts()
    assert await limiter.raise_day_count(MODEL, today, 5)
    assert (await limiter.day_counts())[2] == {MODEL: (today, 5)}
    assert await limiter.raise_day_count(MODEL, today, 3)  # lower: kept at 5
    assert (await limiter.day_counts())[2] == {MODEL: (today, 5)}
    # what redis-cli shows follows at once
    assert await redis.get(model_keys(redis_prefix, MODEL).rpd) == "5"
    await limiter.acquire(MODEL, 1)
    assert (await limiter.day_counts())[2] == {MODEL: (today, 6)}


async def test_a_count_of_another_day_never_lands_in_today(redis: Redis, redis_prefix: str) -> None:
    limiter = limiter_of(redis, redis_prefix)
    await limiter.acquire(MODEL, 1)
    _, today, _ = await limiter.day_counts()
    assert not await limiter.raise_day_count(MODEL, today - 1, 500)  # yesterday's count
    assert not await limiter.raise_day_count(MODEL, today + 1, 500)
    assert not await limiter.raise_day_count("gemini-2.5-pro", today - 1, 500)
    assert (await limiter.day_counts())[2] == {MODEL: (today, 1)}


async def test_a_count_from_yesterday_still_in_redis_is_reported_as_yesterdays(
    redis: Redis, redis_prefix: str
) -> None:
    """Redis keeps yesterday's count until the first grant of the new day; the reading
    says which day it belongs to, and today's first grant starts again from 0."""
    limiter = limiter_of(redis, redis_prefix)
    await limiter.acquire(MODEL, 1)
    _, today, _ = await limiter.day_counts()
    await redis.hset(model_keys(redis_prefix, MODEL).state, mapping={"day": today - 1})
    assert (await limiter.day_counts())[2] == {MODEL: (today - 1, 1)}
    assert await limiter.raise_day_count(MODEL, today, 4)
    assert (await limiter.day_counts())[2] == {MODEL: (today, 4)}


async def test_a_raised_count_is_what_the_daily_limit_holds_against(
    redis: Redis, redis_prefix: str
) -> None:
    limiter = limiter_of(redis, redis_prefix, rpd=10)
    _, today, _ = await limiter.day_counts()
    # into an empty Redis (no grant yet): the model becomes known with its count
    assert await limiter.raise_day_count(MODEL, today, 8)
    assert (await limiter.day_counts())[2] == {MODEL: (today, 8)}
    assert await granted_within(limiter, 0.5)
    assert await granted_within(limiter, 0.5)
    assert not await granted_within(limiter, 0.3)  # 10 of 10: until the daily reset
    usage = (await limiter.publish()).models[0]
    assert (usage.model, usage.rpd, usage.rpd_limit) == (MODEL, 10, 10)


async def test_wrong_arguments_are_refused(redis: Redis, redis_prefix: str) -> None:
    limiter = limiter_of(redis, redis_prefix)
    with pytest.raises(ValueError, match="negative"):
        await limiter.raise_day_count(MODEL, 20_000, -1)
    with pytest.raises(ValueError, match="model name"):
        await limiter.raise_day_count("bad:model", 20_000, 1)
