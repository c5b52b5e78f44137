"""The lease fence through outages of the queue database (migration 0009), on both store
adapters (direct Postgres, and Supabase rpc over real HTTP to the PostgREST stand-in):

* a late write (renewal, result, failure, release) is taken while the row still carries
  the writer's lease: at 6 expired, or recovered by the reaper with nobody claiming it
  since; once another worker claimed it, every late write is refused;
* the reaper charges no attempt for a lease that ran out during a reported outage, and
  leaves the row to its holder for one lease after the outage ended;
* the poison-pill cap ends a document whose lease keeps running out;
* a store reports the outage it lived through before its first call after it (a real
  Postgres stopped and started).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import pytest

from domain import DocumentSource, Status
from store import FailOutcome, QueueStore, StoreUnavailable
from store.migrations.runner import apply_migrations
from store.postgres import PostgresStore
from store.sql import load_queries
from store.supabase import SupabaseStore
from tests.support.postgres_server import postgres_server

pytestmark = pytest.mark.anyio
INDEX = DocumentSource.INDEX
OQ = load_queries(Path(__file__).parents[1] / "support" / "outages.sql")


async def sql(url: str, name: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(OQ[name], *args))
    finally:
        await conn.close()


async def row(url: str, job_id: Any) -> asyncpg.Record:
    return (await sql(url, "lease_row", job_id))[0]


async def insert(url: str, path: str = "p.pdf", max_attempts: int = 3) -> Any:
    return (await sql(url, "insert_ready", "index", path, max_attempts))[0]["id"]


@pytest.fixture
async def queue(store: QueueStore, migrated_url: str) -> tuple[QueueStore, str]:
    """Both adapters over an empty queue and no outage on record."""
    await sql(migrated_url, "forget_outages")
    return store, migrated_url


async def test_an_expired_lease_nobody_took_is_still_the_holders(
    queue: tuple[QueueStore, str],
) -> None:
    store, url = queue
    job_id = await insert(url)
    job = await store.claim("w1", INDEX, 0.2)
    assert job is not None
    await anyio.sleep(0.3)
    assert await store.heartbeat(job, 60)  # taken back: nobody else has it
    stored = await row(url, job_id)
    assert stored["status_id"] == Status.OCR_IN_PROGRESS
    assert await store.complete(job, "texte", "texte corrigé", {"type": "index"})
    stored = await row(url, job_id)
    assert (stored["status_id"], stored["file_content"]) == (Status.OCR_COMPLETE, "texte")
    assert (stored["ocr_attempts"], stored["ocr_lease_expiries"]) == (0, 0)


async def test_a_late_result_is_taken_after_recovery_without_a_new_claim(
    queue: tuple[QueueStore, str],
) -> None:
    store, url = queue
    job_id = await insert(url)
    job = await store.claim("w1", INDEX, 0.2)
    assert job is not None
    await anyio.sleep(0.3)
    recovered = await store.recover_expired()
    assert [(str(r.id), r.status_id, r.attempt_counted) for r in recovered] == [
        (str(job_id), Status.READY_FOR_OCR, True)  # no outage on record: charged
    ]
    stored = await row(url, job_id)
    assert str(stored["ocr_lease_token"]) == str(job.lease_token)  # kept until a new claim
    assert await store.complete(job, "late but good")
    stored = await row(url, job_id)
    assert (stored["status_id"], stored["file_content"]) == (Status.OCR_COMPLETE, "late but good")
    assert stored["ocr_error"] is None
    assert stored["ocr_lease_token"] is None
    assert not await store.complete(job, "twice")  # finished: nothing more is taken


async def test_every_late_write_is_refused_once_another_worker_claimed(
    queue: tuple[QueueStore, str],
) -> None:
    store, url = queue
    job_id = await insert(url)
    old = await store.claim("w-old", INDEX, 0.2)
    assert old is not None
    await anyio.sleep(0.3)
    assert len(await store.recover_expired()) == 1
    new = await store.claim("w-new", INDEX, 60)
    assert new is not None
    assert str(new.id) == str(job_id)
    assert not await store.heartbeat(old, 60)
    assert not await store.complete(old, "late result")
    assert await store.fail(old, "late failure", retryable=False) is FailOutcome.LOST
    assert not await store.release(old)
    stored = await row(url, job_id)
    assert (stored["status_id"], stored["ocr_worker_id"]) == (Status.OCR_IN_PROGRESS, "w-new")
    assert str(stored["ocr_lease_token"]) == str(new.lease_token)
    assert await store.complete(new, "the new holder's result")
    assert (await row(url, job_id))["file_content"] == "the new holder's result"


async def test_a_lease_run_out_in_a_reported_outage_costs_no_attempt(
    queue: tuple[QueueStore, str],
) -> None:
    store, url = queue
    job_id = await insert(url)
    job = await store.claim("w1", INDEX, 0.3)
    assert job is not None
    await anyio.sleep(0.4)
    await sql(url, "note_outage", 1.0)  # a pool could not reach the database meanwhile
    # The holder gets one whole lease after the outage to come back: not recovered yet.
    assert await store.recover_expired() == []
    assert (await row(url, job_id))["status_id"] == Status.OCR_IN_PROGRESS
    await anyio.sleep(0.4)
    recovered = await store.recover_expired()
    assert [(r.status_id, r.attempt_counted) for r in recovered] == [(Status.READY_FOR_OCR, False)]
    stored = await row(url, job_id)
    assert (stored["ocr_attempts"], stored["ocr_lease_expiries"]) == (0, 1)
    assert "database outage" in stored["ocr_error"]
    assert "no attempt counted" in stored["ocr_error"]
    # Nobody claimed it since: the holder's late result still lands.
    assert await store.complete(job, "finished during the outage")
    assert (await row(url, job_id))["status_id"] == Status.OCR_COMPLETE


async def test_a_holder_back_after_the_outage_keeps_its_row(
    queue: tuple[QueueStore, str],
) -> None:
    store, url = queue
    job_id = await insert(url)
    job = await store.claim("w1", INDEX, 0.3)
    assert job is not None
    await anyio.sleep(0.4)
    await sql(url, "note_outage", 1.0)
    assert await store.heartbeat(job, 0.3)  # its first renewal after the outage
    await anyio.sleep(0.2)
    assert await store.recover_expired() == []
    assert await store.complete(job, "done")
    stored = await row(url, job_id)
    assert (stored["status_id"], stored["ocr_attempts"], stored["ocr_lease_expiries"]) == (
        Status.OCR_COMPLETE,
        0,
        0,
    )


async def test_an_expiry_outside_any_outage_is_still_charged(
    queue: tuple[QueueStore, str],
) -> None:
    store, url = queue
    await sql(url, "note_outage", 5.0)  # over before the claim: protects nothing after it
    job_id = await insert(url)
    job = await store.claim("w-dead", INDEX, 0.2)
    assert job is not None
    await anyio.sleep(0.3)
    recovered = await store.recover_expired()
    assert [r.attempt_counted for r in recovered] == [True]
    stored = await row(url, job_id)
    assert (stored["ocr_attempts"], stored["ocr_lease_expiries"]) == (1, 1)
    assert "w-dead stopped heart-beating" in stored["ocr_error"]


async def test_the_poison_pill_cap_ends_a_document_whose_lease_keeps_running_out(
    queue: tuple[QueueStore, str],
) -> None:
    """Expiries during outages cost no attempt, so only the separate count (5 by
    default) ends a document that keeps killing its worker through them."""
    store, url = queue
    job_id = await insert(url, max_attempts=3)
    statuses = []
    for _ in range(5):
        job = await store.claim("w-victim", INDEX, 0.2)
        assert job is not None
        assert job.attempt == 1  # no attempt was ever charged
        await anyio.sleep(0.3)
        await sql(url, "note_outage", 0.5)
        await anyio.sleep(0.25)
        (recovered,) = await store.recover_expired()
        assert not recovered.attempt_counted
        statuses.append(recovered.status_id)
    assert statuses == [Status.READY_FOR_OCR] * 4 + [Status.ERROR]
    stored = await row(url, job_id)
    assert (stored["ocr_attempts"], stored["ocr_lease_expiries"]) == (0, 5)
    assert "lease expired 5 times" in stored["ocr_error"]
    assert "killing its worker" in stored["ocr_error"]
    assert await store.claim("w-next", INDEX, 60) is None
    # requeue-failed gives fresh attempts and a fresh count.
    assert await store.requeue_failed(INDEX) == 1
    stored = await row(url, job_id)
    assert (stored["status_id"], stored["ocr_lease_expiries"]) == (Status.READY_FOR_OCR, 0)


async def test_a_late_failure_counts_its_attempt_once(queue: tuple[QueueStore, str]) -> None:
    store, url = queue
    charged = await insert(url, "charged.pdf")
    job = await store.claim("w1", INDEX, 0.2)
    assert job is not None
    await anyio.sleep(0.3)
    assert [r.attempt_counted for r in await store.recover_expired()] == [True]
    outcome = await store.fail(job, "503 from Gemini", retryable=True, retry_delay_seconds=30)
    assert outcome is FailOutcome.REQUEUED
    stored = await row(url, charged)
    assert stored["ocr_attempts"] == 1  # the recovery's charge, not a second one
    assert stored["ocr_error"] == "503 from Gemini"
    assert stored["ocr_available_at"] is not None
    assert stored["ocr_lease_token"] is None

    spared = await insert(url, "spared.pdf")
    job = await store.claim("w2", INDEX, 0.2)
    assert job is not None
    await anyio.sleep(0.3)
    await sql(url, "note_outage", 0.5)
    await anyio.sleep(0.25)
    assert [r.attempt_counted for r in await store.recover_expired()] == [False]
    assert await store.fail(job, "not a PDF", retryable=False) is FailOutcome.FAILED
    stored = await row(url, spared)
    assert (stored["status_id"], stored["ocr_attempts"]) == (Status.ERROR, 1)


async def test_a_row_the_reaper_failed_takes_a_late_result_but_no_late_retry(
    queue: tuple[QueueStore, str],
) -> None:
    store, url = queue
    done_late = await insert(url, "a.pdf", max_attempts=1)
    failed_late = await insert(url, "b.pdf", max_attempts=1)
    first = await store.claim("w1", INDEX, 0.2)
    second = await store.claim("w2", INDEX, 0.2)
    assert first is not None
    assert second is not None
    await anyio.sleep(0.3)
    assert {r.status_id for r in await store.recover_expired()} == {Status.ERROR}
    assert await store.complete(first, "good after all")
    assert (await row(url, done_late))["status_id"] == Status.OCR_COMPLETE
    outcome = await store.fail(second, "timeout", retryable=True)
    assert outcome is FailOutcome.FAILED  # a failure never brings a row back from 4
    assert (await row(url, failed_late))["status_id"] == Status.ERROR


async def test_a_late_release_only_gives_the_token_up(queue: tuple[QueueStore, str]) -> None:
    store, url = queue
    job_id = await insert(url)
    job = await store.claim("w1", INDEX, 0.2)
    assert job is not None
    await anyio.sleep(0.3)
    assert len(await store.recover_expired()) == 1
    assert await store.release(job)
    stored = await row(url, job_id)
    assert (stored["status_id"], stored["ocr_lease_token"]) == (Status.READY_FOR_OCR, None)
    assert not await store.complete(job, "given back, then finished")  # no longer ours
    assert not await store.heartbeat(job, 60)


async def test_each_adapter_reports_an_outage_before_its_next_call(
    queue: tuple[QueueStore, str],
) -> None:
    """The report itself through each adapter (the failure that starts the outage is
    told to the store's watch directly here; a real one: the last test)."""
    store, url = queue
    assert isinstance(store, PostgresStore | SupabaseStore)
    job_id = await insert(url)
    job = await store.claim("w1", INDEX, 0.2)
    assert job is not None
    store.outages.failed(OSError("connection refused"), "connection refused")
    await anyio.sleep(0.3)  # the lease runs out "during" the outage
    assert await store.recover_expired() == []  # reported first: left to its holder
    assert not store.outages.state.down
    (outage,) = await sql(url, "outages")
    assert outage["seconds"] >= 0.25
    assert "pid" in outage["reporter"]
    assert await store.heartbeat(job, 60)
    assert (await row(url, job_id))["ocr_attempts"] == 0


async def test_an_outage_report_must_make_sense(migrated_url: str) -> None:
    for seconds in (0.0, -1.0, 8 * 86400.0):
        with pytest.raises(asyncpg.InvalidParameterValueError, match="outage lasts"):
            await sql(migrated_url, "note_outage", seconds)


@pytest.mark.slow
async def test_a_store_reports_the_outage_it_lived_through(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A real Postgres stopped while a lease is held, for longer than the lease, then
    started: the store's first call after it records the outage before anything else
    runs, so the reaper in that very call leaves the lease to its holder, which takes
    it back and completes without an attempt charged. One log line each way."""
    caplog.set_level(logging.INFO, logger="workers.store")
    with postgres_server() as server:
        conn = await asyncpg.connect(server.url)
        try:
            await apply_migrations(conn)
        finally:
            await conn.close()
        job_id = await insert(server.url)
        store = await PostgresStore.connect("private", server.url)
        try:
            job = await store.claim("w1", INDEX, 1.0)
            assert job is not None
            server.stop()
            for _ in range(3):
                with pytest.raises(StoreUnavailable):
                    await store.heartbeat(job, 1.0)
                await anyio.sleep(0.5)
            await anyio.sleep(1.0)  # the lease (1 s) runs out during the outage
            server.start()
            assert await store.recover_expired() == []
            (outage,) = await sql(server.url, "outages")
            assert outage["seconds"] >= 2.5
            assert "pid" in outage["reporter"]
            assert await store.heartbeat(job, 1.0)
            assert await store.complete(job, "held through the outage")
        finally:
            await store.close()
        stored = await row(server.url, job_id)
    assert (stored["status_id"], stored["ocr_attempts"]) == (Status.OCR_COMPLETE, 0)
    said = [r.getMessage() for r in caplog.records if r.name == "workers.store"]
    assert len([m for m in said if "unreachable" in m]) == 1, said
    assert len([m for m in said if "answers again" in m]) == 1, said
    assert not [r for r in caplog.records if r.exc_info and r.levelno > logging.DEBUG]
