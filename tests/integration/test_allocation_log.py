"""Allocation decisions land in `ocr_pool_allocations` through both adapters."""

from __future__ import annotations

import asyncpg
import pytest

from domain import AllocationRecord
from store import QueueStore, StoreError
from tests.support.sql import Q

pytestmark = pytest.mark.anyio


async def rows(url: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(Q["allocation_rows"]))
    finally:
        await conn.close()


async def test_decisions_are_recorded_in_order(store: QueueStore, migrated_url: str) -> None:
    conn = await asyncpg.connect(migrated_url)
    await conn.execute(Q["truncate_allocations"])
    await conn.close()
    first = AllocationRecord("p1", "srv-a", 8, 6, 2, 120, 30, 40.5, 5.0, "work 4860 s vs 150 s")
    await store.record_allocation(first)
    await store.record_allocation(AllocationRecord("p1", "srv-a", 8, 1, 7, 0, 30, None, None, "x"))
    got = await rows(migrated_url)
    assert [(r["index_workers"], r["acte_workers"]) for r in got] == [(6, 2), (1, 7)]
    assert got[0]["reason"] == "work 4860 s vs 150 s"
    assert got[0]["index_seconds"] == pytest.approx(40.5)
    assert got[1]["index_seconds"] is None


async def test_an_impossible_split_is_refused(store: QueueStore) -> None:
    with pytest.raises(StoreError, match="must equal the pool size"):
        await store.record_allocation(AllocationRecord("p1", "srv-a", 8, 6, 6))
