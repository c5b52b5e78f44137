"""Measured costs and the guard's progress rule: the pure functions (split, fold, the
charged cost, the rule), the meter on a fake clock, the Lua fold matching the pure one on
a real Redis, and a ledger charging what the fleet measured."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Iterator

import pytest
import redis as sync_redis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis
from rich.console import Console

from capacity import (
    CapacityLedger,
    CpuMeter,
    Limits,
    Pressure,
    Reading,
    Resources,
    Sample,
    ServerState,
    effective_cost,
    effective_costs,
    fold,
    progress_allowed,
    split_cpu,
)
from capacity.costs import FLOOR_CPU_M, HALF_LIFE_SECONDS, HEADROOM, weight_of
from capacity.keys import measured_key
from capacity.pressure import judge, pressing_text
from capacity.resources import DEFAULT_COSTS
from capacity.scripts import script_text
from pool.status.panel import capacity_part

pytestmark = pytest.mark.anyio
R = Resources


# --- splitting a process's CPU time between the leases it holds ---------------------------
def test_split_follows_the_weights_and_gives_equal_shares_without_them() -> None:
    assert split_cpu(3.0, {"a": 1.5, "b": 1.5, "c": 3.0}) == {"a": 0.75, "b": 0.75, "c": 1.5}
    assert split_cpu(1.0, {"a": 0.0, "b": 0.0}) == {"a": 0.5, "b": 0.5}
    assert split_cpu(1.0, {"a": 0.0, "b": 2.0}) == {"a": 0.0, "b": 1.0}
    assert split_cpu(1.0, {}) == {}
    assert split_cpu(-0.2, {"a": 1.0}) == {"a": 0.0}  # a clock going back is not negative use


@given(
    st.floats(0, 1e6),
    st.dictionaries(st.text(min_size=1, max_size=4), st.floats(0, 100), min_size=1, max_size=8),
)
@example(used=1.5, weights={"0": 5e-324})  # used * w / total rounded to 2.0
def test_split_hands_out_exactly_what_was_used(used: float, weights: dict[str, float]) -> None:
    shares = split_cpu(used, weights)
    assert set(shares) == set(weights)
    assert all(share >= 0 for share in shares.values())
    assert math.isclose(sum(shares.values()), used, rel_tol=1e-9, abs_tol=1e-9)


# --- the fleet's average --------------------------------------------------------------------
def test_fold_starts_from_the_seed_and_weighs_samples_by_held_time() -> None:
    short = fold(None, 1.5, Sample(0.0, 0.05))  # an idle poll: barely moves the seed
    assert 1.49 < short < 1.5
    half = fold(None, 1.5, Sample(0.1 * HALF_LIFE_SECONDS, HALF_LIFE_SECONDS))
    assert math.isclose(half, (1.5 + 0.1) / 2)  # one half-life: halfway to the sample
    assert math.isclose(fold(0.4, 1.5, Sample(0.0, 0.0)), 0.4)  # nothing held: unchanged
    long = fold(0.4, 1.5, Sample(0.1 * 3600, 3600))
    assert math.isclose(long, 0.1, rel_tol=1e-6)
    assert weight_of(0) == 0.0
    with pytest.raises(ValueError, match="half life"):
        weight_of(1, 0)


@given(st.floats(0, 8), st.floats(0, 8), st.floats(0, 100), st.floats(0.001, 3600))
def test_fold_lands_between_the_average_and_the_sample(
    mean: float, seed: float, cpu: float, held: float
) -> None:
    sample = Sample(cpu, held)
    after = fold(mean, seed, sample)
    low, high = sorted((mean, sample.rate))
    assert low - 1e-9 <= after <= high + 1e-9


def test_the_charged_cost_is_measured_use_within_floor_and_configured_cap() -> None:
    index = R(1500, 750)
    assert effective_cost(index, None) == index  # nothing measured yet: the seed
    assert effective_cost(index, 0.1) == R(math.ceil(0.1 * HEADROOM * 1000), 750)
    assert effective_cost(index, 5.0) == index  # never more than configured
    assert effective_cost(index, 0.0) == R(FLOOR_CPU_M, 750)  # never free
    assert effective_cost(R(20, 100), 0.0) == R(20, 100)  # the floor is capped too
    assert effective_cost(index, float("nan")) == index
    costs = effective_costs(DEFAULT_COSTS, {"index": 0.2, "other": 9.0})
    assert costs == {"registre": R(3000, 1000), "index": R(250, 750), "acte": R(1000, 500)}


# --- the guard's progress rule and what it says ------------------------------------------------
def test_progress_rule() -> None:
    calm = judge(Reading(50, 50), 20, 20)
    pressed = judge(Reading(91.3, 50), 20, 20)
    assert progress_allowed(calm, 0)
    assert progress_allowed(calm, 7)
    assert progress_allowed(pressed, 0)  # a pool with nothing going always gets one
    assert not progress_allowed(pressed, 1)
    with pytest.raises(ValueError, match="negative"):
        progress_allowed(pressed, -1)
    assert pressed.pressing == "cpu 91.3% > 80%"
    both = Pressure(Reading(95, 88.25), 80, 80, ("cpu", "ram"))
    assert both.pressing == "cpu 95.0% > 80%, ram 88.2% > 80%"
    assert calm.pressing == ""
    assert pressing_text(("ram",), {"ram": 81}, {"ram": 80}) == "ram 81.0% > 80%"


# --- the meter ---------------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.cpu = 10.0

    def advance(self, seconds: float, cpu: float) -> None:
        self.now += seconds
        self.cpu += cpu


def meter_of(clock: Clock, weights: dict[str, float]) -> CpuMeter:
    return CpuMeter(weights.__getitem__, cpu_seconds=lambda: clock.cpu, clock=lambda: clock.now)


def test_meter_attributes_cpu_to_the_leases_held_at_each_moment() -> None:
    clock = Clock()
    meter = meter_of(clock, {"index": 1.5, "acte": 1.0})
    clock.advance(5, 2.0)  # nothing held: the pool's own upkeep, charged to nobody
    meter.hold("w1", "index")
    clock.advance(10, 1.0)  # w1 alone
    meter.hold("w2", "acte")
    clock.advance(10, 2.5)  # both: split 1.5 : 1
    meter.drop("w1")
    clock.advance(4, 0.4)  # w2 alone
    meter.hold("w2", "index")  # w2 steals a job of the other type
    clock.advance(2, 0.2)
    taken = meter.take()
    assert math.isclose(taken["index"].cpu_seconds, 1.0 + 1.5 + 0.2)
    assert math.isclose(taken["index"].held_seconds, 10 + 10 + 2)
    assert math.isclose(taken["acte"].cpu_seconds, 1.0 + 0.4)
    assert math.isclose(taken["acte"].held_seconds, 10 + 4)
    assert meter.holders == {"w2": "index"}
    clock.advance(3, 0.3)  # still held: counted in the next take, from zero
    again = meter.take()
    assert set(again) == {"index"}
    assert math.isclose(again["index"].cpu_seconds, 0.3)
    assert math.isclose(again["index"].held_seconds, 3)
    meter.put_back({"acte": Sample(1, 2)})
    assert meter.take()["acte"] == Sample(1, 2)
    meter.drop("w2")
    meter.drop("unknown")  # harmless
    assert meter.take() == {}


# --- the Lua fold is the pure fold -------------------------------------------------------------
@pytest.fixture
def sync_client(redis_url: str) -> Iterator[sync_redis.Redis]:
    client = sync_redis.Redis.from_url(redis_url)
    yield client
    client.close()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.floats(0, 4),
    samples=st.lists(st.tuples(st.floats(0, 50), st.floats(0, 200)), min_size=1, max_size=6),
)
def test_measure_script_folds_as_the_pure_rule(
    sync_client: sync_redis.Redis,
    redis_prefix: str,
    seed: float,
    samples: list[tuple[float, float]],
) -> None:
    key = measured_key(redis_prefix)
    measure = sync_client.register_script(script_text("measure"))
    mean: float | None = None
    try:
        for cpu, held in samples:
            reply = measure(keys=[key], args=[HALF_LIFE_SECONDS, 60_000, "index", seed, cpu, held])
            mean = fold(mean, seed, Sample(cpu, held)) if held > 0 else mean
            stored = reply[1].decode()
            if mean is None:
                assert stored == ""
            else:
                assert math.isclose(float(stored), mean, rel_tol=1e-5, abs_tol=1e-6)
    finally:
        sync_client.delete(key)


# --- a ledger charging what the fleet measured -------------------------------------------------
@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


async def test_two_pools_measure_one_fleet_figure_and_charge_it(
    redis: Redis, redis_prefix: str
) -> None:
    clocks = [Clock(), Clock()]
    ledgers = []
    for n, clock in enumerate(clocks):
        ledger = CapacityLedger(redis, f"srv{n}", prefix=redis_prefix, limits=Limits(2, 8, 0, 0))
        ledger.meter = meter_of(clock, {"index": 1.5, "acte": 1.0})
        ledgers.append(ledger)
    first, second = ledgers
    assert await first.refresh_costs() == dict(DEFAULT_COSTS)  # nothing measured: the seeds
    assert (await first.acquire("a", "index")).admitted
    assert not (await first.acquire("b", "index")).admitted  # 1.5 + 1.5 > 2 vCPU
    # An index job waits on Gemini: 0.1 vCPU for each second it is held.
    clocks[0].advance(120, 12.0)
    await first.refresh_costs()
    measured = first.measured["index"]
    assert math.isclose(measured, fold(None, 1.5, Sample(12, 120)), rel_tol=1e-5)
    assert first.costs["index"].cpu_m == math.ceil(measured * HEADROOM * 1000)
    assert first.costs["acte"] == DEFAULT_COSTS["acte"]  # not measured: still its seed
    assert (await first.acquire("b", "index")).admitted  # two index jobs fit now
    # The other pool (another server) starts from the fleet's figure and adds to it.
    await second.refresh_costs()
    assert second.measured == first.measured
    assert (await second.acquire("x", "index")).admitted
    clocks[1].advance(60, 6.0)
    await second.refresh_costs()
    assert math.isclose(second.measured["index"], fold(measured, 1.5, Sample(6, 60)), rel_tol=1e-4)
    stored = await redis.hgetall(measured_key(redis_prefix))
    assert float(stored["index:held_seconds"]) == pytest.approx(180)
    assert float(stored["index:cpu_seconds"]) == pytest.approx(18)
    assert 0 < await redis.pttl(measured_key(redis_prefix)) <= 7 * 86_400_000
    await second.publish()
    published = await redis.hgetall(second.keys.capacity)
    assert published["costs_configured"] == "registre=3:1,index=1.5:0.75,acte=1:0.5"
    assert str(published["costs"]).startswith("registre=3:1,index=0.")
    assert str(published["costs_measured"]).startswith("index=0.")


async def test_fixed_costs_when_measuring_is_off(redis: Redis, redis_prefix: str) -> None:
    ledger = CapacityLedger(
        redis, "srv", prefix=redis_prefix, limits=Limits(2, 8, 0, 0), measure=False
    )
    assert ledger.meter is None
    assert await ledger.refresh_costs() == dict(DEFAULT_COSTS)
    assert not await redis.exists(measured_key(redis_prefix))


def test_the_panel_says_what_is_pressing_and_what_is_charged() -> None:
    state = ServerState(
        server_id="srv",
        now_ms=0,
        allocated=R(250, 750),
        leases=(),
        capacity={
            "cpu_available_m": "1600",
            "ram_available_m": "6400",
            "cpu_percent": "91.3",
            "ram_percent": "40.0",
            "cpu_limit_percent": "80",
            "ram_limit_percent": "80",
            "pressure": "1",
            "pressure_over": "cpu",
            "costs": "registre=3:1,index=0.25:0.75,acte=1:0.5",
        },
    )
    console = Console(record=True, width=200)
    console.print(capacity_part(state, None))
    text = " ".join(console.export_text().split())
    assert "admission paused (host pressure: cpu 91.3% > 80%)" in text
    assert "each pool keeps one job going" in text
    assert "charged registre=3:1,index=0.25:0.75,acte=1:0.5" in text
