"""`ocr-pool migrate`: apply the migrations to each environment's database."""

from __future__ import annotations

import asyncpg

from migrations.runner import apply_migrations
from pool.settings import QueueEnvironment
from workers.store import StoreUnavailable
from workers.store.postgres import connection_options


async def migrate_environments(envs: list[QueueEnvironment]) -> tuple[list[str], list[str]]:
    """Migrate every environment that has a direct database URL.

    Returns (report lines, problems). Supabase-only environments are problems:
    DDL does not go through PostgREST, so they are migrated from the SQL editor
    or the Supabase CLI (README), or by setting `{ENV}_DATABASE_URL`.
    """
    lines: list[str] = []
    problems: list[str] = []
    for env in envs:
        if env.database_url is None:
            problems.append(
                f"{env.name}: no direct database URL ({env.name.upper()}_DATABASE_URL); "
                "set it, or paste `ocr-pool migrate --print-sql` into the Supabase SQL editor"
            )
            continue
        dsn, options = connection_options(env.database_url.get_secret_value())
        try:
            conn = await asyncpg.connect(dsn, timeout=10, **options)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise StoreUnavailable(
                f"cannot reach queue database '{env.name}' ({env.display_target}): "
                f"{str(exc).strip() or type(exc).__name__}"
            ) from None
        try:
            report = await apply_migrations(conn)
        finally:
            await conn.close()
        if report.applied:
            lines.append(f"{env.name}: applied {', '.join(report.applied)}")
        else:
            lines.append(f"{env.name}: up to date ({len(report.already)} migrations)")
    return lines, problems
