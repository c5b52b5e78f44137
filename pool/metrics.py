"""A pool's figures in the Prometheus text exposition format (version 0.0.4).

Written by hand rather than with `prometheus_client`: everything comes from one
`PoolSnapshot` taken per scrape, so there is no registry to keep, and the format is
small — `# HELP` / `# TYPE` once per family, then `name{label="value"} number`
lines, with backslash, double quote and newline escaped in label values (backslash
and newline in help texts).

Families whose source could not be read (Gemini or capacity from Redis) are left
out of that scrape; `ocr_pool_gemini_readable` / `ocr_pool_capacity_readable` say so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from pool.snapshot import PoolSnapshot
from pool.stats import DURATION_BUCKETS, TYPES
from pool.supervision import NotReady

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Labels = Mapping[str, str]


def escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def format_bound(bound: float) -> str:
    """A histogram `le` value as the Prometheus clients write it: 1.0, 2.5, +Inf."""
    return "+Inf" if math.isinf(bound) else repr(float(bound))


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{escape_label_value(str(v))}"' for k, v in labels.items())
    return "{" + inner + "}"


class Exposition:
    """Metric families in order; samples of one family are written together."""

    def __init__(self) -> None:
        self._families: dict[str, tuple[str, str, list[str]]] = {}

    def family(self, name: str, kind: str, help_text: str) -> None:
        if name not in self._families:
            self._families[name] = (kind, help_text, [])

    def sample(
        self,
        family: str,
        value: float,
        labels: Labels | None = None,
        *,
        suffix: str = "",
    ) -> None:
        self._families[family][2].append(
            f"{family}{suffix}{_labels(labels or {})} {format_value(value)}"
        )

    def render(self) -> str:
        lines: list[str] = []
        for name, (kind, help_text, samples) in self._families.items():
            if not samples:
                continue
            lines.append(f"# HELP {name} {escape_help(help_text)}")
            lines.append(f"# TYPE {name} {kind}")
            lines.extend(samples)
        return "\n".join(lines) + "\n"


def render_metrics(snap: PoolSnapshot) -> str:
    """The whole exposition for one scrape."""
    x = Exposition()
    _pool(x, snap)
    _jobs(x, snap)
    _spent(x, snap)
    _queue(x, snap)
    _gemini(x, snap)
    _capacity(x, snap)
    return x.render()


def _pool(x: Exposition, snap: PoolSnapshot) -> None:
    x.family("ocr_pool_info", "gauge", "Identity of this pool (value always 1).")
    x.sample("ocr_pool_info", 1, {"pool_id": snap.pool_id, "server_id": snap.server_id})
    x.family("ocr_pool_ready", "gauge", "1 when the pool is ready to work, else 0.")
    x.sample("ocr_pool_ready", snap.ready)
    x.family("ocr_pool_stopping", "gauge", "1 once the pool is finishing its jobs to stop.")
    x.sample("ocr_pool_stopping", snap.stopping)
    x.family("ocr_pool_uptime_seconds", "gauge", "Seconds since the pool started.")
    x.sample("ocr_pool_uptime_seconds", snap.uptime_seconds)
    x.family("ocr_pool_size_workers", "gauge", "Workers in this pool (OCR_WORKER_POOL_SIZE).")
    x.sample("ocr_pool_size_workers", snap.pool_size)
    x.family(
        "ocr_pool_allocation_workers", "gauge", "Workers the manager currently assigns per type."
    )
    for source in TYPES:
        x.sample("ocr_pool_allocation_workers", snap.allocation.of(source), {"type": source})
    x.family("ocr_pool_workers", "gauge", "Workers per mode, busy (on a job) or idle.")
    x.family(
        "ocr_pool_workers_stolen",
        "gauge",
        "Busy workers whose job is of the other type than their mode (work stealing).",
    )
    for mode, w in snap.workers.items():
        x.sample("ocr_pool_workers", w.busy, {"mode": mode, "state": "busy"})
        x.sample("ocr_pool_workers", w.idle, {"mode": mode, "state": "idle"})
        x.sample("ocr_pool_workers_stolen", w.stolen, {"mode": mode})
    _supervision(x, snap)


def _supervision(x: Exposition, snap: PoolSnapshot) -> None:
    x.family(
        "ocr_pool_not_ready",
        "gauge",
        "1 for the reason the pool is not ready (warming_up, stopping, worker_crashes), "
        "0 for the others.",
    )
    codes = [code.value for code in NotReady]
    if snap.ready_code and snap.ready_code not in codes:
        codes.append(snap.ready_code)
    for code in codes:
        x.sample("ocr_pool_not_ready", not snap.ready and snap.ready_code == code, {"reason": code})
    x.family(
        "ocr_pool_workers_down",
        "gauge",
        "Workers that crashed and wait out their restart delay.",
    )
    x.sample("ocr_pool_workers_down", snap.workers_down)
    x.family("ocr_pool_worker_crashes_total", "counter", "Worker task crashes since start.")
    x.sample("ocr_pool_worker_crashes_total", snap.worker_crashes)
    x.family(
        "ocr_pool_worker_restarts_total", "counter", "Workers restarted after a crash since start."
    )
    x.sample("ocr_pool_worker_restarts_total", snap.worker_restarts)


def _jobs(x: Exposition, snap: PoolSnapshot) -> None:
    stats = snap.stats
    x.family("ocr_pool_jobs_total", "counter", "Jobs finished by this pool, by type and outcome.")
    for source, by_outcome in stats.jobs.items():
        for outcome, n in by_outcome.items():
            x.sample("ocr_pool_jobs_total", n, {"type": source, "outcome": outcome})
    counters: tuple[tuple[str, Mapping[str, float], str], ...] = (
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
    for name, values, help_text in counters:
        x.family(name, "counter", help_text)
        for source, value in values.items():
            x.sample(name, value, {"type": source})
    name = "ocr_pool_job_duration_seconds"
    x.family(name, "histogram", "Time to process a completed job, from claim to result.")
    for source, d in stats.durations.items():
        for bound, cumulative in zip(DURATION_BUCKETS, d.buckets, strict=True):
            labels = {"type": source, "le": format_bound(bound)}
            x.sample(name, cumulative, labels, suffix="_bucket")
        x.sample(name, d.sum_seconds, {"type": source}, suffix="_sum")
        x.sample(name, d.count, {"type": source}, suffix="_count")
    x.family(
        "ocr_pool_throughput_jobs_per_minute",
        "gauge",
        "Jobs completed per minute over the last 5 minutes.",
    )
    for source, rate in stats.per_minute.items():
        x.sample("ocr_pool_throughput_jobs_per_minute", rate, {"type": source})


def _spent(x: Exposition, snap: PoolSnapshot) -> None:
    name = "ocr_pool_gemini_model_tokens_total"
    x.family(name, "counter", "Gemini tokens this pool was billed for, by model and kind.")
    for row in snap.spent:
        for kind, n in (
            ("input", row.input_tokens),
            ("output", row.output_tokens),
            ("thinking", row.thinking_tokens),
        ):
            x.sample(name, n, {"model": row.model, "kind": kind})
    name = "ocr_pool_gemini_model_cost_usd_total"
    x.family(name, "counter", "What this pool's Gemini calls cost, by model (priced models).")
    for row in snap.spent:
        if row.cost_usd is not None:
            x.sample(name, row.cost_usd, {"model": row.model})


def _queue(x: Exposition, snap: PoolSnapshot) -> None:
    x.family(
        "ocr_pool_queue_jobs",
        "gauge",
        "Queue rows per environment and type: waiting (claimable now), delayed (waiting "
        "for a retry time), in_progress (leased).",
    )
    for env, by_type in snap.queue.items():
        for source, c in by_type.items():
            for state, n in (
                ("waiting", c.claimable),
                ("delayed", c.delayed),
                ("in_progress", c.in_progress),
            ):
                x.sample("ocr_pool_queue_jobs", n, {"env": env, "type": source, "state": state})
    x.family(
        "ocr_pool_queue_readable", "gauge", "1 if the environment's queue could be read, else 0."
    )
    for env in snap.queue:
        if env not in snap.queue_errors:
            x.sample("ocr_pool_queue_readable", 1, {"env": env})
    for env in snap.queue_errors:
        x.sample("ocr_pool_queue_readable", 0, {"env": env})


def _gemini(x: Exposition, snap: PoolSnapshot) -> None:
    x.family("ocr_pool_gemini_readable", "gauge", "1 if the Gemini usage could be read from Redis.")
    x.sample("ocr_pool_gemini_readable", snap.gemini is not None)
    usage = snap.gemini
    if usage is None:
        return
    families = (
        ("ocr_pool_gemini_requests_window", "gauge", "Fleet requests in the sliding window."),
        ("ocr_pool_gemini_tokens_window", "gauge", "Fleet input tokens in the sliding window."),
        ("ocr_pool_gemini_requests_day", "gauge", "Fleet requests since the daily reset."),
        (
            "ocr_pool_gemini_requests_window_limit",
            "gauge",
            "Requests allowed per window: configured, and effective (times the ceiling).",
        ),
        (
            "ocr_pool_gemini_tokens_window_limit",
            "gauge",
            "Input tokens allowed per window: configured, and effective (times the ceiling).",
        ),
        ("ocr_pool_gemini_requests_day_limit", "gauge", "Requests allowed per day."),
        ("ocr_pool_gemini_window_seconds", "gauge", "Length of the sliding window."),
        (
            "ocr_pool_gemini_ceiling_ratio",
            "gauge",
            "Adaptive ceiling: share of the configured limits currently allowed (0-1).",
        ),
        ("ocr_pool_gemini_cooldown_seconds", "gauge", "Fleet cooldown left after a 429."),
        ("ocr_pool_gemini_waiting", "gauge", "Requests waiting for the limiter."),
        (
            "ocr_pool_gemini_quota_errors_total",
            "counter",
            "429 (quota) answers seen by the fleet, as counted in Redis.",
        ),
    )
    for name, kind, help_text in families:
        x.family(name, kind, help_text)
    for m in usage.models:
        model = {"model": m.model}
        x.sample("ocr_pool_gemini_requests_window", m.rpm, model)
        x.sample("ocr_pool_gemini_tokens_window", m.tpm, model)
        x.sample("ocr_pool_gemini_requests_day", m.rpd, model)
        for name, configured, effective in (
            ("ocr_pool_gemini_requests_window_limit", m.rpm_limit, m.rpm_effective),
            ("ocr_pool_gemini_tokens_window_limit", m.tpm_limit, m.tpm_effective),
        ):
            if configured is not None and effective is not None:
                x.sample(name, configured, {**model, "kind": "configured"})
                x.sample(name, effective, {**model, "kind": "effective"})
        if m.rpd_limit is not None:
            x.sample("ocr_pool_gemini_requests_day_limit", m.rpd_limit, model)
        x.sample("ocr_pool_gemini_window_seconds", m.window_seconds, model)
        x.sample("ocr_pool_gemini_ceiling_ratio", m.factor, model)
        x.sample("ocr_pool_gemini_cooldown_seconds", max(0.0, m.cooldown_seconds), model)
        x.sample("ocr_pool_gemini_waiting", m.waiting, model)
        x.sample("ocr_pool_gemini_quota_errors_total", m.stats.get("quota_errors", 0), model)
    x.family(
        "ocr_pool_gemini_fence_seconds",
        "gauge",
        "Time left during which nothing is granted after Redis lost the window.",
    )
    x.sample("ocr_pool_gemini_fence_seconds", usage.fence_seconds)


def _capacity(x: Exposition, snap: PoolSnapshot) -> None:
    x.family(
        "ocr_pool_capacity_readable",
        "gauge",
        "1 if this server's capacity ledger was read, 0 if reading failed (absent: not used).",
    )
    state = snap.capacity
    if state is None:
        if snap.capacity_error:
            x.sample("ocr_pool_capacity_readable", 0)
        return
    x.sample("ocr_pool_capacity_readable", 1)
    x.family(
        "ocr_pool_capacity_cpu",
        "gauge",
        "vCPU of this server in the ledger: allocated (all programs) and available.",
    )
    x.family(
        "ocr_pool_capacity_ram_gb",
        "gauge",
        "RAM (GB) of this server in the ledger: allocated (all programs) and available.",
    )
    available = state.available
    x.sample("ocr_pool_capacity_cpu", state.allocated.cpu, {"kind": "allocated"})
    x.sample("ocr_pool_capacity_ram_gb", state.allocated.ram, {"kind": "allocated"})
    if available is not None:
        x.sample("ocr_pool_capacity_cpu", available.cpu, {"kind": "available"})
        x.sample("ocr_pool_capacity_ram_gb", available.ram, {"kind": "available"})
    x.family("ocr_pool_capacity_holders", "gauge", "Live capacity leases on this server, by kind.")
    for kind, n in sorted(state.by_kind.items()):
        x.sample("ocr_pool_capacity_holders", n, {"kind": kind})
    if state.pressure is not None:
        x.family(
            "ocr_pool_capacity_pressure", "gauge", "1 while admission is paused (host pressure)."
        )
        x.sample("ocr_pool_capacity_pressure", state.pressure)
