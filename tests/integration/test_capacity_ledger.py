"""The ledger against a real Redis: admission, leases, expiry, renewal, fencing,
published limits, the keys `redis-cli` shows, and the Lua rule matching the pure one."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import pytest
import redis as sync_redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from capacity import (
    CapacityError,
    CapacityLedger,
    CapacityRefused,
    Limits,
    PressureGuard,
    Resources,
    decide,
    read_fleet,
    run_maintenance,
    server_ids,
)
from capacity.errors import redact
from capacity.probe import CpuSample
from capacity.scripts import NAMES, script_sha, script_text
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.anyio
R = Resources


@pytest.fixture
async def redis(redis_url: str, redis_prefix: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=True)
    yield client
    keys = [key async for key in client.scan_iter(match=f"{redis_prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def ledger_of(redis: Redis, prefix: str, **options: object) -> CapacityLedger:
    options.setdefault("limits", Limits(4, 2, 0, 0))  # 4 vCPU / 2 GB available
    return CapacityLedger(redis, "srv", prefix=prefix, **options)  # type: ignore[arg-type]


# --- admission and the keys -------------------------------------------------------------
async def test_allocated_keys_are_plain_numbers_and_workers_hold_json(
    redis: Redis, redis_prefix: str
) -> None:
    ledger = ledger_of(redis, redis_prefix)
    index = await ledger.acquire("ocr-worker-1", "index")
    acte = await ledger.acquire("ocr-worker-2", "acte")
    assert index.admitted
    assert acte.admitted
    assert acte.allocated == R(2500, 1250)
    assert acte.available == R(4000, 2000)
    assert await redis.get(f"{redis_prefix}server:srv:cpu:allocated") == "2.5"
    assert await redis.get(f"{redis_prefix}server:srv:ram:allocated") == "1.25"
    held = json.loads(str(await redis.hget(f"{redis_prefix}server:srv:workers", "ocr-worker-1")))
    assert held["kind"] == "index"
    assert (held["cpu"], held["ram"], held["cpu_m"], held["ram_m"]) == (1.5, 0.75, 1500, 750)
    assert held["expires_ms"] - held["since_ms"] == ledger.lease_ms
    # In use: they expire with the latest live lease (renewals push that back).
    assert 0 < await redis.pttl(ledger.keys.cpu_allocated) <= ledger.lease_ms

    assert await ledger.release("ocr-worker-1", index.token)
    assert await ledger.release("ocr-worker-2", acte.token)
    assert await redis.get(ledger.keys.cpu_allocated) == "0"
    assert await redis.get(ledger.keys.ram_allocated) == "0"
    assert not await redis.exists(ledger.keys.workers)
    # An idle server's totals are kept for a day, then disappear with the server.
    assert 86_000_000 < await redis.pttl(ledger.keys.cpu_allocated) <= 86_400_000


async def test_refusals_name_the_short_dimension_and_change_nothing(
    redis: Redis, redis_prefix: str
) -> None:
    ledger = ledger_of(redis, redis_prefix)
    assert (await ledger.acquire("a", "registre")).admitted  # 3 / 1 of 4 / 2
    before = await ledger.reap()
    assert (await ledger.acquire("b", "index")).reason == "cpu"
    assert (await ledger.acquire("c", "custom", R(500, 1500))).reason == "ram"
    assert (await ledger.acquire("d", "custom", R(2000, 2000))).reason == "cpu+ram"
    refused = await ledger.acquire("e", "index")
    assert not refused.admitted
    assert refused.expires_ms == 0
    assert "cpu: allocated 3 vCPU / 1 GB, available 4 vCPU / 2 GB" in refused.describe()
    after = await ledger.reap()
    assert after.allocated == before.allocated == R(3000, 1000)
    assert [lease.holder for lease in after.leases] == ["a"]


async def test_admits_up_to_exactly_available_and_not_one_milli_more(
    redis: Redis, redis_prefix: str
) -> None:
    ledger = ledger_of(redis, redis_prefix, limits=Limits(8, 16, 20, 20))  # 6.4 / 12.8
    assert (await ledger.acquire("a", "x", R(5400, 100))).admitted
    assert (await ledger.acquire("b", "x", R(1001, 0))).reason == "cpu"
    exact = await ledger.acquire("b", "x", R(1000, 0))
    assert exact.admitted
    assert exact.allocated == R(6400, 100)
    assert (await ledger.acquire("c", "x", R(1, 0))).reason == "cpu"
    assert await redis.get(ledger.keys.cpu_allocated) == "6.4"


async def test_resize_with_the_same_token_and_fencing_of_other_tokens(
    redis: Redis, redis_prefix: str
) -> None:
    ledger = ledger_of(redis, redis_prefix)
    lease = await ledger.lease("w", "index")
    assert (await ledger.acquire("other", "index")).admitted  # 3 of 4 vCPU now
    grow = await lease.resize("registre")  # needs 3 - 1.5 + 3 = 4.5 > 4
    assert grow.reason == "cpu"
    assert (lease.kind, lease.held) == ("index", R(1500, 750))  # unchanged on refusal
    shrink = await lease.resize("acte")
    assert shrink.admitted
    assert shrink.allocated == R(2500, 1250)
    state = await ledger.reap()
    assert {x.holder: x.kind for x in state.leases} == {"w": "acte", "other": "index"}
    # Another process using the same holder id cannot take, renew or release it.
    assert (await ledger.acquire("w", "acte", token="not-the-token")).reason == "taken"
    assert await ledger.renew("w", "not-the-token") is None
    assert not await ledger.release("w", "not-the-token")
    assert await lease.release()
    assert not await lease.release()  # idempotent
    assert (await ledger.reap()).allocated == R(1500, 750)


async def test_wait_for_room_and_give_up_when_it_can_never_come(
    redis: Redis, redis_prefix: str
) -> None:
    ledger = ledger_of(redis, redis_prefix)
    first = await ledger.lease("first", "registre")
    with pytest.raises(CapacityRefused, match="cpu"):
        await ledger.lease("second", "index", wait=True, poll=0.05, max_wait=0.3)
    with pytest.raises(CapacityRefused, match="can never fit"):
        await ledger.lease("huge", "x", R(4001, 0), wait=True)

    async def release_soon() -> None:
        await anyio.sleep(0.3)
        await first.release()

    async with anyio.create_task_group() as tg:
        tg.start_soon(release_soon)
        with anyio.fail_after(10):
            second = await ledger.lease("second", "registre", wait=True, poll=0.05)
    assert second.held == R(3000, 1000)


# --- expiry, renewal, heartbeats -----------------------------------------------------------
async def test_expired_leases_are_reaped_by_the_next_operation(
    redis: Redis, redis_prefix: str
) -> None:
    ledger = ledger_of(redis, redis_prefix, lease_seconds=0.4)
    dead = await ledger.acquire("dead", "registre")
    assert dead.admitted
    assert (await ledger.acquire("blocked", "index")).reason == "cpu"
    await anyio.sleep(0.8)  # no renewal: the lease expires (Redis time)
    # Nobody cleaned up, yet the next acquire sees the room (it reaps first).
    fresh = await ledger.acquire("fresh", "index")
    assert fresh.admitted
    assert fresh.allocated == R(1500, 750)
    assert await redis.hkeys(ledger.keys.workers) == ["fresh"]
    assert await ledger.renew("dead", dead.token) is None  # gone for good
    await anyio.sleep(0.8)
    state = await ledger.reap()
    assert state.reaped == ("fresh",)
    assert state.allocated == R(0, 0)
    assert await redis.get(ledger.keys.cpu_allocated) == "0"


async def test_renewal_extends_the_lease_from_redis_time(redis: Redis, redis_prefix: str) -> None:
    ledger = ledger_of(redis, redis_prefix, lease_seconds=0.6)
    lease = await ledger.lease("w", "acte")
    first_expiry = lease.expires_ms
    for _ in range(4):  # 1.2 s in all: twice the lease
        await anyio.sleep(0.3)
        assert await lease.renew()
    assert lease.expires_ms >= first_expiry + 1000
    assert [x.holder for x in (await ledger.reap()).leases] == ["w"]


async def test_hold_heartbeats_past_the_ttl_and_releases_at_the_end(
    redis: Redis, redis_prefix: str
) -> None:
    ledger = ledger_of(redis, redis_prefix, lease_seconds=1.0)
    async with ledger.hold("w", "registre") as lease:
        await anyio.sleep(2.5)  # 2.5 leases: only the background renewals keep it
        assert not lease.lost.is_set()
        assert (await ledger.reap()).allocated == R(3000, 1000)
    assert lease.released
    assert (await ledger.reap()).allocated == R(0, 0)

    with pytest.raises(RuntimeError, match="boom"):
        async with ledger.hold("w", "registre"):
            raise RuntimeError("boom")
    assert not await redis.exists(ledger.keys.workers)  # released on error too

    with anyio.move_on_after(0.2):
        async with ledger.hold("w", "registre"):
            await anyio.sleep(10)
    assert not await redis.exists(ledger.keys.workers)  # and on cancellation


async def test_a_lease_dropped_by_the_ledger_is_reported_lost(
    redis: Redis, redis_prefix: str
) -> None:
    ledger = ledger_of(redis, redis_prefix, lease_seconds=0.6)
    lease = await ledger.lease("w", "acte")
    await redis.hdel(ledger.keys.workers, "w")  # as if it had expired and been reaped
    with anyio.fail_after(5):
        await lease.keep_alive()  # returns once lost
    assert lease.lost.is_set()


async def test_keep_alive_gives_up_after_a_lease_period_without_redis(
    private_redis: RedisServer,
) -> None:
    client = Redis.from_url(private_redis.url, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        ledger = CapacityLedger(client, "srv", limits=Limits(4, 2, 0, 0), lease_seconds=0.9)
        lease = await ledger.lease("w", "acte")
        private_redis.kill()
        with anyio.fail_after(10):
            await lease.keep_alive(interval=0.2)
        assert lease.lost.is_set()
        with pytest.raises(CapacityError) as info:
            await ledger.reap()
        assert "\n" not in str(info.value)
    finally:
        await client.aclose()


async def test_a_restarted_redis_loses_leases_and_scripts_but_the_ledger_carries_on(
    private_redis: RedisServer,
) -> None:
    client = Redis.from_url(private_redis.url)
    try:
        ledger = CapacityLedger(client, "srv", limits=Limits(4, 2, 0, 0), lease_seconds=5)
        lease = await ledger.lease("w", "registre")
        private_redis.restart()  # nothing persisted: leases and loaded scripts are gone
        assert not await lease.renew()  # NOSCRIPT handled; the lease is reported lost
        assert lease.lost.is_set()
        again = await ledger.lease("w", "registre")
        assert (await ledger.reap()).allocated == R(3000, 1000)
        assert await again.release()
    finally:
        await client.aclose()


# --- published limits, other programs, garbage --------------------------------------------
async def test_a_participant_without_limits_uses_the_published_ones(
    redis: Redis, redis_prefix: str
) -> None:
    other = CapacityLedger(redis, "srv", prefix=redis_prefix)  # e.g. the registre extractor
    refused = await other.acquire("registre-1", "registre")
    assert (refused.reason, refused.available) == ("no-capacity", None)
    with pytest.raises(CapacityRefused, match="no limits"):
        await other.lease("registre-1", "registre", wait=True)

    pool = ledger_of(redis, redis_prefix, limits=Limits(8, 16, 20, 20))
    await pool.publish()
    admitted = await other.acquire("registre-1", "registre")
    assert admitted.admitted
    assert admitted.available == R(6400, 12_800)
    assert (await other.acquire("registre-2", "registre")).admitted
    assert (await other.acquire("registre-3", "registre")).reason == "cpu"  # 9 > 6.4
    capacity = await redis.hgetall(pool.keys.capacity)
    assert capacity["cpu_available"] == "6.4"
    assert capacity["ram_reserve_percent"] == "20"
    assert capacity["costs"] == "registre=3:1,index=1.5:0.75,acte=1:0.5"
    assert 0 < await redis.pttl(pool.keys.capacity) <= 86_400_000


async def test_unreadable_entries_are_dropped_not_counted(redis: Redis, redis_prefix: str) -> None:
    ledger = ledger_of(redis, redis_prefix)
    assert (await ledger.acquire("good", "acte")).admitted
    await redis.hset(
        ledger.keys.workers,
        mapping={"junk": "not json", "partial": '{"cpu_m": 1000}', "num": "7"},
    )
    state = await ledger.reap()
    assert sorted(state.reaped) == ["junk", "num", "partial"]
    assert state.allocated == R(1000, 500)
    assert await redis.hkeys(ledger.keys.workers) == ["good"]


async def test_scripts_refuse_bad_arguments_with_a_one_line_error(
    redis: Redis, redis_prefix: str
) -> None:
    ledger = ledger_of(redis, redis_prefix)
    keys = list(ledger.keys.all)
    await redis.script_load(script_text("acquire"))
    cases: list[tuple[list[str | int | float], str]] = [
        (["h", "t", "k", -1, 0, 1000, "", ""], "cpu (milli-vCPU) must be a whole number"),
        (["h", "t", "k", 1.5, 0, 1000, "", ""], "cpu (milli-vCPU) must be a whole number"),
        (["h", "t", "k", 1, 0, 0, "", ""], "ttl (ms) must be a whole number"),
        (["", "t", "k", 1, 0, 1000, "", ""], "holder must not be empty"),
    ]
    for args, message in cases:
        with pytest.raises(ResponseError, match=re.escape(message)):
            await redis.evalsha(script_sha("acquire"), len(keys), *keys, *args)
    assert not await redis.exists(ledger.keys.workers)


class Busy:
    """A host whose CPU is 95% busy (memory at 50%)."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def cpu_sample(self) -> CpuSample:
        self.seconds += 100
        return CpuSample(0.95 * self.seconds, self.seconds)

    def memory_percent(self) -> float:
        return 50.0


