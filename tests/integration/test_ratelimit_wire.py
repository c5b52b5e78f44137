"""Slots stamped at the wire, against a real Redis: a grant is in flight (it never leaves
the window) until settled; settled, it counts from its send plus the wire margin, never
later than its answer; early grants wait at the wire; settlements ride on later calls or
go on their own; a waiter that gives up takes its unused grant back; the report lowers the
ceiling exactly as `ratelimit.policy` says."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import anyio
import pytest
from redis.asyncio import Redis

from ratelimit import limiter as limiter_module
from ratelimit.config import LimiterConfig, Quota
from ratelimit.keys import fleet_keys, model_keys
from ratelimit.limiter import GeminiLimiter, ReservationExpired
from ratelimit.policy import CeilingPolicy, Dimension, ceiling_share
from ratelimit.quota_error import QuotaSignal

pytestmark = pytest.mark.anyio
MODEL = "gemini-2.5-flash"


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


def limiter_of(redis: Redis, prefix: str, rpm: int, **options: object) -> GeminiLimiter:
    options.setdefault("window_seconds", 1.0)
    options.setdefault("max_poll_seconds", 0.02)
    tpm = options.pop("tpm", 1_000_000)
    config = LimiterConfig(Quota(rpm, tpm), **options)  # type: ignore[arg-type]
    return GeminiLimiter(redis, config, prefix=prefix)


async def redis_now_us(redis: Redis) -> int:
    seconds, micros = await redis.time()
    return int(seconds) * 1_000_000 + int(micros)


async def grant_scores(redis: Redis, prefix: str) -> dict[str, float]:
    pairs: list[tuple[str, float]] = await redis.zrange(
        model_keys(prefix, MODEL).grants, 0, -1, withscores=True
    )  # type: ignore[assignment]
    return dict(pairs)


async def test_a_grant_in_flight_never_leaves_the_window(redis: Redis, redis_prefix: str) -> None:
    limiter = limiter_of(redis, redis_prefix, rpm=1, window_seconds=0.2)
    slow = await limiter.acquire(MODEL, 10, early=True)
    await limiter.wire(slow)
    # five windows later its call is still going: nobody else may send
    other = limiter_of(redis, redis_prefix, rpm=1, window_seconds=0.2)
    with anyio.move_on_after(1.0):
        await other.acquire(MODEL, 10)
        pytest.fail("granted while the only slot was in flight")
    await limiter.reconcile(slow, 10)
    await limiter.flush()
    # settled: it counts from its send + margin (0.1 s), long gone: room at once
    with anyio.fail_after(0.5):
        await other.acquire(MODEL, 10)


async def test_a_settled_slot_counts_from_the_send_not_the_answer(
    redis: Redis, redis_prefix: str
) -> None:
    limiter = limiter_of(redis, redis_prefix, rpm=1, wire_margin_seconds=0.1)
    first = await limiter.acquire(MODEL, 10, early=True)
    await anyio.sleep(0.2)  # building the request
    await limiter.wire(first)
    sent = time.monotonic()
    await anyio.sleep(0.6)  # Gemini thinking
    await limiter.reconcile(first, 8)
    await limiter.flush()
    stamp = (await grant_scores(redis, redis_prefix))[f"{first.id}:8"]
    sent_after = round((first.sent_at or 0) - first.asked_at, 6)
    assert stamp == first.granted_at_us + round(sent_after * 1e6) + 1 + 100_000
    second = await limiter.acquire(MODEL, 10)  # may leave a window after send + margin
    left = time.monotonic()
    assert 1.1 - 0.05 <= left - sent < 1.1 + 0.15
    assert second.not_before_us == stamp + 1_000_000
    # a slot stamped at the answer would have held it until sent + 0.6 + 1.0
    assert left - sent < 1.6


async def test_an_unmarked_call_counts_until_its_answer(redis: Redis, redis_prefix: str) -> None:
    limiter = limiter_of(redis, redis_prefix, rpm=1)
    first = await limiter.acquire(MODEL, 10)  # never wired: the send time is unknown
    await anyio.sleep(0.4)
    await limiter.reconcile(first, 10)
    await limiter.flush()
    settled = await redis_now_us(redis)
    stamp = (await grant_scores(redis, redis_prefix))[f"{first.id}:10"]
    # the answer's time, bounded from the caller's clock (plus the acquire's round trip)
    assert first.granted_at_us + 400_000 <= stamp <= settled
    assert stamp <= first.granted_at_us + 450_000


async def test_an_early_grant_waits_at_the_wire_until_its_slot_frees(
    redis: Redis, redis_prefix: str
) -> None:
    limiter = limiter_of(redis, redis_prefix, rpm=1, lead_seconds=0.5)
    first = await limiter.acquire(MODEL, 10, early=True)
    await limiter.wire(first)
    await limiter.reconcile(first, 10)
    started = time.monotonic()
    second = await limiter.acquire(MODEL, 10, early=True)
    granted = time.monotonic()
    await limiter.wire(second)
    wired = time.monotonic()
    assert 0.4 < granted - started < 0.75  # granted about `lead` before the slot frees
    assert second.not_before_us - second.granted_at_us > 300_000
    assert wired >= second.not_before
    assert 0.95 < wired - started < 1.25


async def test_settlements_ride_on_the_next_call_or_go_on_their_own(
    redis: Redis, redis_prefix: str
) -> None:
    limiter = limiter_of(redis, redis_prefix, rpm=100, settle_delay_seconds=0.05)
    keys = model_keys(redis_prefix, MODEL)
    first = await limiter.acquire(MODEL, 500)
    await limiter.reconcile(first, 300)
    assert limiter.pending_settlements == 1
    assert await redis.hget(keys.state, "tpm") == "500"  # not delivered yet
    second = await limiter.acquire(MODEL, 200)  # carries it
    assert limiter.pending_settlements == 0
    assert await redis.hget(keys.state, "tpm") == "500"  # 300 + 200
    await limiter.refund(second)
    await anyio.sleep(0.2)  # no call followed: the timer delivered it
    assert limiter.pending_settlements == 0
    assert await redis.hget(keys.state, "tpm") == "300"
    stats = await redis.hgetall(keys.stats)
    assert (stats["reconciled"], stats["refunds"], stats["actual_tokens"]) == ("1", "1", "300")


async def test_estimate_counters_of_carried_reconciles_go_with_the_next_publish(
    redis: Redis, redis_prefix: str
) -> None:
    limiter = limiter_of(redis, redis_prefix, rpm=100)
    keys = model_keys(redis_prefix, MODEL)
    first = await limiter.acquire(MODEL, 500)
    await limiter.reconcile(first, 300)
    lost = await limiter.acquire(MODEL, 100)  # carries the reconcile of `first`
    await redis.zrem(keys.grants, f"{lost.id}:100")  # its grant is gone (Redis lost it)
    await limiter.reconcile(lost, 50)
    await limiter.acquire(MODEL, 10)  # carries it: not found, so not counted
    assert limiter.pending_settlements == 0
    assert await redis.hgetall(keys.stats) == {}  # the grants wrote no counter
    stats = (await limiter.publish()).models[0].stats
    assert stats == {
        "reconciled": 1, "estimated_tokens": 500, "actual_tokens": 300, "abs_error_tokens": 200,
    }  # fmt: skip
    assert (await limiter.publish()).models[0].stats == stats  # sent once


async def test_estimate_counters_go_on_their_own_when_nothing_publishes(
    redis: Redis, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limiter_module, "COUNTERS_DELAY_SECONDS", 0.1)
    limiter = limiter_of(redis, redis_prefix, rpm=100)
    keys = model_keys(redis_prefix, MODEL)
    first = await limiter.acquire(MODEL, 400)
    await limiter.reconcile(first, 440)
    await limiter.acquire(MODEL, 10)  # carries it
    assert await redis.hgetall(keys.stats) == {}
    await anyio.sleep(0.3)
    assert await redis.hgetall(keys.stats) == {
        "reconciled": "1", "estimated_tokens": "400", "actual_tokens": "440",
        "abs_error_tokens": "40",
    }  # fmt: skip


async def test_an_answer_after_the_flight_is_stamped_at_the_in_flight_deadline(
    redis: Redis, redis_prefix: str
) -> None:
    limiter = limiter_of(redis, redis_prefix, rpm=5, window_seconds=5.0)
    reservation = await limiter.acquire(MODEL, 10, flight_seconds=1.0)  # never wired
    await anyio.sleep(1.2)  # answered after its flight
    await limiter.reconcile(reservation, 10)
    await limiter.flush()
    stamp = (await grant_scores(redis, redis_prefix))[f"{reservation.id}:10"]
    assert stamp == reservation.granted_at_us + 1_000_000  # never later than in flight


async def test_a_waiter_cancelled_before_its_moment_gives_its_grant_back(
    redis: Redis, redis_prefix: str
) -> None:
    limiter = limiter_of(redis, redis_prefix, rpm=1, lead_seconds=0.8, window_seconds=1.0)
    first = await limiter.acquire(MODEL, 10, early=True)
    await limiter.wire(first)
    await limiter.reconcile(first, 10)
    with anyio.move_on_after(0.5):
        await limiter.acquire(MODEL, 10)  # granted early, cancelled while waiting to send
    keys = model_keys(redis_prefix, MODEL)
    members = await redis.zrange(keys.grants, 0, -1)
    assert members == [f"{first.id}:10"]
    assert await redis.zcard(keys.tickets) == 0
    assert await redis.hget(keys.state, "day_count") == "1"


async def test_a_grant_never_settled_counts_as_arrived_at_its_flight_deadline(
    redis: Redis, redis_prefix: str
) -> None:
    limiter = limiter_of(redis, redis_prefix, rpm=1, window_seconds=0.3, lead_seconds=0)
    lost = await limiter.acquire(MODEL, 10, flight_seconds=1.0)  # its process died
    with anyio.fail_after(3):
        nxt = await limiter.acquire(MODEL, 10)
    assert nxt.not_before_us - lost.granted_at_us >= 1_300_000


async def test_a_grant_sent_after_its_flight_is_refused_at_the_wire(
    redis: Redis, redis_prefix: str
) -> None:
    limiter = limiter_of(redis, redis_prefix, rpm=5)
    reservation = await limiter.acquire(MODEL, 10, flight_seconds=1.0)
    reservation.asked_at -= 5  # as if the process had stalled for 5 s
    with pytest.raises(ReservationExpired, match="acquire again"):
        await limiter.wire(reservation)
    assert reservation.settled
    await limiter.flush()
    assert await redis.zcard(model_keys(redis_prefix, MODEL).grants) == 0


async def test_an_earlier_release_s_window_fences_the_first_grant(
    redis: Redis, redis_prefix: str
) -> None:
    # an epoch as 1b66f58 left it: its grants are kept in a form this release cannot read
    await redis.hset(fleet_keys(redis_prefix).epoch, mapping={"id": "old", "created": 1})
    limiter = limiter_of(redis, redis_prefix, rpm=100, window_seconds=0.5)
    started = time.monotonic()
    await limiter.acquire(MODEL, 10)
    assert time.monotonic() - started >= 0.45
    assert await redis.hget(fleet_keys(redis_prefix).epoch, "format") == "2"
    with anyio.fail_after(0.2):
        await limiter.acquire(MODEL, 10)  # once only


@pytest.mark.parametrize(
    ("in_window", "quota_id"),
    [
        (10, "GenerateRequestsPerMinutePerProjectPerModel"),
        (9, "GenerateRequestsPerMinutePerProjectPerModel"),
        (8, "GenerateRequestsPerMinutePerProjectPerModel"),
        (3, "GenerateRequestsPerMinutePerProjectPerModel"),
        (3, ""),
        (10, "GenerateContentPaidTierInputTokensPerModelPerMinute"),
    ],
)
async def test_the_report_lowers_the_ceiling_as_the_policy_says(
    redis: Redis, redis_prefix: str, in_window: int, quota_id: str
) -> None:
    limiter = limiter_of(redis, redis_prefix, rpm=10, tpm=100_000, own_share=0.9)
    sent = [await limiter.acquire(MODEL, 100) for _ in range(in_window)]
    ids = (quota_id,) if quota_id else ()
    cooldown = await limiter.report_quota_error(
        MODEL, QuotaSignal(0.0, False, ids), reservation=sent[-1]
    )
    assert cooldown is not None
    dimension: Dimension = "requests" if "Requests" in quota_id else ""
    if "Tokens" in quota_id:
        dimension = "tokens"
    share = ceiling_share(
        requests=in_window,
        tokens=100 * in_window,
        rpm_limit=10,
        tpm_limit=100_000,
        factor=1.0,
        dimension=dimension,
    )
    expected = CeilingPolicy(own_share=0.9).after_429(
        1.0, share=share, dimension=dimension, per_day=False, new_round=True
    )
    assert cooldown.share == pytest.approx(share, abs=1e-4)
    assert cooldown.ceiling_factor == pytest.approx(expected[0])
    assert cooldown.lowered == expected[1]
