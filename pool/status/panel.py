"""What a running pool prints of itself (once warmed up, then every
`OCR_STATUS_INTERVAL_MS`): a Rich panel on a terminal, a block of plain lines when
stdout is not one (journald, `docker logs`, a file), one JSON object with
`OCR_LOG_FORMAT=json`; and the one-line summary `render_line`.

All read a `PoolSnapshot` only. Text that comes from outside (allocation reason,
error messages, model and environment names) is never interpreted as Rich markup.
The panel's tables are `FitTable`s: at any width every figure is shown whole
(`pool.status.tables`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.measure import Measurement
from rich.panel import Panel
from rich.text import Text

from capacity import ServerState
from pool.status.snapshot import PoolSnapshot
from pool.status.stats import TYPES, StatsSnapshot
from pool.status.tables import Column, FitTable, SideBySide
from ratelimit import FleetUsage, ModelUsage
from store import SourceComposition

MAX_ERROR_CHARS = 110


# -- formatting ----------------------------------------------------------------------
def one_line(text: str) -> str:
    """`text` with every run of whitespace (newlines included) as one space."""
    return " ".join(text.split())


def clip(text: str, limit: int) -> str:
    text = one_line(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def duration(seconds: float) -> str:
    """A short human duration: 42s, 3m05s, 2h07m, 3d04h."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def num(value: float) -> str:
    """1,234,567 for whole numbers; 1.25 (at most 2 decimals) otherwise."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def compact(value: float) -> str:
    """12,345 -> 12.3k, 3,456,789 -> 3.46M (for token counts)."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return num(value)


def used_of(used: float, limit: float | None, fmt: Callable[[float], str] | None = None) -> str:
    """`used / limit (pct)`; `used / -` when there is no limit."""
    fmt = fmt or num
    if limit is None:
        return f"{fmt(used)} / -"
    pct = f" ({100 * used / limit:.0f}%)" if limit > 0 else ""
    return f"{fmt(used)} / {fmt(limit)}{pct}"


def capacity_used(state: ServerState) -> tuple[str, str]:
    """CPU and RAM as `allocated / available (pct)` (`allocated / -` before a reading)."""
    available = state.available
    return (
        used_of(state.allocated.cpu, None if available is None else available.cpu),
        used_of(state.allocated.ram, None if available is None else available.ram),
    )


def host_percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}%"


def _cooldown(m: ModelUsage) -> str:
    if m.cooldown_seconds <= 0:
        return "-"
    reason = clip(m.cooldown_reason, MAX_ERROR_CHARS) if m.cooldown_reason else ""
    return f"{m.cooldown_seconds:.1f}s {reason}".rstrip()


def _text(value: str, style: str = "") -> Text:
    return Text(value, style=style)


def _table(title: str, *columns: Column) -> FitTable:
    return FitTable(columns, title=title, style="light")


def _key(header: str) -> Column:
    return Column(header, justify="left", key=True)


# -- the panel's parts -----------------------------------------------------------------
def workers_table(snap: PoolSnapshot) -> FitTable:
    table = _table(
        "Workers",
        _key("mode"),
        Column("target"),
        Column("busy"),
        Column("idle"),
        Column("other type", "other\ntype"),
    )
    modes = list(TYPES) + sorted(set(snap.workers) - set(TYPES))
    for mode in modes:
        w = snap.workers.get(mode)
        table.add_row(
            _text(mode),
            str(snap.allocation.of(mode)),
            str(w.busy if w else 0),
            str(w.idle if w else 0),
            str(w.stolen if w else 0),
        )
    table.add_row(
        "total",
        str(snap.pool_size),
        str(snap.busy),
        str(snap.idle),
        str(sum(w.stolen for w in snap.workers.values())),
        style="bold",
    )
    return table


