"""`ocr-pool migrate` on the registre extractor's own table, as production has it
(tests/support/original_shape.sql), and on a live copy of it grown to a million rows.

On the fixture: every existing row stays byte for byte (and is not even rewritten:
same xmin), every grant, row level security flag and policy of the pre-existing
tables stays as it was, what `anon` and `authenticated` see stays the same, and
ocr-pool's own objects are locked down. `ocr-pool migrate` reports the exposure,
and only `ocr-pool lockdown` changes it.

Live: while migrate runs, a writer inserting a row every 50 ms and another
updating one are never blocked for a second, although another program holds the
table in a long transaction, and then a long read, during the run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import anyio
import asyncpg
import pytest

from tests.support.databases import temporary_database_async
from tests.support.live_migration import (
    FIXTURE_ROWS,
    L,
    S,
    Variant,
    ensure_supabase_roles,
    exposed_own_objects,
    load_original,
    run_live_migration,
)

pytestmark = pytest.mark.anyio
ROLES = ("anon", "authenticated")


async def ocr_pool(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The command as a user runs it (settings from the environment only)."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.endswith(("_DATABASE_URL", "_KEY", "_SUPABASE_URL")) and k != "DATABASE_URL"
    }
    with anyio.fail_after(120):
        done = await anyio.run_process(
            [sys.executable, "-m", "pool.cli", *args],
            env={**clean, "COLUMNS": "200", **env},
            cwd=cwd,
            check=False,
        )
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(), done.stderr.decode()
    )


Seen = tuple[list[tuple[object, ...]] | str, ...]


async def seen_by(url: str, role: str) -> Seen:
    """What `role` gets from the queue and the statuses: the rows, or the refusal."""
    conn = await asyncpg.connect(url)
    try:
        await conn.fetchval(S["become"], role)
        seen: list[list[tuple[object, ...]] | str] = []
        for query in ("seen_queue", "seen_statuses"):
            try:
                seen.append([tuple(r) for r in await conn.fetch(S[query])])
            except asyncpg.InsufficientPrivilegeError as exc:
                seen.append(f"refused: {exc}")
        return tuple(seen)
    finally:
        await conn.close()


@dataclass(frozen=True)
class State:
    queue: list[tuple[object, ...]]  # (id, row without the excluded columns, xmin)
    queue_md5: str
    statuses: list[tuple[object, ...]]
    access: list[asyncpg.Record]  # ACLs, RLS flags, storage, policies of both tables
    seen: dict[str, Seen]


async def state(url: str, excluded: list[str]) -> State:
    """Rows (without the `excluded` columns), their xmin, and the access of both tables."""
    conn = await asyncpg.connect(url)
    try:
        return State(
            queue=[tuple(r) for r in await conn.fetch(S["queue_dump"], excluded)],
            queue_md5=await conn.fetchval(S["queue_md5"], excluded),
            statuses=[tuple(r) for r in await conn.fetch(S["status_dump"])],
            access=list(await conn.fetch(S["access_snapshot"])),
            seen={role: await seen_by(url, role) for role in ROLES},
        )
    finally:
        await conn.close()


@pytest.mark.parametrize("variant", ["rls_on", "rls_off"])
async def test_migrate_keeps_the_originals_rows_and_access_and_lockdown_changes_it(
    variant: Variant, tmp_path: Path
) -> None:
    await ensure_supabase_roles()
    async with temporary_database_async(migrate=False) as url:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(L["supabase_default_privileges"])
            await load_original(conn, variant)
            columns_before: list[str] = await conn.fetchval(S["columns"], "extraction_queue")
        finally:
            await conn.close()
        before = await state(url, [])
        assert len(before.queue) == FIXTURE_ROWS
        # The fixture makes the test meaningful: authenticated reads the queue.
        assert len(before.seen["authenticated"][0]) == FIXTURE_ROWS

        env = {"DATABASE_URL": url}
        migrated = await ocr_pool("migrate", env=env, cwd=tmp_path)
        assert migrated.returncode == 0, migrated.stderr
        assert "default: applied 0001_queue_table" in migrated.stdout

        conn = await asyncpg.connect(url)
        try:
            columns_after: list[str] = await conn.fetchval(S["columns"], "extraction_queue")
            assert await exposed_own_objects(conn) == []
        finally:
            await conn.close()
        assert columns_after[: len(columns_before)] == columns_before
        added = columns_after[len(columns_before) :]
        assert added, "ocr-pool adds its lease columns"
        assert all(c.startswith("ocr_") or c == "file_content_json" for c in added), added
        after = await state(url, added)
        # Byte for byte, not rewritten (same xmin), same ACLs/RLS/policies/storage,
        # and anon and authenticated see what they saw.
        assert after == before

        # The report: what the API roles can do on the pre-existing tables.
        report = migrated.stdout
        assert (
            "default: extraction_queue existed before ocr-pool and is left as it was "
            "(only `ocr-pool lockdown` changes that)" in report
        )
        if variant == "rls_off":
            assert "  anon           ALL; RLS off: every row" in report
        else:
            assert "  authenticated  ALL; RLS on: rows allowed by 2 of its 2 policies" in report

        checked = await ocr_pool("lockdown", "--check", env=env, cwd=tmp_path)
        assert checked.returncode == 1, checked.stdout + checked.stderr
        assert "default: extraction_queue (pre-existing) is exposed:" in checked.stdout
        assert "default: ocr-pool's own objects: nothing for PUBLIC" in checked.stdout

        locked = await ocr_pool("lockdown", env=env, cwd=tmp_path)
        assert locked.returncode == 0, locked.stderr
        assert "default: extraction_queue: " in locked.stdout
        assert "revoked from authenticated: ALL" in locked.stdout
        if variant == "rls_off":
            assert "default: extraction_queue: row level security on;" in locked.stdout

        rechecked = await ocr_pool("lockdown", "--check", env=env, cwd=tmp_path)
        assert rechecked.returncode == 0, rechecked.stdout
        again = await ocr_pool("migrate", env=env, cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        assert "default: up to date" in again.stdout
        assert "default: no exposure: PUBLIC, anon and authenticated can do nothing" in again.stdout

        locked_down = await state(url, added)
        assert locked_down.queue == before.queue  # rows untouched by the lockdown too
        assert [r["policies"] for r in locked_down.access] == [r["policies"] for r in before.access]
        assert all(r["rls"] for r in locked_down.access)
        for role in ROLES:
            refused = locked_down.seen[role]
            assert all(str(s).startswith("refused: permission denied") for s in refused)


async def test_lockdown_without_a_direct_url_says_what_to_set(tmp_path: Path) -> None:
    result = await ocr_pool(
        "lockdown",
        env={
            "PROD_SUPABASE_URL": "https://abcdefgh.supabase.co",
            "PROD_SUPABASE_SERVICE_KEY": "service-key-not-shown",
        },
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "ocr-pool: prod: no direct database URL (PROD_DATABASE_URL); set it" in result.stderr
    assert "service-key-not-shown" not in result.stdout + result.stderr


@pytest.mark.slow
async def test_a_million_row_table_stays_writable_while_migrate_runs() -> None:
    async with temporary_database_async(migrate=False) as url:
        figures = await run_live_migration(url, 1_000_000, hold_seconds=2.0)
    print("\n" + "\n".join(figures.lines()))
    assert len(figures.insert_waits) > 50
    # Never blocked for a second (the one timing bound of the suite).
    assert figures.worst_insert < 1.0
    assert figures.worst_update < 1.0
    # It met the other program's locks, and waited politely instead of queueing behind them:
    # the ALTER step (ROW EXCLUSIVE held) and an index build (a long read's snapshot).
    waited = " ".join(figures.waited_steps)
    assert "0001_queue_table step 5 (the columns the pool relies on)" in waited
    assert "index" in waited
    assert figures.lock_retries == sum(figures.waited_steps.values())
    assert figures.live_rows == len(figures.insert_waits)  # every insert landed
    assert figures.invalid_indexes == []
