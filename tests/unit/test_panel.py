"""The status panel, its plain block (stdout not a terminal), its JSON object and its
one-line form, rendered from a known snapshot; and what `status_printer` picks."""

from __future__ import annotations

import dataclasses
import io
import json
import re

import pytest
from rich.console import Console

from capacity import LeaseInfo, Resources, ServerState
from domain import DocumentSource
from pool.cli.logs import LogFormat
from pool.cli.start import status_printer
from pool.status.panel import compact, duration, panel_json, render_block, render_line, render_panel
from pool.status.snapshot import Allocation, ModeWorkers, PoolSnapshot, tally_workers
from pool.status.stats import PoolStats
from ratelimit import FleetUsage, ModelUsage
from store import SourceComposition
from workers.worker import JobReport, Outcome

WALL = 1_700_000_000.0
FLASH = "gemini-2.5-flash"
PRO = "gemini-2.5-pro"


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def sample_stats() -> PoolStats:
    clock = Clock()
    stats = PoolStats(clock=clock, wall_clock=lambda: WALL + clock.t)
    clock.t += 600
    for i, seconds in enumerate((0.5, 3.0, 45.0, 700.0)):
        stats.record(
            JobReport(
                "w1",
                "prod",
                str(i),
                DocumentSource.INDEX,
                Outcome.COMPLETED,
                seconds,
                gemini_calls=4,
                input_tokens=10_000,
                cache_hit=i == 0,
            )
        )
    stats.record(
        JobReport(
            "w2",
            "prod",
            "77",
            DocumentSource.ACTE,
            Outcome.FAILED,
            12.0,
            error="PDF is corrupt [red]x[/red]\nsecond line",
        )
    )
    stats.record(
        JobReport(
            "w2", "prod", "78", DocumentSource.ACTE, Outcome.REQUEUED, 5.0, error="Gemini 503"
        )
    )
    stats.record(
        JobReport(
            "w3",
            "dev",
            "79",
            DocumentSource.ACTE,
            Outcome.COMPLETED,
            90.0,
            gemini_calls=2,
            input_tokens=250_000,
        )
    )
    return stats


def sample_usage() -> FleetUsage:
    flash = ModelUsage(
        model=FLASH,
        window_seconds=60.0,
        rpm=1234,
        tpm=3_456_789,
        rpd=40_000,
        rpm_limit=1600,
        tpm_limit=6_400_000,
        rpd_limit=100_000,
        factor=0.8,
        waiting=2,
        cooldown_seconds=12.5,
        cooldown_reason="429 from google",
        stats={"quota_errors": 7},
    )
    pro = ModelUsage(
        model=PRO,
        window_seconds=60.0,
        rpm=10,
        tpm=5000,
        rpd=50,
        rpm_limit=150,
        tpm_limit=2_000_000,
        rpd_limit=None,
        factor=1.0,
        waiting=0,
        cooldown_seconds=0.0,
        cooldown_reason="",
    )
    return FleetUsage(models=(flash, pro), workers=6, fence_seconds=0.0)


def sample_capacity() -> ServerState:
    def lease(holder: str, kind: str, cpu: float, ram: float) -> LeaseInfo:
        return LeaseInfo(holder, kind, Resources.of(cpu, ram), 0, 0, 0)

    return ServerState(
        server_id="srv-1",
        now_ms=int(WALL * 1000),
        allocated=Resources.of(3.5, 1.75),
        leases=(
            lease("w1", "index", 1.5, 0.75),
            lease("w2", "acte", 1, 0.5),
            lease("reg", "registre", 1, 0.5),
        ),
        capacity={
            "cpu_available_m": "6400",
            "ram_available_m": "12800",
            "cpu_percent": "42",
            "ram_percent": "55",
            "pressure": "0",
        },
    )


