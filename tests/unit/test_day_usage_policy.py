"""The pure policy of keeping the day's Gemini count durable (pool/day_usage.py): quota day
numbers, when Redis lost its state, what this process's memory puts back, greatest wins,
and day boundaries (a count from yesterday is never put back into today)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pool.day_usage import (
    Reading,
    Tally,
    greatest,
    lost,
    may_have_lost,
    memory_floors,
    quota_date,
    quota_day_number,
    raises_needed,
    tallies,
)
from ratelimit.limiter import ModelMetrics

TODAY = 20_000  # 2024-10-04
FLASH, PRO = "gemini-2.5-flash", "gemini-2.5-pro"


def reading(
    epoch: str = "e1",
    today: int = TODAY,
    counts: dict[str, tuple[int, int]] | None = None,
    grants: dict[str, tuple[int, int]] | None = None,
) -> Reading:
    return Reading(
        epoch,
        today,
        counts or {},
        {m: Tally(g, r) for m, (g, r) in (grants or {}).items()},
    )


def test_quota_day_numbers_are_days_since_1970() -> None:
    assert quota_date(0) == dt.date(1970, 1, 1)
    assert quota_date(TODAY) == dt.date(2024, 10, 4)
    assert quota_day_number(dt.date(2024, 10, 4)) == TODAY


@given(st.integers(min_value=0, max_value=2_000_000))
def test_quota_day_numbers_round_trip(day: int) -> None:
    assert quota_day_number(quota_date(day)) == day


def test_a_reading_splits_its_counts_by_day() -> None:
    r = reading(counts={FLASH: (TODAY, 7), PRO: (TODAY - 1, 3), "idle": (TODAY, 0)})
    assert r.today_counts() == {FLASH: 7, "idle": 0}
    # zero counts are not merged anywhere; today is always there (to read the databases)
    assert r.by_day() == {TODAY: {FLASH: 7}, TODAY - 1: {PRO: 3}}
    assert reading().by_day() == {TODAY: {}}


def test_tallies_are_grants_and_refunds_per_model() -> None:
    metrics = {FLASH: ModelMetrics(grants=5, refunds=1), PRO: ModelMetrics()}
    assert tallies(metrics) == {FLASH: Tally(5, 1), PRO: Tally(0, 0)}


def test_redis_lost_its_state_when_its_epoch_is_gone() -> None:
    before = reading("e1")
    assert not may_have_lost(None, before)  # the first reading: nothing to compare
    assert not lost(None, before)
    assert not may_have_lost(before, reading("e1"))
    # empty (restarted, nobody asked since), or a new epoch (restarted, someone asked)
    assert may_have_lost(before, reading(""))
    assert lost(before, reading(""))
    assert may_have_lost(before, reading("e2"))
    assert lost(before, reading("e2"))
    # from no epoch to one: the first grant after a restart, not a new loss; still
    # Redis may have restarted again meanwhile, so the counts are put back (harmless)
    assert may_have_lost(reading(""), reading("e2"))
    assert not lost(reading(""), reading("e2"))
    assert may_have_lost(reading(""), reading(""))
    assert not lost(reading(""), reading(""))


def test_memory_puts_back_the_last_reading_plus_own_grants_minus_own_refunds() -> None:
    before = reading(counts={FLASH: (TODAY, 40), PRO: (TODAY, 3)}, grants={FLASH: (100, 2)})
    now = {FLASH: Tally(112, 3), PRO: Tally(1, 0), "new-model": Tally(2, 0)}
    assert memory_floors(before, now, TODAY) == {
        FLASH: 40 + 12 - 1,
        PRO: 3 + 1,  # first grant of PRO by this process came after the reading
        "new-model": 2,
    }


def test_memory_never_carries_a_count_into_another_day() -> None:
    # the last reading was yesterday: which day the grants since fell on is unknown
    before = reading(today=TODAY - 1, counts={FLASH: (TODAY - 1, 900)}, grants={FLASH: (900, 0)})
    assert memory_floors(before, {FLASH: Tally(905, 0)}, TODAY) == {}
    # a count Redis still held for an earlier day is not today's
    stale = reading(counts={FLASH: (TODAY - 1, 900)}, grants={FLASH: (900, 0)})
    assert memory_floors(stale, {FLASH: Tally(905, 0)}, TODAY) == {FLASH: 5}


def test_memory_puts_back_nothing_below_one() -> None:
    before = reading(counts={FLASH: (TODAY, 1)}, grants={FLASH: (1, 0)})
    assert memory_floors(before, {FLASH: Tally(1, 3)}, TODAY) == {}
    assert memory_floors(reading(), {}, TODAY) == {}


def test_greatest_wins_per_model() -> None:
    assert greatest([{FLASH: 3, PRO: 9}, {FLASH: 7}, {}, {"x": 0}]) == {FLASH: 7, PRO: 9, "x": 0}
    assert greatest([]) == {}


def test_only_counts_above_redis_are_raised() -> None:
    assert raises_needed({FLASH: 10, PRO: 5}, {FLASH: 10, PRO: 6, "new": 1}) == {
        PRO: 6,
        "new": 1,
    }
    assert raises_needed({FLASH: 10}, {FLASH: 4}) == {}  # never lowers


@pytest.mark.parametrize(
    ("redis", "database", "expected"),
    [
        ({FLASH: 44}, {FLASH: 64}, {FLASH: 64}),  # the example
        ({FLASH: 64}, {FLASH: 44}, {}),
        ({}, {FLASH: 64}, {FLASH: 64}),
    ],
)
def test_the_databases_raise_redis_when_it_is_lower(
    redis: dict[str, int], database: dict[str, int], expected: dict[str, int]
) -> None:
    assert raises_needed(redis, greatest([database])) == expected
