"""The limiter against a real Redis: limits, slots stamped at the wire and held in flight,
early grants, queue order, reconcile and refund (carried on later calls), cooldowns, the
adaptive ceiling, the keys redis-cli shows, dead waiters, and Redis going away."""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import anyio
import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ratelimit.config import LimiterConfig, Quota
from ratelimit.keys import fleet_keys, model_keys
from ratelimit.limiter import (
    GeminiLimiter,
    RequestTooLarge,
    Reservation,
    acquire_settings,
    read_fleet_usage,
)
from ratelimit.quota_error import QuotaSignal
from ratelimit.scripts import NAMES, script_sha, script_text
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.anyio
MODEL = "gemini-2.5-flash"


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


def limiter_of(redis: Redis, prefix: str, rpm: int, tpm: int, **options: object) -> GeminiLimiter:
    options.setdefault("window_seconds", 1.0)
    options.setdefault("max_poll_seconds", 0.02)
    config = LimiterConfig(Quota(rpm, tpm, options.pop("rpd", None)), **options)  # type: ignore[arg-type]
    return GeminiLimiter(redis, config, prefix=prefix)


async def number(redis: Redis, key: str) -> int:
    value = await redis.get(key)
    assert value is not None, f"{key} is missing"
    return int(value)


async def acquire_within(limiter: GeminiLimiter, seconds: float, tokens: int = 1) -> bool:
    with anyio.move_on_after(seconds):
        await limiter.acquire(MODEL, tokens)
        return True
    return False


async def call(limiter: GeminiLimiter, tokens: int = 10, actual: int | None = None) -> Reservation:
    """One call as the client makes it: acquire, wire, answer at once, reconcile."""
    reservation = await limiter.acquire(MODEL, tokens, early=True)
    await limiter.wire(reservation)
    await limiter.reconcile(reservation, tokens if actual is None else actual)
    return reservation


async def redis_now_us(redis: Redis) -> int:
    seconds, micros = await redis.time()
    return int(seconds) * 1_000_000 + int(micros)


# --- the windows ---------------------------------------------------------------------------
async def test_requests_per_window_are_held_then_released_as_the_window_slides(
    redis: Redis, redis_prefix: str
) -> None:
    limiter = limiter_of(redis, redis_prefix, rpm=3, tpm=1_000_000)
    first = [await call(limiter) for _ in range(3)]
    assert all(r.waited < 0.5 for r in first)
    started = time.monotonic()
    fourth = await limiter.acquire(MODEL, 10)
    waited = time.monotonic() - started
    # the 4th may leave when the 1st leaves the window, not before and not much after
    assert await redis_now_us(redis) - first[0].granted_at_us >= 1_000_000
    assert fourth.not_before_us - first[0].granted_at_us >= 1_000_000
    assert 0.8 < waited < 1.3


async def test_tokens_per_window_hold_and_a_refund_gives_room_back(
    redis: Redis, redis_prefix: str
) -> None:
    limiter = limiter_of(redis, redis_prefix, rpm=100, tpm=1000)
    big = await limiter.acquire(MODEL, 700)
    assert not await acquire_within(limiter, 0.2, 400)  # 700 + 400 > 1000
    assert await limiter.refund(big)
    assert not await limiter.refund(big)  # once
    assert await acquire_within(limiter, 0.2, 400)
    await limiter.publish()
    assert await number(redis, f"{redis_prefix}gemini:tpm:current:{MODEL}") == 400


async def test_reconcile_replaces_the_estimate_by_the_api_count(
    redis: Redis, redis_prefix: str
) -> None:
    limiter = limiter_of(redis, redis_prefix, rpm=100, tpm=1000)
    reservation = await limiter.acquire(MODEL, 900)
    assert not await acquire_within(limiter, 0.1, 300)
    assert await limiter.reconcile(reservation, 600)
    assert await acquire_within(limiter, 0.2, 300)
    await limiter.publish()
    keys = model_keys(redis_prefix, MODEL)
    assert await number(redis, keys.tpm) == 900
    stats = await redis.hgetall(keys.stats)
    assert stats["estimated_tokens"] == "900"
    assert stats["actual_tokens"] == "600"
    assert limiter.metrics[MODEL].estimates.mean_abs_error_ratio == pytest.approx(0.5)


