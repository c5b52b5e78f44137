"""`ocr-pool migrate`: apply the migrations to each environment's database, and
report what the Supabase API roles can do on the pre-existing shared tables."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import asyncpg

from pool.wiring.settings import QueueEnvironment, SettingsError, redact_url
from store import StoreError, StoreUnavailable
from store.migrations.exposure import exposure_report
from store.migrations.runner import (
    DEFAULT_LOCK_TIMEOUT_MS,
    MigrationError,
    StepEvent,
    apply_migrations,
)
from store.postgres import connection_options
from store.sql import load_queries

Progress = Callable[[str], None]
_Q = load_queries(Path(__file__).with_name("migrate.sql"))
MAINTENANCE_DATABASE = "postgres"
CREATE_HINT = (
    "create it with `ocr-pool migrate --create-database` (a local server) "
    "or ask the server's administrator"
)


class MissingDatabase(StoreUnavailable):
    """The server answered, but the database named in the URL does not exist."""


# --- the URL, read as libpq reads it (pure) -----------------------------------------


def _host_param(url: str) -> str | None:
    for key, value in parse_qsl(urlsplit(url).query, keep_blank_values=True):
        if key == "host":
            return value
    return None


def server_host(url: str) -> str:
    """The host a Postgres URL points at: its `host=` query parameter or the netloc's
    host; empty when neither is given (libpq then uses the local Unix socket)."""
    return _host_param(url) or urlsplit(url).hostname or ""


def is_local_server(url: str) -> bool:
    """Whether the URL's server is on this machine: a Unix socket (no host, or a
    directory), `localhost`, or a loopback address."""
    hosts = [h.strip() for h in server_host(url).split(",")]
    return all(_is_local_host(host) for host in hosts)


def _is_local_host(host: str) -> bool:
    if not host or host.startswith("/") or host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def database_name(url: str) -> str:
    """The database a URL names (its path; `dbname=` in the query wins); libpq's
    default, the user name, when it names none."""
    parts = urlsplit(url)
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "dbname" and value:
            return value
    name = unquote(parts.path.lstrip("/"))
    return name or unquote(parts.username or "") or "postgres"


def maintenance_url(url: str) -> str:
    """The same server, user and options, on its maintenance database `postgres`."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "dbname"]
    return urlunsplit(parts._replace(path=f"/{MAINTENANCE_DATABASE}", query=urlencode(query)))


def server_label(url: str) -> str:
    """The server part of a URL, for messages (no password, no database)."""
    parts = urlsplit(redact_url(url))
    return urlunsplit(parts._replace(path="", query="", fragment="")) or url


# --- connections ---------------------------------------------------------------------


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
    url = env.database_url.get_secret_value()
    dsn, options = connection_options(url)
    try:
        return await asyncpg.connect(dsn, timeout=10, **options)
    except asyncpg.InvalidCatalogNameError:
        raise MissingDatabase(
            f"queue database '{env.name}': database \"{database_name(url)}\" does not exist on "
            f"{server_label(url)}; {CREATE_HINT}"
        ) from None
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise StoreUnavailable(
            f"cannot reach queue database '{env.name}' ({env.display_target}): "
            f"{str(exc).strip() or type(exc).__name__}"
        ) from None


def check_can_create(envs: list[QueueEnvironment]) -> None:
    """`--create-database` is for a local server: refuse it (SettingsError, exit 2)
    before anything runs when an environment's server is elsewhere."""
    for env in envs:
        if env.database_url is None:
            continue
        url = env.database_url.get_secret_value()
        if not is_local_server(url):
            raise SettingsError(
                f"--create-database creates a database on a local server only (a Unix "
                f"socket, localhost or a loopback address); '{env.name}' is on "
                f'{server_host(url)}: create "{database_name(url)}" there with the '
                "provider's tools, then run `ocr-pool migrate`"
            )


async def create_database(env: QueueEnvironment) -> str:
    """Create `env`'s database, connecting to the maintenance database `postgres` of the
    same server as the same user. Returns the line to print; StoreError if refused."""
    assert env.database_url is not None
    url = env.database_url.get_secret_value()
    name = database_name(url)
    server = server_label(url)
    dsn, options = connection_options(maintenance_url(url))
    try:
        conn = await asyncpg.connect(dsn, timeout=10, **options)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise StoreError(
            f'{env.name}: cannot create database "{name}": the maintenance database '
            f'"{MAINTENANCE_DATABASE}" on {server} refused the connection: '
            f"{str(exc).strip() or type(exc).__name__}"
        ) from None
    try:
        statement = await conn.fetchval(_Q["create_database_statement"], name)
        await conn.execute(statement)
    except asyncpg.DuplicateDatabaseError:
        return f'{env.name}: database "{name}" was just created by another run'
    except asyncpg.InsufficientPrivilegeError:
        user = unquote(urlsplit(url).username or "") or "(default user)"
        raise StoreError(
            f'{env.name}: role "{user}" may not create databases on {server} (it needs '
            f'CREATEDB): ask the server\'s administrator to create "{name}"'
        ) from None
    except asyncpg.PostgresError as exc:
        raise StoreError(
            f'{env.name}: cannot create database "{name}" on {server}: '
            f"{str(exc).strip() or type(exc).__name__}"
        ) from None
    finally:
        await conn.close()
    return f'{env.name}: created database "{name}" on {server}'


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
    create: bool = False,
) -> tuple[list[str], list[str]]:
    """Migrate every environment that has a direct database URL.

    Returns (report lines, problems). Supabase-only environments are problems:
    DDL does not go through PostgREST, so they are migrated from the SQL editor
    or the Supabase CLI (README), or by setting `{ENV}_DATABASE_URL`. `progress`
    hears about lock waits as they happen. With `create`, a database missing from its
    (local) server is created first (`check_can_create` is the caller's to call).
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
        try:
            conn = await connect_direct(env)
        except MissingDatabase:
            if not create:
                raise
            lines.append(await create_database(env))
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