async def test_pressure_refuses_before_redis_is_asked(redis: Redis, redis_prefix: str) -> None:
    guard = PressureGuard(20, 20, probe=Busy())
    ledger = ledger_of(redis, redis_prefix, guard=guard, guarantee_progress=False)
    refused = await ledger.acquire("w", "acte")
    assert (refused.admitted, refused.reason, refused.allocated) == (False, "pressure", None)
    assert "host cpu 95.0% (limit 80%)" in refused.describe()
    assert "cpu 95.0% > 80%" in refused.describe()  # what is pressing, and its threshold
    assert [key async for key in redis.scan_iter(match=f"{redis_prefix}*")] == []
    await ledger.publish()
    state = (await read_fleet(redis, redis_prefix))[0]
    assert state.pressure is True
    assert state.pressing == "cpu 95.0% > 80%"


async def test_pressure_never_stops_a_pools_only_lease(redis: Redis, redis_prefix: str) -> None:
    """The progress rule: under pressure a ledger (a pool) holding nothing gets one lease;
    every further one waits until the host is below its limit."""
    ledger = ledger_of(redis, redis_prefix, guard=PressureGuard(20, 20, probe=Busy()))
    first = await ledger.acquire("w1", "index")
    assert first.admitted
    assert "despite host pressure (cpu 95.0% > 80%)" in first.describe()
    second = await ledger.acquire("w2", "acte")
    assert (second.admitted, second.reason) == (False, "pressure")
    assert ledger.holding == 1
    # The only holder may change what it holds (a worker stealing a job of the other type).
    assert (await ledger.acquire("w1", "acte", token=first.token)).admitted
    assert await ledger.release("w1", first.token)
    assert ledger.holding == 0
    # Several asking at once while the pool holds nothing: exactly one gets through.
    asked = [f"r{n}" for n in range(6)]
    answers: dict[str, bool] = {}

    async def ask(holder: str) -> None:
        answers[holder] = (await ledger.acquire(holder, "acte")).admitted

    async with anyio.create_task_group() as tg:
        for holder in asked:
            tg.start_soon(ask, holder)
    assert sorted(answers.values()) == [False] * 5 + [True]
    assert await redis.hlen(ledger.keys.workers) == 1