def queue_table(snap: PoolSnapshot) -> RenderableType:
    table = _table(
        "Queue",
        _key("env"),
        _key("type"),
        Column("waiting"),
        Column("delayed"),
        Column("in progress", "in\nprogress"),
    )
    for env in snap.queue:
        by_type: Mapping[str, SourceComposition] = snap.queue[env]
        for source in list(TYPES) + sorted(set(by_type) - set(TYPES)):
            c = by_type.get(source)
            if c is None:
                continue
            table.add_row(
                _text(env),
                _text(source),
                f"{c.claimable:,}",
                f"{c.delayed:,}",
                f"{c.in_progress:,}",
            )
    parts: list[RenderableType] = [table]
    for env, error in sorted(snap.queue_errors.items()):
        parts.append(_text(f"queue {env} unreadable: {clip(error, 200)}", "red"))
    if not snap.queue and not snap.queue_errors:
        parts.append(_text("no queue figures yet", "dim"))
    return Group(*parts)


def gemini_part(usage: FleetUsage | None, error: str | None) -> RenderableType:
    if usage is None:
        why = clip(error, 200) if error else "not read yet"
        return _text(f"Gemini: unavailable - {why}", "red" if error else "dim")
    window = usage.models[0].window_seconds if usage.models else 60.0
    title = f"Gemini, whole fleet (last {window:g} s, {usage.workers} workers seen)"
    if usage.fence_seconds > 0:
        title += f" - fenced {usage.fence_seconds:.1f}s"
    table = _table(
        title,
        _key("model"),
        Column("requests / limit", "requests\n/ limit"),
        Column("input tokens / limit", "input tokens\n/ limit"),
        Column("today / limit", "today\n/ limit"),
        Column("ceiling"),
        Column("waiting"),
        Column("cooldown", justify="left", free=True),
        Column("429s"),
    )
    for m in usage.models:
        table.add_row(
            _text(m.model),
            used_of(m.rpm, m.rpm_effective),
            used_of(m.tpm, m.tpm_effective, compact),
            used_of(m.rpd, m.rpd_limit),
            f"{m.factor:.0%}",
            str(m.waiting),
            _text(_cooldown(m), "yellow" if m.cooldown_seconds > 0 else ""),
            str(m.stats.get("quota_errors", 0)),
        )
    if not usage.models:
        return Group(table, _text("no Gemini usage recorded yet", "dim"))
    return table


def capacity_part(state: ServerState | None, error: str | None) -> RenderableType:
    if state is None:
        if error:
            return _text(f"Capacity: unavailable - {clip(error, 200)}", "red")
        return _text("Capacity: not used", "dim")
    cpu, ram = capacity_used(state)
    table = _table(
        f"Capacity of {state.server_id} (all programs)",
        _key(""),
        Column("allocated / available", "allocated\n/ available"),
        Column("host %"),
    )
    table.add_row("CPU (vCPU)", cpu, host_percent(state.host_cpu_percent))
    table.add_row("RAM (GB)", ram, host_percent(state.host_ram_percent))
    holders = ", ".join(f"{kind} {n}" for kind, n in sorted(state.by_kind.items())) or "none"
    notes = f"holders: {holders}"
    if state.costs:
        notes += f"; charged {state.costs}"
    if state.pressure:
        pressing = f": {state.pressing}" if state.pressing else ""
        notes += f"; admission paused (host pressure{pressing}), each pool keeps one job going"
    return Group(table, _text(notes, "yellow" if state.pressure else "dim"))


def throughput_part(stats: StatsSnapshot, now: float) -> RenderableType:
    table = _table(
        f"Since start ({duration(stats.uptime_seconds)})",
        _key("type"),
        Column("completed", "done"),
        Column("requeued"),
        Column("failed"),
        Column("lost"),
        Column("cache hits", "cache\nhits"),
        Column("Gemini calls", "Gemini\ncalls"),
        Column("input tokens", "input\ntokens"),
        Column("per min (5m)", "per min\n(5m)"),
        Column("mean time", "mean\ntime"),
    )
    for source in TYPES:
        jobs = stats.jobs.get(source, {})
        mean = stats.durations[source].mean_seconds if source in stats.durations else None
        table.add_row(
            source,
            f"{jobs.get('completed', 0):,}",
            f"{jobs.get('requeued', 0):,}",
            f"{jobs.get('failed', 0):,}",
            f"{jobs.get('lost', 0):,}",
            f"{stats.cache_hits.get(source, 0):,}",
            f"{stats.gemini_calls.get(source, 0):,}",
            compact(stats.input_tokens.get(source, 0)),
            f"{stats.per_minute.get(source, 0.0):.1f}",
            "-" if mean is None else f"{mean:.1f}s",
        )
    parts: list[RenderableType] = [table]
    for source, err in sorted(stats.last_error.items()):
        ago = f", {duration(now - err.at)} ago" if now and err.at else ""
        line = (
            f"last {source} error ({err.outcome}, {err.env} {err.job_id}{ago}): "
            f"{clip(err.message, MAX_ERROR_CHARS)}"
        )
        parts.append(_text(line, "red" if err.outcome == "failed" else "yellow"))
    return Group(*parts)


