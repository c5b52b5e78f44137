"""The allocation policy: examples of each rule, then properties over random demand."""

from __future__ import annotations

import itertools
import json
import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pool.allocation import (
    Allocation,
    AllocationRules,
    TypeDemand,
    allocate,
    count_proportional,
    estimated_makespan,
    ideal_index_share,
    makespan_lower_bound,
    static_split,
)


def demand(waiting: int, seconds: float = 1.0) -> TypeDemand:
    return TypeDemand(waiting=waiting, service_seconds=seconds)


def split(alloc: Allocation) -> tuple[int, int]:
    return (alloc.index, alloc.acte)


# --- rules and inputs --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"pool_size": 0, "min_index": 0, "min_acte": 0}, "OCR_WORKER_POOL_SIZE"),
        ({"pool_size": 4, "min_index": -1, "min_acte": 0}, "OCR_MIN_INDEX_WORKERS"),
        ({"pool_size": 4, "min_index": 0, "min_acte": -1}, "OCR_MIN_ACTE_WORKERS"),
        ({"pool_size": 4, "min_index": 3, "min_acte": 2}, r"OCR_MIN_INDEX_WORKERS \+ OCR_MIN_ACTE"),
        ({"pool_size": 4, "min_index": 1, "min_acte": 1, "hysteresis": -0.1}, "HYSTERESIS"),
        ({"pool_size": 4, "min_index": 1, "min_acte": 1, "hysteresis": math.nan}, "HYSTERESIS"),
    ],
)
def test_rules_are_validated_in_one_line_naming_the_setting(
    kwargs: dict[str, float], named: str
) -> None:
    with pytest.raises(ValueError, match=named) as caught:
        AllocationRules(**kwargs)  # type: ignore[arg-type]
    assert "\n" not in str(caught.value)


def test_minimums_may_take_the_whole_pool() -> None:
    rules = AllocationRules(pool_size=4, min_index=2, min_acte=2)
    assert split(allocate(rules, demand(1000), demand(1), None)) == (2, 2)


@pytest.mark.parametrize(("waiting", "seconds"), [(-1, 1.0), (1, 0.0), (1, -2.0), (1, math.inf)])
def test_type_demand_rejects_impossible_values(waiting: int, seconds: float) -> None:
    with pytest.raises(ValueError, match=r"waiting|service_seconds"):
        TypeDemand(waiting=waiting, service_seconds=seconds)


def test_allocation_as_dict_is_json() -> None:
    alloc = Allocation(3, 5, "acte queue empty")
    assert json.loads(json.dumps(alloc.as_dict())) == {
        "index": 3,
        "acte": 5,
        "reason": "acte queue empty",
    }


# --- the split ---------------------------------------------------------------------------


def test_work_not_counts_decides() -> None:
    rules = AllocationRules(pool_size=8, min_index=0, min_acte=0)
    # 400 index pages of 4 s = 1600 s; 10 deeds of 30 s = 300 s.
    alloc = allocate(rules, demand(400, 4.0), demand(10, 30.0), None)
    assert split(alloc) == (6, 2)
    assert alloc.reason == "work 1600 s index vs 300 s acte"
    # Same counts, deeds now slow: acte gets the workers although it has fewer jobs.
    assert split(allocate(rules, demand(400, 1.0), demand(10, 300.0), None)) == (1, 7)


def test_rounding_minimises_the_makespan_not_the_remainder() -> None:
    """8 workers, 1600 s vs 300 s: the proportional share is 6.74 index workers; the
    nearest whole split (7/1) finishes in 300 s, the chosen one (6/2) in 267 s."""
    rules = AllocationRules(pool_size=8, min_index=0, min_acte=0)
    index, acte = demand(400, 4.0), demand(10, 30.0)
    chosen = allocate(rules, index, acte, None)
    nearest = Allocation(7, 1)
    assert estimated_makespan(chosen, index, acte) == pytest.approx(1600 / 6)
    assert estimated_makespan(nearest, index, acte) == pytest.approx(300)


