"""What a pool has done since it started, from its workers' job reports.

`PoolStats.record` is the workers' `on_report` callback; `snapshot()` gives plain,
immutable figures for the status panel, the log line and `/metrics`. Everything runs
on the pool's one event loop, so no locking.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from domain import DocumentSource
from workers.worker import JobReport, Outcome

DURATION_BUCKETS: tuple[float, ...] = (1, 2, 5, 10, 30, 60, 120, 300, 600, math.inf)
"""Upper bounds (seconds) of the job duration histogram; the last is +Inf."""

THROUGHPUT_WINDOW_SECONDS = 300.0
"""Recent throughput is counted over this window (the last 5 minutes)."""

MIN_THROUGHPUT_SPAN_SECONDS = 60.0
"""Right after start the rate is taken over at least a minute, so that one job done
in the first seconds does not read as hundreds per minute."""

MAX_ERROR_CHARS = 500

TYPES: tuple[str, ...] = tuple(s.value for s in DocumentSource)
OUTCOMES: tuple[str, ...] = tuple(o.value for o in Outcome)


@dataclass(frozen=True, slots=True)
class DurationStats:
    """Durations of one type's completed jobs. `buckets[i]` counts the jobs that took
    at most `DURATION_BUCKETS[i]` seconds (cumulative, as Prometheus `le`)."""

    count: int
    sum_seconds: float
    buckets: tuple[int, ...]

    @property
    def mean_seconds(self) -> float | None:
        return self.sum_seconds / self.count if self.count else None


@dataclass(frozen=True, slots=True)
class LastError:
    at: float
    """wall-clock time (epoch seconds)"""
    env: str
    job_id: str
    outcome: str
    message: str


@dataclass(frozen=True, slots=True)
class StatsSnapshot:
    started_at: float
    """wall-clock time the pool started (epoch seconds)"""
    uptime_seconds: float
    jobs: Mapping[str, Mapping[str, int]]
    """type -> outcome -> count; every type and outcome present (zeros included)"""
    cache_hits: Mapping[str, int]
    gemini_calls: Mapping[str, int]
    input_tokens: Mapping[str, int]
    output_tokens: Mapping[str, int]
    thinking_tokens: Mapping[str, int]
    cost_usd: Mapping[str, float]
    """per type: the finished jobs' Gemini bill (jobs whose models have no price add 0)"""
    durations: Mapping[str, DurationStats]
    """per type, completed jobs only"""
    per_minute: Mapping[str, float]
    """per type: completed jobs per minute over the last 5 minutes"""
    last_error: Mapping[str, LastError]
    """per type, only for types that had an error"""

    def total(self, outcome: str | Outcome) -> int:
        return sum(by_outcome.get(str(outcome), 0) for by_outcome in self.jobs.values())

    def errors(self, source: str) -> int:
        """Jobs of `source` that did not complete (requeued, failed, lost)."""
        by_outcome = self.jobs.get(source, {})
        return sum(by_outcome.get(o, 0) for o in ("requeued", "failed", "lost"))

    @property
    def total_per_minute(self) -> float:
        return sum(self.per_minute.values())


class _Histogram:
    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * len(DURATION_BUCKETS)
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        self.sum += seconds
        for i, bound in enumerate(DURATION_BUCKETS):
            if seconds <= bound:
                self.counts[i] += 1
                return

    def freeze(self) -> DurationStats:
        cumulative: list[int] = []
        running = 0
        for n in self.counts:
            running += n
            cumulative.append(running)
        return DurationStats(count=running, sum_seconds=self.sum, buckets=tuple(cumulative))


class PoolStats:
    """Counters since start, fed by `record` (the workers' `on_report`)."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._wall = wall_clock
        self._start = clock()
        self.started_at = wall_clock()
        self._jobs = {t: dict.fromkeys(OUTCOMES, 0) for t in TYPES}
        self._cache_hits = dict.fromkeys(TYPES, 0)
        self._calls = dict.fromkeys(TYPES, 0)
        self._tokens = dict.fromkeys(TYPES, 0)
        self._output = dict.fromkeys(TYPES, 0)
        self._thinking = dict.fromkeys(TYPES, 0)
        self._cost = dict.fromkeys(TYPES, 0.0)
        self._durations = {t: _Histogram() for t in TYPES}
        self._recent: deque[tuple[float, str]] = deque()
        self._last_error: dict[str, LastError] = {}

    @property
    def uptime_seconds(self) -> float:
        return max(0.0, self._clock() - self._start)

    def record(self, report: JobReport) -> None:
        source = str(report.source)
        outcome = str(report.outcome)
        by_outcome = self._jobs.setdefault(source, dict.fromkeys(OUTCOMES, 0))
        by_outcome[outcome] = by_outcome.get(outcome, 0) + 1
        if report.cache_hit:
            self._cache_hits[source] = self._cache_hits.get(source, 0) + 1
        self._calls[source] = self._calls.get(source, 0) + report.gemini_calls
        self._tokens[source] = self._tokens.get(source, 0) + report.input_tokens
        self._output[source] = self._output.get(source, 0) + report.output_tokens
        self._thinking[source] = self._thinking.get(source, 0) + report.thinking_tokens
        self._cost[source] = self._cost.get(source, 0.0) + (report.cost_usd or 0.0)
        if report.outcome is Outcome.COMPLETED:
            self._durations.setdefault(source, _Histogram()).observe(report.seconds)
            now = self._clock()
            self._recent.append((now, source))
            self._prune(now)
        if report.error:
            message = " ".join(report.error.split())
            if len(message) > MAX_ERROR_CHARS:
                message = message[: MAX_ERROR_CHARS - 1] + "…"
            self._last_error[source] = LastError(
                at=self._wall(),
                env=report.env,
                job_id=report.job_id,
                outcome=outcome,
                message=message,
            )

    def _prune(self, now: float) -> None:
        horizon = now - THROUGHPUT_WINDOW_SECONDS
        while self._recent and self._recent[0][0] < horizon:
            self._recent.popleft()

    def per_minute(self) -> dict[str, float]:
        now = self._clock()
        self._prune(now)
        span = min(THROUGHPUT_WINDOW_SECONDS, max(MIN_THROUGHPUT_SPAN_SECONDS, now - self._start))
        counts = dict.fromkeys(self._jobs, 0)
        for _, source in self._recent:
            counts[source] = counts.get(source, 0) + 1
        return {source: n * 60.0 / span for source, n in counts.items()}

    def snapshot(self) -> StatsSnapshot:
        def frozen(d: Mapping[str, int]) -> Mapping[str, int]:
            return MappingProxyType(dict(d))

        return StatsSnapshot(
            started_at=self.started_at,
            uptime_seconds=self.uptime_seconds,
            jobs=MappingProxyType({t: frozen(o) for t, o in self._jobs.items()}),
            cache_hits=frozen(self._cache_hits),
            gemini_calls=frozen(self._calls),
            input_tokens=frozen(self._tokens),
            output_tokens=frozen(self._output),
            thinking_tokens=frozen(self._thinking),
            cost_usd=MappingProxyType(dict(self._cost)),
            durations=MappingProxyType({t: h.freeze() for t, h in self._durations.items()}),
            per_minute=MappingProxyType(self.per_minute()),
            last_error=MappingProxyType(dict(self._last_error)),
        )
