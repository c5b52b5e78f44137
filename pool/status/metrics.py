"""A pool's figures for Prometheus, through `prometheus_client`.

Each pool has a registry of its own (`PoolMetrics`), never the library's global one,
so that tests and several pools in one process do not collide. It holds:

- `SnapshotCollector`: the `ocr_pool_*` families, yielded at each scrape from the
  latest `PoolSnapshot` (taken per scrape). Counters are the snapshot's totals since
  start, not library counters incremented here, so nothing is counted twice;
- the library's process, GC and platform collectors (`process_*`, `python_gc_*`,
  `python_info`).

`PoolMetrics.render` negotiates the format from the request's `Accept` header: the
text format 0.0.4 by default, OpenMetrics 1.0 (`# EOF`-terminated) when asked for
`application/openmetrics-text`.

Families without a sample in a scrape are left out: those whose source could not be
read (Gemini or capacity from Redis) — `ocr_pool_gemini_readable` /
`ocr_pool_capacity_readable` say so — and those with nothing to count yet.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence

from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, choose_encoder
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.openmetrics.exposition import (
    CONTENT_TYPE_LATEST as OPENMETRICS_CONTENT_TYPE,
)

from pool.status.snapshot import PoolSnapshot
from pool.status.stats import DURATION_BUCKETS, TYPES
from pool.supervision import NotReady

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
"""The default answer: `text/plain; version=0.0.4; charset=utf-8`."""

__all__ = [
    "CONTENT_TYPE",
    "OPENMETRICS_CONTENT_TYPE",
    "PoolMetrics",
    "SnapshotCollector",
    "format_bound",
    "pool_families",
    "render_metrics",
]


def format_bound(bound: float) -> str:
    """A histogram `le` value as the Prometheus clients write it: 1.0, 2.5, +Inf."""
    return "+Inf" if math.isinf(bound) else repr(float(bound))


class SnapshotCollector:
    """A `prometheus_client` collector of the `ocr_pool_*` families of one snapshot:
    the latest one handed to it (`snapshot`), or nothing before the first."""

    def __init__(self, snapshot: PoolSnapshot | None = None) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        if self.snapshot is not None:
            yield from pool_families(self.snapshot)


class PoolMetrics:
    """One pool's registry: its snapshot's families, then the process, GC and
    platform series of this process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.pool = SnapshotCollector()
        self.registry.register(self.pool)
        ProcessCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)

    def render(self, snap: PoolSnapshot, accept: str = "") -> tuple[bytes, str]:
        """The exposition of `snap` and this process in the format `accept` asks for
        (an HTTP `Accept` header; empty: text 0.0.4): (body, Content-Type)."""
        encoder, content_type = choose_encoder(accept)
        self.pool.snapshot = snap
        return encoder(self.registry), content_type


def render_metrics(snap: PoolSnapshot) -> str:
    """The `ocr_pool_*` families alone, in the text format 0.0.4."""
    return generate_latest(SnapshotCollector(snap)).decode()


# -- the families ------------------------------------------------------------------------
def pool_families(snap: PoolSnapshot) -> Iterator[Metric]:
    """Every `ocr_pool_*` family of `snap` that has at least one sample."""
    for family in (
        *_pool(snap),
        *_supervision(snap),
        *_jobs(snap),
        *_spent(snap),
        *_queue(snap),
        *_gemini(snap),
        *_capacity(snap),
    ):
        if family.samples:
            yield family


