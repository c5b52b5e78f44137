"""End to end: workers on real Postgres and Redis, the real google-genai client over HTTP
to the Gemini simulator, PDFs generated here. Content is checked against the PDFs."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pymupdf
import pytest

from domain import DocumentSource, Status
from gemini_simulator import SimulatorConfig, run_simulator
from pool.cli.samples import (
    SampleIndexPage,
    acte_document,
    index_document,
    index_lines,
    index_page_lines,
    write_pdf,
)
from pool.wiring.runtime import Runtime, open_runtime
from pool.wiring.settings import Settings, load_settings
from tests.support.pool_run import run_until_idle
from tests.support.sql import Q
from workers.pipelines.index_text import parse_index_text
from workers.pipelines.pages import split_pages

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
INDEX, ACTE = DocumentSource.INDEX, DocumentSource.ACTE
MODELS = {"index": "sim-index", "extract": "sim-acte-extract", "boost": "sim-acte-boost"}
MAX_ATTEMPTS = 3
MAX_PAGES = 6


@dataclass
class Corpus:
    directory: Path
    index: dict[Path, list[SampleIndexPage]] = field(default_factory=dict)
    acte: dict[Path, list[list[str]]] = field(default_factory=dict)


def make_corpus(directory: Path, n_index: int, n_acte: int, seed: int = 0) -> Corpus:
    corpus = Corpus(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for n in range(n_index):
        pages = index_document(seed + 1000 * n, 3, 14)
        path = directory / f"index-{n:02d}.pdf"
        write_pdf(path, [index_page_lines(p) for p in pages])
        corpus.index[path] = pages
    for n in range(n_acte):
        lines = acte_document(seed + 1000 * n + 500, 3, 6 + n % 3)
        path = directory / f"acte-{n:02d}.pdf"
        write_pdf(path, lines)
        corpus.acte[path] = lines
    return corpus


def make_bad_documents(directory: Path) -> dict[str, tuple[DocumentSource, str]]:
    """Bad documents → (source, words expected in ocr_error)."""
    directory.mkdir(parents=True, exist_ok=True)
    good = directory / "model.pdf"
    write_pdf(good, [index_lines(7, 10), index_lines(8, 10)])
    data = good.read_bytes()
    (directory / "corrupt.pdf").write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 40)
    (directory / "empty.pdf").write_bytes(b"")
    doc = pymupdf.open(good)
    doc.save(
        directory / "encrypted.pdf",
        encryption=pymupdf.PDF_ENCRYPT_AES_256,  # type: ignore[attr-defined]
        user_pw="secret",
        owner_pw="owner",
    )
    doc.close()
    write_pdf(directory / "overcap.pdf", [index_lines(p, 5) for p in range(MAX_PAGES + 1)])
    good.unlink()
    assert data  # the model PDF was real before it was removed
    return {
        "corrupt.pdf": (INDEX, "corrupt"),
        "empty.pdf": (ACTE, "empty"),
        "missing.pdf": (INDEX, "not found"),
        "encrypted.pdf": (ACTE, "password"),
        "overcap.pdf": (INDEX, "page cap"),
    }


def settings_for(
    database_url: str, prefix: str, sim_url: str, *, env: str | None = None, **extra: Any
) -> Settings:
    """A pool's settings for these tests; the queue is environment `env` (default: the
    unnamed one, `DATABASE_URL`)."""
    values: dict[str, Any] = {
        f"{env}_database_url" if env else "database_url": database_url,
        "redis_url": "redis://127.0.0.1:6379/0",
        "ocr_redis_prefix": prefix,
        "ocr_server_id": f"e2e-{prefix.strip(':').replace(':', '-')}",
        "gemini_base_url": sim_url,
        "gemini_api_key": "sim-key",
        "gemini_model_index": MODELS["index"],
        "gemini_model_acte_extract": MODELS["extract"],
        "gemini_model_acte_boost": MODELS["boost"],
        "gemini_rpm_limit": 100_000,
        "gemini_tpm_limit": 100_000_000,
        "gemini_retry_base_seconds": 0.05,
        "gemini_timeout_seconds": 5,
        "ocr_max_pages": MAX_PAGES,
        "ocr_render_dpi": 100,
        "ocr_retry_base_seconds": 0.05,
        "ocr_retry_max_seconds": 0.2,
        "ocr_lease_seconds": 30,
        "ocr_heartbeat_seconds": 2,
        "ocr_idle_poll_seconds": 0.2,
        "ocr_max_attempts": MAX_ATTEMPTS,
        "server_max_cpu": 64,
        "server_max_ram": 64,
        "server_reserve_cpu_percent": 0,
        "server_reserve_ram_percent": 0,
    }
    values.update(extra)
    return load_settings(**values)


@pytest.fixture
def samples(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("e2e")
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@asynccontextmanager
async def pool_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    async with open_runtime(settings) as runtime:
        yield runtime


async def enqueue(runtime: Runtime, source: DocumentSource, paths: list[Path | str]) -> None:
    await runtime.targets[0].store.enqueue(
        source, [str(p) for p in paths], [0] * len(paths), MAX_ATTEMPTS
    )


async def outcome_rows(database_url: str) -> dict[str, asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        return {Path(r["supabase_path"]).name: r for r in await conn.fetch(Q["outcome_rows"])}
    finally:
        await conn.close()


def check_index_content(row: asyncpg.Record, pages: list[SampleIndexPage]) -> None:
    """The raw text reads back as the pages say; the structure is the boosted reading."""
    raw = parse_index_text(row["file_content"])
    assert [p.pageNumber for p in raw] == list(range(1, len(pages) + 1))
    for got, sample in zip(raw, pages, strict=True):
        assert got.metadata == sample.metadata
        assert got.inscriptions == sample.inscriptions
    structured = json.loads(row["file_content_json"])
    assert structured["type"] == "index"
    assert structured["page_count"] == len(pages)
    boosted = parse_index_text(row["boosted_file_content"])
    assert [p.model_dump() for p in boosted] == structured["pages"]


def check_acte_content(row: asyncpg.Record, pages: list[list[str]]) -> None:
    raw, boosted = row["file_content"], row["boosted_file_content"]
    raw_pages, boosted_pages = split_pages(raw).pages, split_pages(boosted).pages
    assert [n for n, _ in raw_pages] == list(range(1, len(pages) + 1))
    assert [n for n, _ in boosted_pages] == list(range(1, len(pages) + 1))
    for (_, raw_text), (_, boosted_text), lines in zip(
        raw_pages, boosted_pages, pages, strict=True
    ):
        flat_boosted = " ".join(boosted_text.split())
        for line in lines:
            assert line in raw_text
            assert " ".join(line.split()) in flat_boosted
    structured = json.loads(row["file_content_json"])
    assert structured["type"] == "acte"
    assert structured["pages"] == list(range(1, len(pages) + 1))


def calls_by_model(log: list[Any]) -> Counter[str]:
    return Counter(r.model for r in log if r.endpoint == "generateContent")


async def test_forty_documents_complete_and_bad_ones_fail_clearly(
    database: str, redis_prefix: str, samples: Path
) -> None:
    corpus = make_corpus(samples / "good", 20, 20)
    bad = make_bad_documents(samples / "bad")
    config = SimulatorConfig(port=0, corpus=(corpus.directory,), latency_ms=20, seed=1)
    async with run_simulator(config) as sim:
        settings = settings_for(database, redis_prefix, sim.url)
        async with pool_runtime(settings) as runtime:
            await enqueue(runtime, INDEX, list(corpus.index))
            await enqueue(runtime, ACTE, list(corpus.acte))
            for name, (source, _) in bad.items():
                await enqueue(runtime, source, [samples / "bad" / name])
            reports = await run_until_idle(runtime, {INDEX: 3, ACTE: 3}, within=300)
            first_log = sim.records()
            rows = await outcome_rows(database)

            for path, pages in corpus.index.items():
                row = rows[path.name]
                assert row["status_id"] == Status.OCR_COMPLETE, (path.name, row["ocr_error"])
                check_index_content(row, pages)
            for path, deed in corpus.acte.items():
                row = rows[path.name]
                assert row["status_id"] == Status.OCR_COMPLETE, (path.name, row["ocr_error"])
                check_acte_content(row, deed)
            for name, (_, words) in bad.items():
                row = rows[name]
                assert row["status_id"] == Status.ERROR, name
                assert words in row["ocr_error"].lower(), (name, row["ocr_error"])
                assert name in row["ocr_error"], row["ocr_error"]
                expected_attempts = MAX_ATTEMPTS if name == "missing.pdf" else 1
                assert row["ocr_attempts"] == expected_attempts, (name, row["ocr_attempts"])

            calls = calls_by_model(first_log)
            assert calls[MODELS["index"]] == 20 * 3  # one call per page
            assert calls[MODELS["extract"]] == 20
            assert calls[MODELS["boost"]] == 20
            tokens = Counter[str]()
            for record in first_log:
                if record.endpoint == "generateContent" and record.model:
                    tokens[record.model] += record.input_tokens or 0
            print(
                f"\nper index document: {calls[MODELS['index']] / 20:.1f} calls, "
                f"{tokens[MODELS['index']] / 20:,.0f} input tokens; per acte document: "
                f"{(calls[MODELS['extract']] + calls[MODELS['boost']]) / 20:.1f} calls, "
                f"{tokens[MODELS['extract']] / 20:,.0f} extract + "
                f"{tokens[MODELS['boost']] / 20:,.0f} boost input tokens"
            )
            completed = [r for r in reports if r.outcome == "completed"]
            assert len(completed) == 40
            assert not any(r.cache_hit for r in completed)

            # The same bytes under new names: served from the result cache, no Gemini call.
            copies = samples / "copies"
            copies.mkdir()
            again = {INDEX: list(corpus.index)[:3], ACTE: list(corpus.acte)[:3]}
            for source, paths in again.items():
                new_paths = [copies / f"copy-{p.name}" for p in paths]
                for old, new in zip(paths, new_paths, strict=True):
                    shutil.copyfile(old, new)
                await enqueue(runtime, source, list(new_paths))
            reports = await run_until_idle(runtime, {INDEX: 2, ACTE: 2}, within=60)
            assert len(sim.records()) == len(first_log)
            assert sorted(r.cache_hit for r in reports) == [True] * 6
            rows = await outcome_rows(database)
            for paths in again.values():
                for path in paths:
                    copy = rows[f"copy-{path.name}"]
                    assert copy["status_id"] == Status.OCR_COMPLETE
                    assert copy["file_content"] == rows[path.name]["file_content"]
                    assert copy["boosted_file_content"] == rows[path.name]["boosted_file_content"]
                    assert copy["file_content_json"] == rows[path.name]["file_content_json"]

        holders = await runtime.redis.hlen(f"{redis_prefix}server:{settings.ocr_server_id}:workers")
        left = await runtime.redis.hgetall(f"{redis_prefix}server:{settings.ocr_server_id}:workers")
        assert holders == 0, left  # every capacity lease was given back


async def test_faults_and_quota_never_fail_a_document(
    database: str, redis_prefix: str, samples: Path
) -> None:
    corpus = make_corpus(samples / "good", 8, 8, seed=77)
    config = SimulatorConfig(
        port=0,
        corpus=(corpus.directory,),
        latency_ms=20,
        seed=5,
        fault_5xx=0.10,
        fault_hang=0.05,
        hang_seconds=60,
        rpm=5,  # the simulator's own quota is below the limiter's: 429s do happen
        window_seconds=2,
    )
    async with run_simulator(config) as sim:
        settings = settings_for(
            database,
            redis_prefix,
            sim.url,
            gemini_timeout_seconds=1.5,
            gemini_rpm_limit=40,
            gemini_window_seconds=2,
        )
        async with pool_runtime(settings) as runtime:
            await enqueue(runtime, INDEX, list(corpus.index))
            await enqueue(runtime, ACTE, list(corpus.acte))
            await run_until_idle(runtime, {INDEX: 3, ACTE: 3}, within=300)
            rows = await outcome_rows(database)
        statuses = Counter(r.status for r in sim.records())
        faults = Counter(r.fault for r in sim.records() if r.fault)
    for path, pages in corpus.index.items():
        row = rows[path.name]
        assert row["status_id"] == Status.OCR_COMPLETE, (path.name, row["ocr_error"])
        check_index_content(row, pages)
    for path, deed in corpus.acte.items():
        row = rows[path.name]
        assert row["status_id"] == Status.OCR_COMPLETE, (path.name, row["ocr_error"])
        check_acte_content(row, deed)
    for row in rows.values():  # a 429 never costs a document an attempt
        assert "429" not in (row["ocr_error"] or ""), row["ocr_error"]
    print(f"\nsimulator statuses {dict(statuses)}, faults {dict(faults)}")
    assert statuses[429] >= 1
    assert faults["5xx"] >= 1
    assert faults["hang"] >= 1


async def test_large_acte_goes_through_the_files_api(
    database: str, redis_prefix: str, samples: Path
) -> None:
    corpus = make_corpus(samples / "good", 0, 3, seed=300)
    config = SimulatorConfig(port=0, corpus=(corpus.directory,), latency_ms=5, seed=2)
    async with run_simulator(config) as sim:
        # Every acte is over a 1 kB inline limit: uploaded, used, deleted.
        settings = settings_for(database, redis_prefix, sim.url, gemini_inline_max_mb=0.001)
        async with pool_runtime(settings) as runtime:
            await enqueue(runtime, ACTE, list(corpus.acte))
            await run_until_idle(runtime, {ACTE: 2}, within=120)
            rows = await outcome_rows(database)
        endpoints = Counter(r.endpoint for r in sim.records() if r.status < 300)
    for path, deed in corpus.acte.items():
        row = rows[path.name]
        assert row["status_id"] == Status.OCR_COMPLETE, (path.name, row["ocr_error"])
        check_acte_content(row, deed)
    assert endpoints["files.create"] == 3, endpoints
    assert endpoints["files.delete"] == 3, endpoints
    assert endpoints["generateContent"] == 6, endpoints