def sample_snapshot(**changes: object) -> PoolSnapshot:
    stats = sample_stats()
    snap = PoolSnapshot(
        pool_id="pool-a",
        server_id="srv-1",
        uptime_seconds=3725.0,
        pool_size=4,
        allocation=Allocation(3, 1, "index backlog 10x acte"),
        workers=tally_workers(
            [("index", "index"), ("index", None), ("index", "acte"), ("acte", "acte")]
        ),
        queue={
            "prod": {
                "index": SourceComposition(120, 3, 2),
                "acte": SourceComposition(7, 1, 1),
            },
            "dev": {
                "index": SourceComposition(0, 0, 0),
                "acte": SourceComposition(5, 0, 4),
            },
        },
        stats=stats.snapshot(),
        gemini=sample_usage(),
        capacity=sample_capacity(),
        ready=True,
        taken_at=WALL + 1630.0,
    )
    return dataclasses.replace(snap, **changes)  # type: ignore[arg-type]


def text_of(snap: PoolSnapshot) -> str:
    console = Console(record=True, width=140, color_system=None)
    console.print(render_panel(snap))
    return console.export_text()


def row(text: str, *cells: str) -> bool:
    """Whether one line of `text` has these cells in order, separated by blanks only."""
    pattern = r"\s+".join(re.escape(c) for c in cells)
    return re.search(rf"(?:^|[\s│]){pattern}(?:$|[\s│])", text, re.MULTILINE) is not None


# -- helpers -------------------------------------------------------------------------------
def test_tally_workers_counts_busy_idle_and_other_type() -> None:
    counts = tally_workers(
        [("index", "index"), ("index", None), ("index", "acte"), ("acte", None), ("acte", None)]
    )
    assert counts["index"] == ModeWorkers(busy=2, idle=1, stolen=1)
    assert counts["acte"] == ModeWorkers(busy=0, idle=2, stolen=0)
    assert counts["acte"].total == 2
    assert tally_workers([]) == {"index": ModeWorkers(), "acte": ModeWorkers()}


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0, "0s"), (42.4, "42s"), (185, "3m05s"), (7620, "2h07m"), (90000, "1d01h")],
)
def test_duration(seconds: float, shown: str) -> None:
    assert duration(seconds) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [(999, "999"), (12_345, "12.3k"), (3_456_789, "3.46M"), (2_000_000, "2M"), (0, "0")],
)
def test_compact(value: float, shown: str) -> None:
    assert compact(value) == shown


# -- the panel -----------------------------------------------------------------------------
def test_title_names_pool_server_uptime_size_and_state() -> None:
    text = text_of(sample_snapshot())
    first = text.splitlines()[0]
    assert "ocr-pool pool-a on srv-1" in first
    assert "up 1h02m" in first
    assert "4 workers" in first
    assert "ready" in first
    assert "not ready" not in first


def test_allocation_and_workers_by_mode() -> None:
    text = text_of(sample_snapshot())
    assert "Allocation: index 3, acte 1 of 4 - index backlog 10x acte" in text
    assert row(text, "mode", "target", "busy", "idle", "other type")
    assert row(text, "index", "3", "2", "1", "1")
    assert row(text, "acte", "1", "1", "0", "0")
    assert row(text, "total", "4", "3", "1", "1")


def test_queue_by_environment_and_type() -> None:
    text = text_of(sample_snapshot())
    assert row(text, "env", "type", "waiting", "delayed", "in progress")
    assert row(text, "prod", "index", "120", "3", "2")
    assert row(text, "prod", "acte", "7", "1", "1")
    assert row(text, "dev", "index", "0", "0", "0")
    assert row(text, "dev", "acte", "5", "0", "4")