def _title(snap: PoolSnapshot) -> Text:
    title = Text(f"ocr-pool {snap.pool_id} on {snap.server_id}", style="bold")
    title.append(f" · up {duration(snap.uptime_seconds)} · {snap.pool_size} workers · ")
    if snap.stopping:
        title.append("STOPPING", style="bold yellow")
    elif snap.ready:
        title.append("ready", style="green")
    else:
        reason = one_line(snap.ready_reason) or "starting"
        title.append(f"not ready: {clip(reason, 60)}", style="red")
    return title


def allocation_line(snap: PoolSnapshot) -> Text:
    a = snap.allocation
    line = Text("Allocation: ", style="bold")
    line.append(f"index {a.index}, acte {a.acte} of {snap.pool_size}")
    if a.reason:
        line.append(f" - {clip(a.reason, 160)}")
    return line


def supervision_text(snap: PoolSnapshot) -> str:
    """Worker crashes and restarts since start, workers down, the last crash; empty
    when no worker ever crashed."""
    if not snap.worker_crashes and not snap.workers_down:
        return ""
    text = (
        f"worker crashes {snap.worker_crashes}, restarted {snap.worker_restarts}, "
        f"down {snap.workers_down}"
    )
    crash = snap.last_crash
    if crash is not None:
        ago = f", {duration(snap.taken_at - crash.at)} ago" if snap.taken_at and crash.at else ""
        text += f"; last: {one_line(crash.worker)}{ago}: {clip(crash.error, MAX_ERROR_CHARS)}"
    return text


def supervision_line(snap: PoolSnapshot) -> Text | None:
    text = supervision_text(snap)
    if not text:
        return None
    crashing = not snap.ready and snap.ready_code == "worker_crashes"
    return _text(text[0].upper() + text[1:], "red" if crashing else "yellow")


class _TitledPanel:
    """A panel with its title in the top border when it fits there, else as the body's
    first line (a border title is cut, not wrapped)."""

    def __init__(self, body: RenderableType, title: Text) -> None:
        self.body = body
        self.title = title

    def _panel(self, width: int) -> Panel:
        if cell_len(self.title.plain) + 6 <= width:
            return Panel(self.body, title=self.title, title_align="left", expand=False)
        return Panel(Group(self.title, Text(""), self.body), expand=False)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self._panel(options.max_width)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self._panel(options.max_width))


def render_panel(snap: PoolSnapshot) -> RenderableType:
    """The whole status panel."""
    top = SideBySide(workers_table(snap), capacity_part(snap.capacity, snap.capacity_error))
    crashes = supervision_line(snap)
    sections: list[RenderableType] = [
        allocation_line(snap) if crashes is None else Group(allocation_line(snap), crashes),
        top,
        queue_table(snap),
        gemini_part(snap.gemini, snap.gemini_error),
        throughput_part(snap.stats, snap.taken_at),
    ]
    body: list[RenderableType] = []
    for section in sections:
        if body:
            body.append(Text(""))
        body.append(section)
    return _TitledPanel(Group(*body), _title(snap))


# -- the log line ------------------------------------------------------------------------
def _line_queue(snap: PoolSnapshot) -> str:
    items = []
    for env, by_type in snap.queue.items():
        for source, c in by_type.items():
            items.append(
                f"{one_line(env)}/{one_line(source)} {c.claimable} waiting"
                f" {c.delayed} delayed {c.in_progress} in progress"
            )
    for env in sorted(snap.queue_errors):
        items.append(f"{one_line(env)} unreadable")
    return "queue " + (", ".join(items) if items else "-")


