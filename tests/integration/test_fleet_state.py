"""worker_pool:allocation and worker_pool:assignments in the real Redis: merged across
pools, readable with redis-cli, gone when a pool stops or stops refreshing them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from redis.asyncio import Redis

from domain import DocumentSource
from pool.allocation import Allocation
from pool.fleet_state import FleetState
from pool.manager import assign_modes

pytestmark = pytest.mark.anyio


async def get_json(redis: Redis, key: str) -> Any:
    raw = await redis.get(key)
    assert raw is not None, key
    return json.loads(raw)


async def hget_json(redis: Redis, key: str, field: str) -> Any:
    raw = await redis.hget(key, field)
    assert raw is not None, field
    return json.loads(raw)


INDEX, ACTE = DocumentSource.INDEX, DocumentSource.ACTE


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url("redis://127.0.0.1:6379/0", decode_responses=True)
    yield client
    await client.aclose()


async def test_allocation_is_one_json_for_the_fleet(redis: Redis, redis_prefix: str) -> None:
    a = FleetState(redis, redis_prefix, "pool-a", ttl_seconds=1.0)
    b = FleetState(redis, redis_prefix, "pool-b", ttl_seconds=30.0)
    await a.publish_allocation({"server": "s1", "index": 6, "acte": 2, "reason": "r"})
    await b.publish_allocation({"server": "s2", "index": 1, "acte": 3, "reason": "q"})
    doc = await get_json(redis, f"{redis_prefix}worker_pool:allocation")
    assert set(doc["pools"]) == {"pool-a", "pool-b"}
    assert (doc["index"], doc["acte"], doc["workers"]) == (7, 5, 12)
    assert doc["pools"]["pool-a"]["server"] == "s1"
    # pool-a stops refreshing: its entry expires and the totals follow.
    await anyio.sleep(1.2)
    await b.publish_allocation({"server": "s2", "index": 2, "acte": 2, "reason": "q"})
    doc = await get_json(redis, f"{redis_prefix}worker_pool:allocation")
    assert set(doc["pools"]) == {"pool-b"}
    assert (doc["index"], doc["acte"]) == (2, 2)
    # A clean stop removes the entry at once; the last one removes the key.
    await b.withdraw_allocation()
    assert await redis.get(f"{redis_prefix}worker_pool:allocation") is None


async def test_assignments_hash_is_reaped(redis: Redis, redis_prefix: str) -> None:
    key = f"{redis_prefix}worker_pool:assignments"
    dying = FleetState(redis, redis_prefix, "pool-a", ttl_seconds=1.0)
    alive = FleetState(redis, redis_prefix, "pool-b", ttl_seconds=30.0)
    await dying.publish_assignments({"a-w00": {"mode": "index", "job": "42", "since": 1.0}})
    await alive.publish_assignments({"b-w00": {"mode": "acte", "job": None, "since": None}})
    assert (await hget_json(redis, key, "a-w00"))["job"] == "42"
    assert await redis.hlen(key) == 2
    await anyio.sleep(1.2)
    await alive.publish_assignments({"b-w00": {"mode": "index", "job": "7", "since": 2.0}})
    assert await redis.hkeys(key) == ["b-w00"]  # the dead pool's worker was reaped
    await alive.publish_assignments({"b-w00": None})
    assert await redis.exists(key) == 0


async def test_redis_down_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    down = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    state = FleetState(down, "x:", "pool-a", ttl_seconds=5)
    await state.publish_allocation({"index": 1, "acte": 1})
    await state.publish_assignments({"w": None})
    await down.aclose()
    assert sum("could not publish" in r.message for r in caplog.records) == 1


class FakeWorker:
    """Only what assign_modes reads: name, mode, the job in hand."""

    def __init__(self, name: str, mode: DocumentSource, busy: bool) -> None:
        self.name, self.mode, self.current = name, mode, (object() if busy else None)


def test_assign_modes_moves_as_few_workers_as_possible_idle_first() -> None:
    workers = [
        FakeWorker("w0", INDEX, busy=True),
        FakeWorker("w1", INDEX, busy=False),
        FakeWorker("w2", INDEX, busy=True),
        FakeWorker("w3", ACTE, busy=True),
    ]
    changes = assign_modes(workers, Allocation(index=1, acte=3))  # type: ignore[arg-type]
    assert [(w.name, mode) for w, mode in changes] == [("w1", ACTE), ("w0", ACTE)]
    assert assign_modes(workers, Allocation(index=3, acte=1)) == []  # type: ignore[arg-type]
    back = assign_modes(workers, Allocation(index=4, acte=0))  # type: ignore[arg-type]
    assert [(w.name, mode) for w, mode in back] == [("w3", INDEX)]
