"""The Prometheus exposition, parsed back: families, values, labels, escaping."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest

from pool.metrics import (
    CONTENT_TYPE,
    Exposition,
    escape_label_value,
    format_bound,
    format_value,
    render_metrics,
)
from pool.snapshot import PoolSnapshot
from pool.stats import DURATION_BUCKETS, PoolStats
from ratelimit import FleetUsage
from tests.test_panel import FLASH, PRO, sample_snapshot
from workers.store import DocumentSource
from workers.worker import JobReport, Outcome

Labels = tuple[tuple[str, str], ...]


# -- a small parser of the text format 0.0.4 --------------------------------------------
@dataclass
class Family:
    name: str
    help: str | None = None
    type: str | None = None
    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)


def _unescape(text: str, allowed: str) -> str:
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            nxt = text[i + 1]
            assert nxt in allowed, f"bad escape \\{nxt} in {text!r}"
            out.append({"\\": "\\", "n": "\n", '"': '"'}[nxt])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _parse_labels(text: str) -> tuple[dict[str, str], str]:
    """`{a="x",b="y"} rest` -> ({a: x, b: y}, rest)."""
    assert text[0] == "{"
    labels: dict[str, str] = {}
    i = 1
    while text[i] != "}":
        eq = text.index("=", i)
        name = text[i:eq]
        assert name.isidentifier(), name
        assert text[eq + 1] == '"'
        j = eq + 2
        raw = []
        while text[j] != '"':
            if text[j] == "\\":
                raw.append(text[j : j + 2])
                j += 2
            else:
                raw.append(text[j])
                j += 1
        assert name not in labels, f"label {name} twice"
        labels[name] = _unescape("".join(raw), '\\n"')
        i = j + 1
        if text[i] == ",":
            i += 1
    return labels, text[i + 1 :]


def _value(text: str) -> float:
    return {"+Inf": math.inf, "-Inf": -math.inf, "NaN": math.nan}.get(text) or float(text)


def parse(exposition: str) -> dict[str, Family]:
    assert exposition.endswith("\n")
    families: dict[str, Family] = {}
    current: Family | None = None
    for line in exposition[:-1].split("\n"):
        assert line, "no blank lines"
        if line.startswith("# HELP "):
            name, _, text = line[7:].partition(" ")
            assert name not in families, f"{name} declared twice"
            current = families[name] = Family(name, help=_unescape(text, "\\n"))
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            assert current is not None, "TYPE right after its HELP"
            assert current.name == name, "TYPE right after its HELP"
            assert current.type is None
            assert not current.samples
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped")
            current.type = kind
        else:
            assert current is not None, line
            assert current.type is not None, line
            if "{" in line:
                name, brace, rest = line.partition("{")
                labels, rest = _parse_labels(brace + rest)
            else:
                name, rest = line.split(" ", 1)
                labels = {}
                rest = " " + rest
            assert rest.startswith(" ")
            allowed = (
                {current.name + s for s in ("_bucket", "_sum", "_count")}
                if current.type == "histogram"
                else {current.name}
            )
            assert name in allowed, f"{name} outside its family {current.name}"
            current.samples.append((name, labels, _value(rest.strip())))
    return families


def value(families: dict[str, Family], name: str, **labels: str) -> float:
    family_name = name
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name[: -len(suffix)] in families:
            family_name = name[: -len(suffix)]
    matches = [
        v for n, lab, v in families[family_name].samples if n == name and lab == dict(labels)
    ]
    assert len(matches) == 1, f"{name}{labels}: {len(matches)} samples"
    return matches[0]


@pytest.fixture
def snap() -> PoolSnapshot:
    return sample_snapshot()


@pytest.fixture
def metrics(snap: PoolSnapshot) -> dict[str, Family]:
    return parse(render_metrics(snap))


# -- format --------------------------------------------------------------------------------
def test_content_type_is_the_0_0_4_text_format() -> None:
    assert CONTENT_TYPE.startswith("text/plain; version=0.0.4")


def test_every_family_has_help_and_type_and_unique_series(snap: PoolSnapshot) -> None:
    text = render_metrics(snap)
    families = parse(text)
    assert len(families) > 30
    for family in families.values():
        assert family.help, family.name
        assert family.type, family.name
        assert family.samples, family.name
        assert family.name.startswith("ocr_pool_")
        if family.type == "counter":
            assert family.name.endswith("_total")
        series = [(n, tuple(sorted(lab.items()))) for n, lab, _ in family.samples]
        assert len(series) == len(set(series)), family.name
    assert text.count("# TYPE ocr_pool_jobs_total counter") == 1


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (0, "0"),
        (3, "3"),
        (True, "1"),
        (False, "0"),
        (2.0, "2"),
        (0.25, "0.25"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (math.nan, "NaN"),
    ],
)
def test_format_value(number: float, text: str) -> None:
    assert format_value(number) == text


def test_format_bound() -> None:
    assert [format_bound(b) for b in (1, 2.5, math.inf)] == ["1.0", "2.5", "+Inf"]


def test_label_values_and_help_are_escaped() -> None:
    nasty = 'a"b\\c\nd}e,f="g"'
    assert escape_label_value(nasty) == 'a\\"b\\\\c\\nd}e,f=\\"g\\"'
    x = Exposition()
    x.family("ocr_pool_test", "gauge", "help with \\ backslash\nand newline")
    x.sample("ocr_pool_test", 1, {"a": nasty, "b": "plain"})
    text = x.render()
    assert text.count("\n") == 3  # HELP, TYPE, one sample: no raw newline leaked
    family = parse(text)["ocr_pool_test"]
    assert family.help == "help with \\ backslash\nand newline"
    assert family.samples == [("ocr_pool_test", {"a": nasty, "b": "plain"}, 1.0)]


def test_identity_labels_round_trip_through_escaping() -> None:
    odd = sample_snapshot(pool_id='pool "a"\\1', server_id="srv\n2")
    families = parse(render_metrics(odd))
    assert value(families, "ocr_pool_info", pool_id='pool "a"\\1', server_id="srv\n2") == 1


def test_families_without_samples_are_left_out() -> None:
    x = Exposition()
    x.family("ocr_pool_empty", "gauge", "nothing")
    x.family("ocr_pool_one", "gauge", "one")
    x.sample("ocr_pool_one", 1)
    assert "ocr_pool_empty" not in x.render()
    assert parse(x.render()).keys() == {"ocr_pool_one"}


# -- values --------------------------------------------------------------------------------
def test_pool_gauges(metrics: dict[str, Family]) -> None:
    assert value(metrics, "ocr_pool_info", pool_id="pool-a", server_id="srv-1") == 1
    assert value(metrics, "ocr_pool_ready") == 1
    assert value(metrics, "ocr_pool_stopping") == 0
    assert value(metrics, "ocr_pool_uptime_seconds") == 3725
    assert value(metrics, "ocr_pool_size_workers") == 4
    assert value(metrics, "ocr_pool_allocation_workers", type="index") == 3
    assert value(metrics, "ocr_pool_allocation_workers", type="acte") == 1
    assert value(metrics, "ocr_pool_workers", mode="index", state="busy") == 2
    assert value(metrics, "ocr_pool_workers", mode="index", state="idle") == 1
    assert value(metrics, "ocr_pool_workers", mode="acte", state="busy") == 1
    assert value(metrics, "ocr_pool_workers", mode="acte", state="idle") == 0
    assert value(metrics, "ocr_pool_workers_stolen", mode="index") == 1
    assert value(metrics, "ocr_pool_workers_stolen", mode="acte") == 0


def test_not_ready_and_stopping() -> None:
    families = parse(render_metrics(sample_snapshot(ready=False, stopping=True)))
    assert value(families, "ocr_pool_ready") == 0
    assert value(families, "ocr_pool_stopping") == 1


def test_job_counters(metrics: dict[str, Family]) -> None:
    assert metrics["ocr_pool_jobs_total"].type == "counter"
    assert value(metrics, "ocr_pool_jobs_total", type="index", outcome="completed") == 4
    assert value(metrics, "ocr_pool_jobs_total", type="index", outcome="failed") == 0
    assert value(metrics, "ocr_pool_jobs_total", type="acte", outcome="completed") == 1
    assert value(metrics, "ocr_pool_jobs_total", type="acte", outcome="failed") == 1
    assert value(metrics, "ocr_pool_jobs_total", type="acte", outcome="requeued") == 1
    assert len(metrics["ocr_pool_jobs_total"].samples) == 2 * len(Outcome)
    assert value(metrics, "ocr_pool_cache_hits_total", type="index") == 1
    assert value(metrics, "ocr_pool_gemini_calls_total", type="index") == 16
    assert value(metrics, "ocr_pool_gemini_input_tokens_total", type="acte") == 250_000
    assert value(metrics, "ocr_pool_throughput_jobs_per_minute", type="index") == 0.8


def test_duration_histogram_is_cumulative_and_ends_with_inf(metrics: dict[str, Family]) -> None:
    family = metrics["ocr_pool_job_duration_seconds"]
    assert family.type == "histogram"
    for source in ("index", "acte"):
        buckets = [
            (lab["le"], v)
            for n, lab, v in family.samples
            if n.endswith("_bucket") and lab["type"] == source
        ]
        assert [le for le, _ in buckets] == [format_bound(b) for b in DURATION_BUCKETS]
        counts = [v for _, v in buckets]
        assert counts == sorted(counts)
        count = value(metrics, "ocr_pool_job_duration_seconds_count", type=source)
        assert counts[-1] == count
    # index jobs took 0.5, 3, 45 and 700 s
    index = {
        lab["le"]: v
        for n, lab, v in family.samples
        if n.endswith("_bucket") and lab["type"] == "index"
    }
    assert index["1.0"] == 1
    assert index["2.0"] == 1
    assert index["5.0"] == 2
    assert index["60.0"] == 3
    assert index["600.0"] == 3
    assert index["+Inf"] == 4
    assert value(metrics, "ocr_pool_job_duration_seconds_sum", type="index") == 748.5
    assert value(metrics, "ocr_pool_job_duration_seconds_count", type="acte") == 1


def test_histogram_le_is_a_label_not_a_type_label_collision() -> None:
    stats = PoolStats()
    stats.record(JobReport("w", "e", "1", DocumentSource.ACTE, Outcome.COMPLETED, 1.0))
    families = parse(render_metrics(sample_snapshot(stats=stats.snapshot())))
    assert value(families, "ocr_pool_job_duration_seconds_bucket", type="acte", le="1.0") == 1
    assert value(families, "ocr_pool_job_duration_seconds_bucket", type="index", le="+Inf") == 0


def test_queue_per_environment_type_and_state(metrics: dict[str, Family]) -> None:
    q = "ocr_pool_queue_jobs"
    assert value(metrics, q, env="prod", type="index", state="waiting") == 120
    assert value(metrics, q, env="prod", type="index", state="delayed") == 3
    assert value(metrics, q, env="prod", type="index", state="in_progress") == 2
    assert value(metrics, q, env="dev", type="acte", state="in_progress") == 4
    assert len(metrics[q].samples) == 2 * 2 * 3
    assert value(metrics, "ocr_pool_queue_readable", env="prod") == 1


def test_unreadable_queue_environment() -> None:
    families = parse(render_metrics(sample_snapshot(queue_errors={"staging": "down"})))
    assert value(families, "ocr_pool_queue_readable", env="staging") == 0
    assert value(families, "ocr_pool_queue_readable", env="prod") == 1


def test_gemini_usage_limits_cooldown_ceiling(metrics: dict[str, Family]) -> None:
    assert value(metrics, "ocr_pool_gemini_readable") == 1
    assert value(metrics, "ocr_pool_gemini_requests_window", model=FLASH) == 1234
    assert value(metrics, "ocr_pool_gemini_tokens_window", model=FLASH) == 3_456_789
    assert value(metrics, "ocr_pool_gemini_requests_day", model=PRO) == 50
    limit = "ocr_pool_gemini_requests_window_limit"
    assert value(metrics, limit, model=FLASH, kind="configured") == 1600
    assert value(metrics, limit, model=FLASH, kind="effective") == 1280
    tokens = "ocr_pool_gemini_tokens_window_limit"
    assert value(metrics, tokens, model=FLASH, kind="effective") == 5_120_000
    assert value(metrics, "ocr_pool_gemini_requests_day_limit", model=FLASH) == 100_000
    # no daily limit for the pro model: no sample rather than a made-up number
    assert all(
        lab["model"] != PRO for _, lab, _ in metrics["ocr_pool_gemini_requests_day_limit"].samples
    )
    assert value(metrics, "ocr_pool_gemini_ceiling_ratio", model=FLASH) == 0.8
    assert value(metrics, "ocr_pool_gemini_ceiling_ratio", model=PRO) == 1
    assert value(metrics, "ocr_pool_gemini_cooldown_seconds", model=FLASH) == 12.5
    assert value(metrics, "ocr_pool_gemini_cooldown_seconds", model=PRO) == 0
    assert metrics["ocr_pool_gemini_quota_errors_total"].type == "counter"
    assert value(metrics, "ocr_pool_gemini_quota_errors_total", model=FLASH) == 7
    assert value(metrics, "ocr_pool_gemini_quota_errors_total", model=PRO) == 0
    assert value(metrics, "ocr_pool_gemini_waiting", model=FLASH) == 2
    assert value(metrics, "ocr_pool_gemini_window_seconds", model=FLASH) == 60


def test_gemini_unreadable_leaves_its_families_out() -> None:
    families = parse(render_metrics(sample_snapshot(gemini=None, gemini_error="Redis: refused")))
    assert value(families, "ocr_pool_gemini_readable") == 0
    gemini = [n for n in families if n.startswith("ocr_pool_gemini_") and "_total" not in n]
    assert gemini == ["ocr_pool_gemini_readable"]
    assert "ocr_pool_gemini_quota_errors_total" not in families
    # the pool's own Gemini counters come from its job reports and stay
    assert "ocr_pool_gemini_calls_total" in families


def test_gemini_without_models() -> None:
    empty = FleetUsage(models=(), workers=0, fence_seconds=0.0)
    families = parse(render_metrics(sample_snapshot(gemini=empty)))
    assert value(families, "ocr_pool_gemini_readable") == 1
    assert "ocr_pool_gemini_requests_window" not in families


def test_capacity(metrics: dict[str, Family]) -> None:
    assert value(metrics, "ocr_pool_capacity_readable") == 1
    assert value(metrics, "ocr_pool_capacity_cpu", kind="allocated") == 3.5
    assert value(metrics, "ocr_pool_capacity_cpu", kind="available") == 6.4
    assert value(metrics, "ocr_pool_capacity_ram_gb", kind="allocated") == 1.75
    assert value(metrics, "ocr_pool_capacity_ram_gb", kind="available") == 12.8
    assert value(metrics, "ocr_pool_capacity_holders", kind="registre") == 1
    assert value(metrics, "ocr_pool_capacity_pressure") == 0


def test_capacity_unreadable_or_unused() -> None:
    failed = parse(render_metrics(sample_snapshot(capacity=None, capacity_error="Redis: timeout")))
    assert value(failed, "ocr_pool_capacity_readable") == 0
    assert "ocr_pool_capacity_cpu" not in failed
    unused = parse(render_metrics(sample_snapshot(capacity=None)))
    assert not [n for n in unused if n.startswith("ocr_pool_capacity")]
