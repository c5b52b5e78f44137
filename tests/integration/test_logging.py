"""Log lines: OCR_LOG_LEVEL and OCR_LOG_FORMAT, the document a line is about (id, type,
environment, worker) in text and JSON, and a real pool's lines parsed back: Gemini retry
lines carry their document, `health and metrics on` comes once, the status comes once
after warm-up."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from domain import DocumentSource
from gemini_simulator import SimulatorConfig, run_simulator
from pool.cli.logs import LogFormat, configure_logging, document_suffix, json_line
from pool.cli.samples import acte_paragraphs, write_pdf
from pool.wiring.settings import SettingsError, load_settings
from store.postgres import PostgresStore
from tests.support.pool_process import ROOT, pool_env
from tests.support.sql import Q
from workers import log_context

DOC = {"doc_id": "42", "doc_type": "index", "env": "prod", "worker": "srv-1-3f9a1c-w01"}


@pytest.fixture
def buffer() -> Iterator[io.StringIO]:
    """Where the tests configure the root logger to write; put back afterwards."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield io.StringIO()
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


def configured(buffer: io.StringIO, fmt: LogFormat, level: str = "INFO") -> logging.Logger:
    configure_logging(level, fmt, buffer)
    return logging.getLogger("workers.gemini")


# -- settings ----------------------------------------------------------------------------------
def test_settings_default_and_accept_any_case(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    default = load_settings()
    assert (default.ocr_log_level, default.ocr_log_format) == ("INFO", "text")
    mixed = load_settings(ocr_log_level=" debug ", ocr_log_format="JSON")
    assert (mixed.ocr_log_level, mixed.ocr_log_format) == ("DEBUG", "json")
    with pytest.raises(SettingsError, match=r"^OCR_LOG_LEVEL: input should be 'DEBUG'"):
        load_settings(ocr_log_level="verbose")
    with pytest.raises(SettingsError, match=r"^OCR_LOG_FORMAT: input should be 'text' or 'json'"):
        load_settings(ocr_log_format="xml")


# -- text -----------------------------------------------------------------------------------------
def test_text_line_about_a_document_ends_with_its_fields(
    buffer: io.StringIO,
) -> None:
    log = configured(buffer, "text")
    log.info("outside any document")
    with log_context.about(42, "index", "prod", "srv-1-3f9a1c-w01"):
        log.info("Gemini %s: %s; retry %d in %.1f s", "index page 2", "HTTP 503", 1, 0.5)
        try:
            raise ZeroDivisionError("boom")
        except ZeroDivisionError:
            log.exception("unexpected")
    log.warning("after the document")
    lines = buffer.getvalue().splitlines()
    assert lines[0].endswith("INFO    workers.gemini: outside any document")
    assert lines[1].endswith(
        "workers.gemini: Gemini index page 2: HTTP 503; retry 1 in 0.5 s"
        " [doc_id=42 doc_type=index env=prod worker=srv-1-3f9a1c-w01]"
    )
    # the fields stay on the message's line, the traceback follows
    assert lines[2].endswith(
        "ERROR   workers.gemini: unexpected [doc_id=42 doc_type=index env=prod"
        " worker=srv-1-3f9a1c-w01]"
    )
    assert lines[3] == "Traceback (most recent call last):"
    assert lines[-1].endswith("workers.gemini: after the document")


def test_level_and_quiet_libraries(buffer: io.StringIO) -> None:
    log = configured(buffer, "text", "WARNING")
    log.info("not shown")
    log.warning("shown")
    assert buffer.getvalue().count("\n") == 1
    assert logging.getLogger("httpx").level == logging.WARNING
    configured(buffer, "text", "DEBUG")
    assert logging.getLogger().level == logging.DEBUG
    assert logging.getLogger("httpcore").level == logging.WARNING  # never every request
    # a second call replaces the handler of the first, never adds one
    ours = [h for h in logging.getLogger().handlers if h.__class__.__name__ == "PoolLogHandler"]
    assert len(ours) == 1


# -- JSON -----------------------------------------------------------------------------------------
def test_json_lines_parse_back_with_their_document(
    buffer: io.StringIO,
) -> None:
    log = configured(buffer, "json")
    log.info("outside")
    with log_context.about(42, "index", "prod", "srv-1-3f9a1c-w01"):
        log.warning("lease on %s %s lost", "index", 42)
        log.info("mine", extra={"worker": "w-explicit", "attempt": 2})
        try:
            raise ValueError("bad page")
        except ValueError:
            log.exception("unexpected error")
    records = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert len(records) == 4
    outside, lost, mine, failed = records
    assert outside["message"] == "outside"
    assert not set(DOC) & set(outside)
    assert {k: lost[k] for k in DOC} == DOC
    assert (lost["level"], lost["logger"], lost["message"]) == (
        "WARNING",
        "workers.gemini",
        "lease on index 42 lost",
    )
    assert lost["timestamp"].endswith("+00:00")
    assert mine["worker"] == "w-explicit"  # a field passed with extra= is kept
    assert mine["attempt"] == 2
    assert mine["doc_id"] == "42"
    assert "ValueError: bad page" in failed["exc_info"]
    assert failed["doc_type"] == "index"


def test_json_line_has_the_log_envelope() -> None:
    data = json.loads(json_line("pool.status", "status", status={"pool": "3f9a1c"}))
    assert (data["level"], data["logger"], data["message"]) == ("INFO", "pool.status", "status")
    assert data["status"] == {"pool": "3f9a1c"}
    assert "timestamp" in data


# -- the context --------------------------------------------------------------------------------
@pytest.mark.anyio
async def test_tasks_started_inside_inherit_the_document_and_it_ends_with_the_block() -> None:
    seen: list[log_context.Document | None] = []

    async def page() -> None:
        await anyio.lowlevel.checkpoint()
        seen.append(log_context.current())

    with log_context.about(7, "acte", "dev", "w2"):
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(page)
    seen.append(log_context.current())
    expected = log_context.Document("7", "acte", "dev", "w2")
    assert seen == [expected, expected, expected, None]


def test_document_suffix_of_partial_fields() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 0, "m", None, None)
    assert document_suffix(record) == ""
    record.worker = "w1"
    assert document_suffix(record) == "worker=w1"


