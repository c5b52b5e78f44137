"""A result the production table cannot index (its French full-text GIN indexes build a
tsvector of at most 1 MB) fails the document once, with a clear error: never a retry loop,
never a row stuck at 6."""

from __future__ import annotations

import hashlib
import random
import string
from pathlib import Path

import asyncpg
import pytest

from domain import DocumentSource, Status
from gemini_simulator import SimulatorConfig, run_simulator
from pool.cli.samples import acte_document, write_pdf
from store import QueueStore, ResultRefused
from tests.integration.test_workers_e2e import enqueue, outcome_rows, pool_runtime, settings_for
from tests.support.databases import temporary_database_async
from tests.support.pool_run import run_until_idle
from tests.support.sql import Q
from workers.pipelines import acte
from workers.pipelines.context import Models

pytestmark = pytest.mark.anyio


def unindexable_text() -> str:
    """Distinct made-up words whose tsvector is over 1 MB (about 2 MB of text)."""
    rng = random.Random(7)
    return " ".join("".join(rng.choices(string.ascii_lowercase, k=12)) for _ in range(160_000))


async def full_text_indexes(url: str, query: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(Q[query])
    finally:
        await conn.close()


async def test_without_those_indexes_the_same_text_is_stored(store: QueueStore) -> None:
    """The control: the refusal below is the full-text index's, not the column's."""
    await store.enqueue(DocumentSource.ACTE, ["/tmp/huge.pdf"], [0], 3)
    job = await store.claim("w1", DocumentSource.ACTE, 60)
    assert job is not None
    assert await store.complete(job, unindexable_text(), None, {"type": "acte"})


async def test_a_refused_result_fails_the_document_once(redis_prefix: str, tmp_path: Path) -> None:
    path = tmp_path / "acte.pdf"
    write_pdf(path, acte_document(31, 2, 6))
    async with temporary_database_async() as url:
        await full_text_indexes(url, "add_full_text_indexes")
        async with run_simulator(SimulatorConfig(port=0, corpus=(tmp_path,), latency_ms=1)) as sim:
            settings = settings_for(url, redis_prefix, sim.url)
            async with pool_runtime(settings) as runtime:
                store = runtime.targets[0].store
                # The cached result for these bytes is the unindexable text: the worker
                # takes it without calling Gemini, then the table refuses it.
                sha = hashlib.sha256(path.read_bytes()).hexdigest()
                key = acte.pipeline_key(
                    Models(
                        index=settings.gemini_model_index,
                        acte_extract=settings.gemini_model_acte_extract,
                        acte_boost=settings.gemini_model_acte_boost,
                    )
                )
                await store.store_result(sha, key, unindexable_text(), "court", {"type": "acte"})
                await enqueue(runtime, DocumentSource.ACTE, [path])
                reports = await run_until_idle(runtime, {DocumentSource.ACTE: 1}, within=60)
                rows = await outcome_rows(url)
        assert not [r for r in sim.records() if r.endpoint == "generateContent"]
    row = rows[path.name]
    assert row["status_id"] == Status.ERROR
    assert row["ocr_attempts"] == 1
    assert row["file_content"] is None
    assert "tsvector" in row["ocr_error"]
    assert "1 MB" in row["ocr_error"]
    assert [r.outcome for r in reports] == ["failed"]


async def test_both_adapters_raise_result_refused(store: QueueStore, migrated_url: str) -> None:
    await full_text_indexes(migrated_url, "add_full_text_indexes")
    try:
        await store.enqueue(DocumentSource.ACTE, ["/tmp/huge.pdf"], [0], 3)
        job = await store.claim("w1", DocumentSource.ACTE, 60)
        assert job is not None
        with pytest.raises(ResultRefused, match=r"tsvector.*1 MB"):
            await store.complete(job, unindexable_text(), None, {"type": "acte"})
        # The lease is still held and the row untouched: the worker can fail it.
        assert await store.heartbeat(job, 60)
        assert await store.complete(job, "un texte court", "un texte court", {"type": "acte"})
    finally:
        await full_text_indexes(migrated_url, "drop_full_text_indexes")