async def test_a_request_larger_than_the_window_is_refused_at_once(
    redis: Redis, redis_prefix: str
) -> None:
    limiter = limiter_of(redis, redis_prefix, rpm=10, tpm=1000)
    with pytest.raises(RequestTooLarge, match="never fit"):
        await limiter.acquire(MODEL, 1001)
    with pytest.raises(ValueError, match="negative"):
        await limiter.acquire(MODEL, -1)


async def test_requests_per_day_stop_until_the_daily_reset(redis: Redis, redis_prefix: str) -> None:
    limiter = limiter_of(redis, redis_prefix, rpm=100, tpm=10_000, rpd=2)
    await limiter.acquire(MODEL, 1)
    second = await limiter.acquire(MODEL, 1)
    assert not await acquire_within(limiter, 0.2)
    await limiter.publish()
    assert await number(redis, f"{redis_prefix}gemini:rpd:current:{MODEL}") == 2
    await limiter.refund(second)  # a call that never went out does not count for the day
    assert await acquire_within(limiter, 0.2)


async def test_models_have_separate_windows(redis: Redis, redis_prefix: str) -> None:
    limiter = limiter_of(redis, redis_prefix, rpm=1, tpm=100)
    await limiter.acquire(MODEL, 50)
    with anyio.fail_after(0.5):
        await limiter.acquire("gemini-2.5-pro", 50)
    await limiter.publish()
    assert await number(redis, f"{redis_prefix}gemini:rpm:current") == 2


# --- the queue ------------------------------------------------------------------------------
async def test_a_large_request_is_not_starved_by_a_stream_of_small_ones(
    redis: Redis, redis_prefix: str
) -> None:
    """Head-of-line: while a large request waits for room, later small ones may only use
    what it leaves free, so it goes as soon as the window has room for it. (Without the
    queue, small requests arriving every 10 ms would keep the window full forever.)"""
    limiter = limiter_of(redis, redis_prefix, rpm=1000, tpm=1000, window_seconds=0.6)
    first = await call(limiter, 600)
    small_grants: list[int] = []
    large: list[int] = []

    async def small_stream() -> None:
        await anyio.sleep(0.02)  # the large request asked first
        while not large:
            reservation = await call(limiter, 50)
            small_grants.append(reservation.not_before_us)
            await anyio.sleep(0.01)

    async def ask_large() -> None:
        large.append((await call(limiter, 900)).not_before_us)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(ask_large)
            for _ in range(4):
                tg.start_soon(small_stream)
    # it went when the 600 left the window (0.6 s after its answer), give or take polling;
    # small requests went before it only into the 100 tokens it did not need (2 x 50)
    assert 600_000 <= large[0] - first.granted_at_us < 700_000
    assert len([t for t in small_grants if t < large[0]]) <= 2


async def test_a_cancelled_waiter_leaves_the_queue(redis: Redis, redis_prefix: str) -> None:
    limiter = limiter_of(redis, redis_prefix, rpm=1000, tpm=1000, window_seconds=5.0)
    await limiter.acquire(MODEL, 600)
    assert not await acquire_within(limiter, 0.1, 900)  # cancelled while waiting
    keys = model_keys(redis_prefix, MODEL)
    assert await redis.zcard(keys.tickets) == 0
    assert await redis.zcard(keys.grants) == 1
    assert await acquire_within(limiter, 0.2, 300)  # nobody ahead any more


