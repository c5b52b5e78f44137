"""The day's Gemini count survives Redis (pool/day_usage.py), shown end to end: the real
Gemini client against the simulator, through the real limiter, on a private redis-server
that is SIGKILLed mid-day and started again empty, with the counts kept in real Postgres
(and a Supabase environment over the PostgREST stand-in). What is compared is the
simulator's own count of the calls that reached it, not the limiter's view."""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.abc
import asyncpg
import pytest
from redis.asyncio import Redis

from gemini_simulator import SimulatorConfig, run_simulator
from gemini_simulator.server import Simulator
from pool.day_usage import DayUsage, quota_date
from pool.manager import PoolManager
from pool.wiring.runtime import open_runtime
from ratelimit import GeminiLimiter, LimiterConfig, Quota
from store import QueueStore
from store.postgres import PostgresStore
from store.sql import load_queries
from store.supabase import SupabaseStore
from tests.integration.test_workers_e2e import settings_for
from tests.support.databases import temporary_database_async
from tests.support.postgrest import serve_postgrest
from tests.support.redis_server import RedisServer, free_port
from workers.gemini import GeminiClient, GeminiRequest, RetryPolicy, Text

pytestmark = pytest.mark.anyio
D = load_queries(Path(__file__).parents[1] / "support" / "day_usage.sql")
KEY = "day-usage-test-key"
WINDOW = 2.0
"""The limiter's window, hence its fence after Redis comes back empty."""


def calls_made(sim: Simulator) -> int:
    """The independent count: generateContent requests that reached the simulator."""
    return sum(1 for r in sim.records() if r.endpoint == "generateContent")


