"""PoolStats: what a pool has done since start, from its workers' job reports."""

from __future__ import annotations

import math

import pytest

from domain import DocumentSource
from pool.status.stats import DURATION_BUCKETS, MAX_ERROR_CHARS, PoolStats
from workers.worker import JobReport, Outcome

INDEX = DocumentSource.INDEX
ACTE = DocumentSource.ACTE


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def report(
    source: DocumentSource = INDEX,
    outcome: Outcome = Outcome.COMPLETED,
    seconds: float = 3.0,
    *,
    calls: int = 0,
    tokens: int = 0,
    cache_hit: bool = False,
    error: str | None = None,
    job_id: str = "1",
    env: str = "prod",
) -> JobReport:
    return JobReport(
        worker="w1",
        env=env,
        job_id=job_id,
        source=source,
        outcome=outcome,
        seconds=seconds,
        gemini_calls=calls,
        input_tokens=tokens,
        cache_hit=cache_hit,
        error=error,
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def stats(clock: Clock) -> PoolStats:
    return PoolStats(clock=clock, wall_clock=lambda: 1_700_000_000.0 + clock.t)


def test_empty_snapshot_has_every_type_and_outcome_at_zero(stats: PoolStats) -> None:
    snap = stats.snapshot()
    assert set(snap.jobs) == {"index", "acte"}
    for by_outcome in snap.jobs.values():
        assert by_outcome == {o.value: 0 for o in Outcome}
    assert snap.per_minute == {"index": 0.0, "acte": 0.0}
    assert snap.durations["index"].count == 0
    assert snap.durations["index"].mean_seconds is None
    assert snap.last_error == {}
    assert snap.started_at == 1_700_001_000.0


def test_counts_by_type_and_outcome(stats: PoolStats) -> None:
    for outcome in (Outcome.COMPLETED, Outcome.COMPLETED, Outcome.REQUEUED, Outcome.LOST):
        stats.record(report(INDEX, outcome))
    stats.record(report(ACTE, Outcome.FAILED, error="bad"))
    stats.record(report(ACTE, Outcome.RELEASED))
    snap = stats.snapshot()
    assert snap.jobs["index"] == {
        "completed": 2,
        "requeued": 1,
        "failed": 0,
        "lost": 1,
        "released": 0,
    }
    assert snap.jobs["acte"]["failed"] == 1
    assert snap.jobs["acte"]["released"] == 1
    assert snap.total(Outcome.COMPLETED) == 2
    assert snap.total("failed") == 1
    assert snap.errors("index") == 2  # requeued + lost
    assert snap.errors("acte") == 1  # released is not an error


def test_cache_hits_calls_and_tokens_are_summed_per_type(stats: PoolStats) -> None:
    stats.record(report(INDEX, calls=5, tokens=12_000))
    stats.record(report(INDEX, calls=0, tokens=0, cache_hit=True))
    stats.record(report(ACTE, Outcome.REQUEUED, calls=2, tokens=300_000, error="x"))
    snap = stats.snapshot()
    assert snap.cache_hits == {"index": 1, "acte": 0}
    assert snap.gemini_calls == {"index": 5, "acte": 2}
    assert snap.input_tokens == {"index": 12_000, "acte": 300_000}


def test_durations_histogram_is_cumulative_with_inclusive_bounds(stats: PoolStats) -> None:
    for seconds in (0.2, 1.0, 1.5, 30.0, 30.01, 599.0, 601.0, 5000.0, -1.0):
        stats.record(report(INDEX, seconds=seconds))
    d = stats.snapshot().durations["index"]
    assert DURATION_BUCKETS[-1] == math.inf
    by_bound = dict(zip(DURATION_BUCKETS, d.buckets, strict=True))
    # -1 counts as 0 s; 1.0 falls in le=1 (upper bounds are inclusive).
    assert by_bound[1] == 3
    assert by_bound[2] == 4
    assert by_bound[5] == 4
    assert by_bound[30] == 5
    assert by_bound[60] == 6
    assert by_bound[600] == 7
    assert by_bound[math.inf] == 9 == d.count
    assert list(d.buckets) == sorted(d.buckets)
    assert d.sum_seconds == pytest.approx(0.2 + 1.0 + 1.5 + 30.0 + 30.01 + 599.0 + 601.0 + 5000.0)


def test_only_completed_jobs_are_timed(stats: PoolStats) -> None:
    stats.record(report(ACTE, Outcome.COMPLETED, seconds=10.0))
    stats.record(report(ACTE, Outcome.FAILED, seconds=500.0, error="boom"))
    stats.record(report(ACTE, Outcome.RELEASED, seconds=400.0))
    d = stats.snapshot().durations["acte"]
    assert d.count == 1
    assert d.sum_seconds == 10.0
    assert d.mean_seconds == 10.0


def test_throughput_counts_completed_jobs_of_the_last_five_minutes(
    stats: PoolStats, clock: Clock
) -> None:
    clock.t += 1000  # long after start: the window is the full 5 minutes
    for _ in range(3):
        stats.record(report(INDEX))
    clock.t += 200
    for _ in range(7):
        stats.record(report(INDEX))
    stats.record(report(ACTE))
    stats.record(report(ACTE, Outcome.FAILED, error="x"))  # not throughput
    assert stats.snapshot().per_minute["index"] == pytest.approx(10 / 5)
    assert stats.snapshot().per_minute["acte"] == pytest.approx(1 / 5)
    clock.t += 150  # the first 3 are now 350 s old
    snap = stats.snapshot()
    assert snap.per_minute["index"] == pytest.approx(7 / 5)
    assert snap.total_per_minute == pytest.approx(8 / 5)
    clock.t += 301
    assert stats.snapshot().per_minute == {"index": 0.0, "acte": 0.0}


def test_throughput_right_after_start_is_over_at_least_a_minute(
    stats: PoolStats, clock: Clock
) -> None:
    clock.t += 5
    stats.record(report(INDEX))
    assert stats.snapshot().per_minute["index"] == pytest.approx(1.0)  # not 12/min
    clock.t += 115  # two minutes up: rate over the two minutes
    stats.record(report(INDEX))
    assert stats.snapshot().per_minute["index"] == pytest.approx(1.0)
    clock.t += 120
    assert stats.snapshot().per_minute["index"] == pytest.approx(2 / 4)


def test_last_error_per_type_newest_wins_and_is_one_line(stats: PoolStats, clock: Clock) -> None:
    stats.record(report(INDEX, Outcome.REQUEUED, error="first\nerror", job_id="10"))
    clock.t += 30
    stats.record(report(INDEX, Outcome.FAILED, error="second  error\n\tdetail", job_id="11"))
    stats.record(report(INDEX, Outcome.COMPLETED))  # success does not clear it
    stats.record(report(ACTE, Outcome.REQUEUED, error="x" * 2000, env="dev", job_id="12"))
    errors = stats.snapshot().last_error
    assert errors["index"].message == "second error detail"
    assert errors["index"].job_id == "11"
    assert errors["index"].outcome == "failed"
    assert errors["index"].at == 1_700_001_030.0
    assert errors["acte"].env == "dev"
    assert len(errors["acte"].message) == MAX_ERROR_CHARS
    assert errors["acte"].message.endswith("…")


def test_lost_without_error_text_leaves_last_error_alone(stats: PoolStats) -> None:
    stats.record(report(INDEX, Outcome.LOST))
    assert "index" not in stats.snapshot().last_error


def test_snapshot_is_frozen_and_independent_of_later_reports(stats: PoolStats) -> None:
    stats.record(report(INDEX, calls=1))
    snap = stats.snapshot()
    stats.record(report(INDEX, calls=1))
    assert snap.jobs["index"]["completed"] == 1
    assert snap.gemini_calls["index"] == 1
    assert snap.durations["index"].count == 1
    with pytest.raises(TypeError):
        snap.jobs["index"]["completed"] = 5  # type: ignore[index]
    assert stats.snapshot().jobs["index"]["completed"] == 2


def test_uptime_follows_the_monotonic_clock(stats: PoolStats, clock: Clock) -> None:
    clock.t += 42.5
    assert stats.snapshot().uptime_seconds == 42.5
    assert stats.uptime_seconds == 42.5