SETTINGS = {
    "rpm": 10, "tpm": 1000, "rpd": 0, "window_us": 60_000_000, "ticket_ttl_us": 300_000,
    "day_offset": -28_800, "worker_ttl_us": 1_000_000, "recovery": 0.15, "lead_us": 500_000,
    "flight_us": 300_000_000,
}  # fmt: skip


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("rpm", 0, "rpm limit must be 1 to"),
        ("window_us", 999, "window (us) must be 1000 to"),
        ("day_offset", 90_000, "day offset (s) must be -86400 to 86400"),
        ("flight_us", 10**13, "flight (us) must be 1000 to"),
        ("recovery", float("nan"), "recovery must be a number >= 0"),
    ],
)
def test_acquire_settings_are_checked_where_they_are_packed(
    name: str, value: float, says: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        acquire_settings(MODEL, "p:", **{**SETTINGS, name: value})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("settings", "attempt", "says"),
    [
        (b"10|1000|0|60000000", "t1|0|10||", "the settings argument is too short"),
        (b"x" * 81 + b"|p:", "t1|0|10||", "not ten packed numbers"),
        (None, "t 1|0|10||", "the attempt is ticket|arrival|tokens|epoch|worker"),
        (None, "t1|-5|10||", "the attempt is ticket|arrival|tokens|epoch|worker"),
        (None, "t1|0|10||", "a settlement is model|grant id|grant time"),
    ],
)
async def test_the_acquire_script_refuses_arguments_of_another_form(
    redis: Redis, redis_prefix: str, settings: bytes | None, attempt: str, says: str
) -> None:
    packed = acquire_settings(MODEL, redis_prefix, **SETTINGS)  # type: ignore[arg-type]
    carried = ["1", f"{MODEL}|g1|1|10|x|10|1|"] if "settlement" in says else ["0"]
    script = redis.register_script(script_text("acquire"))
    with pytest.raises(ResponseError, match=re.escape(says)):
        await script(keys=[], args=[settings or packed, attempt, *carried])


async def test_the_ticket_of_a_waiter_that_died_expires(redis: Redis, redis_prefix: str) -> None:
    limiter = limiter_of(
        redis, redis_prefix, rpm=1000, tpm=1000, window_seconds=5.0, ticket_ttl_seconds=0.3
    )
    await limiter.acquire(MODEL, 600)
    # A waiter's ticket, as a process that is then SIGKILLed would leave it.
    script = redis.register_script(script_text("acquire"))
    settings = limiter._model_settings(MODEL, 300_000_000)
    reply = await script(keys=[], args=[settings, "deadbeef|0|900||", 0])
    assert reply.startswith("0|")
    assert not await acquire_within(limiter, 0.1, 300)  # held behind the dead ticket
    assert await acquire_within(limiter, 0.6, 300)  # until it expires


# --- cooldown and ceiling ------------------------------------------------------------------
async def test_a_429_pauses_the_model_for_every_limiter_for_its_retry_delay(
    redis: Redis, redis_prefix: str
) -> None:
    pool_a = limiter_of(redis, redis_prefix, rpm=1000, tpm=1_000_000)
    pool_b = limiter_of(redis, redis_prefix, rpm=1000, tpm=1_000_000)
    reservation = await pool_a.acquire(MODEL, 10)
    cooldown = await pool_a.report_quota_error(
        MODEL, QuotaSignal(0.6, False, ("PerMinute",)), reservation=reservation
    )
    assert cooldown is not None
    assert 0.5 < cooldown.seconds <= 0.6
    started = time.monotonic()
    await pool_b.acquire(MODEL, 10)
    assert 0.5 < time.monotonic() - started < 0.9
    # the other model was never paused
    with anyio.fail_after(0.2):
        await pool_b.acquire("gemini-2.5-pro", 10)


async def test_a_shorter_429_never_shortens_a_running_cooldown(
    redis: Redis, redis_prefix: str
) -> None:
    limiter = limiter_of(redis, redis_prefix, rpm=1000, tpm=1_000_000)
    await limiter.report_quota_error(MODEL, QuotaSignal(5.0, False))
    second = await limiter.report_quota_error(MODEL, QuotaSignal(0.1, False))
    assert second is not None
    assert second.seconds > 4.5


async def test_a_per_day_429_pauses_until_the_daily_reset(redis: Redis, redis_prefix: str) -> None:
    limiter = limiter_of(redis, redis_prefix, rpm=1000, tpm=1_000_000)
    cooldown = await limiter.report_quota_error(MODEL, QuotaSignal(30.0, True))
    assert cooldown is not None
    pacific = ZoneInfo("America/Los_Angeles")
    now = datetime.now(pacific)
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), pacific)
    expected = (midnight - now).total_seconds()
    assert abs(cooldown.seconds - expected) < 2
    assert not cooldown.lowered  # the daily quota says nothing about sharing the minute
    usage = await limiter.publish()
    assert "per-day" in usage.models[0].cooldown_reason