def _line_gemini(snap: PoolSnapshot) -> str:
    if snap.gemini is None:
        return "gemini unavailable" + (
            f" ({clip(snap.gemini_error, 120)})" if snap.gemini_error else ""
        )
    items = []
    for m in snap.gemini.models:
        item = (
            f"{one_line(m.model)} rpm {used_of(m.rpm, m.rpm_effective)}"
            f" tpm {used_of(m.tpm, m.tpm_effective, compact)} rpd {used_of(m.rpd, m.rpd_limit)}"
            f" ceiling {m.factor:.0%}"
        )
        if m.cooldown_seconds > 0:
            item += f" cooldown {_cooldown(m)}"
        items.append(item)
    return "gemini " + (", ".join(items) if items else "no usage")


def _line_capacity(snap: PoolSnapshot) -> str:
    state = snap.capacity
    if state is None:
        if snap.capacity_error:
            return f"capacity unavailable ({clip(snap.capacity_error, 120)})"
        return "capacity not used"
    cpu, ram = capacity_used(state)
    pressure = f" PRESSURE {state.pressing}".rstrip() if state.pressure else ""
    return f"capacity cpu {cpu} ram GB {ram}{pressure}"


def render_line(snap: PoolSnapshot) -> str:
    """The panel's key figures as one plain line (for logs, when not on a terminal)."""
    if snap.stopping:
        state = "stopping"
    elif snap.ready:
        state = "ready"
    else:
        state = f"not ready ({clip(snap.ready_reason or 'starting', 80)})"
    alloc = f"allocation index {snap.allocation.index} acte {snap.allocation.acte}"
    if snap.allocation.reason:
        alloc += f" ({clip(snap.allocation.reason, 80)})"
    workers = ", ".join(
        f"{one_line(mode)} {w.busy} busy {w.idle} idle"
        + (f" {w.stolen} on other type" if w.stolen else "")
        for mode, w in snap.workers.items()
    )
    stats = snap.stats
    done = ", ".join(
        f"{source} {stats.jobs.get(source, {}).get('completed', 0)}"
        f" ({stats.per_minute.get(source, 0.0):.1f}/min, errors {stats.errors(source)})"
        for source in TYPES
    )
    parts = [
        f"pool {one_line(snap.pool_id)} on {one_line(snap.server_id)}",
        f"up {duration(snap.uptime_seconds)}",
        state,
        f"{snap.pool_size} workers",
        *[text for text in (supervision_text(snap),) if text],
        alloc,
        f"workers {workers or '-'}",
        _line_queue(snap),
        _line_gemini(snap),
        _line_capacity(snap),
        f"done {done}",
    ]
    return " | ".join(parts)


# -- the plain block (stdout not a terminal) ------------------------------------------------
def _state(snap: PoolSnapshot) -> str:
    if snap.stopping:
        return "stopping"
    if snap.ready:
        return "ready"
    return f"not ready ({clip(snap.ready_reason or 'starting', 80)})"


def _block_gemini(snap: PoolSnapshot) -> list[str]:
    usage = snap.gemini
    if usage is None:
        why = clip(snap.gemini_error, 200) if snap.gemini_error else "not read yet"
        return [f"gemini unavailable: {why}"]
    if not usage.models:
        return ["gemini: no usage recorded yet"]
    window = usage.models[0].window_seconds
    fence = f", fenced {usage.fence_seconds:.1f}s" if usage.fence_seconds > 0 else ""
    lines = [f"gemini, whole fleet (last {window:g} s, {usage.workers} workers seen{fence}):"]
    for m in usage.models:
        line = (
            f"  {one_line(m.model)}: requests {used_of(m.rpm, m.rpm_effective)},"
            f" input tokens {used_of(m.tpm, m.tpm_effective, compact)},"
            f" today {used_of(m.rpd, m.rpd_limit)}, ceiling {m.factor:.0%},"
            f" waiting {m.waiting}, 429s {m.stats.get('quota_errors', 0)}"
        )
        if m.cooldown_seconds > 0:
            line += f", cooldown {_cooldown(m)}"
        lines.append(line)
    return lines


