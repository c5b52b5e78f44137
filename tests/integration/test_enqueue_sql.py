"""`ocr_enqueue` (0010): the duplicate check is per document type, through both
adapters (direct Postgres, and Supabase rpc over the PostgREST stand-in)."""

from __future__ import annotations

import pytest

from domain import DocumentSource, Status
from store import QueueStore

pytestmark = pytest.mark.anyio
INDEX = DocumentSource.INDEX
ACTE = DocumentSource.ACTE


async def test_a_path_may_be_queued_once_per_source(store: QueueStore) -> None:
    first = await store.enqueue(INDEX, ["scan.pdf"], [0], 3)
    assert [(r.created, r.status_id) for r in first] == [(True, Status.READY_FOR_OCR)]
    other = await store.enqueue(ACTE, ["scan.pdf"], [0], 3)
    assert [(r.created, r.status_id) for r in other] == [(True, Status.READY_FOR_OCR)]
    assert str(other[0].id) != str(first[0].id)
    for source, row in ((INDEX, first[0]), (ACTE, other[0])):
        again = await store.enqueue(source, ["scan.pdf"], [0], 3)
        assert [(r.created, str(r.id)) for r in again] == [(False, str(row.id))]


async def test_a_done_row_of_the_other_source_does_not_count(store: QueueStore) -> None:
    await store.enqueue(ACTE, ["done.pdf"], [0], 3)
    job = await store.claim("w1", ACTE, 60)
    assert job is not None
    assert await store.complete(job, "text")
    assert (await store.enqueue(ACTE, ["done.pdf"], [0], 3))[0].created
    assert (await store.enqueue(INDEX, ["done.pdf"], [0], 3))[0].created