async def test_the_ceiling_drops_once_per_round_of_our_429s_and_recovers(
    redis: Redis, redis_prefix: str
) -> None:
    limiter = limiter_of(redis, redis_prefix, rpm=10, tpm=1_000_000, recovery_per_window=0.5)
    sent = [await limiter.acquire(MODEL, 10) for _ in range(10)]  # the whole ceiling, in flight
    per_minute = QuotaSignal(0.0, False, ("GenerateRequestsPerMinutePerProjectPerModel",))
    first = await limiter.report_quota_error(MODEL, per_minute, reservation=sent[0])
    # the others were sent before the ceiling dropped: one round, one decrease
    again = await limiter.report_quota_error(MODEL, per_minute, reservation=sent[1])
    assert first is not None
    assert again is not None
    assert first.lowered
    assert first.share == pytest.approx(1.0)
    assert not again.lowered
    assert first.ceiling_factor == pytest.approx(0.7, abs=0.01)
    usage = (await limiter.publish()).models[0]
    assert usage.rpm_effective == 7
    assert usage.stats["ceiling_decreases"] == 1
    later = await limiter.acquire(MODEL, 10, early=True)  # waits for room under 7
    third = await limiter.report_quota_error(MODEL, per_minute, reservation=later)
    assert third is not None
    assert third.lowered
    assert third.ceiling_factor < first.ceiling_factor
    await anyio.sleep(1.1)  # +0.5 per window: 0.49 -> 1.0 in just over a window
    assert (await limiter.publish()).models[0].factor == 1.0


async def test_a_429_below_our_ceiling_is_someone_elses_it_pauses_but_does_not_lower(
    redis: Redis, redis_prefix: str
) -> None:
    limiter = limiter_of(redis, redis_prefix, rpm=10, tpm=1_000_000)
    sent = [await limiter.acquire(MODEL, 10) for _ in range(3)]
    requests = ("GenerateRequestsPerMinutePerProjectPerModel",)
    cooldown = await limiter.report_quota_error(
        MODEL, QuotaSignal(0.3, False, requests), reservation=sent[0]
    )
    assert cooldown is not None
    assert not cooldown.lowered
    assert cooldown.share == pytest.approx(0.3)
    assert cooldown.ceiling_factor == 1.0
    assert 0.2 < cooldown.seconds <= 0.3  # the fleet still pauses
    # at the ceiling by requests, but the quota that ran out is tokens: not ours either
    sent += [await limiter.acquire(MODEL, 10) for _ in range(7)]
    tokens = ("GenerateContentPaidTierInputTokensPerModelPerMinute",)
    by_tokens = await limiter.report_quota_error(
        MODEL, QuotaSignal(0.0, False, tokens), reservation=sent[-1]
    )
    assert by_tokens is not None
    assert not by_tokens.lowered
    ours = await limiter.report_quota_error(
        MODEL, QuotaSignal(0.0, False, requests), reservation=sent[-2]
    )
    assert ours is not None
    assert ours.lowered
    stats = (await limiter.publish()).models[0].stats
    assert stats["foreign_quota_errors"] == 2
    assert stats["ceiling_decreases"] == 1


async def test_a_lowered_ceiling_is_enforced(redis: Redis, redis_prefix: str) -> None:
    limiter = limiter_of(redis, redis_prefix, rpm=10, tpm=1_000_000, window_seconds=3.0)
    await limiter.report_quota_error(MODEL, QuotaSignal(0.0, False))  # 10 -> 7 requests
    for _ in range(7):
        assert await acquire_within(limiter, 0.2)
    assert not await acquire_within(limiter, 0.3)