def _gauge(name: str, help_text: str, labels: Sequence[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, help_text, labels=labels)


def _counter(name: str, help_text: str, labels: Sequence[str] = ()) -> CounterMetricFamily:
    return CounterMetricFamily(name, help_text, labels=labels)


def _single(
    family: GaugeMetricFamily | CounterMetricFamily, value: float
) -> GaugeMetricFamily | CounterMetricFamily:
    family.add_metric([], float(value))
    return family


def _pool(snap: PoolSnapshot) -> Iterable[Metric]:
    info = _gauge(
        "ocr_pool_info", "Identity of this pool (value always 1).", ["pool_id", "server_id"]
    )
    info.add_metric([snap.pool_id, snap.server_id], 1.0)
    allocation = _gauge(
        "ocr_pool_allocation_workers",
        "Workers the manager currently assigns per type.",
        ["type"],
    )
    for source in TYPES:
        allocation.add_metric([source], float(snap.allocation.of(source)))
    workers = _gauge(
        "ocr_pool_workers", "Workers per mode, busy (on a job) or idle.", ["mode", "state"]
    )
    stolen = _gauge(
        "ocr_pool_workers_stolen",
        "Busy workers whose job is of the other type than their mode (work stealing).",
        ["mode"],
    )
    for mode, w in snap.workers.items():
        workers.add_metric([mode, "busy"], float(w.busy))
        workers.add_metric([mode, "idle"], float(w.idle))
        stolen.add_metric([mode], float(w.stolen))
    return (
        info,
        _single(_gauge("ocr_pool_ready", "1 when the pool is ready to work, else 0."), snap.ready),
        _single(
            _gauge("ocr_pool_stopping", "1 once the pool is finishing its jobs to stop."),
            snap.stopping,
        ),
        _single(
            _gauge("ocr_pool_uptime_seconds", "Seconds since the pool started."),
            snap.uptime_seconds,
        ),
        _single(
            _gauge("ocr_pool_size_workers", "Workers in this pool (OCR_WORKER_POOL_SIZE)."),
            snap.pool_size,
        ),
        allocation,
        workers,
        stolen,
    )


def _supervision(snap: PoolSnapshot) -> Iterable[Metric]:
    not_ready = _gauge(
        "ocr_pool_not_ready",
        "1 for the reason the pool is not ready (warming_up, stopping, worker_crashes), "
        "0 for the others.",
        ["reason"],
    )
    codes = [code.value for code in NotReady]
    if snap.ready_code and snap.ready_code not in codes:
        codes.append(snap.ready_code)
    for code in codes:
        not_ready.add_metric([code], float(not snap.ready and snap.ready_code == code))
    return (
        not_ready,
        _single(
            _gauge(
                "ocr_pool_workers_down", "Workers that crashed and wait out their restart delay."
            ),
            snap.workers_down,
        ),
        _single(
            _counter("ocr_pool_worker_crashes_total", "Worker task crashes since start."),
            snap.worker_crashes,
        ),
        _single(
            _counter(
                "ocr_pool_worker_restarts_total", "Workers restarted after a crash since start."
            ),
            snap.worker_restarts,
        ),
    )


def _jobs(snap: PoolSnapshot) -> Iterable[Metric]:
    stats = snap.stats
    jobs = _counter(
        "ocr_pool_jobs_total",
        "Jobs finished by this pool, by type and outcome.",
        ["type", "outcome"],
    )
    for source, by_outcome in stats.jobs.items():
        for outcome, n in by_outcome.items():
            jobs.add_metric([source, outcome], float(n))
    yield jobs
    per_type: tuple[tuple[str, Mapping[str, float], str], ...] = (
        ("ocr_pool_cache_hits_total", stats.cache_hits, "Jobs answered from the result cache."),
        ("ocr_pool_gemini_calls_total", stats.gemini_calls, "Gemini calls made by finished jobs."),
        (
            "ocr_pool_gemini_input_tokens_total",
            stats.input_tokens,
            "Gemini input tokens used by finished jobs.",
        ),
        (
            "ocr_pool_gemini_output_tokens_total",
            stats.output_tokens,
            "Gemini output tokens (answers, thinking apart) of finished jobs.",
        ),
        (
            "ocr_pool_gemini_thinking_tokens_total",
            stats.thinking_tokens,
            "Gemini thinking tokens (billed as output) of finished jobs.",
        ),
        (
            "ocr_pool_gemini_cost_usd_total",
            stats.cost_usd,
            "What finished jobs cost in Gemini calls, in USD at the price table's rates.",
        ),
    )
    for name, values, help_text in per_type:
        counter = _counter(name, help_text, ["type"])
        for source, value in values.items():
            counter.add_metric([source], float(value))
        yield counter
    durations = HistogramMetricFamily(
        "ocr_pool_job_duration_seconds",
        "Time to process a completed job, from claim to result.",
        labels=["type"],
    )
    for source, d in stats.durations.items():
        buckets = [
            (format_bound(bound), float(cumulative))
            for bound, cumulative in zip(DURATION_BUCKETS, d.buckets, strict=True)
        ]
        durations.add_metric([source], buckets, d.sum_seconds)
    yield durations
    throughput = _gauge(
        "ocr_pool_throughput_jobs_per_minute",
        "Jobs completed per minute over the last 5 minutes.",
        ["type"],
    )
    for source, rate in stats.per_minute.items():
        throughput.add_metric([source], rate)
    yield throughput


def _spent(snap: PoolSnapshot) -> Iterable[Metric]:
    tokens = _counter(
        "ocr_pool_gemini_model_tokens_total",
        "Gemini tokens this pool was billed for, by model and kind.",
        ["model", "kind"],
    )
    cost = _counter(
        "ocr_pool_gemini_model_cost_usd_total",
        "What this pool's Gemini calls cost, by model (priced models).",
        ["model"],
    )
    for row in snap.spent:
        for kind, n in (
            ("input", row.input_tokens),
            ("output", row.output_tokens),
            ("thinking", row.thinking_tokens),
        ):
            tokens.add_metric([row.model, kind], float(n))
        if row.cost_usd is not None:
            cost.add_metric([row.model], row.cost_usd)
    return (tokens, cost)


def _queue(snap: PoolSnapshot) -> Iterable[Metric]:
    jobs = _gauge(
        "ocr_pool_queue_jobs",
        "Queue rows per environment and type: waiting (claimable now), delayed (waiting "
        "for a retry time), in_progress (leased).",
        ["env", "type", "state"],
    )
    for env, by_type in snap.queue.items():
        for source, c in by_type.items():
            for state, n in (
                ("waiting", c.claimable),
                ("delayed", c.delayed),
                ("in_progress", c.in_progress),
            ):
                jobs.add_metric([env, source, state], float(n))
    readable = _gauge(
        "ocr_pool_queue_readable",
        "1 if the environment's queue could be read, else 0.",
        ["env"],
    )
    for env in snap.queue:
        if env not in snap.queue_errors:
            readable.add_metric([env], 1.0)
    for env in snap.queue_errors:
        readable.add_metric([env], 0.0)
    return (jobs, readable)


def _gemini(snap: PoolSnapshot) -> Iterable[Metric]:
    yield _single(
        _gauge("ocr_pool_gemini_readable", "1 if the Gemini usage could be read from Redis."),
        snap.gemini is not None,
    )
    usage = snap.gemini
    if usage is None:
        return
    model = ["model"]
    limit = ["model", "kind"]
    requests = _gauge(
        "ocr_pool_gemini_requests_window", "Fleet requests in the sliding window.", model
    )
    tokens = _gauge(
        "ocr_pool_gemini_tokens_window", "Fleet input tokens in the sliding window.", model
    )
    day = _gauge("ocr_pool_gemini_requests_day", "Fleet requests since the daily reset.", model)
    requests_limit = _gauge(
        "ocr_pool_gemini_requests_window_limit",
        "Requests allowed per window: configured, and effective (times the ceiling).",
        limit,
    )
    tokens_limit = _gauge(
        "ocr_pool_gemini_tokens_window_limit",
        "Input tokens allowed per window: configured, and effective (times the ceiling).",
        limit,
    )
    day_limit = _gauge("ocr_pool_gemini_requests_day_limit", "Requests allowed per day.", model)
    window = _gauge("ocr_pool_gemini_window_seconds", "Length of the sliding window.", model)
    ceiling = _gauge(
        "ocr_pool_gemini_ceiling_ratio",
        "Adaptive ceiling: share of the configured limits currently allowed (0-1).",
        model,
    )
    cooldown = _gauge("ocr_pool_gemini_cooldown_seconds", "Fleet cooldown left after a 429.", model)
    waiting = _gauge("ocr_pool_gemini_waiting", "Requests waiting for the limiter.", model)
    quota_errors = _counter(
        "ocr_pool_gemini_quota_errors_total",
        "429 (quota) answers seen by the fleet, as counted in Redis.",
        model,
    )
    for m in usage.models:
        name = [m.model]
        requests.add_metric(name, float(m.rpm))
        tokens.add_metric(name, float(m.tpm))
        day.add_metric(name, float(m.rpd))
        for family, configured, effective in (
            (requests_limit, m.rpm_limit, m.rpm_effective),
            (tokens_limit, m.tpm_limit, m.tpm_effective),
        ):
            if configured is not None and effective is not None:
                family.add_metric([m.model, "configured"], float(configured))
                family.add_metric([m.model, "effective"], float(effective))
        if m.rpd_limit is not None:
            day_limit.add_metric(name, float(m.rpd_limit))
        window.add_metric(name, float(m.window_seconds))
        ceiling.add_metric(name, float(m.factor))
        cooldown.add_metric(name, max(0.0, float(m.cooldown_seconds)))
        waiting.add_metric(name, float(m.waiting))
        quota_errors.add_metric(name, float(m.stats.get("quota_errors", 0)))
    yield from (
        requests,
        tokens,
        day,
        requests_limit,
        tokens_limit,
        day_limit,
        window,
        ceiling,
        cooldown,
        waiting,
        quota_errors,
    )
    yield _single(
        _gauge(
            "ocr_pool_gemini_fence_seconds",
            "Time left during which nothing is granted after Redis lost the window.",
        ),
        usage.fence_seconds,
    )


def _capacity(snap: PoolSnapshot) -> Iterable[Metric]:
    readable = _gauge(
        "ocr_pool_capacity_readable",
        "1 if this server's capacity ledger was read, 0 if reading failed (absent: not used).",
    )
    state = snap.capacity
    if state is None:
        if snap.capacity_error:
            readable.add_metric([], 0.0)
        yield readable
        return
    readable.add_metric([], 1.0)
    yield readable
    kind = ["kind"]
    cpu = _gauge(
        "ocr_pool_capacity_cpu",
        "vCPU of this server in the ledger: allocated (all programs) and available.",
        kind,
    )
    ram = _gauge(
        "ocr_pool_capacity_ram_gb",
        "RAM (GB) of this server in the ledger: allocated (all programs) and available.",
        kind,
    )
    cpu.add_metric(["allocated"], float(state.allocated.cpu))
    ram.add_metric(["allocated"], float(state.allocated.ram))
    available = state.available
    if available is not None:
        cpu.add_metric(["available"], float(available.cpu))
        ram.add_metric(["available"], float(available.ram))
    yield cpu
    yield ram
    holders = _gauge(
        "ocr_pool_capacity_holders", "Live capacity leases on this server, by kind.", kind
    )
    for holder_kind, n in sorted(state.by_kind.items()):
        holders.add_metric([holder_kind], float(n))
    yield holders
    if state.pressure is not None:
        yield _single(
            _gauge("ocr_pool_capacity_pressure", "1 while admission is paused (host pressure)."),
            state.pressure,
        )
