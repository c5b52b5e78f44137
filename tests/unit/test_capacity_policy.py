"""Pure parts of the capacity ledger: amounts, costs, admission, pressure, keys."""

from __future__ import annotations

import psutil
import pytest
from hypothesis import given
from hypothesis import strategies as st

from capacity import (
    DEFAULT_COSTS,
    Limits,
    PressureGuard,
    Reading,
    Resources,
    available_milli,
    busy_percent,
    can_ever_fit,
    decide,
    format_costs,
    judge,
    machine_size,
    parse_costs,
    resolve_limits,
    server_keys,
)
from capacity.keys import check_server_id, scan_patterns, server_id_of
from capacity.probe import CpuSample

R = Resources
amounts = st.builds(R, st.integers(0, 50_000), st.integers(0, 50_000))


# --- amounts and costs -------------------------------------------------------------
def test_amounts_are_integer_milli_units_without_drift() -> None:
    assert R.of(1.5, 0.75) == R(1500, 750)
    total = R(0, 0)
    for _ in range(1000):
        total += R.of(0.1, 0.1)
    assert total == R(100_000, 100_000)  # 0.1 added 1000 times as floats is 99.9999...
    assert str(R.of(1.5, 0.75)) == "1.5 vCPU / 0.75 GB"


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_amounts_refuse_negative_and_non_finite(bad: float) -> None:
    with pytest.raises(ValueError, match="cpu must be a finite number"):
        R.of(bad, 1)
    with pytest.raises(ValueError, match="must not be negative"):
        R(-1, 0)


def test_default_costs_are_those_of_the_replaced_system() -> None:
    assert dict(DEFAULT_COSTS) == {
        "registre": R(3000, 1000),
        "index": R(1500, 750),
        "acte": R(1000, 500),
    }


def test_parse_costs_overrides_and_adds_kinds() -> None:
    costs = parse_costs(" index = 2:1 , plan=0.5:0.25,")
    assert costs["index"] == R(2000, 1000)
    assert costs["plan"] == R(500, 250)
    assert costs["acte"] == DEFAULT_COSTS["acte"]  # untouched kinds keep their default
    assert parse_costs("") == dict(DEFAULT_COSTS)
    assert parse_costs(format_costs(costs)) == costs


@pytest.mark.parametrize("text", ["index", "index=2", "=1:1", "index=a:1", "index=1:-1"])
def test_parse_costs_names_the_faulty_item(text: str) -> None:
    with pytest.raises(ValueError, match=r"kind=cpu:ram|numbers >= 0") as info:
        parse_costs(text)
    assert text.strip() in str(info.value)
    assert "\n" not in str(info.value)


# --- available = max × (1 − reserve%) ----------------------------------------------
@pytest.mark.parametrize(
    ("maximum", "reserve", "expected"),
    [
        (8, 20, 6400),
        (16, 20, 12_800),
        (2, 0, 2000),
        (23.4, 20, 18_720),
        (1, 99.9, 1),
        (3, 50, 1500),
    ],
)
def test_available_applies_the_reserve(maximum: float, reserve: float, expected: int) -> None:
    assert available_milli(maximum, reserve) == expected


def test_available_rounds_down_and_validates() -> None:
    assert available_milli(0.0015, 0) == 1  # 1.5 milli-units: never promise the half
    with pytest.raises(ValueError, match="reserve percent"):
        available_milli(8, 100)
    with pytest.raises(ValueError, match="maximum"):
        available_milli(0, 20)
    assert Limits(8, 16, 20, 25).available == R(6400, 12_000)


def test_limits_default_to_what_psutil_measures() -> None:
    cpus = float(psutil.cpu_count(logical=True) or 1)
    ram = psutil.virtual_memory().total / 2**30
    measured = resolve_limits(None, None, 20, 10)
    assert measured.max_cpu == cpus
    assert measured.max_ram == pytest.approx(ram, abs=0.001)
    assert measured.available == R(available_milli(cpus, 20), available_milli(measured.max_ram, 10))
    assert machine_size()[0] == cpus
    assert resolve_limits(8, None).max_cpu == 8  # a setting wins over the measure
    assert resolve_limits(8, 16) == Limits(8, 16, 20, 20)


# --- admission ----------------------------------------------------------------------
def test_admission_up_to_exactly_the_available_amount() -> None:
    available = R(6400, 3200)
    assert decide(R(5400, 2700), R(1000, 500), available).admitted  # lands on 6.4 / 3.2
    assert decide(R(5401, 0), R(1000, 500), available).short == ("cpu",)
    assert decide(R(0, 2701), R(1000, 500), available).short == ("ram",)
    refused = decide(R(6000, 3000), R(1000, 500), available)
    assert (refused.admitted, refused.reason) == (False, "cpu+ram")
    assert decide(R(0, 0), R(0, 0), R(0, 0)).reason == "ok"


def test_admission_replaces_what_the_holder_already_holds() -> None:
    available = R(6400, 3200)
    held = R(3000, 1000)  # a registre worker on a nearly full server (6 of 6.4 vCPU)
    allocated = R(6000, 2000)
    assert decide(allocated, R(3000, 1000), available, held).admitted  # renewal-sized
    assert decide(allocated, R(1500, 750), available, held).admitted  # shrinks to index
    assert decide(allocated, R(3400, 1000), available, held).admitted  # grows into the rest
    assert decide(allocated, R(3401, 1000), available, held).short == ("cpu",)
    # Over-booked (limits lowered under it): shrinking is still allowed, growing is not.
    assert decide(R(9000, 2000), R(1000, 500), available, held).admitted
    assert decide(R(9000, 2000), R(4000, 1000), available, held).short == ("cpu",)
    assert decide(R(9000, 2000), R(3000, 1500), available, held).admitted  # ram still fits
    assert decide(R(9000, 3100), R(3000, 1500), available, held).short == ("ram",)