# --- what redis-cli shows -------------------------------------------------------------------
async def test_the_inspection_keys_are_plain_numbers_and_match_the_python_names(
    redis: Redis, redis_prefix: str
) -> None:
    limiter = limiter_of(redis, redis_prefix, rpm=100, tpm=100_000, window_seconds=0.5)
    await limiter.acquire(MODEL, 1200, worker="srv-1:42:w1")
    await limiter.acquire("gemini-2.5-pro", 800, worker="srv-1:42:w2")
    fleet = fleet_keys(redis_prefix)
    assert await redis.get(fleet.rpm) is None  # grants publish nothing: the publisher does
    await limiter.publish()
    assert await redis.get(fleet.rpm) == "2"
    assert await redis.get(fleet.tpm) == "2000"
    flash = model_keys(redis_prefix, MODEL)
    assert (await redis.get(flash.rpm), await redis.get(flash.tpm)) == ("1", "1200")
    existing = {key async for key in redis.scan_iter(match=f"{redis_prefix}*")}
    for key in (flash.grants, flash.state, flash.rpd):
        assert key in existing, key
    assert {fleet.epoch, fleet.models, fleet.workers, fleet.worker_expiry} <= existing
    workers = await redis.hgetall(fleet.workers)
    assert set(workers) == {"srv-1:42:w1", "srv-1:42:w2"}
    assert '"state":"calling"' in workers["srv-1:42:w1"]
    await anyio.sleep(0.6)  # the window passes, but both grants are still in flight
    usage = await read_fleet_usage(redis, redis_prefix, limiter.config)
    assert (usage.rpm, usage.tpm) == (2, 2000)


async def test_the_numbers_fall_to_zero_once_settled_grants_leave_the_window(
    redis: Redis, redis_prefix: str
) -> None:
    limiter = limiter_of(redis, redis_prefix, rpm=100, tpm=100_000, window_seconds=0.5)
    reservation = await limiter.acquire(MODEL, 1200, worker="w1", early=True)
    await limiter.wire(reservation)
    await limiter.reconcile(reservation, 1000, worker="w1")
    usage = await limiter.publish()  # carries the settlement
    assert (usage.rpm, usage.tpm) == (1, 1000)
    assert '"state":"idle"' in (await redis.hget(fleet_keys(redis_prefix).workers, "w1") or "")
    await anyio.sleep(0.6)
    usage = await read_fleet_usage(redis, redis_prefix, limiter.config)
    assert (usage.rpm, usage.tpm) == (0, 0)
    assert await redis.get(fleet_keys(redis_prefix).rpm) == "0"
    assert await redis.get(model_keys(redis_prefix, MODEL).tpm) == "0"


async def test_stale_worker_fields_are_reaped(redis: Redis, redis_prefix: str) -> None:
    limiter = limiter_of(redis, redis_prefix, rpm=100, tpm=100_000, worker_ttl_seconds=0.2)
    await limiter.acquire(MODEL, 1, worker="gone")
    assert await redis.hlen(fleet_keys(redis_prefix).workers) == 1
    await anyio.sleep(0.3)
    usage = await limiter.publish()
    assert usage.workers == 0
    assert await redis.hlen(fleet_keys(redis_prefix).workers) == 0


def test_scripts_are_the_prelude_and_one_file_per_operation() -> None:
    for name in NAMES:
        text = script_text(name)
        assert text.startswith("-- Gemini limiter: shared prelude")
        assert len(script_sha(name)) == 40
    assert len({script_sha(name) for name in NAMES}) == len(NAMES)
    with pytest.raises(ValueError, match="no limiter script"):
        script_text("window")


