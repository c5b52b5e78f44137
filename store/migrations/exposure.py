"""The shared tables' exposure to the Supabase API roles, and their explicit lockdown.

`extraction_queue` and `extraction_status` are shared with other programs. One
that ocr-pool created (0001 records it in `ocr_pool_created_tables`) is ocr-pool's
own, and 0006's `ocr_lockdown()` locks it down with the rest. One that existed
before is left exactly as it was by the migrations; `ocr-pool migrate` reports
what PUBLIC, `anon` and `authenticated` can do on it (`exposure_report`), and
only `ocr-pool lockdown` (`lock_down`) changes it: row level security on, every
privilege of PUBLIC and the API roles revoked, DML for `service_role`, under the
runner's lock timeout and retries. Policies are never touched.

Policy (what to say, what changed) is pure; the functions at the end do the I/O.
The statements live in `exposure.sql`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from store.migrations.runner import LockPolicy, short_transaction, with_lock_retries
from store.sql import load_queries

_E = load_queries(Path(__file__).with_name("exposure.sql"))
API_ROLES: tuple[str, ...] = ("anon", "authenticated")
SERVICE_ROLES: tuple[str, ...] = ("service_role",)
ALL_PRIVILEGES: tuple[str, ...] = (
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "TRUNCATE",
    "REFERENCES",
    "TRIGGER",
)


class LockdownError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class SharedTable:
    oid: int
    name: str
    created: bool  # by ocr-pool (recorded by 0001), else pre-existing

    @property
    def origin(self) -> str:
        return "created by ocr-pool" if self.created else "pre-existing"


@dataclass(frozen=True, slots=True)
class Access:
    """What one grantee (PUBLIC or a role) can do on one table."""

    table: str
    grantee: str
    privileges: tuple[str, ...]
    column_privileges: tuple[str, ...] = ()
    rls: bool = False
    policies: int = 0  # on the table
    role_policies: int = 0  # of those, the ones that apply to this grantee

    @property
    def exposed(self) -> bool:
        return bool(self.privileges or self.column_privileges)


# --- Policy (pure) -----------------------------------------------------------------


def _privileges(names: Sequence[str]) -> str:
    return "ALL" if set(names) >= set(ALL_PRIVILEGES) else ", ".join(names)


def describe(access: Access) -> str:
    """One grantee's access in a few words, e.g. "SELECT; RLS on: rows allowed by 1 of its
    2 policies"."""
    if not access.exposed:
        return "nothing"
    what: list[str] = []
    if access.privileges:
        what.append(_privileges(access.privileges))
    if access.column_privileges:
        what.append(f"{', '.join(access.column_privileges)} on some columns")
    if not access.rls:
        rows = "RLS off: every row"
    elif access.role_policies:
        noun = "policy" if access.policies == 1 else "policies"
        rows = f"RLS on: rows allowed by {access.role_policies} of its {access.policies} {noun}"
    elif access.policies:
        rows = f"RLS on, none of its {access.policies} policies applies: no rows"
    else:
        rows = "RLS on, no policy: no rows"
    if access.rls and "TRUNCATE" in access.privileges:
        rows += " (but TRUNCATE ignores RLS)"
    return f"{'; '.join(what)}; {rows}"


def _tables(access: Sequence[Access]) -> list[str]:
    return list(dict.fromkeys(a.table for a in access))


def exposure_lines(env: str, access: Sequence[Access]) -> list[str]:
    """The migrate report for the pre-existing shared tables: a few lines per exposed
    table, one "no exposure" line when none is, nothing when there is no such table."""
    tables = _tables(access)
    if not tables:
        return []
    exposed = [t for t in tables if any(a.exposed for a in access if a.table == t)]
    if not exposed:
        return [
            f"{env}: no exposure: PUBLIC, anon and authenticated can do nothing on "
            f"{', '.join(tables)}"
        ]
    lines: list[str] = []
    for table in exposed:
        lines.append(
            f"{env}: {table} existed before ocr-pool and is left as it was "
            "(only `ocr-pool lockdown` changes that); what the API roles can do on it:"
        )
        lines.extend(f"  {a.grantee:<14} {describe(a)}" for a in access if a.table == table)
    return lines


def lockdown_change(
    table: str,
    before: Sequence[Access],
    after: Sequence[Access],
    service_roles: Sequence[str] = SERVICE_ROLES,
) -> str:
    """What `ocr-pool lockdown` changed on `table`, in one line."""
    was = {a.grantee: a for a in before if a.table == table}
    now = {a.grantee: a for a in after if a.table == table}
    changes: list[str] = []
    if not any(a.rls for a in was.values()) and any(a.rls for a in now.values()):
        changes.append("row level security on")
    for grantee, old in was.items():
        if grantee in service_roles:
            continue
        new = now.get(grantee, Access(table, grantee, ()))
        gone = [p for p in old.privileges if p not in new.privileges]
        gone += [f"{p} (columns)" for p in old.column_privileges if p not in new.column_privileges]
        if gone:
            changes.append(f"revoked from {grantee}: {_privileges(gone)}")
    for grantee, new in now.items():
        if grantee not in service_roles:
            continue
        old = was.get(grantee, Access(table, grantee, ()))
        added = [p for p in new.privileges if p not in old.privileges]
        if added:
            changes.append(f"granted {grantee} {', '.join(added)}")
    if not changes:
        return f"{table}: already locked down"
    policies = max((a.policies for a in now.values()), default=0)
    kept = f" (its {policies} {'policy' if policies == 1 else 'policies'} kept)" if policies else ""
    return f"{table}: {'; '.join(changes)}{kept}"