def _block_capacity(snap: PoolSnapshot) -> str:
    state = snap.capacity
    if state is None:
        if snap.capacity_error:
            return f"capacity unavailable: {clip(snap.capacity_error, 200)}"
        return "capacity: not used"
    cpu, ram = capacity_used(state)
    cpu_host, ram_host = host_percent(state.host_cpu_percent), host_percent(state.host_ram_percent)
    host = f"host CPU {cpu_host} RAM {ram_host}"
    holders = ", ".join(f"{kind} {n}" for kind, n in sorted(state.by_kind.items())) or "none"
    line = f"capacity of {one_line(state.server_id)}: CPU {cpu}, RAM GB {ram}, {host}"
    line += f"; holders: {holders}"
    if state.pressure:
        pressing = f": {state.pressing}" if state.pressing else ""
        line += f"; admission paused (host pressure{pressing})"
    return line


def _block_done(stats: StatsSnapshot, now: float) -> list[str]:
    lines = []
    for source in TYPES:
        jobs = stats.jobs.get(source, {})
        mean = stats.durations[source].mean_seconds if source in stats.durations else None
        lines.append(
            f"{source}: {jobs.get('completed', 0):,} completed, {jobs.get('requeued', 0):,}"
            f" requeued, {jobs.get('failed', 0):,} failed, {jobs.get('lost', 0):,} lost,"
            f" {stats.cache_hits.get(source, 0):,} cache hits,"
            f" {stats.gemini_calls.get(source, 0):,} Gemini calls,"
            f" {compact(stats.input_tokens.get(source, 0))} input tokens,"
            f" {stats.per_minute.get(source, 0.0):.1f}/min (5m),"
            f" mean {'-' if mean is None else f'{mean:.1f}s'}"
        )
    for source, err in sorted(stats.last_error.items()):
        ago = f", {duration(now - err.at)} ago" if now and err.at else ""
        lines.append(
            f"last {source} error ({err.outcome}, {one_line(err.env)} {one_line(err.job_id)}"
            f"{ago}): {clip(err.message, MAX_ERROR_CHARS)}"
        )
    return lines


def render_block(snap: PoolSnapshot) -> str:
    """The panel as plain lines, for a stdout that is not a terminal (journald,
    `docker logs`, a file): a head line, then one indented line per part; every figure
    whole, no markup, no box drawing, no line longer than its content needs."""
    a = snap.allocation
    head = (
        f"ocr-pool {one_line(snap.pool_id)} on {one_line(snap.server_id)} | up"
        f" {duration(snap.uptime_seconds)} | {snap.pool_size} workers | {_state(snap)}"
    )
    lines: list[str] = []
    crashes = supervision_text(snap)
    if crashes:
        lines.append(crashes)
    reason = f" - {clip(a.reason, 160)}" if a.reason else ""
    lines.append(f"allocation: index {a.index}, acte {a.acte} of {snap.pool_size}{reason}")
    modes = list(TYPES) + sorted(set(snap.workers) - set(TYPES))
    workers = "; ".join(
        f"{one_line(mode)} target {a.of(mode)}, {w.busy} busy, {w.idle} idle"
        + (f", {w.stolen} on the other type" if w.stolen else "")
        for mode in modes
        if (w := snap.workers.get(mode)) is not None
    )
    lines.append(f"workers: {workers or '-'}")
    for env, by_type in snap.queue.items():
        for source in list(TYPES) + sorted(set(by_type) - set(TYPES)):
            c = by_type.get(source)
            if c is not None:
                lines.append(
                    f"queue {one_line(env)} {one_line(source)}: {c.claimable:,} waiting,"
                    f" {c.delayed:,} delayed, {c.in_progress:,} in progress"
                )
    for env, error in sorted(snap.queue_errors.items()):
        lines.append(f"queue {one_line(env)} unreadable: {clip(error, 200)}")
    if not snap.queue and not snap.queue_errors:
        lines.append("queue: no figures yet")
    lines += _block_gemini(snap)
    lines.append(_block_capacity(snap))
    done = _block_done(snap.stats, snap.taken_at)
    lines.append(f"since start ({duration(snap.stats.uptime_seconds)}):")
    lines += [f"  {line}" for line in done]
    return "\n".join([head, *(f"  {line}" for line in lines)])