def test_gemini_usage_against_effective_limits_with_cooldown_and_ceiling() -> None:
    text = text_of(sample_snapshot())
    assert "Gemini, whole fleet (last 60 s, 6 workers seen)" in text
    # 1600 RPM and 6.4M TPM configured, at an 80% ceiling: 1280 and 5.12M effective.
    assert row(
        text,
        FLASH,
        "1,234 / 1,280 (96%)",
        "3.46M / 5.12M (68%)",
        "40,000 / 100,000 (40%)",
        "80%",
        "2",
        "12.5s 429 from google",
        "7",
    )
    assert row(text, PRO, "10 / 150 (7%)", "5k / 2M (0%)", "50 / -", "100%", "0", "-", "0")


def test_capacity_allocated_against_available() -> None:
    text = text_of(sample_snapshot())
    assert "Capacity of srv-1" in text
    assert row(text, "CPU (vCPU)", "3.5 / 6.4 (55%)", "42%")
    assert row(text, "RAM (GB)", "1.75 / 12.8 (14%)", "55%")
    assert "holders: acte 1, index 1, registre 1" in text
    assert "paused" not in text


def test_capacity_pressure_is_shown() -> None:
    state = dataclasses.replace(
        sample_capacity(), capacity={**sample_capacity().capacity, "pressure": "1"}
    )
    assert "admission paused (host pressure)" in text_of(sample_snapshot(capacity=state))


def test_throughput_and_errors_since_start() -> None:
    text = text_of(sample_snapshot())
    assert "Since start (10m00s)" in text
    # index: 4 completed, 1 from cache, 16 calls, 40k tokens; 4 in the last 5 min = 0.8/min;
    # mean of 0.5, 3, 45 and 700 s.
    assert row(text, "index", "4", "0", "0", "0", "1", "16", "40k", "0.8", "187.1s")
    assert row(text, "acte", "1", "1", "1", "0", "0", "2", "250k", "0.2", "90.0s")
    # the newest acte error, one line, brackets shown as typed (not taken as markup)
    assert "last acte error (requeued, prod 78, 30s ago): Gemini 503" in text
    assert "PDF is corrupt" not in text  # superseded by the newer acte error


def test_error_text_is_not_interpreted_as_markup() -> None:
    stats = PoolStats()
    stats.record(
        JobReport(
            "w", "prod", "9", DocumentSource.INDEX, Outcome.FAILED, 1.0, error="bad [bold]x[/bold]"
        )
    )
    text = text_of(
        sample_snapshot(
            stats=stats.snapshot(),
            allocation=Allocation(2, 2, "reason [red]r[/red]"),
            gemini=None,
            gemini_error="Redis [link]: refused",
        )
    )
    assert "bad [bold]x[/bold]" in text
    assert "reason [red]r[/red]" in text
    assert "Redis [link]: refused" in text


def test_gemini_and_capacity_unavailable_show_why() -> None:
    text = text_of(
        sample_snapshot(
            gemini=None,
            gemini_error="Redis redis://***@cache:6379/0: ConnectionError: refused",
            capacity=None,
            capacity_error="Redis: TimeoutError",
        )
    )
    assert "Gemini: unavailable - Redis redis://***@cache:6379/0: ConnectionError: refused" in text
    assert "Capacity: unavailable - Redis: TimeoutError" in text
    assert "requests / limit" not in text
    assert "CPU (vCPU)" not in text
    # the rest of the panel still renders
    assert row(text, "prod", "index", "120", "3", "2")


def test_capacity_not_used_and_gemini_not_read_yet() -> None:
    text = text_of(sample_snapshot(gemini=None, capacity=None))
    assert "Capacity: not used" in text
    assert "Gemini: unavailable - not read yet" in text


def test_no_gemini_usage_recorded() -> None:
    text = text_of(sample_snapshot(gemini=FleetUsage(models=(), workers=0, fence_seconds=0.0)))
    assert "no Gemini usage recorded yet" in text


def test_queue_errors_are_listed() -> None:
    text = text_of(sample_snapshot(queue_errors={"staging": "connection refused"}))
    assert "queue staging unreadable: connection refused" in text


