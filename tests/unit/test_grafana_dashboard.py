"""deploy/grafana/ocr-pool.json: an importable Grafana dashboard whose every query names
only series that a pool's /metrics serves, with labels and label values it has."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pool.status.metrics import PoolMetrics
from tests.unit.test_metrics import full_snapshot

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "ocr-pool.json"

TARGET_LABELS = frozenset({"job", "instance"})
"""Labels Prometheus adds to every scraped series."""

KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless"}
    | {"bool", "offset", "inf", "nan"}
)

STRING = r'"(?:[^"\\]|\\.)*"'
SELECTOR = re.compile(rf"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{{((?:[^}}\"]|{STRING})*)\}}")
MATCHER = re.compile(rf"\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*({STRING})\s*,?")
GROUPING = re.compile(
    r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", re.IGNORECASE
)
IDENTIFIER = re.compile(r"(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w(])(?!\s*\()")


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def served() -> dict[str, dict[str, set[str]]]:
    """Every series name a pool serves (as PromQL names them: `_total`, `_bucket`, …)
    -> label name -> the values seen."""
    body, _ = PoolMetrics().render(full_snapshot())
    series: dict[str, dict[str, set[str]]] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            labels = series.setdefault(sample.name, {})
            for name, value in sample.labels.items():
                labels.setdefault(name, set()).add(value)
    return series


def all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))


def queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(panel title, expr) of every query of every panel."""
    for panel in all_panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def selectors(expr: str) -> Iterator[tuple[str, list[tuple[str, str, str]]]]:
    """`metric{label op "value", …}` -> (metric, [(label, op, value)])."""
    for match in SELECTOR.finditer(expr):
        body = match.group(2)
        matchers = []
        position = 0
        while position < len(body.strip()):
            m = MATCHER.match(body, position)
            assert m is not None, f"cannot read the matchers of {match.group(0)!r}"
            matchers.append((m.group(1), m.group(2), json.loads(m.group(3))))
            position = m.end()
        yield match.group(1), matchers


def metric_names(expr: str) -> set[str]:
    """The series names an expression selects (functions, keywords, grouping labels,
    label matchers, ranges and Grafana variables apart)."""
    text = re.sub(STRING, '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = GROUPING.sub(" ", text)
    text = re.sub(r"\$\w+", " ", text)
    text = re.sub(r"\b\d+(?:\.\d+)?(?:e[+-]?\d+)?\b", " ", text)
    return {name for name in IDENTIFIER.findall(text) if name.lower() not in KEYWORDS}


def grouping_labels(expr: str) -> set[str]:
    labels: set[str] = set()
    for _, inside in GROUPING.findall(expr):
        labels |= {label.strip() for label in inside.split(",") if label.strip()}
    return labels


# -- the readers themselves ----------------------------------------------------------------
def test_readers_of_promql() -> None:
    expr = (
        "histogram_quantile(0.95, sum by (type, le) (rate(ocr_pool_job_duration_seconds_bucket"
        '{job=~"$job", state!="a,}b"}[$__rate_interval]))) * on (job) group_left (server_id) '
        "ocr_pool_info or vector(0) > 1e3"
    )
    assert metric_names(expr) == {"ocr_pool_job_duration_seconds_bucket", "ocr_pool_info"}
    assert grouping_labels(expr) == {"type", "le", "job", "server_id"}
    assert list(selectors(expr)) == [
        ("ocr_pool_job_duration_seconds_bucket", [("job", "=~", "$job"), ("state", "!=", "a,}b")])
    ]


# -- the dashboard -------------------------------------------------------------------------
def test_importable_dashboard(dashboard: dict[str, Any]) -> None:
    assert dashboard["title"] == "ocr-pool"
    assert dashboard["uid"] == "ocr-pool"
    assert isinstance(dashboard["schemaVersion"], int)
    assert dashboard["schemaVersion"] >= 36
    assert dashboard["id"] is None  # imported as a new dashboard
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    datasource = variables["datasource"]
    assert datasource["type"] == "datasource"
    assert datasource["query"] == "prometheus"
    panels = list(all_panels(dashboard["panels"]))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
    for name in ("job", "instance"):
        assert variables[name]["datasource"]["uid"] == "${datasource}"


def test_every_expr_names_only_served_series(
    dashboard: dict[str, Any], served: dict[str, dict[str, set[str]]]
) -> None:
    all_labels = set(TARGET_LABELS) | {"le"}
    for labels in served.values():
        all_labels |= set(labels)
    used: set[str] = set()
    exprs = list(queries(dashboard))
    assert len(exprs) > 30
    for title, expr in exprs:
        names = metric_names(expr)
        assert names, f"{title}: {expr}"
        unknown = names - set(served)
        assert not unknown, f"{title}: {sorted(unknown)} not served"
        used |= names
        for metric, matchers in selectors(expr):
            known = set(served[metric]) | TARGET_LABELS
            for label, op, wanted in matchers:
                assert label in known, f"{title}: {metric} has no label {label}"
                if label not in TARGET_LABELS and op in ("=", "!="):
                    assert wanted in served[metric][label], f"{title}: {metric}{{{label}={wanted}}}"
        assert grouping_labels(expr) <= all_labels, f"{title}: {expr}"
    # what the dashboard is for
    assert {
        "ocr_pool_jobs_total",
        "ocr_pool_job_duration_seconds_bucket",
        "ocr_pool_queue_jobs",
        "ocr_pool_gemini_requests_window",
        "ocr_pool_gemini_requests_window_limit",
        "ocr_pool_gemini_tokens_window_limit",
        "ocr_pool_gemini_requests_day_limit",
        "ocr_pool_gemini_ceiling_ratio",
        "ocr_pool_gemini_model_cost_usd_total",
        "ocr_pool_capacity_cpu",
        "ocr_pool_capacity_ram_gb",
        "ocr_pool_ready",
        "ocr_pool_worker_crashes_total",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
    } <= used
    quantiles = {e for _, e in exprs if "histogram_quantile(" in e}
    assert any("histogram_quantile(0.5," in e for e in quantiles)
    assert any("histogram_quantile(0.95," in e for e in quantiles)


def test_variables_query_served_series(
    dashboard: dict[str, Any], served: dict[str, dict[str, set[str]]]
) -> None:
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", variable["definition"])
        assert match is not None, variable["definition"]
        selector, label = match.groups()
        assert metric_names(selector) <= set(served)
        assert label in TARGET_LABELS | set(served[selector.split("{")[0]])
        assert variable["query"]["query"] == variable["definition"]