async def test_a_lease_given_up_on_no_longer_counts_for_the_progress_rule(
    redis: Redis, redis_prefix: str
) -> None:
    ledger = ledger_of(redis, redis_prefix, guard=PressureGuard(20, 20, probe=Busy()))
    lease = await ledger.lease("w1", "acte")
    await redis.hdel(ledger.keys.workers, "w1")  # expired and reaped by someone
    assert not await lease.renew()
    assert ledger.holding == 0
    assert (await ledger.acquire("w2", "acte")).admitted


async def test_maintenance_reaps_and_publishes(redis: Redis, redis_prefix: str) -> None:
    ledger = ledger_of(redis, redis_prefix, lease_seconds=0.3)
    assert (await ledger.acquire("dead", "registre")).admitted
    async with anyio.create_task_group() as tg:
        tg.start_soon(run_maintenance, ledger, 0.1)
        await anyio.sleep(0.8)
        tg.cancel_scope.cancel()
    assert not await redis.exists(ledger.keys.workers)
    assert await redis.get(ledger.keys.cpu_allocated) == "0"
    assert await redis.hget(ledger.keys.capacity, "cpu_available_m") == "4000"


async def test_fleet_lists_every_server_under_the_prefix_only(
    redis: Redis, redis_prefix: str
) -> None:
    for server in ("b-host", "a-host"):
        ledger = CapacityLedger(redis, server, prefix=redis_prefix, limits=Limits(4, 2))
        assert (await ledger.acquire("w", "acte")).admitted
    stranger = CapacityLedger(redis, "a-host", prefix=f"{redis_prefix}x:", limits=Limits(4, 2))
    assert (await stranger.acquire("w", "acte")).admitted
    assert await server_ids(redis, redis_prefix) == ["a-host", "b-host"]
    states = await read_fleet(redis, redis_prefix)
    assert [(s.server_id, s.allocated, len(s.leases)) for s in states] == [
        ("a-host", R(1000, 500), 1),
        ("b-host", R(1000, 500), 1),
    ]
    assert all(s.allocated == s.leases_total() for s in states)


