"""Pure policy of outages: how a worker waits for its database, what a store knows of
its reachability and what it reports, which Supabase answers mean "unreachable"."""

from __future__ import annotations

import logging

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st
from postgrest.exceptions import APIError

from store import StoreError, StoreUnavailable
from store.reachability import (
    OutageWatch,
    Reachability,
    answers_again_line,
    on_answer,
    on_failure,
    on_reported,
    outage_seconds,
    unreachable_line,
)
from store.supabase import database_unreachable
from workers.outage_policy import outage_pause, refused_too_long, renew_pause


def test_outage_pause_doubles_from_a_fifth_of_a_second_to_its_cap() -> None:
    assert [outage_pause(n, 120) for n in range(1, 8)] == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
    # A short lease: at most a quarter of it, so the holder is back well within the
    # lease the reaper leaves it after an outage.
    assert [outage_pause(n, 3) for n in range(1, 5)] == [0.2, 0.4, 0.75, 0.75]
    assert outage_pause(50, 0.4) == 0.2  # never under the first pause


@given(st.integers(1, 10_000), st.floats(0.01, 86_400))
def test_outage_pause_stays_between_its_bounds(failures: int, lease: float) -> None:
    pause = outage_pause(failures, lease)
    assert 0.2 <= pause <= 5.0
    assert pause <= max(0.2, lease / 4)


def test_outage_pause_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="failures"):
        outage_pause(0, 10)
    with pytest.raises(ValueError, match="lease"):
        outage_pause(1, 0)


def test_renewals_keep_their_period_and_retry_sooner_while_failing() -> None:
    assert renew_pause(0, 20, 120) == 20
    assert renew_pause(1, 20, 120) == 0.2
    assert renew_pause(9, 20, 120) == 5.0
    assert renew_pause(9, 1, 3) == 0.75
    assert renew_pause(9, 0.5, 3) == 0.5  # never longer than the heartbeat period


def test_a_refusal_is_given_up_after_one_lease() -> None:
    assert not refused_too_long(119.9, 120)
    assert refused_too_long(120, 120)


def test_an_outage_starts_once_and_ends_only_when_reported() -> None:
    state = on_answer(Reachability(), 10.0)
    assert state == Reachability(last_ok=10.0)
    state, began = on_failure(state, 12.0, "connection refused")
    assert began
    assert state.down
    state, began = on_failure(state, 13.0, "still refused")
    assert not began  # the same outage
    assert state.reason == "connection refused"
    # A call sent before the outage that comes back late does not end it.
    assert on_answer(state, 14.0) == state
    # The report covers the stretch from the last answer, so a holder of this pool
    # whose lease ran out meanwhile is inside it.
    assert outage_seconds(state, 22.0) == 12.0
    state, lasted = on_reported(state, 22.0)
    assert lasted == 10.0  # from the first failure
    assert state == Reachability(last_ok=22.0)
    assert on_reported(state, 23.0)[1] is None


def test_a_pool_that_never_reached_the_database_reports_from_its_first_failure() -> None:
    state, _ = on_failure(Reachability(), 5.0, "refused")
    assert outage_seconds(state, 8.5) == 3.5


def test_the_lines_say_which_database_and_for_how_long() -> None:
    assert unreachable_line("prod", "connection refused") == (
        "queue database 'prod' unreachable: connection refused; will keep trying"
    )
    assert answers_again_line("prod", 12.34) == "queue database 'prod' answers again after 12.3 s"


@pytest.mark.parametrize(
    ("code", "unreachable"),
    [
        ("PGRST000", True),
        ("PGRST003", True),
        ("503", True),
        ("08006", True),
        ("57P01", True),
        ("PGRST202", False),
        ("54000", False),
        ("23505", False),
        (None, False),
    ],
)
def test_supabase_answers_that_mean_the_database_is_out_of_reach(
    code: str | None, unreachable: bool
) -> None:
    assert database_unreachable(APIError({"code": code, "message": "x"})) is unreachable


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.anyio
async def test_the_watch_reports_before_the_first_call_and_says_each_end_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="workers.store")
    clock = Clock()
    reports: list[float] = []
    answers = iter([StoreUnavailable("refused"), None])

    async def report(seconds: float) -> None:
        outcome = next(answers)
        if outcome is not None:
            raise outcome
        reports.append(seconds)

    watch = OutageWatch("prod", report, clock=clock)
    await watch.before_call()  # up: nothing to report
    watch.answered()
    clock.now = 101.0
    watch.failed(OSError("refused"), "connection refused")
    watch.failed(OSError("refused"), "connection refused")
    clock.now = 105.0
    with pytest.raises(StoreUnavailable):
        await watch.before_call()  # the report is the probe: still down
    clock.now = 110.5
    await watch.before_call()
    assert reports == [10.5]  # from the last answer
    assert not watch.state.down
    said = [r.getMessage() for r in caplog.records]
    assert said == [
        "queue database 'prod' unreachable: connection refused; will keep trying",
        "queue database 'prod' answers again after 9.5 s",
    ]


@pytest.mark.anyio
async def test_while_one_caller_reports_the_others_are_told_at_once() -> None:
    release = anyio.Event()

    async def slow_report(seconds: float) -> None:
        await release.wait()

    watch = OutageWatch("prod", slow_report)
    watch.failed(OSError("refused"), "refused")
    async with anyio.create_task_group() as tg:
        tg.start_soon(watch.before_call)
        await anyio.sleep(0.05)
        with pytest.raises(StoreUnavailable):
            await watch.before_call()
        release.set()
    assert not watch.state.down


@pytest.mark.anyio
async def test_a_database_that_refuses_the_report_is_still_used() -> None:
    async def refusing(seconds: float) -> None:
        raise StoreError("function ocr_note_outage does not exist")

    watch = OutageWatch("prod", refusing)
    watch.failed(OSError("refused"), "refused")
    await watch.before_call()
    assert not watch.state.down
