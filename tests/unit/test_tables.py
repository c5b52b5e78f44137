"""Every table operators read (`status`, `gemini` and its bill, `capacity`, the demo's
summary, the status panel) shows every value whole at 80 columns, and at other widths:
no value is cut (`…`) or wrapped; only labels are shortened, or the table turns into
one block per row."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

import pytest
from rich.console import RenderableType
from rich.text import Text

from capacity import LeaseInfo, Resources, ServerState
from pool.bill import BillRow
from pool.cli.capacity import _holders_table, _servers_table
from pool.cli.demo_run import summary_of
from pool.cli.fleet import pools_table, queue_stats_table
from pool.cli.gemini import bill_table, gemini_table
from pool.status.panel import render_panel
from pool.status.tables import FREE_MIN, Column, FitTable, SideBySide, render_text
from ratelimit import FleetUsage, ModelUsage
from store import SourceStats
from tests.unit.test_panel import WALL, sample_snapshot, sample_stats

WIDTHS = (60, 80, 100, 120, 160, 240)
LITE = "gemini-2.5-flash-lite"
PRO = "gemini-2.5-pro"


# -- the data: long names, large figures -------------------------------------------------------
def queue_stats() -> dict[str, list[SourceStats]]:
    def row(source: str, pending: int, oldest: float | None) -> SourceStats:
        return SourceStats(
            document_source=source,
            pending=pending,
            in_progress=12,
            failed=3_456,
            completed_today=23_456,
            completed_last_hour=1_234,
            avg_wait_seconds=None,
            oldest_pending_seconds=oldest,
            p50_processing_seconds=41.5,
            p95_processing_seconds=1_234.5,
        )

    return {
        "staging": [row("acte", 123_456, 86_400.0), row("index", 0, None)],
        "default": [row("acte", 7, 12.25), row("index", 1_234, 3_600.0)],
    }


def queue_values() -> list[str]:
    return [
        "staging",
        "default",
        "acte",
        "index",
        "123,456",
        "3,456",
        "23,456",
        "1,234",
        "86,400.0",
        "12.2",
        "3,600.0",
        "41.5",
        "1,234.5",
    ]


def usage() -> FleetUsage:
    lite = ModelUsage(
        model=LITE,
        window_seconds=60.0,
        rpm=1_234,
        tpm=1_234_567,
        rpd=12_345,
        rpm_limit=1_600,
        tpm_limit=6_400_000,
        rpd_limit=100_000,
        factor=0.85,
        waiting=12,
        cooldown_seconds=12.5,
        cooldown_reason="429 RESOURCE_EXHAUSTED from generativelanguage",
        stats={"quota_errors": 17, "estimate_error_sum": 1500, "estimate_tokens_sum": 10_000},
    )
    pro = dataclasses.replace(
        lite, model=PRO, rpm=10, tpm=5_000, rpd=50, rpd_limit=None, factor=1.0, waiting=0
    )
    pro = dataclasses.replace(pro, cooldown_seconds=0.0, cooldown_reason="", stats={})
    return FleetUsage(models=(lite, pro), workers=16, fence_seconds=0.0)


def gemini_values() -> list[str]:
    return [
        LITE,
        PRO,
        "1,234 / 1,360 (91%)",
        "1,234,567 / 5,440,000 (23%)",
        "12,345 / 100,000 (12%)",
        "85%",
        "10 / 1,600 (1%)",
        "5,000 / 6,400,000 (0%)",
        "100%",
        "17",
    ]


def bill() -> list[BillRow]:
    return [
        BillRow(LITE, 123_456, 1_234_567_890, 98_765_432, 12_345_678, 1_234.5678),
        BillRow(PRO, 12, 3_456, 789, 0, None),
    ]


def bill_values() -> list[str]:
    return [LITE, PRO, "123,456", "1,234,567,890", "98,765,432", "12,345,678", "1,234.5678"]


def servers() -> list[ServerState]:
    def lease(holder: str, kind: str, cpu: float, ram: float) -> LeaseInfo:
        now = int(WALL * 1000)
        return LeaseInfo(holder, kind, Resources.of(cpu, ram), now - 754_000, now + 29_000, 30_000)

    calm = ServerState(
        server_id="ocr-worker-host-01",
        now_ms=int(WALL * 1000),
        allocated=Resources.of(5.5, 2.25),
        leases=(
            lease("ocr-worker-host-01-3f9a1c-w00", "index", 1.5, 0.75),
            lease("ocr-worker-host-01-3f9a1c-w01", "acte", 1, 0.5),
            lease("registre-extractor-7", "registre", 3, 1),
        ),
        capacity={
            "cpu_available_m": "6400",
            "ram_available_m": "12800",
            "cpu_max": "8",
            "ram_max": "16",
            "cpu_reserve_percent": "20",
            "ram_reserve_percent": "20",
            "cpu_limit_percent": "80",
            "ram_limit_percent": "80",
            "cpu_percent": "30",
            "ram_percent": "41.5",
            "pressure": "0",
        },
    )
    pressed = dataclasses.replace(
        calm,
        server_id="ocr-worker-host-02",
        leases=(),
        allocated=Resources.of(0, 0),
        capacity={**calm.capacity, "pressure": "1", "cpu_percent": "91.3"},
    )
    return [calm, pressed]


def server_values() -> list[str]:
    return [
        "ocr-worker-host-01",
        "ocr-worker-host-02",
        "5.5 / 6.4 (86%)",
        "2.25 / 12.8 (18%)",
        "8 / 16",
        "20 / 20",
        "30 / 41.5",
        "91.3 / 41.5",
        "acte 1, index 1, registre 1",
        "open",
        "paused (cpu 91.3% > 80%)",
    ]


def holder_values() -> list[str]:
    return [
        "ocr-worker-host-01-3f9a1c-w00",
        "ocr-worker-host-01-3f9a1c-w01",
        "registre-extractor-7",
        "registre",
        "1.5",
        "0.75",
        "13m",
        "29.0s",
    ]


def pools() -> dict[str, object]:
    return {
        "pools": {
            "3f9a1c": {
                "server": "ocr-worker-host-01",
                "index": 12,
                "acte": 4,
                "reason": "work 3,456 s index vs 1,234 s acte: the split that finishes soonest",
                "workers": {"w0": {"job": "1", "stolen": True}, "w1": {"job": None}},
            }
        }
    }


def pool_values() -> list[str]:
    return ["3f9a1c", "ocr-worker-host-01", "12", "4"]


CASES: dict[str, tuple[Callable[[], RenderableType], Callable[[], list[str]]]] = {
    "status queue": (lambda: queue_stats_table(queue_stats()), queue_values),
    "status pools": (lambda: pools_table(pools()), pool_values),
    "gemini": (lambda: gemini_table(usage()), gemini_values),
    "gemini bill": (lambda: bill_table("2026-05-01", bill()), bill_values),
    "capacity servers": (lambda: _servers_table(servers()), server_values),
    "capacity holders": (lambda: _holders_table(servers()), holder_values),
    "demo summary": (
        lambda: summary_of(sample_stats().snapshot()),
        lambda: ["index", "acte", "40,000", "250,000", "187.1", "90.0"],
    ),
    "status panel": (
        lambda: render_panel(sample_snapshot(gemini=usage())),
        lambda: [
            *gemini_values()[:2],
            "1,234 / 1,360 (91%)",
            "1.23M / 5.44M (23%)",
            "12,345 / 100,000 (12%)",
            "3.5 / 6.4 (55%)",
            "1.75 / 12.8 (14%)",
            "187.1s",
            "250k",
        ],
    ),
}


def shows_whole(text: str, values: list[str]) -> None:
    assert "…" not in text, text
    missing = [v for v in values if v not in text]
    assert not missing, f"{missing} cut or wrapped in:\n{text}"


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("case", list(CASES))
def test_every_value_whole(case: str, width: int) -> None:
    make, values = CASES[case]
    text = render_text(make(), width)
    shows_whole(text, values())
    assert max(len(line) for line in text.splitlines()) <= width, text


@pytest.mark.parametrize("case", list(CASES))
def test_at_80_columns(case: str) -> None:
    """The widths of the issue: a terminal of 80 columns, and a pipe (Rich's 80)."""
    make, values = CASES[case]
    shows_whole(render_text(make(), 80), values())


def test_status_queue_full_headers_when_wide_narrow_then_blocks() -> None:
    wide = render_text(queue_stats_table(queue_stats()), 200)
    assert "in progress" in wide
    assert "┃" in wide
    tight = render_text(queue_stats_table(queue_stats()), 90)
    assert "in progress" not in tight
    assert "progress" in tight
    assert "┃" not in tight  # no vertical rules
    assert re.search(r"^staging\s+acte\s+123,456\s+12\s+3,456", tight, re.MULTILINE), tight
    blocks = render_text(queue_stats_table(queue_stats()), 80)
    assert "staging · acte" in blocks
    assert re.search(r"^\s+pending\s+123,456\s*$", blocks, re.MULTILINE), blocks
    assert re.search(r"^\s+oldest wait\s+86,400.0\s*$", blocks, re.MULTILINE), blocks


def test_status_queue_of_the_demo_is_a_table_at_80_columns() -> None:
    """Figures of the size the demo shows stay a table (narrow headers) at 80 columns."""
    row = SourceStats("acte", 0, 0, 0, 24, 18, None, None, 0.9, 13.7)
    text = render_text(queue_stats_table({"default": [row, dataclasses.replace(row)]}), 80)
    assert re.search(r"^default\s+acte\s+0\s+0\s+0\s+24\s+18\s+-\s+0.9\s+13.7\s*$", text, re.M)


def test_gemini_model_whole_at_120_columns() -> None:
    """At 120 columns `gemini-2.5-f…` was all one could read of the model."""
    text = render_text(gemini_table(usage()), 120)
    shows_whole(text, gemini_values())
    assert "estimate error" in text


def test_free_text_wraps_at_word_boundaries_only() -> None:
    table = FitTable(
        (Column("pool", justify="left", key=True), Column("n"), Column("reason", free=True)),
        style="light",
    )
    reason = "the ideal share stayed within the hysteresis band, so nothing moved at all"
    table.add_row("3f9a1c", "1,234", reason)
    text = render_text(table, 50)
    assert "…" not in text
    assert "1,234" in text
    assert "3f9a1c" in text
    words = " ".join(line.split("1,234")[-1].strip() for line in text.splitlines()[2:])
    assert " ".join(words.split()) == reason  # every word, in order, none split
    # the free column keeps FREE_MIN columns; below that the table turns into blocks
    blocks = render_text(table, 10 + FREE_MIN)
    assert blocks.splitlines()[0] == "3f9a1c"
    assert re.search(r"^  n\s+1,234\s*$", blocks, re.MULTILINE), blocks


def test_cells_are_not_markup_and_keep_their_style() -> None:
    table = FitTable((Column("a", justify="left"), Column("b")))
    table.add_row("[red]x[/red]", Text("paused", style="red"))
    text = render_text(table, 80)
    assert "[red]x[/red]" in text
    assert "paused" in text
    with pytest.raises(ValueError, match="1 cells for 2 columns"):
        table.add_row("only one")


def test_side_by_side_stacks_when_narrow() -> None:
    left = FitTable((Column("left table", justify="left"), Column("value")), style="light")
    left.add_row("aaaaaaaaaa", "1,234,567")
    right = FitTable((Column("right table", justify="left"), Column("value")), style="light")
    right.add_row("bbbbbbbbbb", "7,654,321")
    wide = render_text(SideBySide(left, right), 120)
    assert any("1,234,567" in line and "7,654,321" in line for line in wide.splitlines())
    narrow = render_text(SideBySide(left, right), 40)
    assert not any("1,234,567" in line and "7,654,321" in line for line in narrow.splitlines())
    shows_whole(narrow, ["1,234,567", "7,654,321", "aaaaaaaaaa", "bbbbbbbbbb"])


def test_panel_title_moves_inside_when_the_border_is_too_short() -> None:
    snap = sample_snapshot(ready=False, ready_reason="3 worker crashes in the last 5 min (limit 3)")
    text = render_text(render_panel(snap), 80)
    assert "…" not in text
    assert text.splitlines()[0].strip("╭─╮") == ""  # no title in the border
    inside = " ".join(line.strip("│ ") for line in text.splitlines()[1:3])
    assert "ocr-pool pool-a on srv-1 · up 1h02m · 4 workers · not ready: 3 worker" in inside
    assert "crashes in the last 5 min (limit 3)" in inside