# --- the totals expire with the last live lease ----------------------------------------------
async def test_totals_expire_with_the_latest_live_lease_when_nobody_is_left(
    redis: Redis, redis_prefix: str
) -> None:
    """Holders that die without releasing: once their leases are over, a GET of the totals
    reads nothing, although no script ran since (nobody else is on this server)."""
    ledger = ledger_of(redis, redis_prefix, lease_seconds=0.6)
    short = await ledger.acquire("short", "acte")
    await anyio.sleep(0.2)
    late = await ledger.acquire("late", "index")
    assert await redis.get(ledger.keys.cpu_allocated) == "2.5"
    expire_at = await redis.pexpiretime(ledger.keys.cpu_allocated)
    assert expire_at == late.expires_ms > short.expires_ms  # the latest lease's expiry
    assert await redis.pexpiretime(ledger.keys.ram_allocated) == late.expires_ms
    await anyio.sleep(0.5)  # "short" is over, "late" still runs: nobody touched the ledger
    assert await redis.get(ledger.keys.cpu_allocated) == "2.5"  # lazy: the next script reaps
    await anyio.sleep(0.4)  # "late" is over too
    assert await redis.get(ledger.keys.cpu_allocated) is None
    assert await redis.get(ledger.keys.ram_allocated) is None
    # The next operation finds the stale entries and writes the truth.
    state = await ledger.reap()
    assert sorted(state.reaped) == ["late", "short"]
    assert await redis.get(ledger.keys.cpu_allocated) == "0"


