"""The durable day count in the queue database (migrations/0008, `merge_gemini_day_usage`),
on both adapters (direct Postgres, and Supabase rpc over real HTTP to the PostgREST
stand-in), on a real migrated database: greatest wins, the whole day comes back, days
are apart, concurrent pools never lower a count, wrong counts are refused."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import pytest

from store import QueueStore, StoreError
from store.sql import load_queries

pytestmark = pytest.mark.anyio
D = load_queries(Path(__file__).parents[1] / "support" / "day_usage.sql")
DAY = dt.date(2026, 3, 14)


def names(*stems: str) -> list[str]:
    """Model names of this test only (the module's database is shared by its tests)."""
    tag = uuid.uuid4().hex[:8]
    return [f"{stem}-{tag}" for stem in stems]


def ours(counts: dict[str, int], models: list[str]) -> dict[str, int]:
    return {m: c for m, c in counts.items() if m in models}


async def row(url: str, model: str, day: dt.date) -> Any:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchrow(D["day_usage_row"], model, day)
    finally:
        await conn.close()


async def test_the_greatest_count_wins_and_the_whole_day_comes_back(store: QueueStore) -> None:
    flash, pro = names("flash", "pro")
    both = [flash, pro]
    assert ours(await store.merge_gemini_day_usage(DAY, {flash: 44, pro: 3}), both) == {
        flash: 44,
        pro: 3,
    }
    # A pool whose Redis restarted reports fewer: the greater count stays, and it
    # learns the other model's count too.
    assert ours(await store.merge_gemini_day_usage(DAY, {flash: 20}), both) == {
        flash: 44,
        pro: 3,
    }
    assert ours(await store.merge_gemini_day_usage(DAY, {flash: 64}), both) == {
        flash: 64,
        pro: 3,
    }
    # Nothing given: just read the day.
    assert ours(await store.merge_gemini_day_usage(DAY, {}), both) == {flash: 64, pro: 3}


async def test_days_are_apart(store: QueueStore) -> None:
    (flash,) = names("flash")
    await store.merge_gemini_day_usage(DAY, {flash: 900})
    next_day = DAY + dt.timedelta(days=1)
    assert ours(await store.merge_gemini_day_usage(next_day, {}), [flash]) == {}
    assert ours(await store.merge_gemini_day_usage(next_day, {flash: 2}), [flash]) == {flash: 2}
    assert ours(await store.merge_gemini_day_usage(DAY, {}), [flash]) == {flash: 900}


async def test_a_count_that_does_not_grow_writes_nothing(
    store: QueueStore, migrated_url: str
) -> None:
    (flash,) = names("flash")
    await store.merge_gemini_day_usage(DAY, {flash: 10})
    first = await row(migrated_url, flash, DAY)
    await store.merge_gemini_day_usage(DAY, {flash: 10})
    await store.merge_gemini_day_usage(DAY, {flash: 9})
    assert await row(migrated_url, flash, DAY) == first
    await store.merge_gemini_day_usage(DAY, {flash: 11})
    grown = await row(migrated_url, flash, DAY)
    assert grown["requests"] == 11
    assert grown["updated_at"] > first["updated_at"]


async def test_pools_merging_at_once_never_lower_a_count(store: QueueStore) -> None:
    models = names("a", "b", "c")
    sent: list[dict[str, int]] = [
        {m: (n * 7 + k * 13) % 50 for k, m in enumerate(models)} for n in range(24)
    ]
    async with anyio.create_task_group() as tg:
        for counts in sent:
            # reversed key order too: the function writes in model order (no deadlock)
            ordered = dict(reversed(counts.items())) if counts[models[0]] % 2 else counts
            tg.start_soon(store.merge_gemini_day_usage, DAY, ordered)
    expected = {m: max(c[m] for c in sent) for m in models}
    assert ours(await store.merge_gemini_day_usage(DAY, {}), models) == expected


@pytest.mark.parametrize(
    ("counts", "message"),
    [
        ({"flash": -1}, "count of at least 0"),
        ({" ": 1}, "non-blank name"),
        ({"x" * 201: 1}, "at most 200 characters"),
    ],
)
async def test_wrong_counts_are_refused(
    store: QueueStore, counts: dict[str, int], message: str
) -> None:
    with pytest.raises(StoreError, match=message):
        await store.merge_gemini_day_usage(DAY, counts)
