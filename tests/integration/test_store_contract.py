"""The queue contract, run against both adapters (direct Postgres, and Supabase
rpc over real HTTP to the PostgREST stand-in), on a real migrated database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import asyncpg
import pytest

from domain import DocumentSource, Status
from store import FailOutcome, QueueStore, StoreError, StoreUnavailable
from store.postgres import PostgresStore
from store.supabase import SupabaseStore
from tests.support.postgrest import serve_postgrest
from tests.support.sql import Q

pytestmark = pytest.mark.anyio
INDEX = DocumentSource.INDEX
ACTE = DocumentSource.ACTE


async def sql(url: str, name: str, *args: Any) -> Any:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(Q[name], *args)
    finally:
        await conn.close()


async def insert(
    url: str,
    source: str = "index",
    status: int = 3,
    path: str = "p.pdf",
    created_at: datetime | None = None,
    priority: int | None = None,
    attempts: int | None = None,
    max_attempts: int | None = None,
    last_error_at: datetime | None = None,
) -> Any:
    rows = await sql(
        url,
        "insert",
        source,
        status,
        path,
        created_at,
        priority,
        attempts,
        max_attempts,
        last_error_at,
    )
    return rows[0]["id"]


async def row(url: str, job_id: Any) -> Any:
    rows = await sql(url, "row", job_id)
    return rows[0]


async def test_claim_takes_priority_then_age_and_only_its_source(
    store: QueueStore, migrated_url: str
) -> None:
    now = datetime.now(UTC)
    old = await insert(migrated_url, path="old.pdf", created_at=now - timedelta(hours=2))
    new = await insert(migrated_url, path="new.pdf", created_at=now - timedelta(hours=1))
    urgent = await insert(migrated_url, path="urgent.pdf", priority=10, created_at=now)
    await insert(
        migrated_url, source="plan_cadastraux", path="plan.pdf", created_at=now - timedelta(days=1)
    )
    await insert(migrated_url, source="acte", path="acte.pdf")
    await insert(
        migrated_url, status=Status.WAITING, path="waiting.pdf", created_at=now - timedelta(days=1)
    )

    claimed = [await store.claim("w1", INDEX, 60) for _ in range(4)]
    assert [str(c.id) for c in claimed[:3] if c] == [str(urgent), str(old), str(new)]
    assert claimed[3] is None
    first = claimed[0]
    assert first is not None
    assert first.source is INDEX
    assert first.supabase_path == "urgent.pdf"
    assert (first.attempt, first.max_attempts) == (1, 3)
    stored = await row(migrated_url, first.id)
    assert stored["status_id"] == Status.OCR_IN_PROGRESS
    assert stored["ocr_worker_id"] == "w1"


async def test_claim_rejects_unknown_source_and_bad_lease(store: QueueStore) -> None:
    with pytest.raises(StoreError, match="index"):
        await store.claim("w1", "plan_cadastraux", 60)  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="lease"):
        await store.claim("w1", INDEX, 0)


async def test_complete_writes_results_while_lease_held(
    store: QueueStore, migrated_url: str
) -> None:
    await insert(migrated_url, source="acte")
    job = await store.claim("w1", ACTE, 60)
    assert job is not None
    assert await store.heartbeat(job, 60)
    assert await store.complete(job, "texte brut", "texte corrigé")
    stored = await row(migrated_url, job.id)
    assert stored["status_id"] == Status.OCR_COMPLETE
    assert (stored["file_content"], stored["boosted_file_content"]) == (
        "texte brut",
        "texte corrigé",
    )
    assert stored["ocr_completed_at"] is not None
    # Completing twice, or heart-beating a finished job, is refused.
    assert not await store.complete(job, "again")
    assert not await store.heartbeat(job, 60)


async def test_lost_lease_is_recovered_and_late_writer_refused(
    store: QueueStore, migrated_url: str
) -> None:
    await insert(migrated_url)
    stale = await store.claim("w-dead", INDEX, 0.3)
    assert stale is not None
    await anyio.sleep(0.5)
    # (Expired but not taken over, the holder could still renew or finish it: see
    # tests/integration/test_outages_store.py. Here nobody renews, and the database was not out.)
    recovered = await store.recover_expired()
    assert [(str(r.id), r.status_id, r.worker_id) for r in recovered] == [
        (str(stale.id), Status.READY_FOR_OCR, "w-dead")
    ]
    stored = await row(migrated_url, stale.id)
    assert stored["ocr_attempts"] == 1
    assert "w-dead stopped heart-beating" in stored["ocr_error"]

    fresh = await store.claim("w-new", INDEX, 60)
    assert fresh is not None
    assert str(fresh.id) == str(stale.id)
    assert fresh.attempt == 2
    # The old holder wakes up and tries to write: refused on every path.
    assert not await store.heartbeat(stale, 60)
    assert not await store.complete(stale, "late result")
    assert await store.fail(stale, "late failure", retryable=True) is FailOutcome.LOST
    assert not await store.release(stale)
    assert await store.complete(fresh, "good result")
    stored = await row(migrated_url, stale.id)
    assert stored["file_content"] == "good result"
    assert stored["ocr_worker_id"] == "w-new"


async def test_recovery_counts_attempts_and_gives_up(store: QueueStore, migrated_url: str) -> None:
    job_id = await insert(migrated_url, attempts=2, max_attempts=3)
    job = await store.claim("w1", INDEX, 0.2)
    assert job is not None
    assert job.attempt == 3
    await anyio.sleep(0.4)
    recovered = await store.recover_expired()
    assert [r.status_id for r in recovered] == [Status.ERROR]
    assert (await row(migrated_url, job_id))["status_id"] == Status.ERROR
    assert await store.recover_expired() == []


async def test_fail_retryable_backs_off_then_gives_up(store: QueueStore, migrated_url: str) -> None:
    job_id = await insert(migrated_url, max_attempts=2)
    job = await store.claim("w1", INDEX, 60)
    assert job is not None
    assert (
        await store.fail(job, "503 from Gemini", retryable=True, retry_delay_seconds=0.4)
        is FailOutcome.REQUEUED
    )
    stored = await row(migrated_url, job_id)
    assert (stored["status_id"], stored["ocr_attempts"]) == (Status.READY_FOR_OCR, 1)
    assert stored["ocr_error"] == "503 from Gemini"
    comp = await store.composition()
    assert (comp[INDEX].claimable, comp[INDEX].delayed) == (0, 1)
    assert await store.claim("w1", INDEX, 60) is None  # still backing off
    await anyio.sleep(0.5)
    again = await store.claim("w1", INDEX, 60)
    assert again is not None
    assert again.attempt == 2
    assert await store.fail(again, "503 again", retryable=True) is FailOutcome.FAILED
    stored = await row(migrated_url, job_id)
    assert (stored["status_id"], stored["ocr_attempts"]) == (Status.ERROR, 2)


async def test_permanent_failure_stops_at_once(store: QueueStore, migrated_url: str) -> None:
    job_id = await insert(migrated_url)
    job = await store.claim("w1", INDEX, 60)
    assert job is not None
    outcome = await store.fail(job, "not a PDF", retryable=False)
    assert outcome is FailOutcome.FAILED
    stored = await row(migrated_url, job_id)
    assert (stored["status_id"], stored["ocr_attempts"]) == (Status.ERROR, 1)


async def test_release_returns_row_without_spending_an_attempt(
    store: QueueStore, migrated_url: str
) -> None:
    job_id = await insert(migrated_url)
    job = await store.claim("w1", INDEX, 60)
    assert job is not None
    assert await store.release(job)
    stored = await row(migrated_url, job_id)
    assert (stored["status_id"], stored["ocr_attempts"]) == (Status.READY_FOR_OCR, 0)
    assert not await store.complete(job, "x")


async def test_requeue_failed_only_touches_ocr_failures(
    store: QueueStore, migrated_url: str
) -> None:
    now = datetime.now(UTC)
    ocr_failed = await insert(migrated_url, status=Status.ERROR, attempts=3, last_error_at=now)
    acte_failed = await insert(
        migrated_url,
        source="acte",
        status=Status.ERROR,
        path="a.pdf",
        attempts=1,
        last_error_at=now,
    )
    extraction_failed = await insert(migrated_url, status=Status.ERROR, path="x.pdf")
    plan_failed = await insert(
        migrated_url,
        source="plan_cadastraux",
        status=Status.ERROR,
        path="plan.pdf",
        last_error_at=now,
    )
    assert await store.requeue_failed(INDEX) == 1
    stored = await row(migrated_url, ocr_failed)
    assert (stored["status_id"], stored["ocr_attempts"]) == (Status.READY_FOR_OCR, 0)
    assert (await row(migrated_url, acte_failed))["status_id"] == Status.ERROR
    assert await store.requeue_failed() == 1
    assert (await row(migrated_url, acte_failed))["status_id"] == Status.READY_FOR_OCR
    for untouched in (extraction_failed, plan_failed):
        assert (await row(migrated_url, untouched))["status_id"] == Status.ERROR


async def test_enqueue_reports_duplicates(store: QueueStore, migrated_url: str) -> None:
    first = await store.enqueue(INDEX, ["b.pdf", "a.pdf", "a.pdf"], [1, 5, 5], 4)
    by_path = [(r.supabase_path, r.created) for r in first]
    assert sorted(by_path) == [("a.pdf", False), ("a.pdf", True), ("b.pdf", True)]
    a_ids = {str(r.id) for r in first if r.supabase_path == "a.pdf"}
    assert len(a_ids) == 1
    again = await store.enqueue(INDEX, ["a.pdf", "c.pdf"], [0, 0], 3)
    assert sorted((r.supabase_path, r.created, r.status_id) for r in again) == [
        ("a.pdf", False, Status.READY_FOR_OCR),
        ("c.pdf", True, Status.READY_FOR_OCR),
    ]
    claimed = await store.claim("w1", INDEX, 60)
    assert claimed is not None
    assert (claimed.supabase_path, claimed.max_attempts) == ("a.pdf", 4)  # priority 5 first
    assert await store.complete(claimed, "{}")
    # Done documents may be queued again (a new row).
    redo = await store.enqueue(INDEX, ["a.pdf"], [0], 3)
    assert redo[0].created
    assert str(redo[0].id) not in a_ids


async def test_composition_and_stats(store: QueueStore, migrated_url: str) -> None:
    await store.enqueue(INDEX, [f"i{n}.pdf" for n in range(3)], [0, 0, 0], 3)
    await store.enqueue(ACTE, ["a1.pdf", "a2.pdf"], [0, 0], 3)
    await insert(migrated_url, source="plan_cadastraux", path="plan.pdf")
    job = await store.claim("w1", ACTE, 60)
    assert job is not None
    await store.complete(job, "ok")
    busy = await store.claim("w1", INDEX, 60)
    assert busy is not None
    comp = await store.composition()
    assert (comp[INDEX].claimable, comp[INDEX].in_progress) == (2, 1)
    assert (comp[ACTE].claimable, comp[ACTE].in_progress) == (1, 0)
    stats = {s.document_source: s for s in await store.stats()}
    assert set(stats) == {"index", "acte"}
    assert (stats["index"].pending, stats["index"].in_progress) == (2, 1)
    assert (stats["acte"].pending, stats["acte"].completed_today) == (1, 1)
    assert stats["acte"].completed_last_hour == 1
    assert stats["acte"].p50_processing_seconds is not None
    assert stats["index"].oldest_pending_seconds is not None


async def test_supabase_wrong_key_and_unreachable_are_clear_errors(migrated_url: str) -> None:
    async with serve_postgrest(migrated_url, "right-key") as (base_url, _):
        wrong = await SupabaseStore.connect("prod", base_url, "wrong-key")
        try:
            with pytest.raises(StoreError, match="queue database 'prod': Invalid API key"):
                await wrong.ping()
        finally:
            await wrong.close()
    gone = await SupabaseStore.connect("prod", "http://127.0.0.1:1", "k")
    try:
        with pytest.raises(StoreUnavailable, match="cannot reach Supabase for 'prod'"):
            await gone.claim("w1", INDEX, 60)
    finally:
        await gone.close()


async def test_unmigrated_database_is_named(fresh_database: Any) -> None:
    async with fresh_database(migrate=False) as url:
        store = await PostgresStore.connect("dev", url)
        try:
            with pytest.raises(StoreError, match="'dev' is not migrated"):
                await store.claim("w1", INDEX, 60)
        finally:
            await store.close()
        async with serve_postgrest(url, "k") as (base_url, _):
            sb = await SupabaseStore.connect("dev", base_url, "k")
            try:
                with pytest.raises(StoreError, match="'dev' is not migrated"):
                    await sb.claim("w1", INDEX, 60)
            finally:
                await sb.close()