def test_small_queue_gets_the_second_worker_when_that_finishes_sooner() -> None:
    """100 workers, 7 index jobs vs 493 deeds, 2 s each: the proportional share of index
    is 1.4 workers. One index worker finishes at 14 s; two finish at 986/98 = 10.06 s.
    Counting jobs (nearest rounding of 1.4) gives one."""
    rules = AllocationRules(pool_size=100, min_index=0, min_acte=0)
    index, acte = demand(7, 2.0), demand(493, 2.0)
    chosen = allocate(rules, index, acte, None)
    assert split(chosen) == (2, 98)
    baseline = count_proportional(rules, 7, 493)
    assert split(baseline) == (1, 99)
    assert estimated_makespan(chosen, index, acte) == pytest.approx(986 / 98)
    assert estimated_makespan(baseline, index, acte) == pytest.approx(14.0)


def test_minimum_is_a_floor_not_an_addition() -> None:
    rules = AllocationRules(pool_size=8, min_index=1, min_acte=0)
    # Work says 6 index of 8 (share 0.5 + 7 * 3/4 = 5.75): the minimum of 1 is within.
    assert split(allocate(rules, demand(600), demand(200), None)) == (6, 2)
    floor = AllocationRules(pool_size=8, min_index=0, min_acte=3)
    assert split(allocate(floor, demand(600), demand(200), None)) == (5, 3)


def test_empty_queue_gets_only_its_minimum() -> None:
    rules = AllocationRules(pool_size=10, min_index=2, min_acte=1)
    alloc = allocate(rules, demand(5), demand(0, 50.0), None)
    assert (split(alloc), alloc.reason) == ((9, 1), "acte queue empty")
    alloc = allocate(rules, demand(0), demand(1, 50.0), None)
    assert (split(alloc), alloc.reason) == ((2, 8), "index queue empty")


def test_both_empty_keeps_a_valid_current_else_splits_evenly() -> None:
    rules = AllocationRules(pool_size=7, min_index=0, min_acte=1)
    current = Allocation(6, 1, "earlier")
    kept = allocate(rules, demand(0), demand(0), current)
    assert (split(kept), kept.reason) == ((6, 1), "both queues empty: kept")
    assert split(allocate(rules, demand(0), demand(0), None)) == (3, 4)
    # A current from other rules (different pool size) is ignored.
    assert split(allocate(rules, demand(0), demand(0), Allocation(4, 4))) == (3, 4)
    lopsided = AllocationRules(pool_size=6, min_index=5, min_acte=0)
    assert split(allocate(lopsided, demand(0), demand(0), None)) == (5, 1)


def test_type_with_work_is_never_left_without_a_worker() -> None:
    rules = AllocationRules(pool_size=10, min_index=0, min_acte=0)
    # 1 s of index against 100 000 s of acte still gets one worker.
    assert split(allocate(rules, demand(1), demand(1000, 100.0), None)) == (1, 9)
    assert split(allocate(rules, demand(1000, 100.0), demand(1), None)) == (9, 1)


def test_other_minimum_may_take_the_last_worker() -> None:
    rules = AllocationRules(pool_size=2, min_index=2, min_acte=0)
    assert split(allocate(rules, demand(1), demand(500), None)) == (2, 0)


def test_a_single_worker_goes_to_the_larger_work() -> None:
    rules = AllocationRules(pool_size=1, min_index=0, min_acte=0)
    assert split(allocate(rules, demand(3), demand(2), None)) == (1, 0)
    assert split(allocate(rules, demand(2), demand(3), None)) == (0, 1)
    assert split(allocate(rules, demand(2), demand(2), None)) == (1, 0)
    # Once in a mode, it stays there until that queue is empty (share W_i / W, h = 1/2).
    current = Allocation(1, 0)
    for index_waiting in (3, 2, 1):
        current = allocate(rules, demand(index_waiting), demand(50), current)
        assert split(current) == (1, 0)
    assert split(allocate(rules, demand(0), demand(50), current)) == (0, 1)


