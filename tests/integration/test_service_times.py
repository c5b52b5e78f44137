"""Fleet-wide service times in Redis: seeds, the EWMA script, concurrency, outages."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator
from importlib.resources import files

import anyio
import pytest
from redis.asyncio import Redis

from pool.scripts import script_sha, script_text
from pool.service_times import KEY, MAX_SECONDS, MIN_SECONDS, ServiceTimes
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.anyio

SEEDS = {"index": 5.0, "acte": 60.0}


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


async def stored(redis: Redis, prefix: str) -> dict[str, str]:
    values = await redis.hgetall(f"{prefix}{KEY}")
    return {str(k): str(v) for k, v in values.items()}


def test_script_ships_as_package_data() -> None:
    text = (files("pool") / "lua" / "ewma.lua").read_text(encoding="utf-8")
    assert "HSET" in text
    assert script_text("ewma") == text
    assert script_sha("ewma") == hashlib.sha1(text.encode()).hexdigest()
    with pytest.raises(ValueError, match="no pool script"):
        script_text("nope")


def test_arguments_are_checked(redis_url: str) -> None:
    client = Redis.from_url(redis_url)
    with pytest.raises(ValueError, match="seed for acte"):
        ServiceTimes(client, "p:", {"index": 1.0, "acte": 0.0})
    with pytest.raises(ValueError, match="alpha"):
        ServiceTimes(client, "p:", SEEDS, alpha=1.5)
    with pytest.raises(ValueError, match="bad job type"):
        ServiceTimes(client, "p:", {"a:b": 1.0})


async def test_seeds_stand_in_before_any_sample(redis: Redis, redis_prefix: str) -> None:
    times = ServiceTimes(redis, redis_prefix, SEEDS)
    assert await times.current() == SEEDS
    assert await stored(redis, redis_prefix) == {}


async def test_first_sample_replaces_the_seed(redis: Redis, redis_prefix: str) -> None:
    times = ServiceTimes(redis, redis_prefix, SEEDS)
    assert await times.record("index", 3.25) == pytest.approx(3.25)
    assert await times.current() == {"index": 3.25, "acte": 60.0}
    # Plain numbers a person can HGET.
    assert await stored(redis, redis_prefix) == {"index": "3.250", "index:samples": "1"}
    ttl = await redis.pttl(f"{redis_prefix}{KEY}")
    assert 0 < ttl <= 7 * 86_400_000


async def test_ewma_math(redis: Redis, redis_prefix: str) -> None:
    times = ServiceTimes(redis, redis_prefix, SEEDS, alpha=0.2)
    await times.record("acte", 10.0)
    assert await times.record("acte", 20.0) == pytest.approx(12.0)  # 0.2*20 + 0.8*10
    assert await times.record("acte", 2.0) == pytest.approx(10.0)  # 0.2*2 + 0.8*12
    other = ServiceTimes(redis, redis_prefix, SEEDS, alpha=0.5)  # another pool, same hash
    assert await other.record("acte", 30.0) == pytest.approx(20.0)
    assert (await stored(redis, redis_prefix))["acte:samples"] == "4"
    assert (await times.current())["acte"] == pytest.approx(20.0)


async def test_absurd_durations_are_clamped_or_dropped(redis: Redis, redis_prefix: str) -> None:
    times = ServiceTimes(redis, redis_prefix, SEEDS, alpha=1.0)
    assert await times.record("index", 1e12) == pytest.approx(MAX_SECONDS)
    assert await times.record("index", -5.0) == pytest.approx(MIN_SECONDS)
    assert await times.record("index", float("inf")) == pytest.approx(MAX_SECONDS)
    assert await times.record("index", float("nan")) == pytest.approx(MAX_SECONDS)  # dropped
    assert (await stored(redis, redis_prefix))["index:samples"] == "3"
    with pytest.raises(ValueError, match="unknown job type"):
        await times.record("plan_cadastraux", 1.0)


async def test_unreadable_value_is_replaced(redis: Redis, redis_prefix: str) -> None:
    await redis.hset(f"{redis_prefix}{KEY}", mapping={"index": "abc", "index:samples": "9"})
    times = ServiceTimes(redis, redis_prefix, SEEDS)
    assert (await times.current())["index"] == 5.0
    assert await times.record("index", 7.0) == pytest.approx(7.0)
    assert (await stored(redis, redis_prefix))["index:samples"] == "10"


async def test_concurrent_records_are_all_counted(redis_url: str, redis_prefix: str) -> None:
    clients = [Redis.from_url(redis_url) for _ in range(4)]
    pools = [ServiceTimes(client, redis_prefix, SEEDS) for client in clients]
    try:
        async with anyio.create_task_group() as tg:
            for i in range(200):
                tg.start_soon(pools[i % 4].record, "acte", float(10 + i % 5))
        values = await clients[0].hgetall(f"{redis_prefix}{KEY}")
        assert values[b"acte:samples"] == b"200"
        assert 10.0 <= float(values[b"acte"]) <= 14.0
        assert b"index" not in values
        assert (await pools[1].current())["index"] == 5.0
    finally:
        for client in clients:
            await client.aclose()


async def test_unreachable_redis_answers_with_seeds_and_logs_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5, socket_timeout=0.5)
    times = ServiceTimes(client, "x:", SEEDS)
    caplog.set_level(logging.DEBUG, logger="pool.service_times")
    try:
        with anyio.fail_after(10):
            assert await times.current() == SEEDS
            assert await times.record("index", 3.0) == 5.0
            assert await times.current() == SEEDS
    finally:
        await client.aclose()
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "last known" in warnings[0].getMessage()


async def test_outage_keeps_last_known_values_and_recovers(
    private_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = Redis.from_url(private_redis.url, socket_connect_timeout=0.5, socket_timeout=0.5)
    times = ServiceTimes(client, "", SEEDS)
    caplog.set_level(logging.INFO, logger="pool.service_times")
    try:
        await times.record("acte", 42.0)
        assert await times.current() == {"index": 5.0, "acte": 42.0}
        private_redis.stop()
        with anyio.fail_after(10):
            assert await times.current() == {"index": 5.0, "acte": 42.0}
            assert await times.record("acte", 1000.0) == 42.0
        # A restarted Redis has neither the data nor the script: it is loaded again.
        private_redis.start()
        assert await times.record("acte", 8.0) == pytest.approx(8.0)
        assert await times.current() == {"index": 5.0, "acte": 8.0}
        raw = Redis.from_url(private_redis.url, decode_responses=True)
        assert await raw.hgetall(KEY) == {"acte": "8.000", "acte:samples": "1"}
        await raw.aclose()
    finally:
        await client.aclose()
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert len([m for m in messages if "failed" in m]) == 1
    assert any("answers again" in m for m in messages)