def test_not_ready_and_stopping_in_title() -> None:
    title = text_of(sample_snapshot(ready=False, ready_reason="no queue\nreachable")).splitlines()[
        0
    ]
    assert "not ready: no queue reachable" in title
    title = text_of(sample_snapshot(stopping=True)).splitlines()[0]
    assert "STOPPING" in title


def test_panel_fits_140_columns_without_wrapping_the_gemini_rows() -> None:
    text = text_of(sample_snapshot())
    assert max(len(line) for line in text.splitlines()) <= 140
    flash_lines = [line for line in text.splitlines() if FLASH in line]
    assert len(flash_lines) == 1
    assert "12.5s 429 from google" in flash_lines[0]


# -- the log line --------------------------------------------------------------------------
def test_render_line_has_the_key_figures_on_one_line() -> None:
    line = render_line(sample_snapshot())
    assert "\n" not in line
    assert line.startswith("pool pool-a on srv-1 | up 1h02m | ready | 4 workers")
    assert "allocation index 3 acte 1 (index backlog 10x acte)" in line
    assert "workers index 2 busy 1 idle 1 on other type, acte 1 busy 0 idle" in line
    assert "prod/index 120 waiting 3 delayed 2 in progress" in line
    assert "dev/acte 5 waiting 0 delayed 4 in progress" in line
    assert (
        f"{FLASH} rpm 1,234 / 1,280 (96%) tpm 3.46M / 5.12M (68%)"
        " rpd 40,000 / 100,000 (40%) ceiling 80% cooldown 12.5s 429 from google"
    ) in line
    assert f"{PRO} rpm 10 / 150 (7%)" in line
    assert "capacity cpu 3.5 / 6.4 (55%) ram GB 1.75 / 12.8 (14%)" in line
    assert "done index 4 (0.8/min, errors 0), acte 1 (0.2/min, errors 2)" in line


def test_render_line_when_sources_are_unavailable() -> None:
    line = render_line(
        sample_snapshot(
            gemini=None,
            gemini_error="Redis: refused\nretrying",
            capacity=None,
            capacity_error="Redis: timeout",
            ready=False,
            ready_reason="starting up",
            queue_errors={"staging": "down"},
        )
    )
    assert "\n" not in line
    assert "not ready (starting up)" in line
    assert "gemini unavailable (Redis: refused retrying)" in line
    assert "capacity unavailable (Redis: timeout)" in line
    assert "staging unreadable" in line
    assert "capacity not used" in render_line(sample_snapshot(capacity=None))
    assert "| stopping |" in render_line(sample_snapshot(stopping=True))


# -- the plain block (stdout not a terminal) ---------------------------------------------------
def test_render_block_is_a_head_line_and_indented_plain_lines() -> None:
    block = render_block(sample_snapshot())
    lines = block.splitlines()
    assert lines[0] == "ocr-pool pool-a on srv-1 | up 1h02m | 4 workers | ready"
    assert all(line.startswith("  ") for line in lines[1:])
    assert not set(block) & set("╭╮╰╯│─┃━…")  # no box drawing, nothing cut
    assert max(len(line) for line in lines) < 200
    assert "  allocation: index 3, acte 1 of 4 - index backlog 10x acte" in lines
    assert (
        "  workers: index target 3, 2 busy, 1 idle, 1 on the other type;"
        " acte target 1, 1 busy, 0 idle"
    ) in lines
    assert "  queue prod index: 120 waiting, 3 delayed, 2 in progress" in lines
    assert "  queue dev acte: 5 waiting, 0 delayed, 4 in progress" in lines
    assert "  gemini, whole fleet (last 60 s, 6 workers seen):" in lines
    assert (
        f"    {FLASH}: requests 1,234 / 1,280 (96%), input tokens 3.46M / 5.12M (68%),"
        " today 40,000 / 100,000 (40%), ceiling 80%, waiting 2, 429s 7,"
        " cooldown 12.5s 429 from google"
    ) in lines
    assert (
        "  capacity of srv-1: CPU 3.5 / 6.4 (55%), RAM GB 1.75 / 12.8 (14%),"
        " host CPU 42% RAM 55%; holders: acte 1, index 1, registre 1"
    ) in lines
    assert (
        "    index: 4 completed, 0 requeued, 0 failed, 0 lost, 1 cache hits, 16 Gemini calls,"
        " 40k input tokens, 0.8/min (5m), mean 187.1s"
    ) in lines
    assert "    last acte error (requeued, prod 78, 30s ago): Gemini 503" in lines