# -- the JSON object (OCR_LOG_FORMAT=json) --------------------------------------------------
def _iso(epoch: float) -> str | None:
    if not epoch:
        return None
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="milliseconds")


def _capacity_json(snap: PoolSnapshot) -> dict[str, Any] | None:
    state = snap.capacity
    if state is None:
        return {"error": snap.capacity_error} if snap.capacity_error else None
    available = state.available
    return {
        "server": state.server_id,
        "allocated": {"cpu": state.allocated.cpu, "ram_gb": state.allocated.ram},
        "available": None if available is None else {"cpu": available.cpu, "ram_gb": available.ram},
        "host_percent": {"cpu": state.host_cpu_percent, "ram": state.host_ram_percent},
        "pressure": state.pressure,
        "pressing": state.pressing or None,
        "holders": dict(state.by_kind),
    }


def panel_json(snap: PoolSnapshot) -> dict[str, Any]:
    """The panel as one JSON-ready object: every figure, names as given, no markup."""
    stats = snap.stats
    modes = list(TYPES) + sorted(set(snap.workers) - set(TYPES))
    crash = snap.last_crash
    return {
        "pool": snap.pool_id,
        "server": snap.server_id,
        "taken_at": _iso(snap.taken_at),
        "uptime_seconds": round(snap.uptime_seconds, 1),
        "state": "stopping" if snap.stopping else "ready" if snap.ready else "not ready",
        "not_ready_reason": None if snap.ready or snap.stopping else snap.ready_reason,
        "pool_size": snap.pool_size,
        "allocation": {
            "index": snap.allocation.index,
            "acte": snap.allocation.acte,
            "reason": snap.allocation.reason,
        },
        "workers": {
            mode: {
                "target": snap.allocation.of(mode),
                "busy": w.busy,
                "idle": w.idle,
                "other_type": w.stolen,
            }
            for mode in modes
            if (w := snap.workers.get(mode)) is not None
        },
        "queue": {
            env: {
                source: {
                    "waiting": c.claimable,
                    "delayed": c.delayed,
                    "in_progress": c.in_progress,
                }
                for source, c in by_type.items()
            }
            for env, by_type in snap.queue.items()
        },
        "queue_errors": dict(snap.queue_errors),
        "gemini": snap.gemini.as_json()
        if snap.gemini is not None
        else {"error": snap.gemini_error or "not read yet"},
        "capacity": _capacity_json(snap),
        "since_start": {
            source: {
                "completed": stats.jobs.get(source, {}).get("completed", 0),
                "requeued": stats.jobs.get(source, {}).get("requeued", 0),
                "failed": stats.jobs.get(source, {}).get("failed", 0),
                "lost": stats.jobs.get(source, {}).get("lost", 0),
                "cache_hits": stats.cache_hits.get(source, 0),
                "gemini_calls": stats.gemini_calls.get(source, 0),
                "input_tokens": stats.input_tokens.get(source, 0),
                "per_minute": round(stats.per_minute.get(source, 0.0), 3),
                "mean_seconds": None
                if source not in stats.durations
                else stats.durations[source].mean_seconds,
            }
            for source in TYPES
        },
        "last_errors": {
            source: {
                "at": _iso(err.at),
                "env": err.env,
                "job_id": err.job_id,
                "outcome": err.outcome,
                "message": err.message,
            }
            for source, err in sorted(stats.last_error.items())
        },
        "supervision": {
            "worker_crashes": snap.worker_crashes,
            "worker_restarts": snap.worker_restarts,
            "workers_down": snap.workers_down,
            "last_crash": None
            if crash is None
            else {"worker": crash.worker, "error": crash.error, "at": _iso(crash.at)},
        },
    }
