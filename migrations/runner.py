"""Apply the numbered migrations once each, recording them in `ocr_pool_migrations`.

Concurrent runs (several machines starting at once) serialise on an advisory
lock; each migration runs in its own transaction together with its ledger row,
so a failure leaves the database at the last complete version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from migrations import Migration, discover, load_queries

_Q = load_queries(Path(__file__).with_name("runner.sql"))
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class MigrationReport:
    applied: list[str]
    already: list[str]


async def apply_migrations(
    conn: asyncpg.Connection, schema: str = "public", migrations: list[Migration] | None = None
) -> MigrationReport:
    if not _IDENTIFIER.match(schema):
        raise MigrationError(f"schema name {schema!r} is not a plain SQL identifier")
    todo = discover() if migrations is None else migrations
    # Functions are created with `SET search_path FROM CURRENT`: pin it to the
    # target schema (plus pg_temp last, so temp objects can never shadow ours).
    await conn.fetchval(_Q["set_search_path"], f'"{schema}", pg_temp')
    await conn.fetchval(_Q["lock"])
    try:
        await conn.execute(_Q["create_ledger"])
        done = {r["version"]: (r["name"], r["checksum"]) for r in await conn.fetch(_Q["applied"])}
        applied: list[str] = []
        already: list[str] = []
        for migration in todo:
            if migration.version in done:
                name, checksum = done[migration.version]
                if checksum != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.label} changed after it was applied "
                        f"(recorded as {migration.version:04d}_{name}); "
                        "never edit an applied migration, add a new one"
                    )
                already.append(migration.label)
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    _Q["record"], migration.version, migration.name, migration.checksum
                )
            applied.append(migration.label)
        return MigrationReport(applied=applied, already=already)
    finally:
        await conn.fetchval(_Q["unlock"])