# --- Redis going away ----------------------------------------------------------------------
async def test_redis_down_grants_nothing_logs_once_and_resumes_after_a_fence(
    private_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = Redis.from_url(private_redis.url, socket_timeout=1, socket_connect_timeout=1)
    config = LimiterConfig(Quota(1000, 1_000_000), window_seconds=1.0, max_poll_seconds=0.02)
    limiter = GeminiLimiter(client, config)
    pool_b = GeminiLimiter(client, config)
    await limiter.acquire(MODEL, 10)  # this limiter now knows the epoch
    private_redis.kill()
    caplog.set_level(logging.WARNING, logger="ratelimit")
    grants: list[float] = []

    async def keep_asking(which: GeminiLimiter) -> None:
        await which.acquire(MODEL, 10)
        grants.append(time.monotonic())

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(keep_asking, limiter)
        await anyio.sleep(1.0)
        assert grants == []  # fail closed: nothing granted while Redis is away
        assert limiter.redis_down
        private_redis.start()
        back = time.monotonic()
    # the first caller after the restart knew the old epoch: a full window is fenced
    assert min(grants) - back >= 0.9
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert "no Gemini call is made" in errors[0].getMessage()
    assert any("answers again" in r.getMessage() for r in caplog.records)
    # a brand-new limiter after the restart is held by the same fence
    with anyio.fail_after(2):
        await pool_b.acquire(MODEL, 10)
    await client.aclose()


async def test_a_quick_redis_restart_is_not_an_outage(
    private_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis restarted between two calls: the pooled connection is dead, the next call
    reconnects at once. That is no outage: no ERROR line and no "answers again after
    0.0 s" line (an outage is a failure that persists past one retry)."""
    client = Redis.from_url(private_redis.url, socket_timeout=1, socket_connect_timeout=1)
    config = LimiterConfig(Quota(1000, 1_000_000), window_seconds=0.2, max_poll_seconds=0.02)
    limiter = GeminiLimiter(client, config)
    await limiter.acquire(MODEL, 10)
    caplog.set_level(logging.INFO, logger="ratelimit")
    private_redis.restart()
    with anyio.fail_after(5):
        await limiter.acquire(MODEL, 10)
    said = [r.getMessage() for r in caplog.records if r.name == "ratelimit"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], said
    assert not [m for m in said if "answers again" in m], said
    await client.aclose()


async def test_a_redis_that_never_answers_fails_the_call_within_the_socket_timeout(
    private_redis: RedisServer,
) -> None:
    """The limiter writes its command without redis-py's write timeout (a task per call on
    Python 3.11); the reply is still awaited at most `socket_timeout`: through a proxy that
    passes the connection's handshake to Redis and swallows the script call, the call fails
    in that time."""
    swallowed: list[bytes] = []

    async def proxy(client: anyio.abc.SocketStream) -> None:
        async with client, await anyio.connect_tcp("127.0.0.1", private_redis.port) as server:

            async def back() -> None:
                with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError):
                    async for chunk in server:
                        await client.send(chunk)

            async with anyio.create_task_group() as tg:
                tg.start_soon(back)
                with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError):
                    async for chunk in client:
                        if b"EVALSHA" in chunk or swallowed:
                            swallowed.append(chunk)
                        else:
                            await server.send(chunk)
                tg.cancel_scope.cancel()

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, proxy)
        client = Redis(host="127.0.0.1", port=port, socket_timeout=0.5, socket_connect_timeout=1)
        limiter = GeminiLimiter(client, LimiterConfig(Quota(1000, 1_000_000), window_seconds=1))
        started = time.monotonic()
        with anyio.fail_after(5), pytest.raises(RedisTimeoutError):
            await limiter.day_counts()
        took = time.monotonic() - started
        await client.aclose()
        tg.cancel_scope.cancel()
    assert 0.4 <= took < 2.0, took
    assert b"EVALSHA" in b"".join(swallowed)  # written: the wait was the reply's


async def test_a_call_right_after_a_redis_restart_needs_no_retry_of_its_caller(
    private_redis: RedisServer,
) -> None:
    """The pool's check of an idle connection can miss that Redis closed it (the event
    loop has not run since): the limiter's call sends again on a new connection, so a
    caller without a retry loop of its own (day_counts) gets its answer, every time."""
    client = Redis.from_url(private_redis.url, socket_timeout=1, socket_connect_timeout=1)
    limiter = GeminiLimiter(client, LimiterConfig(Quota(1000, 1_000_000), window_seconds=1))
    try:
        for restart in range(5):
            await limiter.acquire(MODEL, 10)  # the connection goes back to the pool
            private_redis.restart()  # blocking: the loop does not run in between
            epoch, _, counts = await limiter.day_counts()
            assert (epoch, counts) == ("", {}), f"restart {restart}: Redis came back empty"
    finally:
        await client.aclose()