# --- hysteresis --------------------------------------------------------------------------


def test_hysteresis_keeps_current_within_half_plus_h_of_the_ideal_share() -> None:
    rules = AllocationRules(pool_size=11, min_index=0, min_acte=0, hysteresis=0.5)
    # share = 0.5 + 10 * W_i / W; W_i/W = 0.43 -> share 4.8, fresh split 5.
    index, acte = demand(43), demand(57)
    assert ideal_index_share(rules, index, acte) == pytest.approx(4.8)
    assert split(allocate(rules, index, acte, None)) == (5, 6)
    kept = allocate(rules, index, acte, Allocation(4, 7))
    assert split(kept) == (4, 7)
    assert kept.reason.startswith("kept: within hysteresis")
    # |4.8 - 6| = 1.2 >= 1: not kept.
    assert split(allocate(rules, index, acte, Allocation(6, 5))) == (5, 6)
    # Exactly one worker away is outside the band (strict inequality): share 4.0.
    index, acte = demand(35), demand(65)
    assert ideal_index_share(rules, index, acte) == pytest.approx(4.0)
    assert split(allocate(rules, index, acte, Allocation(5, 6))) == (4, 7)


def test_zero_hysteresis_keeps_only_the_nearest_split() -> None:
    rules = AllocationRules(pool_size=11, min_index=0, min_acte=0, hysteresis=0.0)
    index, acte = demand(43), demand(57)  # share 4.8
    assert split(allocate(rules, index, acte, Allocation(4, 7))) == (5, 6)


def test_hysteresis_never_overrides_the_hard_rules() -> None:
    wide = AllocationRules(pool_size=8, min_index=0, min_acte=0, hysteresis=5.0)
    # An empty queue gets its minimum whatever the current split.
    assert split(allocate(wide, demand(10), demand(0), Allocation(4, 4))) == (8, 0)
    # A type with work is not kept at zero workers.
    assert split(allocate(wide, demand(10_000), demand(1), Allocation(8, 0))) == (7, 1)
    # A current split that breaks the minimums is not kept.
    floors = AllocationRules(pool_size=8, min_index=3, min_acte=0, hysteresis=5.0)
    assert split(allocate(floors, demand(1), demand(100), Allocation(2, 6))) == (3, 5)


def test_demand_crossing_a_rounding_boundary_does_not_flap() -> None:
    rules = AllocationRules(pool_size=11, min_index=0, min_acte=0)
    current = None
    history = []
    for index_waiting in [399, 401] * 10:  # share 4.494 / 4.506 around 4.5
        current = allocate(rules, demand(index_waiting), demand(600), current)
        history.append(split(current))
    assert len(set(history)) == 1
    # Without hysteresis the same oscillation flips a worker every time.
    flat = AllocationRules(pool_size=11, min_index=0, min_acte=0, hysteresis=0.0)
    fresh = [split(allocate(flat, demand(n), demand(600), None)) for n in (399, 401)]
    assert fresh == [(4, 7), (5, 6)]


def test_a_large_swing_in_demand_is_followed() -> None:
    """One job moving the ideal share by a worker or more is a real change in demand:
    the split follows it (the no-flapping guarantee needs a move below one worker)."""
    rules = AllocationRules(pool_size=10, min_index=0, min_acte=0)
    current = None
    history = []
    for index_waiting in [1, 2, 1, 2]:  # share 3.5 / 5.0
        current = allocate(rules, demand(index_waiting), demand(2), current)
        history.append(current.index)
    assert history == [3, 5, 3, 5]


# --- baselines and makespan --------------------------------------------------------------


def test_count_proportional_ignores_service_times() -> None:
    rules = AllocationRules(pool_size=8, min_index=1, min_acte=1)
    assert split(count_proportional(rules, 400, 10)) == (7, 1)
    assert split(count_proportional(rules, 300, 100)) == (6, 2)
    assert split(count_proportional(rules, 0, 5)) == (1, 7)
    assert split(count_proportional(rules, 0, 0)) == (4, 4)
    assert split(count_proportional(AllocationRules(10, 0, 0), 1, 1000)) == (1, 9)
    with pytest.raises(ValueError, match=">= 0"):
        count_proportional(rules, -1, 3)