@dataclass
class Fleet:
    """One pool's worth of Gemini calling: a limiter on the private Redis, the real
    client to the simulator, and the day count kept in `stores`."""

    redis: Redis
    limiter: GeminiLimiter
    client: GeminiClient
    usage: DayUsage
    model: str

    async def count(self) -> int:
        _, today, counts = await self.limiter.day_counts()
        day, count = counts.get(self.model, (today, 0))
        return count if day == today else 0

    async def call(self) -> None:
        request = GeminiRequest(model=self.model, parts=(Text("Bonjour."),), what="test call")
        await self.client.generate(request)

    async def call_for(self, seconds: float) -> None:
        """Call one after the other for `seconds`; a call is never cut off once granted
        (only a wait for a grant is given up, 1 s after the time is over)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with anyio.move_on_after(deadline - time.monotonic() + 1.0) as waited:
                await self.call()
            if waited.cancelled_caught:
                return


@asynccontextmanager
async def fleet(
    redis_url: str,
    sim: Simulator,
    stores: list[QueueStore],
    rpd: int,
    flush_seconds: float,
    model: str,
    store_timeout: float = 10.0,
) -> AsyncIterator[Fleet]:
    redis = Redis.from_url(redis_url, socket_timeout=1, socket_connect_timeout=1)
    config = LimiterConfig(Quota(10_000, 10_000_000, rpd), window_seconds=WINDOW)
    limiter = GeminiLimiter(redis, config)
    client = GeminiClient(
        limiter,
        api_key="k",
        base_url=sim.url,
        timeout_seconds=5,
        retry=RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05),
    )
    usage = DayUsage(
        limiter,
        stores,
        flush_seconds=flush_seconds,
        watch_seconds=0.05,
        store_timeout_seconds=store_timeout,
    )
    try:
        yield Fleet(redis, limiter, client, usage, model)
    finally:
        await client.aclose()
        await redis.aclose()


async def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        await anyio.sleep(0.01)


async def settle(read: Callable[[], int], quiet: float) -> int:
    """`read()` once it has not changed for `quiet` seconds."""
    value, since = read(), time.monotonic()
    while time.monotonic() - since < quiet:
        await anyio.sleep(0.02)
        now = read()
        if now != value:
            value, since = now, time.monotonic()
    return value


async def stored(url: str, model: str, day: dt.date) -> int:
    conn = await asyncpg.connect(url)
    try:
        found = await conn.fetchrow(D["day_usage_row"], model, day)
        return 0 if found is None else int(found["requests"])
    finally:
        await conn.close()


async def set_stored(url: str, model: str, day: dt.date, requests: int) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(D["day_usage_set"], model, day, requests)
    finally:
        await conn.close()


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    config = SimulatorConfig(port=0, latency_ms=60, latency_sigma=0, rpm=100_000)
    async with run_simulator(config) as simulator:
        yield simulator


@pytest.fixture
def model() -> str:
    """A model of this test only (the module's database keeps every test's counts)."""
    return f"sim-model-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def postgres(database: str) -> AsyncIterator[PostgresStore]:
    store = await PostgresStore.connect("prod", database)
    yield store
    await store.close()


# --- the "must show" -----------------------------------------------------------
async def test_redis_restarted_mid_day_keeps_the_count_and_the_daily_limit_holds(
    private_redis: RedisServer,
    sim: Simulator,
    model: str,
    postgres: PostgresStore,
    database: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Calls go on from 3 workers; Redis is SIGKILLed mid-day (some calls made since the
    count was last saved) and started again empty. The count put back equals the calls
    the simulator received; with GEMINI_RPD_LIMIT = those calls + k, exactly k more
    calls reach it that day."""
    limit = 80
    caplog.set_level(logging.INFO, logger="pool")
    async with fleet(
        private_redis.url, sim, [postgres], rpd=limit, flush_seconds=1.0, model=model
    ) as f:
        today_number = (await f.limiter.day_counts())[1]
        today = quota_date(today_number)
        await f.usage.start()
        async with anyio.create_task_group() as tg:
            tg.start_soon(f.usage.run)
            for _ in range(3):
                tg.start_soon(f.call_for, 60.0)
            # Mid-day: the count was saved a while ago, calls go on since.
            await wait_for(
                lambda: f.usage.durable.get(today_number, {}).get(model, 0) >= 20, 20, "a save"
            )
            await anyio.sleep(0.3)
            private_redis.kill()
            killed_at = calls_made(sim)
            saved = await stored(database, model, today)
            await anyio.sleep(0.3)
            private_redis.start()  # empty: no persistence
            await wait_for(lambda: f.usage.losses == 1, 5, "the loss is seen")
            # The limiter grants nothing for a window after an empty Redis (its fence):
            # every call from now until the fence ends was granted before the kill.
            made_before = await settle(lambda: calls_made(sim), quiet=0.3)
            restored = await f.count()
            assert restored == made_before, (restored, made_before)
            # Then the calls go on, until the daily limit.
            await wait_for(lambda: calls_made(sim) >= limit, 30, "calls up to the limit")
            final = await settle(lambda: calls_made(sim), quiet=1.5)
            count_after = await f.count()
            await f.usage.flush()
            tg.cancel_scope.cancel()
    saved_after = await stored(database, model, today)
    k = limit - made_before
    print(
        f"\nmust-show (Redis SIGKILLed mid-day, GEMINI_RPD_LIMIT={limit}): "
        f"calls at the simulator when killed {killed_at}, count saved in Postgres then {saved}; "
        f"after the restart: count put back {restored}, calls made {made_before}; "
        f"limit = {made_before} + k with k = {k}: calls granted after the restart "
        f"{final - made_before}, calls at the simulator that day {final}, "
        f"limiter's count {count_after}, Postgres {saved_after}"
    )
    assert saved < made_before  # the last calls were never saved: memory put them back
    assert final == limit  # exactly k more, none beyond the limit
    assert count_after == limit
    assert saved_after == limit
    losses = [r.getMessage() for r in caplog.records if "lost its state" in r.getMessage()]
    assert len(losses) == 1, losses
    assert f"{model} {made_before}" in losses[0]