async def test_renewal_and_release_move_the_totals_expiry(redis: Redis, redis_prefix: str) -> None:
    ledger = ledger_of(redis, redis_prefix, lease_seconds=5)
    a = await ledger.lease("a", "acte")
    await anyio.sleep(0.05)
    b = await ledger.lease("b", "acte")
    assert await redis.pexpiretime(ledger.keys.cpu_allocated) == b.expires_ms
    await anyio.sleep(0.05)
    assert await a.renew()
    assert await redis.pexpiretime(ledger.keys.cpu_allocated) == a.expires_ms > b.expires_ms
    assert await a.release()  # the latest lease is gone: the totals follow the one left
    assert await redis.pexpiretime(ledger.keys.cpu_allocated) == b.expires_ms
    assert await redis.get(ledger.keys.cpu_allocated) == "1"
    assert await b.release()
    assert await redis.get(ledger.keys.cpu_allocated) == "0"
    assert 86_000_000 < await redis.pttl(ledger.keys.cpu_allocated) <= 86_400_000


# --- the scripts ---------------------------------------------------------------------------
def test_every_script_is_the_prelude_then_its_own_file() -> None:
    """Reaping and the totals are written once, in the prelude (capacity/lua/ledger.lua);
    no operation's file repeats them."""
    lua = Path(__file__).parents[2] / "capacity" / "lua"
    prelude = (lua / "ledger.lua").read_text()
    for name in NAMES:
        body = (lua / f"{name}.lua").read_text()
        assert script_text(name) == f"{prelude}\n{body}"
        assert "cjson.decode" not in body, f"{name} reads leases itself: use reap()"
        assert "PEXPIREAT" not in body, f"{name} writes totals itself: use write_totals()"
    with pytest.raises(ValueError, match="no capacity script named 'ledger'"):
        script_text("ledger")