def test_static_split_is_half_within_minimums() -> None:
    assert split(static_split(AllocationRules(9, 0, 0))) == (4, 5)
    assert split(static_split(AllocationRules(9, 6, 0))) == (6, 3)
    assert split(static_split(AllocationRules(9, 0, 7))) == (2, 7)


def test_makespan_estimates() -> None:
    index, acte = demand(100, 2.0), demand(3, 30.0)
    assert estimated_makespan(Allocation(4, 4), index, acte) == pytest.approx(50.0)
    assert estimated_makespan(Allocation(7, 1), index, acte) == pytest.approx(90.0)
    assert estimated_makespan(Allocation(8, 0), index, acte) == math.inf
    assert estimated_makespan(Allocation(8, 0), index, demand(0)) == pytest.approx(25.0)
    assert makespan_lower_bound(index, acte, 8) == pytest.approx(290 / 8)
    # One deed of 600 s cannot finish sooner than 600 s on any number of workers.
    assert makespan_lower_bound(demand(0), demand(1, 600.0), 50) == pytest.approx(600.0)
    assert makespan_lower_bound(demand(0), demand(0), 4) == 0.0


# --- properties --------------------------------------------------------------------------


@st.composite
def rules_st(draw: st.DrawFn, max_pool: int = 64) -> AllocationRules:
    pool = draw(st.integers(1, max_pool))
    min_index = draw(st.integers(0, pool))
    min_acte = draw(st.integers(0, pool - min_index))
    hysteresis = draw(st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.5]))
    return AllocationRules(pool, min_index, min_acte, hysteresis)


seconds_st = st.floats(min_value=0.05, max_value=3600.0, allow_nan=False)
waiting_st = st.integers(0, 50_000)
demand_st = st.builds(TypeDemand, waiting=waiting_st, service_seconds=seconds_st)


@st.composite
def current_st(draw: st.DrawFn, rules: AllocationRules) -> Allocation | None:
    if draw(st.booleans()):
        return None
    n = draw(st.integers(0, rules.pool_size))
    return Allocation(n, rules.pool_size - n, "earlier")


@given(st.data(), rules_st(), demand_st, demand_st)
def test_sum_is_the_pool_and_minimums_hold(
    data: st.DataObject, rules: AllocationRules, index: TypeDemand, acte: TypeDemand
) -> None:
    current = data.draw(current_st(rules))
    alloc = allocate(rules, index, acte, current)
    assert alloc.index + alloc.acte == rules.pool_size
    assert alloc.index >= rules.min_index
    assert alloc.acte >= rules.min_acte


@given(st.data(), rules_st(), demand_st, demand_st)
def test_type_with_work_gets_a_worker_when_the_pool_allows(
    data: st.DataObject, rules: AllocationRules, index: TypeDemand, acte: TypeDemand
) -> None:
    current = data.draw(current_st(rules))
    alloc = allocate(rules, index, acte, current)
    one_worker_two_queues = rules.pool_size == 1 and index.waiting > 0 and acte.waiting > 0
    if index.waiting > 0 and rules.min_acte < rules.pool_size and not one_worker_two_queues:
        assert alloc.index >= 1
    if acte.waiting > 0 and rules.min_index < rules.pool_size and not one_worker_two_queues:
        assert alloc.acte >= 1


@given(st.data(), rules_st(), demand_st, st.integers(1, 50_000), seconds_st)
def test_empty_type_gets_exactly_its_minimum(
    data: st.DataObject,
    rules: AllocationRules,
    busy: TypeDemand,
    waiting: int,
    seconds: float,
) -> None:
    current = data.draw(current_st(rules))
    busy = TypeDemand(waiting, seconds)
    empty = TypeDemand(0, data.draw(seconds_st))
    assert allocate(rules, busy, empty, current).acte == rules.min_acte
    assert allocate(rules, empty, busy, current).index == rules.min_index


