"""What the anon key can do: nothing (store/migrations/0006_lockdown.sql, issue 7).

Each test builds what a Supabase project is before our migrations run: the roles
`anon`, `authenticated` and `service_role` (created in the cluster if missing,
never dropped), schema usage for them, and Supabase's default privileges (ALL on
every new table, sequence and function in `public` to all three). Then it shows
that after the migrations neither API role can read, write or execute anything
of ours, that the service role (the Supabase adapter's key) and the owner (a
direct connection) still run the pool, and that the lockdown survives re-runs
and covers what later migrations add.

The shared tables (`extraction_queue`, `extraction_status`) are locked down with
the rest when ocr-pool created them. When they existed before ocr-pool (another
program's tables), the migrations leave them exactly as they were, report what
the API roles can do on them, and only `lock_down` (`ocr-pool lockdown`) changes
that.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest

from domain import AllocationRecord, DocumentSource
from store import StoreError
from store.migrations import Migration, discover
from store.migrations.exposure import (
    ALL_PRIVILEGES,
    Access,
    SharedTable,
    check,
    check_lines,
    describe,
    exposure_lines,
    exposure_report,
    lock_down,
    lockdown_change,
    pin_schema,
)
from store.migrations.runner import LockPolicy, apply_migrations
from store.migrations.steps import split_steps
from store.postgres import PostgresStore
from store.sql import load_queries
from store.supabase import SupabaseStore
from tests.support.databases import ADMIN_URL, temporary_database_async
from tests.support.postgrest import serve_postgrest

pytestmark = pytest.mark.anyio
L = load_queries(Path(__file__).parents[1] / "support" / "lockdown.sql")
S = load_queries(Path(__file__).parents[1] / "support" / "live_migration.sql")
ORIGINAL = load_queries(Path(__file__).parents[1] / "support" / "original_shape.sql")
EARLIER_RELEASE = Path(__file__).parents[1] / "support" / "release_1b66f58"
SHARED = {"extraction_queue", "extraction_status"}
KEY = "lockdown-test-key"
API_ROLES = ("anon", "authenticated")
SERVICE_ROLE = "service_role"
TABLES = {
    "extraction_queue",
    "extraction_status",
    "ocr_pool_migrations",
    "ocr_pool_created_tables",
    "ocr_result_cache",
    "ocr_pool_allocations",
    "ocr_gemini_day_usage",
    "ocr_queue_outages",
}
VIEWS = {"ocr_queue_stats", "ocr_recent_errors", "ocr_hourly_throughput", "ocr_allocation_recent"}
FUNCTIONS = {
    "ocr_check_source",
    "ocr_check_lease",
    "ocr_lock_lease",
    "ocr_claim",
    "ocr_heartbeat",
    "ocr_complete",
    "ocr_fail",
    "ocr_release",
    "ocr_recover_expired",
    "ocr_requeue_failed",
    "ocr_queue_composition",
    "ocr_enqueue",
    "ocr_queue_stats",
    "ocr_cache_check_key",
    "ocr_cache_get",
    "ocr_cache_put",
    "ocr_record_allocation",
    "ocr_gemini_day_usage_merge",
    "ocr_note_outage",
    "ocr_lease_lock",
    "ocr_lease_renew",
    "ocr_lease_complete",
    "ocr_lease_fail",
    "ocr_lease_release",
    "ocr_lease_reap",
    "ocr_lockdown",
}


def new_sha() -> str:
    return hashlib.sha256(uuid.uuid4().bytes).hexdigest()


async def _ensure_supabase_roles() -> None:
    admin = await asyncpg.connect(ADMIN_URL)
    try:
        await admin.execute(L["supabase_roles"])
        assert await admin.fetchval(L["service_role_bypasses_rls"]), (
            "role service_role exists in this cluster without BYPASSRLS; "
            "Supabase's service role bypasses row level security"
        )
    finally:
        await admin.close()


@asynccontextmanager
async def supabase_database(upto: int | None = None) -> AsyncIterator[str]:
    """A fresh database shaped like a Supabase project, migrated (up to `upto`)."""
    await _ensure_supabase_roles()
    async with temporary_database_async(migrate=False) as url:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(L["supabase_default_privileges"])
            todo = [m for m in discover() if upto is None or m.version <= upto]
            await apply_migrations(conn, migrations=todo)
        finally:
            await conn.close()
        yield url


@asynccontextmanager
async def connect_as(url: str, role: str | None = None) -> AsyncIterator[asyncpg.Connection]:
    """A connection that is `role` for its whole session (the owner when None)."""
    conn = await asyncpg.connect(url)
    try:
        if role is not None:
            await conn.fetchval(L["become"], role)
            assert await conn.fetchval(L["current_role"]) == role
        yield conn
    finally:
        await conn.close()


async def catalog(url: str) -> tuple[list[asyncpg.Record], list[asyncpg.Record]]:
    async with connect_as(url) as conn:
        return list(await conn.fetch(L["ocr_relations"])), list(
            await conn.fetch(L["ocr_functions"])
        )


async def assert_locked(url: str) -> None:
    """No privilege at all for PUBLIC and the API roles; the service role runs everything
    but ocr_lockdown; views are security_invoker (Postgres 15+)."""
    relations, functions = await catalog(url)
    assert {r["name"] for r in relations if r["kind"] == "r"} == TABLES
    assert {r["name"] for r in relations if r["kind"] == "v"} >= VIEWS
    assert {f["name"] for f in functions} >= FUNCTIONS
    async with connect_as(url) as conn:
        invoker = await conn.fetchval(L["server_version_num"]) >= 150000
        for role in ("public", *API_ROLES):
            touchable = [
                r["name"] for r in relations if await conn.fetchval(L["can_touch"], role, r["name"])
            ]
            assert touchable == [], role
            runnable = [
                f["signature"]
                for f in functions
                if await conn.fetchval(L["can_execute"], role, f["oid"])
            ]
            assert runnable == [], role
        served = {
            f["name"]
            for f in functions
            if await conn.fetchval(L["can_execute"], SERVICE_ROLE, f["oid"])
        }
        assert served == {f["name"] for f in functions} - {"ocr_lockdown"}
        for r in relations:
            if r["kind"] == "r":
                assert r["rls"], r["name"]
            if r["kind"] == "v":
                assert await conn.fetchval(L["can_read"], SERVICE_ROLE, r["name"]), r["name"]
                assert ("security_invoker=true" in r["options"]) is invoker, r["name"]


async def test_supabase_defaults_expose_the_queue_until_0006() -> None:
    """The set-up reproduces the hole: before 0006 the anon key claims jobs."""
    async with supabase_database(upto=5) as url:
        async with connect_as(url) as owner:
            job_id = await owner.fetchval(L["seed"], "exposed")
        async with connect_as(url, "anon") as anon:
            claimed = await anon.fetch(L["claim"], "intruder")
            assert [r["id"] for r in claimed] == [job_id]
            assert len(await anon.fetch(L["cache_get"], new_sha())) == 0  # it may call it
        async with connect_as(url) as owner:
            await apply_migrations(owner)
            await owner.fetchval(L["seed"], "locked")
        async with connect_as(url, "anon") as anon:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await anon.fetch(L["claim"], "intruder")


@pytest.mark.parametrize("role", API_ROLES)
async def test_api_roles_can_do_nothing(role: str) -> None:
    async with supabase_database() as url:
        sha = new_sha()
        async with connect_as(url) as owner:
            await owner.fetchval(L["seed"], "held")
            (job,) = await owner.fetch(L["claim"], "w-owner")
            await owner.fetchval(L["cache_put"], sha, "the owner's result")
            await owner.fetchval(L["record_allocation"])
        relations, functions = await catalog(url)
        assert {r["name"] for r in relations} >= TABLES | VIEWS
        assert {f["name"] for f in functions} >= FUNCTIONS

        async with connect_as(url, role) as conn:
            # Every table, sequence and view: read refused.
            for relation in relations:
                with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
                    await conn.fetch(relation["read"])
            # Every ocr_* function, whatever its signature: execute refused.
            for function in functions:
                with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
                    await conn.fetch(function["null_call"])
            # Real calls of the key ones, with real arguments.
            planted = new_sha()
            for query, args in [
                (L["claim"], ("intruder",)),
                (L["complete"], (job["id"], "w-owner", job["lease_token"], "planted")),
                (L["cache_put"], (planted, "planted")),
                (L["cache_get"], (sha,)),
                (L["record_allocation"], ()),
            ]:
                with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
                    await conn.fetch(query, *args)

        async with connect_as(url) as owner:
            row = await owner.fetchrow(L["job"], job["id"])
            assert row is not None
            assert (row["status_id"], row["ocr_worker_id"]) == (6, "w-owner")
            assert row["ocr_lease_token"] == job["lease_token"]
            assert row["file_content"] is None
            assert await owner.fetchval(L["cache_rows"], planted) == 0

        # Through the REST API with this role's key: the same refusal.
        async with serve_postgrest(url, KEY, role=role) as (base_url, _):
            store = await SupabaseStore.connect("supabase", base_url, KEY)
            try:
                with pytest.raises(StoreError, match="permission denied for function ocr_claim"):
                    await store.claim("intruder", DocumentSource.INDEX, 60)
                with pytest.raises(StoreError, match="permission denied"):
                    await store.cached_result(sha, "lockdown:v1")
                with pytest.raises(StoreError, match="permission denied"):
                    await store.stats()
            finally:
                await store.close()


async def test_service_role_and_owner_still_run_the_pool() -> None:
    async with supabase_database() as url:
        relations, _ = await catalog(url)
        async with connect_as(url) as owner:
            for n in range(2):
                await owner.fetchval(L["seed"], f"service-{n}")

        # SQL as the service role: claim, complete, cache, allocation, every view.
        async with connect_as(url, SERVICE_ROLE) as service:
            (job,) = await service.fetch(L["claim"], "w-service")
            assert await service.fetchval(
                L["complete"], job["id"], "w-service", job["lease_token"], "done"
            )
            sha = new_sha()
            await service.fetchval(L["cache_put"], sha, "cached")
            assert [r["file_content"] for r in await service.fetch(L["cache_get"], sha)] == [
                "cached"
            ]
            await service.fetchval(L["record_allocation"])
            for relation in relations:
                if relation["kind"] == "v":
                    await service.fetch(relation["read"])
            stats = await service.fetch(L["stats_view"])
            assert {r["document_source"] for r in stats} == {"index", "acte"}
            assert next(r for r in stats if r["document_source"] == "index")["completed_today"] == 1
            assert len(await service.fetch(L["allocation_view"])) == 1

        # The Supabase adapter over REST with the service key.
        async with serve_postgrest(url, KEY, role=SERVICE_ROLE, pool_size=2) as (base_url, _):
            store = await SupabaseStore.connect("supabase", base_url, KEY)
            try:
                await store.ping()
                claimed = await store.claim("w-rest", DocumentSource.INDEX, 60)
                assert claimed is not None
                assert await store.heartbeat(claimed, 60)
                assert await store.complete(claimed, "rest result")
                (queued,) = await store.enqueue(DocumentSource.ACTE, ["lockdown/a.pdf"], [0], 3)
                assert queued.created
                acte = await store.claim("w-rest", DocumentSource.ACTE, 60)
                assert acte is not None
                assert await store.fail(acte, "boom", retryable=False) == "failed"
                assert await store.requeue_failed(DocumentSource.ACTE) == 1
                assert await store.recover_expired() == []
                assert (await store.composition())[DocumentSource.ACTE].claimable == 1
                assert {s.document_source for s in await store.stats()} == {"index", "acte"}
                sha = new_sha()
                await store.store_result(sha, "lockdown:v1", "rest cached", None)
                cached = await store.cached_result(sha, "lockdown:v1")
                assert cached is not None
                assert cached.file_content == "rest cached"
                await store.record_allocation(AllocationRecord("p", "srv", 2, 1, 1))
            finally:
                await store.close()

        # A direct connection as the owner.
        direct = await PostgresStore.connect("direct", url)
        try:
            job2 = await direct.claim("w-direct", DocumentSource.ACTE, 60)
            assert job2 is not None
            assert await direct.complete(job2, "direct result")
        finally:
            await direct.close()


async def test_catalog_rls_no_policies_pinned_search_paths() -> None:
    async with supabase_database() as url:
        await assert_locked(url)
        relations, functions = await catalog(url)
        tables = [r for r in relations if r["kind"] == "r"]
        assert all(r["rls"] and r["policies"] == 0 for r in tables), tables
        unpinned = [
            f["signature"]
            for f in functions
            if not any(s.startswith("search_path=") for s in f["proconfig"] or [])
        ]
        assert unpinned == []


async def test_rerunning_the_migrations_keeps_the_lockdown() -> None:
    async with supabase_database() as url:
        async with connect_as(url) as owner:
            assert (await apply_migrations(owner)).applied == []
            # The lockdown's steps again (a retry, the SQL editor's run of them).
            (lockdown,) = [m for m in discover() if m.name == "lockdown"]
            for step in split_steps(lockdown.sql):
                await owner.execute(step.sql)
        await assert_locked(url)

        # Re-running 0003 alone re-creates the views without security_invoker
        # (as the migration header warns); ocr_lockdown() puts it back.
        async with connect_as(url) as owner:
            if await owner.fetchval(L["server_version_num"]) < 150000:
                pytest.skip("security_invoker needs Postgres 15")
            (views,) = [m for m in discover() if m.name == "dashboard_views"]
            await owner.execute(views.sql)
            options = {r["name"]: r["options"] for r in await owner.fetch(L["view_options"])}
            assert options["ocr_queue_stats"] == []
            # (its privileges survive the replacement: still nothing for the API roles)
            for role in API_ROLES:
                assert not await owner.fetchval(L["can_touch"], role, "ocr_queue_stats")
            await owner.fetch(L["lockdown"])
        await assert_locked(url)


async def test_a_later_migration_locks_its_function_with_ocr_lockdown() -> None:
    async with supabase_database() as url:
        async with connect_as(url) as owner:
            await owner.execute(L["later_function"])
            oid = await owner.fetchval(L["later_function_oid"])
            # Supabase's default privileges hand it to the API roles at once...
            assert await owner.fetchval(L["can_execute"], "anon", oid)
            locked = await owner.fetch(L["lockdown"])
            assert ("function", "ocr_test_later(p_n integer)") in [tuple(r) for r in locked]
            # ...until ocr_lockdown() runs, as the migration's last statement.
            assert not await owner.fetchval(L["can_execute"], "anon", oid)
            assert not await owner.fetchval(L["can_execute"], "authenticated", oid)
            assert await owner.fetchval(L["can_execute"], SERVICE_ROLE, oid)

            # A function without a pinned search_path is refused.
            tx = owner.transaction()
            await tx.start()
            try:
                await owner.execute(L["unpinned_function"])
                with pytest.raises(
                    asyncpg.InvalidFunctionDefinitionError, match=r"ocr_test_unpinned\(\)"
                ):
                    await owner.fetch(L["lockdown"])
            finally:
                await tx.rollback()
        await assert_locked(url)


async def test_a_grant_it_cannot_revoke_fails_the_lockdown() -> None:
    async with supabase_database() as url, connect_as(url) as owner:
        tx = owner.transaction()
        await tx.start()
        try:
            await owner.execute(L["leaky_grantor"])
            with pytest.raises(
                asyncpg.InsufficientPrivilegeError,
                match=r"anon on ocr_queue_composition\(\)",
            ):
                await owner.fetch(L["lockdown"])
        finally:
            await tx.rollback()  # the role and its grants go with it


async def test_runs_where_the_supabase_roles_do_not_exist() -> None:
    """Plain Postgres: no API roles, no service role; only PUBLIC is revoked."""
    async with temporary_database_async() as url:
        absent = f"ocr_test_absent_{uuid.uuid4().hex[:8]}"
        async with connect_as(url) as owner:
            locked = await owner.fetch(L["lockdown_for"], [absent], [absent + "_service"])
            assert {r["object_name"] for r in locked} >= TABLES | VIEWS
        relations, functions = await catalog(url)
        async with connect_as(url) as owner:
            for r in relations:
                assert not await owner.fetchval(L["can_touch"], "public", r["name"]), r["name"]
            for f in functions:
                assert not await owner.fetchval(L["can_execute"], "public", f["oid"]), f[
                    "signature"
                ]
        # The owner (a direct connection) is untouched.
        store = await PostgresStore.connect("plain", url)
        try:
            await store.enqueue(DocumentSource.INDEX, ["plain.pdf"], [0], 3)
            job = await store.claim("w", DocumentSource.INDEX, 60)
            assert job is not None
            assert await store.complete(job, "ok")
        finally:
            await store.close()


# --- Pre-existing shared tables ------------------------------------------------------------


@asynccontextmanager
async def supabase_database_with_original(variant: str = "rls_off") -> AsyncIterator[str]:
    """A Supabase-shaped database where the registre extractor's tables (original_shape.sql)
    exist before any migration of ours (their grants: Supabase's defaults and the fixture's)."""
    await _ensure_supabase_roles()
    async with temporary_database_async(migrate=False) as url:
        async with connect_as(url) as owner:
            await owner.execute(L["supabase_default_privileges"])
            await owner.execute(ORIGINAL["schema"])
            await owner.execute(ORIGINAL["rows"])
            await owner.execute(ORIGINAL[f"access_{variant}"])
        yield url


async def access_snapshot(url: str) -> list[tuple[object, ...]]:
    async with connect_as(url) as owner:
        return [tuple(r) for r in await owner.fetch(S["access_snapshot"])]


async def assert_own_objects_locked(url: str) -> None:
    """assert_locked for everything but the pre-existing shared tables."""
    relations, functions = await catalog(url)
    own = [r for r in relations if r["name"] not in SHARED]
    assert {r["name"] for r in own if r["kind"] == "r"} == TABLES - SHARED
    async with connect_as(url) as conn:
        for role in ("public", *API_ROLES):
            touchable = [
                r["name"] for r in own if await conn.fetchval(L["can_touch"], role, r["name"])
            ]
            assert touchable == [], role
            runnable = [
                f["signature"]
                for f in functions
                if await conn.fetchval(L["can_execute"], role, f["oid"])
            ]
            assert runnable == [], role
        for r in own:
            if r["kind"] == "r":
                assert r["rls"], r["name"]


@pytest.mark.parametrize("variant", ["rls_off", "rls_on"])
async def test_pre_existing_shared_tables_are_left_exactly_as_they_were(variant: str) -> None:
    async with supabase_database_with_original(variant) as url:
        before = await access_snapshot(url)
        async with connect_as(url, "authenticated") as user:
            seen_before = [tuple(r) for r in await user.fetch(S["seen_queue"])]
        assert len(seen_before) == 48  # the fixture lets authenticated read every row
        async with connect_as(url) as owner:
            await apply_migrations(owner)
            assert await owner.fetch(S["created_tables"]) == []
            report = await exposure_report(owner, "prod")
            # A later migration's ocr_lockdown() leaves them alone too.
            locked = {r["object_name"] for r in await owner.fetch(L["lockdown"])}
            assert not locked & SHARED
        assert await access_snapshot(url) == before  # ACLs, RLS flags, policies
        async with connect_as(url, "authenticated") as user:
            assert [tuple(r) for r in await user.fetch(S["seen_queue"])] == seen_before
        await assert_own_objects_locked(url)

    # The report says what anon and authenticated can do, and who changes it.
    assert report[0] == (
        "prod: extraction_queue existed before ocr-pool and is left as it was "
        "(only `ocr-pool lockdown` changes that); what the API roles can do on it:"
    )
    queue = {line.split()[0]: line for line in report[1:4]}
    assert queue.keys() == {"PUBLIC", "anon", "authenticated"}
    assert queue["PUBLIC"].endswith("nothing")
    if variant == "rls_off":
        assert queue["anon"].endswith("ALL; RLS off: every row")
    else:
        assert "ALL; RLS on, none of its 2 policies applies: no rows" in queue["anon"]
        assert "ALL; RLS on: rows allowed by 2 of its 2 policies" in queue["authenticated"]


async def test_lockdown_command_locks_pre_existing_tables_and_keeps_their_policies() -> None:
    async with supabase_database_with_original("rls_on") as url:
        async with connect_as(url) as owner:
            await apply_migrations(owner)
            await pin_schema(owner)
            lines, exposed = await check(owner, "prod")
            assert exposed
            assert "prod: extraction_queue (pre-existing) is exposed:" in lines
            policies_before = [r["policies"] for r in await owner.fetch(S["access_snapshot"])]
            changed, _ = await lock_down(owner, "prod", LockPolicy())
            assert changed[0] == (
                "prod: extraction_queue: revoked from anon: ALL; revoked from authenticated: ALL "
                "(its 2 policies kept)"
            )
            assert changed[1].startswith("prod: extraction_status: revoked from anon: ALL;")
            lines, exposed = await check(owner, "prod")
            assert not exposed, lines
            assert await exposure_report(owner, "prod") == [
                "prod: no exposure: PUBLIC, anon and authenticated can do nothing on "
                "extraction_queue, extraction_status"
            ]
            snapshot = await owner.fetch(S["access_snapshot"])
            assert [r["policies"] for r in snapshot] == policies_before  # untouched
            assert all(r["rls"] for r in snapshot)
            again, _ = await lock_down(owner, "prod", LockPolicy())
            assert again[:2] == [
                "prod: extraction_queue: already locked down",
                "prod: extraction_status: already locked down",
            ]
        for role in API_ROLES:
            async with connect_as(url, role) as conn:
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.fetch(S["seen_queue"])
        async with connect_as(url, SERVICE_ROLE) as service:
            assert len(await service.fetch(S["seen_queue"])) == 48
            await service.execute(S["live_insert"], "by-service")
        await assert_locked(url)


async def test_shared_tables_of_an_earlier_release_count_as_pre_existing() -> None:
    """A database whose 0001 ran before the record existed: its shared tables are not
    locked down by the new 0006 (no guess that ocr-pool made them), but reported."""
    await _ensure_supabase_roles()
    async with temporary_database_async(migrate=False) as url:
        old_0001 = (EARLIER_RELEASE / "0001_queue_table.sql").read_text("utf-8")
        earlier = [
            Migration(1, "queue_table", old_0001),
            *(m for m in discover() if 2 <= m.version <= 5),
        ]
        async with connect_as(url) as owner:
            await owner.execute(L["supabase_default_privileges"])
            await apply_migrations(owner, migrations=earlier)
            before = [tuple(r) for r in await owner.fetch(S["access_snapshot"])]
            report = await apply_migrations(owner)
            assert report.rewritten == ["0001_queue_table"]
            assert "0006_lockdown" in report.applied
            assert [tuple(r) for r in await owner.fetch(S["access_snapshot"])] == before
            lines = await exposure_report(owner, "dev")
        assert lines[0].startswith("dev: extraction_queue existed before ocr-pool")
        assert any(line.split()[:1] == ["anon"] and "ALL; RLS off" in line for line in lines)
        await assert_own_objects_locked(url)


# --- The exposure report and the lockdown's account of itself (pure) -----------------------


def test_describe_says_what_a_grantee_can_do_and_on_which_rows() -> None:
    assert describe(Access("q", "PUBLIC", ())) == "nothing"
    assert describe(Access("q", "anon", ALL_PRIVILEGES)) == "ALL; RLS off: every row"
    assert (
        describe(Access("q", "authenticated", ("SELECT",), rls=True, policies=3, role_policies=1))
        == "SELECT; RLS on: rows allowed by 1 of its 3 policies"
    )
    assert (
        describe(Access("q", "anon", ("SELECT", "TRUNCATE"), rls=True, policies=2))
        == "SELECT, TRUNCATE; RLS on, none of its 2 policies applies: no rows "
        "(but TRUNCATE ignores RLS)"
    )
    assert (
        describe(Access("q", "anon", (), column_privileges=("SELECT",), rls=True))
        == "SELECT on some columns; RLS on, no policy: no rows"
    )


def test_exposure_lines_name_each_exposed_table_and_its_grantees() -> None:
    assert exposure_lines("prod", []) == []
    quiet = [Access("extraction_queue", g, ()) for g in ("PUBLIC", "anon", "authenticated")]
    assert exposure_lines("prod", quiet) == [
        "prod: no exposure: PUBLIC, anon and authenticated can do nothing on extraction_queue"
    ]
    open_status = [
        *quiet,
        Access("extraction_status", "PUBLIC", ()),
        Access("extraction_status", "anon", ("SELECT",), rls=True, policies=1, role_policies=1),
    ]
    assert exposure_lines("prod", open_status) == [
        "prod: extraction_status existed before ocr-pool and is left as it was "
        "(only `ocr-pool lockdown` changes that); what the API roles can do on it:",
        "  PUBLIC         nothing",
        "  anon           SELECT; RLS on: rows allowed by 1 of its 1 policy",
    ]


def test_lockdown_change_reports_revokes_grants_and_rls() -> None:
    before = [
        Access("t", "PUBLIC", ()),
        Access("t", "anon", ALL_PRIVILEGES, policies=2),
        Access("t", "authenticated", ("SELECT",), column_privileges=("UPDATE",), policies=2),
        Access("t", "service_role", ("SELECT",), policies=2),
    ]
    after = [
        Access("t", g, (), rls=True, policies=2) for g in ("PUBLIC", "anon", "authenticated")
    ] + [
        Access("t", "service_role", ("SELECT", "INSERT", "UPDATE", "DELETE"), rls=True, policies=2)
    ]
    assert lockdown_change("t", before, after) == (
        "t: row level security on; revoked from anon: ALL; revoked from authenticated: "
        "SELECT, UPDATE (columns); granted service_role INSERT, UPDATE, DELETE "
        "(its 2 policies kept)"
    )
    assert lockdown_change("t", after, after) == "t: already locked down"


def test_check_lines_exposed_when_a_table_or_an_own_object_is_usable() -> None:
    tables = [SharedTable(1, "extraction_queue", created=False)]
    closed = [Access("extraction_queue", "anon", (), rls=True)]
    lines, exposed = check_lines("dev", tables, closed, [])
    assert not exposed
    assert lines == [
        "dev: extraction_queue (pre-existing): nothing for PUBLIC, anon, authenticated (RLS on)",
        "dev: ocr-pool's own objects: nothing for PUBLIC, anon, authenticated",
    ]
    own = [("anon", f"ocr_f{n}()") for n in range(7)]
    lines, exposed = check_lines("dev", tables, closed, own)
    assert exposed
    assert lines[-1].endswith("anon on ocr_f4() and 2 more")
    open_queue = [Access("extraction_queue", "anon", ("SELECT",))]
    lines, exposed = check_lines("dev", tables, open_queue, [])
    assert exposed
    assert lines[:2] == [
        "dev: extraction_queue (pre-existing) is exposed:",
        "  anon           SELECT; RLS off: every row",
    ]