async def test_documented_shas_are_what_redis_computes(redis: Redis) -> None:
    for name in NAMES:
        assert await redis.script_load(script_text(name)) == script_sha(name)


def test_protocol_md_lists_the_current_shas() -> None:
    protocol = (Path(__file__).parents[2] / "capacity" / "PROTOCOL.md").read_text()
    for name in NAMES:
        assert f"| {name} | `{script_sha(name)}` |" in protocol, f"update {name}'s SHA"


def test_redact_hides_passwords_in_urls() -> None:
    message = redact("failed for redis://user:s3cret@host:6379/0 and\nrediss://:pw@h")
    assert "s3cret" not in message
    assert "pw@" not in message
    assert message == "failed for redis://user:***@host:6379/0 and rediss://:***@h"


# --- the Lua rule is the pure rule -----------------------------------------------------------
@pytest.fixture
def sync_client(redis_url: str) -> Iterator[sync_redis.Redis]:
    client = sync_redis.Redis.from_url(redis_url)
    yield client
    client.close()


milli = st.integers(0, 10_000)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    others=st.lists(st.tuples(milli, milli), max_size=4),
    held=st.tuples(milli, milli) | st.none(),
    request=st.tuples(milli, milli),
    available=st.tuples(st.integers(0, 40_000), st.integers(0, 40_000)),
)
def test_acquire_script_decides_as_the_pure_policy(
    sync_client: sync_redis.Redis,
    redis_prefix: str,
    others: list[tuple[int, int]],
    held: tuple[int, int] | None,
    request: tuple[int, int],
    available: tuple[int, int],
) -> None:
    """Other holders, maybe a lease of this holder, then a request against random limits:
    the script's answer and new totals are those of `decide`."""
    keys = [f"{redis_prefix}w", f"{redis_prefix}c", f"{redis_prefix}r", f"{redis_prefix}cap"]
    acquire = sync_client.register_script(script_text("acquire"))
    roomy = 10**9
    mine = R(*held) if held is not None else R(0, 0)
    allocated = mine
    try:
        for n, (cpu, ram) in enumerate(others):
            acquire(keys=keys, args=[f"o{n}", "t", "", cpu, ram, 60_000, roomy, roomy])
            allocated += R(cpu, ram)
        if held is not None:
            acquire(keys=keys, args=["me", "t", "", *held, 60_000, roomy, roomy])
        reply = acquire(keys=keys, args=["me", "t", "", *request, 60_000, *available])
        expected = decide(allocated, R(*request), R(*available), mine)
        assert reply[0].decode() == expected.reason
        if expected.admitted:
            total = R(
                allocated.cpu_m - mine.cpu_m + request[0],
                allocated.ram_m - mine.ram_m + request[1],
            )
        else:
            total = allocated
        assert (reply[1], reply[2]) == (total.cpu_m, total.ram_m)
    finally:
        sync_client.delete(*keys)