@given(rules_st(), waiting_st, waiting_st, seconds_st, demand_st)
def test_more_index_work_never_gives_index_fewer_workers(
    rules: AllocationRules, a: int, b: int, seconds: float, acte: TypeDemand
) -> None:
    low, high = sorted((a, b))
    fewer = allocate(rules, TypeDemand(low, seconds), acte, None)
    more = allocate(rules, TypeDemand(high, seconds), acte, None)
    assert more.index >= fewer.index
    slower = allocate(rules, TypeDemand(low, seconds * 3), acte, None)
    assert slower.index >= fewer.index


@given(st.data(), rules_st(), demand_st, demand_st)
def test_idempotent(
    data: st.DataObject, rules: AllocationRules, index: TypeDemand, acte: TypeDemand
) -> None:
    current = data.draw(current_st(rules))
    first = allocate(rules, index, acte, current)
    again = allocate(rules, index, acte, first)
    assert split(again) == split(first)


@st.composite
def near_a_boundary(draw: st.DrawFn) -> tuple[AllocationRules, TypeDemand, TypeDemand, TypeDemand]:
    """Rules, acte demand, and index demands n and n + 1 whose ideal shares straddle a
    rounding boundary k + 1/2 (W_i = W_a k / (P - 1 - k)), where a split could flap."""
    rules = draw(rules_st())
    assume(rules.pool_size >= 3)
    acte = TypeDemand(draw(st.integers(1, 50_000)), draw(seconds_st))
    index_seconds = draw(seconds_st)
    k = draw(st.integers(1, rules.pool_size - 2))
    n = int(acte.work * k / ((rules.pool_size - 1 - k) * index_seconds))
    assume(1 <= n <= 1_000_000)
    return rules, acte, TypeDemand(n, index_seconds), TypeDemand(n + 1, index_seconds)


@given(near_a_boundary(), st.booleans())
def test_no_flapping_when_one_job_moves_the_share_by_less_than_a_worker(
    case: tuple[AllocationRules, TypeDemand, TypeDemand, TypeDemand], start_high: bool
) -> None:
    rules, acte, low, high = case
    assume(rules.hysteresis > 0)
    move = ideal_index_share(rules, high, acte) - ideal_index_share(rules, low, acte)
    # The condition: below one worker for the default h = 1/2; below h in general.
    assume(move < (1.0 if rules.hysteresis == 0.5 else rules.hysteresis))
    current = None
    history = []
    for step in range(12):
        index = high if (step % 2 == 0) == start_high else low
        current = allocate(rules, index, acte, current)
        history.append(split(current))
    changes = sum(1 for before, after in itertools.pairwise(history) if before != after)
    assert changes <= 1


@settings(max_examples=300)
@given(rules_st(), demand_st, demand_st)
def test_makespan_is_the_best_of_every_split_within_the_minimums(
    rules: AllocationRules, index: TypeDemand, acte: TypeDemand
) -> None:
    chosen = estimated_makespan(allocate(rules, index, acte, None), index, acte)
    for n in range(rules.min_index, rules.pool_size - rules.min_acte + 1):
        assert chosen <= estimated_makespan(Allocation(n, rules.pool_size - n), index, acte)
    counts = count_proportional(rules, index.waiting, acte.waiting)
    assert chosen <= estimated_makespan(counts, index, acte)
    assert chosen <= estimated_makespan(static_split(rules), index, acte)
    total = index.work + acte.work
    assert chosen >= total / rules.pool_size * (1 - 1e-12)


@given(rules_st(), waiting_st, waiting_st)
def test_baselines_respect_the_rules(rules: AllocationRules, a: int, b: int) -> None:
    for alloc in (count_proportional(rules, a, b), static_split(rules)):
        assert alloc.index + alloc.acte == rules.pool_size
        assert alloc.index >= rules.min_index
        assert alloc.acte >= rules.min_acte
