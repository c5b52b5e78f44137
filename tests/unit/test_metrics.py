"""The Prometheus exposition, parsed back: families, types, labels, values, escaping;
the pool's own registry (process and GC series, OpenMetrics on request).

`parse` below is a strict reader of the text format 0.0.4 written for these tests, kept
independent of `prometheus_client`; the library's own parsers read it too."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import pytest
from prometheus_client import REGISTRY
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import parser as openmetrics_parser
from prometheus_client.parser import text_string_to_metric_families

from domain import DocumentSource
from pool.bill import BillRow
from pool.status.metrics import (
    CONTENT_TYPE,
    OPENMETRICS_CONTENT_TYPE,
    PoolMetrics,
    SnapshotCollector,
    format_bound,
    render_metrics,
)
from pool.status.snapshot import PoolSnapshot
from pool.status.stats import DURATION_BUCKETS, PoolStats
from ratelimit import FleetUsage
from tests.unit.test_panel import FLASH, PRO, sample_snapshot
from workers.worker import JobReport, Outcome

Labels = tuple[tuple[str, str], ...]

# -- the families /metrics has always served: name -> (type, label names) ----------------
# (histograms: labels of their _sum/_count; the buckets add `le`)
POOL_FAMILIES: dict[str, tuple[str, frozenset[str]]] = {
    name: (kind, frozenset(labels))
    for name, kind, labels in (
        ("ocr_pool_info", "gauge", ("pool_id", "server_id")),
        ("ocr_pool_ready", "gauge", ()),
        ("ocr_pool_stopping", "gauge", ()),
        ("ocr_pool_uptime_seconds", "gauge", ()),
        ("ocr_pool_size_workers", "gauge", ()),
        ("ocr_pool_allocation_workers", "gauge", ("type",)),
        ("ocr_pool_workers", "gauge", ("mode", "state")),
        ("ocr_pool_workers_stolen", "gauge", ("mode",)),
        ("ocr_pool_not_ready", "gauge", ("reason",)),
        ("ocr_pool_workers_down", "gauge", ()),
        ("ocr_pool_worker_crashes_total", "counter", ()),
        ("ocr_pool_worker_restarts_total", "counter", ()),
        ("ocr_pool_jobs_total", "counter", ("type", "outcome")),
        ("ocr_pool_cache_hits_total", "counter", ("type",)),
        ("ocr_pool_gemini_calls_total", "counter", ("type",)),
        ("ocr_pool_gemini_input_tokens_total", "counter", ("type",)),
        ("ocr_pool_gemini_output_tokens_total", "counter", ("type",)),
        ("ocr_pool_gemini_thinking_tokens_total", "counter", ("type",)),
        ("ocr_pool_gemini_cost_usd_total", "counter", ("type",)),
        ("ocr_pool_job_duration_seconds", "histogram", ("type",)),
        ("ocr_pool_throughput_jobs_per_minute", "gauge", ("type",)),
        ("ocr_pool_gemini_model_tokens_total", "counter", ("model", "kind")),
        ("ocr_pool_gemini_model_cost_usd_total", "counter", ("model",)),
        ("ocr_pool_queue_jobs", "gauge", ("env", "type", "state")),
        ("ocr_pool_queue_readable", "gauge", ("env",)),
        ("ocr_pool_gemini_readable", "gauge", ()),
        ("ocr_pool_gemini_requests_window", "gauge", ("model",)),
        ("ocr_pool_gemini_tokens_window", "gauge", ("model",)),
        ("ocr_pool_gemini_requests_day", "gauge", ("model",)),
        ("ocr_pool_gemini_requests_window_limit", "gauge", ("model", "kind")),
        ("ocr_pool_gemini_tokens_window_limit", "gauge", ("model", "kind")),
        ("ocr_pool_gemini_requests_day_limit", "gauge", ("model",)),
        ("ocr_pool_gemini_window_seconds", "gauge", ("model",)),
        ("ocr_pool_gemini_ceiling_ratio", "gauge", ("model",)),
        ("ocr_pool_gemini_cooldown_seconds", "gauge", ("model",)),
        ("ocr_pool_gemini_waiting", "gauge", ("model",)),
        ("ocr_pool_gemini_quota_errors_total", "counter", ("model",)),
        ("ocr_pool_gemini_fence_seconds", "gauge", ()),
        ("ocr_pool_capacity_readable", "gauge", ()),
        ("ocr_pool_capacity_cpu", "gauge", ("kind",)),
        ("ocr_pool_capacity_ram_gb", "gauge", ("kind",)),
        ("ocr_pool_capacity_holders", "gauge", ("kind",)),
        ("ocr_pool_capacity_pressure", "gauge", ()),
    )
}

PROCESS_FAMILIES: dict[str, tuple[str, frozenset[str]]] = {
    name: (kind, frozenset(labels))
    for name, kind, labels in (
        ("process_cpu_seconds_total", "counter", ()),
        ("process_resident_memory_bytes", "gauge", ()),
        ("process_virtual_memory_bytes", "gauge", ()),
        ("process_start_time_seconds", "gauge", ()),
        ("process_open_fds", "gauge", ()),
        ("process_max_fds", "gauge", ()),
        ("python_gc_objects_collected_total", "counter", ("generation",)),
        ("python_gc_objects_uncollectable_total", "counter", ("generation",)),
        ("python_gc_collections_total", "counter", ("generation",)),
        ("python_info", "gauge", ("implementation", "major", "minor", "patchlevel", "version")),
    )
}

SPENT = (
    BillRow(
        FLASH,
        requests=12,
        input_tokens=30_000,
        output_tokens=4_000,
        thinking_tokens=900,
        cost_usd=0.0215,
    ),
    BillRow("gemini-unpriced", requests=1, input_tokens=10, output_tokens=2),
)


def full_snapshot(**changes: object) -> PoolSnapshot:
    """A snapshot with every family of `POOL_FAMILIES` (the panel's sample, plus a bill)."""
    values: dict[str, object] = {"spent": SPENT}
    values.update(changes)
    return sample_snapshot(**values)


def parsed_name(name: str, kind: str) -> str:
    """A family's name as `prometheus_client`'s parsers give it (counters without
    `_total`)."""
    return name.removesuffix("_total") if kind == "counter" else name


def label_names(family: Metric) -> frozenset[str]:
    """The label names of a parsed family's samples (`le` of histogram buckets apart)."""
    names: set[str] = set()
    for sample in family.samples:
        keys = set(sample.labels)
        if sample.name.endswith("_bucket"):
            assert "le" in keys, sample
            keys.discard("le")
        names |= keys
    return frozenset(names)


def check_families(
    families: Iterable[Metric], expected: dict[str, tuple[str, frozenset[str]]]
) -> dict[str, Metric]:
    """Every family of `expected` is among `families` (from a `prometheus_client`
    parser), with its type, its label names and samples of its own name. Returns the
    families by name."""
    by_name = {f.name: f for f in families}
    for name, (kind, labels) in expected.items():
        family = by_name.get(parsed_name(name, kind))
        assert family is not None, f"{name} missing"
        assert family.type == kind, name
        assert label_names(family) == labels, name
        assert family.samples, name
        suffixes = {
            "counter": ("_total",),
            "histogram": ("_bucket", "_sum", "_count"),
        }.get(kind, ("",))
        assert {s.name for s in family.samples} <= {family.name + x for x in suffixes}, name
    return by_name


parse_openmetrics = cast(
    Callable[[str], Iterable[Metric]], openmetrics_parser.text_string_to_metric_families
)
"""`prometheus_client.openmetrics.parser.text_string_to_metric_families` (unannotated)."""


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
    return full_snapshot()


@pytest.fixture
def metrics(snap: PoolSnapshot) -> dict[str, Family]:
    return parse(render_metrics(snap))


# -- format --------------------------------------------------------------------------------
def test_content_types() -> None:
    assert CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"
    assert OPENMETRICS_CONTENT_TYPE.startswith("application/openmetrics-text; version=1.0.0")


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


def test_the_same_families_types_and_labels_as_ever(metrics: dict[str, Family]) -> None:
    """Read by this file's parser: exactly the families of the list, each with its
    type and label names."""
    assert set(metrics) == set(POOL_FAMILIES)
    for name, (kind, labels) in POOL_FAMILIES.items():
        family = metrics[name]
        assert family.type == kind, name
        seen: set[str] = set()
        for sample_name, lab, _ in family.samples:
            seen |= set(lab) - ({"le"} if sample_name.endswith("_bucket") else set())
        assert seen == labels, name


def test_prometheus_client_parser_reads_the_same(snap: PoolSnapshot) -> None:
    families = list(text_string_to_metric_families(render_metrics(snap)))
    by_name = check_families(families, POOL_FAMILIES)
    assert len(by_name) == len(families) == len(POOL_FAMILIES)


def test_format_bound() -> None:
    assert [format_bound(b) for b in (1, 2.5, math.inf)] == ["1.0", "2.5", "+Inf"]


def test_identity_labels_round_trip_through_escaping() -> None:
    nasty = 'pool "a"\\1\nz}e,f="g"'
    odd = sample_snapshot(pool_id=nasty, server_id="srv\n2")
    text = render_metrics(odd)
    assert text.count("ocr_pool_info{") == 1
    info = [line for line in text.splitlines() if line.startswith("ocr_pool_info{")]
    assert len(info) == 1  # no raw newline leaked
    families = parse(text)
    assert value(families, "ocr_pool_info", pool_id=nasty, server_id="srv\n2") == 1
    (family,) = [f for f in text_string_to_metric_families(text) if f.name == "ocr_pool_info"]
    assert family.samples[0].labels == {"pool_id": nasty, "server_id": "srv\n2"}


def test_families_without_samples_are_left_out() -> None:
    none_spent = parse(render_metrics(full_snapshot(spent=())))
    assert "ocr_pool_gemini_model_tokens_total" not in none_spent
    assert "ocr_pool_gemini_model_cost_usd_total" not in none_spent
    unpriced = parse(render_metrics(full_snapshot(spent=SPENT[1:])))
    assert "ocr_pool_gemini_model_tokens_total" in unpriced
    assert "ocr_pool_gemini_model_cost_usd_total" not in unpriced
    assert list(SnapshotCollector().collect()) == []


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


def test_spent_per_model(metrics: dict[str, Family]) -> None:
    tokens = "ocr_pool_gemini_model_tokens_total"
    assert metrics[tokens].type == "counter"
    assert value(metrics, tokens, model=FLASH, kind="input") == 30_000
    assert value(metrics, tokens, model=FLASH, kind="output") == 4_000
    assert value(metrics, tokens, model=FLASH, kind="thinking") == 900
    assert value(metrics, tokens, model="gemini-unpriced", kind="output") == 2
    cost = "ocr_pool_gemini_model_cost_usd_total"
    assert value(metrics, cost, model=FLASH) == 0.0215
    assert len(metrics[cost].samples) == 1  # no made-up price for the unpriced model


# -- the pool's registry -------------------------------------------------------------------
def test_pool_registry_adds_process_gc_and_platform_series() -> None:
    body, content_type = PoolMetrics().render(full_snapshot())
    assert content_type == CONTENT_TYPE
    families = list(text_string_to_metric_families(body.decode()))
    by_name = check_families(families, {**POOL_FAMILIES, **PROCESS_FAMILIES})
    assert len(by_name) == len(families) == len(POOL_FAMILIES) + len(PROCESS_FAMILIES)
    (rss,) = by_name["process_resident_memory_bytes"].samples
    assert rss.value > 1_000_000
    (cpu,) = by_name["process_cpu_seconds"].samples
    assert cpu.value > 0
    # the pool's families come first, in their usual order
    assert families[0].name == "ocr_pool_info"
    assert all(f.name.startswith("ocr_pool_") for f in families[: len(POOL_FAMILIES)])


def test_counters_are_the_snapshots_totals_at_every_scrape() -> None:
    """Nothing is incremented on scrape: the same snapshot gives the same totals, a
    later one its own totals."""
    registry = PoolMetrics()
    stats = PoolStats()
    report = JobReport("w", "e", "1", DocumentSource.INDEX, Outcome.COMPLETED, 3.0, gemini_calls=2)

    def jobs_and_calls(snap: PoolSnapshot) -> tuple[float, float]:
        families = parse_families(registry.render(snap)[0].decode())
        jobs = families["ocr_pool_jobs"]
        calls = families["ocr_pool_gemini_calls"]
        return (
            sample_value(jobs, "ocr_pool_jobs_total", type="index", outcome="completed"),
            sample_value(calls, "ocr_pool_gemini_calls_total", type="index"),
        )

    stats.record(report)
    first = sample_snapshot(stats=stats.snapshot())
    assert jobs_and_calls(first) == (1, 2)
    assert jobs_and_calls(first) == (1, 2)
    stats.record(report)
    stats.record(report)
    assert jobs_and_calls(sample_snapshot(stats=stats.snapshot())) == (3, 6)
    assert jobs_and_calls(first) == (1, 2)


def test_pools_have_registries_of_their_own() -> None:
    a, b = PoolMetrics(), PoolMetrics()
    assert a.registry is not b.registry
    assert a.registry is not REGISTRY
    text_a = a.render(sample_snapshot(pool_id="a"))[0].decode()
    text_b = b.render(sample_snapshot(pool_id="b"))[0].decode()
    assert 'pool_id="a"' in text_a
    assert 'pool_id="b"' not in text_a
    assert 'pool_id="b"' in text_b
    assert text_a.count("# TYPE process_cpu_seconds_total counter") == 1
    # the library's global registry is left alone
    assert not [m for m in REGISTRY.collect() if m.name.startswith("ocr_pool")]


@pytest.mark.parametrize(
    "accept",
    [
        "application/openmetrics-text",
        "application/openmetrics-text; version=1.0.0",
        # what Prometheus 3 sends
        "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,"
        "application/openmetrics-text;version=0.0.1;q=0.4,"
        "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,"
        "text/plain;version=0.0.4;q=0.2,*/*;q=0.1",
    ],
)
def test_openmetrics_when_asked(accept: str) -> None:
    body, content_type = PoolMetrics().render(full_snapshot(), accept)
    assert content_type.startswith("application/openmetrics-text; version=1.0.0")
    text = body.decode()
    assert text.endswith("# EOF\n")
    families = list(parse_openmetrics(text))
    by_name = check_families(families, {**POOL_FAMILIES, **PROCESS_FAMILIES})
    assert len(by_name) == len(POOL_FAMILIES) + len(PROCESS_FAMILIES)
    (completed,) = [
        s
        for s in by_name["ocr_pool_jobs"].samples
        if s.labels == {"type": "index", "outcome": "completed"}
    ]
    assert completed.value == 4


@pytest.mark.parametrize("accept", ["", "*/*", "text/plain", "text/plain; version=0.0.4"])
def test_text_0_0_4_otherwise(accept: str) -> None:
    body, content_type = PoolMetrics().render(full_snapshot(), accept)
    assert content_type == CONTENT_TYPE
    assert "# EOF" not in body.decode()
    parse(body.decode())  # this file's strict reader of 0.0.4


def parse_families(text: str) -> dict[str, Metric]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def sample_value(family: Metric, name: str, **labels: str) -> float:
    (match,) = [s.value for s in family.samples if s.name == name and s.labels == labels]
    return float(match)


def test_the_readme_table_lists_every_family() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    start = readme.index("| metric | type | labels |")
    table = readme[start : readme.index("\n\n", start)]
    listed: dict[str, str] = {}
    for line in table.splitlines()[2:]:
        names_cell, kind_cell = line.split(" | ")[:2]
        for name in re.findall(r"`([a-z_]+)`", names_cell):
            listed[name] = kind_cell
    assert set(listed) == set(POOL_FAMILIES) | set(PROCESS_FAMILIES)
    for name, (kind, _) in {**POOL_FAMILIES, **PROCESS_FAMILIES}.items():
        assert kind in listed[name], name