# -- a real pool ----------------------------------------------------------------------------------
async def _enqueue(url: str, paths: list[Path]) -> list[str]:
    store = await PostgresStore.connect("default", url)
    try:
        await store.enqueue(DocumentSource.ACTE, [str(p) for p in paths], [0] * len(paths), 5)
    finally:
        await store.close()
    return [str(p) for p in paths]


@pytest.mark.anyio
@pytest.mark.slow
async def test_a_pool_in_json_says_which_document_each_retry_is_about(
    database: str, redis_prefix: str, tmp_path: Path
) -> None:
    """`ocr-pool start --until-empty` with OCR_LOG_FORMAT=json, a metrics port and a Gemini
    that answers 503 half the time: every stderr line is a JSON object; every retry line
    names its document (one of ours), type, environment and worker; `health and metrics
    on` comes once; the status comes once right after warm-up (OCR_STATUS_INTERVAL_MS is
    a minute) and once at the stop."""
    docs = tmp_path / "docs"
    docs.mkdir()
    paths = []
    for n in range(4):
        path = docs / f"acte-{n}.pdf"
        write_pdf(path, [acte_paragraphs(300 + n, 3)])
        paths.append(path)
    await _enqueue(database, paths)
    config = SimulatorConfig(port=0, corpus=(docs,), fault_5xx=0.5, seed=11, latency_ms=20)
    async with run_simulator(config) as sim:
        env = pool_env(
            database,
            redis_prefix,
            sim.url,
            "logs-json",
            OCR_LOG_FORMAT="json",
            OCR_METRICS_PORT=0,
            OCR_STATUS_INTERVAL_MS=60_000,
            OCR_WORKER_POOL_SIZE=2,
            GEMINI_MAX_ATTEMPTS=8,
        )
        result = await anyio.to_thread.run_sync(
            lambda: subprocess.run(
                [sys.executable, "-m", "pool.cli", "start", "--until-empty"],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
        )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines()]  # every one parses
    retries = [r for r in lines if r["logger"] == "workers.gemini" and "retry" in r["message"]]
    assert retries, result.stderr
    ids = {str(row["id"]) for row in await _rows(database)}
    for r in retries:
        assert r["doc_id"] in ids
        assert (r["doc_type"], r["env"]) == ("acte", "default")
        assert r["worker"].startswith("logs-json-")
    health = [r for r in lines if r["message"].startswith("health and metrics on ")]
    assert len(health) == 1, health
    statuses = [json.loads(line) for line in result.stdout.splitlines()]
    assert [s["logger"] for s in statuses] == ["pool.status", "pool.status"]
    first, last = statuses[0]["status"], statuses[1]["status"]
    assert first["state"] == "ready"
    assert first["uptime_seconds"] < 30  # after warm-up, not after OCR_STATUS_INTERVAL_MS
    assert last["state"] == "stopping"
    assert last["since_start"]["acte"]["completed"] == 4


async def _rows(url: str) -> list[Any]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(Q["all_rows"]))
    finally:
        await conn.close()