def check_lines(
    env: str,
    tables: Sequence[SharedTable],
    access: Sequence[Access],
    own: Sequence[tuple[str, str]],
) -> tuple[list[str], bool]:
    """`ocr-pool lockdown --check`: (lines, exposed). Exposed means PUBLIC, anon or
    authenticated can use a shared table or one of ocr-pool's own objects."""
    lines: list[str] = []
    exposed = False
    for table in tables:
        rows = [a for a in access if a.table == table.name]
        if any(a.exposed for a in rows):
            exposed = True
            lines.append(f"{env}: {table.name} ({table.origin}) is exposed:")
            lines.extend(f"  {a.grantee:<14} {describe(a)}" for a in rows)
        else:
            rls = "on" if any(a.rls for a in rows) else "off"
            lines.append(
                f"{env}: {table.name} ({table.origin}): nothing for PUBLIC, anon, "
                f"authenticated (RLS {rls})"
            )
    if own:
        exposed = True
        shown = ", ".join(f"{grantee} on {name}" for grantee, name in own[:5])
        more = f" and {len(own) - 5} more" if len(own) > 5 else ""
        lines.append(f"{env}: ocr-pool's own objects are exposed: {shown}{more}")
    else:
        lines.append(f"{env}: ocr-pool's own objects: nothing for PUBLIC, anon, authenticated")
    return lines, exposed


# --- I/O -------------------------------------------------------------------------------


async def pin_schema(conn: asyncpg.Connection, schema: str = "public") -> None:
    await conn.fetchval(_E["set_search_path"], f'"{schema}", pg_temp')


async def shared_tables(conn: asyncpg.Connection) -> list[SharedTable]:
    """The shared tables present in the current schema, with who created them."""
    created: set[int] = set()
    if await conn.fetchval(_E["created_record_exists"]):
        created = {r["oid"] for r in await conn.fetch(_E["created_tables"])}
    return [
        SharedTable(r["oid"], r["name"], r["oid"] in created)
        for r in await conn.fetch(_E["shared_tables"])
    ]


async def read_access(
    conn: asyncpg.Connection, tables: Sequence[SharedTable], roles: Sequence[str]
) -> list[Access]:
    rows = await conn.fetch(_E["access"], [t.oid for t in tables], list(roles))
    return [
        Access(
            table=r["table_name"],
            grantee=r["grantee"],
            privileges=tuple(r["privileges"]),
            column_privileges=tuple(r["column_privileges"]),
            rls=r["rls"],
            policies=r["policies"],
            role_policies=r["role_policies"],
        )
        for r in rows
    ]


async def own_exposure(
    conn: asyncpg.Connection, tables: Sequence[SharedTable]
) -> list[tuple[str, str]]:
    created = [t.oid for t in tables if t.created]
    rows = await conn.fetch(_E["own_exposure"], created, list(API_ROLES))
    return [(r["grantee"], r["object_name"]) for r in rows]


async def exposure_report(conn: asyncpg.Connection, env: str) -> list[str]:
    """What `ocr-pool migrate` prints about the pre-existing shared tables."""
    tables = [t for t in await shared_tables(conn) if not t.created]
    if not tables:
        return []
    return exposure_lines(env, await read_access(conn, tables, API_ROLES))


async def check(conn: asyncpg.Connection, env: str) -> tuple[list[str], bool]:
    tables = await shared_tables(conn)
    access = await read_access(conn, tables, API_ROLES)
    return check_lines(env, tables, access, await own_exposure(conn, tables))


async def lock_down(
    conn: asyncpg.Connection, env: str, policy: LockPolicy
) -> tuple[list[str], int]:
    """Lock down every shared table (pre-existing ones included) and ocr-pool's own
    objects. Each table is one short transaction under the policy's lock timeout,
    retried; it checks itself before committing. Returns (lines, lock retries)."""
    if not await conn.fetchval(_E["lockdown_installed"]):
        raise LockdownError(f"{env}: ocr_lockdown() is not installed: run `ocr-pool migrate` first")
    tables = await shared_tables(conn)
    roles = (*API_ROLES, *SERVICE_ROLES)
    before = await read_access(conn, tables, roles)
    own_before = await own_exposure(conn, tables)
    retries = 0
    for table in tables:
        statements = [
            r["statement"]
            for r in await conn.fetch(
                _E["lockdown_statements"], table.oid, list(API_ROLES), list(SERVICE_ROLES)
            )
        ]

        async def attempt(table: SharedTable = table, statements: list[str] = statements) -> None:
            async with short_transaction(conn, policy):
                for statement in statements:
                    await conn.execute(statement)
                left = [a for a in await read_access(conn, [table], API_ROLES) if a.exposed]
                if left:  # raising rolls the transaction back
                    who = ", ".join(f"{a.grantee} ({describe(a)})" for a in left)
                    raise LockdownError(
                        f"{env}: {table.name} still usable after the lockdown by {who}: "
                        "a grant by another grantor, or a role membership; revoke it as its "
                        "grantor and run again"
                    )

        retries += await with_lock_retries(policy, f"{env}: lockdown of {table.name}", attempt)

    async def own() -> None:
        async with short_transaction(conn, policy):
            await conn.fetch(_E["lockdown_own"], list(API_ROLES), list(SERVICE_ROLES))

    retries += await with_lock_retries(policy, f"{env}: lockdown of ocr-pool's objects", own)
    after = await read_access(conn, tables, roles)
    lines = [f"{env}: {lockdown_change(t.name, before, after)}" for t in tables]
    if own_before:
        lines.append(
            f"{env}: ocr-pool's objects: took back what PUBLIC, anon, authenticated could use "
            f"({len(own_before)} role/object pairs)"
        )
    else:
        lines.append(f"{env}: ocr-pool's objects: already locked down")
    return lines, retries