async def test_with_two_pools_the_count_put_back_is_the_fleets(
    private_redis: RedisServer, sim: Simulator, model: str, postgres: PostgresStore
) -> None:
    """Two pools call together, then one goes on alone and Redis dies: the other pool's
    calls are in every reading, the last caller's own calls since are in its memory; the
    greatest of the pools' counts is the fleet's. (Only another pool's calls in the last
    watch interval, ¼ s, before Redis dies could be missing.)"""
    async with AsyncExitStack() as stack:
        a, b = [
            await stack.enter_async_context(
                fleet(private_redis.url, sim, [postgres], rpd=1000, flush_seconds=60, model=model)
            )
            for _ in range(2)
        ]
        for pool in (a, b):
            await pool.usage.start()
        tg = await stack.enter_async_context(anyio.create_task_group())
        stack.callback(tg.cancel_scope.cancel)
        tg.start_soon(a.usage.run)
        tg.start_soon(b.usage.run)
        async with anyio.create_task_group() as callers:
            callers.start_soon(a.call_for, 0.6)
            callers.start_soon(b.call_for, 0.6)
        await anyio.sleep(0.6)  # b's last calls are read by both pools (2+ watch intervals)
        await a.call_for(0.3)  # a alone, up to the moment Redis dies
        private_redis.kill()
        made = calls_made(sim)
        private_redis.start()
        await wait_for(lambda: a.usage.losses == b.usage.losses == 1, 5, "both see the loss")
        assert await a.count() == made
        assert made > 10


async def test_a_pool_restarted_with_redis_puts_back_what_the_database_holds(
    private_redis: RedisServer,
    sim: Simulator,
    model: str,
    postgres: PostgresStore,
    database: str,
) -> None:
    """No process remembers (the pool stopped, Redis restarted empty): the count comes
    back from the database at start-up, before any call, and the limit holds."""
    limit = 20
    async with fleet(
        private_redis.url, sim, [postgres], rpd=limit, flush_seconds=60, model=model
    ) as first:
        await first.usage.start()
        today = quota_date((await first.limiter.day_counts())[1])
        async with anyio.create_task_group() as tg:
            tg.start_soon(first.usage.run)
            async with anyio.create_task_group() as callers:
                for _ in range(2):
                    callers.start_soon(first.call_for, 0.4)
            tg.cancel_scope.cancel()
        await first.usage.stop()  # what a pool does when it stops
    made = calls_made(sim)
    assert await stored(database, model, today) == made  # saved by the last flush
    private_redis.kill()
    private_redis.start()
    async with fleet(
        private_redis.url, sim, [postgres], rpd=limit, flush_seconds=60, model=model
    ) as second:
        assert await second.count() == 0  # Redis forgot
        await second.usage.start()
        restored = await second.count()
        await second.call_for(4.0)
    more = calls_made(sim) - made
    print(
        f"\npool and Redis restarted: calls made {made}, put back from Postgres {restored}, "
        f"then {more} more (limit {limit})"
    )
    assert 0 < made < limit
    assert restored == made
    assert more == limit - made


async def test_every_environment_is_kept_and_the_greatest_count_wins(
    private_redis: RedisServer,
    sim: Simulator,
    model: str,
    postgres: PostgresStore,
    database: str,
) -> None:
    """The quota belongs to the API key: each environment's database gets the counts,
    and the greatest any of them holds is what Redis must not be below."""
    async with AsyncExitStack() as stack:
        other_url = await stack.enter_async_context(temporary_database_async())
        base_url, _ = await stack.enter_async_context(serve_postgrest(other_url, KEY))
        staging = await SupabaseStore.connect("staging", base_url, KEY)
        stack.push_async_callback(staging.close)
        f = await stack.enter_async_context(
            fleet(
                private_redis.url, sim, [postgres, staging], rpd=1000, flush_seconds=60, model=model
            )
        )
        for _ in range(5):
            await f.call()
        today = quota_date((await f.limiter.day_counts())[1])
        await set_stored(database, model, today, 12)
        await set_stored(other_url, model, today, 40)  # say, saved before prod was migrated
        await set_stored(other_url, model, today - dt.timedelta(days=1), 900)  # yesterday
        await f.usage.start()
        assert await f.count() == 40  # never yesterday's 900
        await f.usage.flush()  # the next round: every database has the greatest
        assert await stored(database, model, today) == 40
        assert await stored(other_url, model, today) == 40
        assert await stored(other_url, model, today - dt.timedelta(days=1)) == 900


