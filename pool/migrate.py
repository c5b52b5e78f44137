"""`ocr-pool migrate`: apply the migrations to each environment's database, and
report what the Supabase API roles can do on the pre-existing shared tables."""

from __future__ import annotations

from collections.abc import Callable

import asyncpg

from migrations.exposure import exposure_report
from migrations.runner import (
    DEFAULT_LOCK_TIMEOUT_MS,
    MigrationError,
    StepEvent,
    apply_migrations,
)
from pool.settings import QueueEnvironment
from workers.store import StoreError, StoreUnavailable
from workers.store.postgres import connection_options

Progress = Callable[[str], None]


def no_direct_url(env: QueueEnvironment, fallback: str) -> str:
    """The guidance for an environment that only has Supabase's REST API: DDL and
    privileges do not go through PostgREST."""
    return (
        f"{env.name}: no direct database URL ({env.name.upper()}_DATABASE_URL); "
        f"set it (Supabase: Dashboard > Connect, session pooler or direct host), {fallback}"
    )


async def connect_direct(env: QueueEnvironment) -> asyncpg.Connection:
    """A direct connection to `env`'s database (which must have a URL)."""
    if env.database_url is None:
        raise StoreUnavailable(no_direct_url(env, "or use the Supabase SQL editor"))
    dsn, options = connection_options(env.database_url.get_secret_value())
    try:
        return await asyncpg.connect(dsn, timeout=10, **options)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise StoreUnavailable(
            f"cannot reach queue database '{env.name}' ({env.display_target}): "
            f"{str(exc).strip() or type(exc).__name__}"
        ) from None


def step_progress(env: str, progress: Progress) -> Callable[[StepEvent], None]:
    """Say when a step starts waiting for a lock (once per step), and how it ended."""
    waits: dict[tuple[str, int], int] = {}

    def on_event(event: StepEvent) -> None:
        key = (event.migration, event.step.number)
        if event.kind == "lock_wait":
            waits[key] = event.attempt - 1
            if event.attempt == 2:
                progress(
                    f"{env}: {event.migration} {event.step.label}: a busy table held the lock; "
                    "rolled back, retrying with back-off"
                )
        elif event.kind == "done" and key in waits:
            progress(
                f"{env}: {event.migration} {event.step.label}: done after {waits.pop(key)} "
                "lock timeout(s)"
            )

    return on_event


async def migrate_environments(
    envs: list[QueueEnvironment],
    lock_timeout_ms: int = DEFAULT_LOCK_TIMEOUT_MS,
    progress: Progress | None = None,
) -> tuple[list[str], list[str]]:
    """Migrate every environment that has a direct database URL.

    Returns (report lines, problems). Supabase-only environments are problems:
    DDL does not go through PostgREST, so they are migrated from the SQL editor
    or the Supabase CLI (README), or by setting `{ENV}_DATABASE_URL`. `progress`
    hears about lock waits as they happen.
    """
    lines: list[str] = []
    problems: list[str] = []
    for env in envs:
        if env.database_url is None:
            problems.append(
                no_direct_url(
                    env, "or paste `ocr-pool migrate --print-sql` into the Supabase SQL editor"
                )
            )
            continue
        conn = await connect_direct(env)
        try:
            report = await apply_migrations(
                conn,
                lock_timeout_ms=lock_timeout_ms,
                on_event=None if progress is None else step_progress(env.name, progress),
            )
            exposure = await exposure_report(conn, env.name)
        except MigrationError as exc:
            raise StoreError(f"{env.name}: {exc}") from None
        finally:
            await conn.close()
        for label in report.rewritten:
            lines.append(
                f"{env.name}: {label} was applied by an earlier release; its current text "
                "has now been applied over it"
            )
        retries = f" ({report.lock_retries} lock retries)" if report.lock_retries else ""
        if report.applied:
            lines.append(f"{env.name}: applied {', '.join(report.applied)}{retries}")
        else:
            total = len(report.already) + len(report.rewritten)
            lines.append(f"{env.name}: up to date ({total} migrations){retries}")
        lines.extend(exposure)
    return lines, problems