@given(allocated=amounts, request=amounts, available=amounts)
def test_admitted_requests_never_exceed_available(
    allocated: Resources, request: Resources, available: Resources
) -> None:
    decision = decide(allocated, request, available)
    after = allocated + request
    # A dimension asked for nothing does not grow; every other must land within available.
    assert decision.admitted == (
        (request.cpu_m == 0 or after.cpu_m <= available.cpu_m)
        and (request.ram_m == 0 or after.ram_m <= available.ram_m)
    )
    assert set(decision.short) <= {"cpu", "ram"}


@given(held=amounts, others=amounts, request=amounts, available=amounts)
def test_a_resize_never_grows_a_dimension_past_available(
    held: Resources, others: Resources, request: Resources, available: Resources
) -> None:
    decision = decide(others + held, request, available, held)
    if decision.admitted:
        after = others + request
        for name in ("cpu_m", "ram_m"):
            grew = getattr(request, name) > getattr(held, name)
            assert not grew or getattr(after, name) <= getattr(available, name)


def test_can_ever_fit() -> None:
    assert can_ever_fit(R(1600, 100), R(1600, 18_000))
    assert not can_ever_fit(R(3000, 1000), R(1600, 18_000))  # registre on a 2-vCPU host


# --- pressure -------------------------------------------------------------------------
def test_pressure_blocks_strictly_above_100_minus_reserve() -> None:
    assert not judge(Reading(80.0, 80.0), 20, 20).blocked  # at the limit: still open
    over = judge(Reading(80.1, 10.0), 20, 20)
    assert (over.blocked, over.over, over.cpu_limit) == (True, ("cpu",), 80.0)
    assert judge(Reading(10.0, 95.0), 20, 10).over == ("ram",)
    assert judge(Reading(99.6, 99.6), 0.5, 0.5).over == ("cpu", "ram")
    assert not judge(Reading(100.0, 100.0), 0, 0).blocked  # a 0% reserve never blocks
    assert "ram 95.0% (limit 90%)" in judge(Reading(10.0, 95.0), 20, 10).describe()


def test_busy_percent_between_two_samples() -> None:
    assert busy_percent(CpuSample(10, 100), CpuSample(40, 200)) == 30.0
    assert busy_percent(None, CpuSample(25, 100)) == 25.0  # since boot
    assert busy_percent(CpuSample(10, 100), CpuSample(10, 100)) == 0.0  # no time passed


class FakeProbe:
    def __init__(self) -> None:
        self.cpu = CpuSample(0, 0)
        self.memory = 10.0
        self.calls = 0

    def cpu_sample(self) -> CpuSample:
        self.calls += 1
        return self.cpu

    def memory_percent(self) -> float:
        return self.memory


def test_guard_measures_cpu_over_the_interval_and_caches_readings() -> None:
    probe = FakeProbe()
    now = [0.0]
    probe.cpu = CpuSample(1000, 2000)  # since boot: 50% (not what the guard judges)
    guard = PressureGuard(20, 20, probe=probe, min_interval=0.5, clock=lambda: now[0])
    probe.cpu = CpuSample(1090, 2100)  # 90% busy since the guard was made
    now[0] = 0.6
    pressure = guard.check()
    assert (pressure.over, round(pressure.reading.cpu_percent)) == (("cpu",), 90)
    probe.cpu = CpuSample(1100, 2200)  # 10% busy since
    now[0] = 0.7
    assert guard.check().blocked  # cached: less than min_interval ago
    assert probe.calls == 2
    now[0] = 1.2
    assert not guard.check().blocked
    probe.memory = 81.0
    now[0] = 1.8
    assert guard.check().over == ("ram",)
    probe.memory = 79.0
    now[0] = 2.4
    assert not guard.check().blocked


# --- keys -----------------------------------------------------------------------------
def test_keys_follow_design_md() -> None:
    keys = server_keys("", "ocr-1")
    assert keys.cpu_allocated == "server:ocr-1:cpu:allocated"
    assert keys.ram_allocated == "server:ocr-1:ram:allocated"
    assert keys.workers == "server:ocr-1:workers"
    assert server_keys("prod:", "ocr-1").capacity == "prod:server:ocr-1:capacity"


def test_server_ids_are_found_back_from_keys() -> None:
    for key in server_keys("p*x:", "host-a.local").all:
        assert server_id_of("p*x:", key) == "host-a.local"
    assert server_id_of("p*x:", "p*x:gemini:rpm:current") is None
    assert server_id_of("", "server:a:b:workers") is None
    assert scan_patterns("p*x:")[0] == "p\\*x:server:*:workers"


@pytest.mark.parametrize("bad", ["", "a b", "a:b", "tab\there"])
def test_server_ids_without_spaces_or_colons(bad: str) -> None:
    with pytest.raises(ValueError, match="server id"):
        check_server_id(bad)


def test_capacity_imports_neither_pool_nor_workers() -> None:
    import ast
    from pathlib import Path

    package = Path(__file__).parents[2] / "capacity"
    for source in package.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in ("pool", "workers"), f"{source.name}: {name}"