def test_render_block_when_sources_are_unavailable_or_crashing() -> None:
    block = render_block(
        sample_snapshot(
            gemini=None,
            gemini_error="Redis: refused\nretrying [bold]now[/bold]",
            capacity=None,
            capacity_error="Redis: timeout",
            ready=False,
            ready_reason="starting up",
            queue_errors={"staging": "down"},
            worker_crashes=2,
            worker_restarts=1,
            workers_down=1,
        )
    )
    lines = block.splitlines()
    assert lines[0].endswith("| not ready (starting up)")
    assert "  worker crashes 2, restarted 1, down 1" in lines
    assert "  gemini unavailable: Redis: refused retrying [bold]now[/bold]" in lines
    assert "  capacity unavailable: Redis: timeout" in lines
    assert "  queue staging unreadable: down" in lines


# -- the JSON object (OCR_LOG_FORMAT=json) ----------------------------------------------------
def test_panel_json_has_every_figure() -> None:
    data = json.loads(json.dumps(panel_json(sample_snapshot())))
    assert (data["pool"], data["server"], data["state"], data["pool_size"]) == (
        "pool-a",
        "srv-1",
        "ready",
        4,
    )
    assert data["allocation"] == {"index": 3, "acte": 1, "reason": "index backlog 10x acte"}
    assert data["workers"]["index"] == {"target": 3, "busy": 2, "idle": 1, "other_type": 1}
    assert data["queue"]["prod"]["index"] == {"waiting": 120, "delayed": 3, "in_progress": 2}
    flash = data["gemini"]["models"][0]
    assert (flash["model"], flash["rpm"], flash["rpm_effective"]) == (FLASH, 1234, 1280)
    assert data["capacity"]["allocated"] == {"cpu": 3.5, "ram_gb": 1.75}
    assert data["since_start"]["index"]["completed"] == 4
    assert data["since_start"]["index"]["mean_seconds"] == pytest.approx(187.125)
    assert data["last_errors"]["acte"]["message"] == "Gemini 503"
    assert data["supervision"]["worker_crashes"] == 0
    down = panel_json(sample_snapshot(gemini=None, gemini_error="Redis: refused", capacity=None))
    assert down["gemini"] == {"error": "Redis: refused"}
    assert down["capacity"] is None


# -- what the printer picks ---------------------------------------------------------------------
def printed(fmt: LogFormat, terminal: bool) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=terminal, width=80, color_system=None)
    status_printer(console, fmt)(sample_snapshot())
    return buffer.getvalue()


def test_printer_on_a_terminal_draws_the_panel() -> None:
    text = printed("text", terminal=True)
    assert text.startswith("╭─ ocr-pool pool-a on srv-1")
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_printer_not_on_a_terminal_writes_the_plain_block() -> None:
    text = printed("text", terminal=False)
    assert text == render_block(sample_snapshot()) + "\n"
    assert len(text.splitlines()) > 10  # a block, not one line of ~700 characters


def test_printer_with_json_writes_one_object_per_panel() -> None:
    for terminal in (True, False):
        text = printed("json", terminal=terminal)
        (line,) = text.splitlines()
        data = json.loads(line)
        assert (data["level"], data["logger"], data["message"]) == ("INFO", "pool.status", "status")
        assert data["timestamp"]
        assert data["status"] == json.loads(json.dumps(panel_json(sample_snapshot())))