async def test_a_database_outage_stops_neither_the_grants_nor_the_count(
    private_redis: RedisServer,
    sim: Simulator,
    model: str,
    postgres: PostgresStore,
    database: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One environment's database is unreachable, then Redis restarts too: calls go on,
    one line says so (and one when it answers again), the count is put back from memory."""
    caplog.set_level(logging.INFO, logger="pool")
    port = free_port()
    async with AsyncExitStack() as stack:
        other_url = await stack.enter_async_context(temporary_database_async())
        down = await SupabaseStore.connect("staging", f"http://127.0.0.1:{port}", KEY)
        stack.push_async_callback(down.close)
        f = await stack.enter_async_context(
            fleet(
                private_redis.url, sim, [down, postgres], rpd=1000, flush_seconds=0.1, model=model
            )
        )
        await f.usage.start()
        today = quota_date((await f.limiter.day_counts())[1])
        async with anyio.create_task_group() as tg:
            tg.start_soon(f.usage.run)
            await f.call_for(0.8)
            assert f.usage.failing == {"staging"}
            private_redis.kill()
            private_redis.start()
            await wait_for(lambda: f.usage.losses == 1, 5, "the loss is seen")
            made = calls_made(sim)
            assert await f.count() == made
            async with serve_postgrest(other_url, KEY, port=port):
                await wait_for(lambda: not f.usage.failing, 5, "staging answers again")
                assert await stored(other_url, model, today) == made
            tg.cancel_scope.cancel()
    assert made > 5
    assert await stored(database, model, today) == made
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if "not saved in staging" in m]) == 1, messages
    assert len([m for m in messages if "saved in staging again" in m]) == 1, messages


async def test_a_database_that_never_answers_never_delays_the_watch(
    private_redis: RedisServer,
    sim: Simulator,
    model: str,
    postgres: PostgresStore,
    database: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A database that takes connections and never answers holds its own merge for at
    most the store timeout, never the watch: Redis restarting meanwhile is seen, and the
    count put back, within the limiter's fence."""
    caplog.set_level(logging.INFO, logger="pool")

    async def hold(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await anyio.sleep_forever()

    async with AsyncExitStack() as stack:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
        stack.push_async_callback(listener.aclose)
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        tg = await stack.enter_async_context(anyio.create_task_group())
        tg.start_soon(listener.serve, hold)
        hung = await SupabaseStore.connect("staging", f"http://127.0.0.1:{port}", KEY)
        stack.push_async_callback(hung.close)
        f = await stack.enter_async_context(
            fleet(
                private_redis.url,
                sim,
                [hung, postgres],
                rpd=1000,
                flush_seconds=0.1,
                model=model,
                store_timeout=1.5,
            )
        )
        stack.callback(tg.cancel_scope.cancel)  # first thing on the way out
        tg.start_soon(f.usage.run)
        await f.call_for(0.5)
        private_redis.kill()
        private_redis.start()
        restarted = time.monotonic()
        await wait_for(lambda: f.usage.losses == 1, 5, "the loss is seen")
        seen_after = time.monotonic() - restarted
        made = calls_made(sim)
        assert await f.count() == made
        await wait_for(lambda: "staging" in f.usage.failing, 5, "the hung database is given up")
        await anyio.sleep(0.5)
    assert seen_after < WINDOW / 2  # well within the fence
    assert made > 3
    messages = [r.getMessage() for r in caplog.records if "not saved in staging" in r.getMessage()]
    assert len(messages) == 1, messages
    assert "no answer within 1.5 s" in messages[0]


# --- the pool manager --------------------------------------------------------------------
async def test_the_pool_puts_the_count_back_before_its_first_claim_and_saves_it_when_it_stops(
    private_redis: RedisServer, sim: Simulator, database: str, redis_prefix: str
) -> None:
    settings = settings_for(
        database,
        redis_prefix,
        sim.url,
        redis_url=private_redis.url,
        gemini_rpd_limit=500,
        gemini_rpd_flush_seconds=0.2,
        ocr_worker_pool_size=2,
        ocr_rebalance_interval_ms=500,
    )
    model = settings.gemini_model_index
    async with open_runtime(settings) as runtime:
        limiter = runtime.limiter
        _, today_number, _ = await limiter.day_counts()
        today = quota_date(today_number)
        await set_stored(database, model, today, 33)
        manager = PoolManager(runtime)
        await manager.warm_up()
        assert (await limiter.day_counts())[2][model] == (today_number, 33)
        # Redis counts more than the database (grants since): saved when the pool stops.
        await limiter.raise_day_count(model, today_number, 47)
        manager = PoolManager(runtime, until_empty=True)
        with anyio.fail_after(30):
            await manager.run()
    assert await stored(database, model, today) == 47
