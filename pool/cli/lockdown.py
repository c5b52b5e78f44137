"""`ocr-pool lockdown`: lock down the shared tables too, on request.

The migrations lock down ocr-pool's own objects, and the shared tables
(`extraction_queue`, `extraction_status`) only when ocr-pool created them; a
pre-existing one is left as it was, because other programs may read or write it
with the anon or authenticated key. This command is the explicit step that
takes that access away: row level security on, every privilege of PUBLIC,
`anon` and `authenticated` revoked (on the table and its sequences), DML granted
to `service_role`, policies left in place; then `ocr_lockdown()` for ocr-pool's
own objects. Each table is one short transaction under the lock timeout,
retried, that checks itself before it commits.

`--check` changes nothing: it reports, and exits 1 if PUBLIC, anon or
authenticated can use a shared table or an ocr-pool object, 0 if not.

`pool/cli/app.py` calls `register(app)`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from pool.cli.console import die, print_report, queue_environments
from store import StoreError
from store.migrations import DEFAULT_LOCK_TIMEOUT_MS

if TYPE_CHECKING:
    from pool.wiring.settings import QueueEnvironment


async def lockdown_environments(
    envs: list[QueueEnvironment], check_only: bool, lock_timeout_ms: int
) -> tuple[list[str], list[str], bool]:
    """(report lines, problems, exposed). `exposed` is what `--check` found, or,
    when applying, whether anything was exposed before (informational)."""
    import asyncpg

    from pool.cli.migrate import connect_direct, no_direct_url
    from store.migrations.exposure import LockdownError, check, lock_down, pin_schema
    from store.migrations.runner import LockPolicy, MigrationError

    lines: list[str] = []
    problems: list[str] = []
    exposed = False
    policy = LockPolicy(lock_timeout_ms=lock_timeout_ms)
    for env in envs:
        if env.database_url is None:
            problems.append(no_direct_url(env, "then run `ocr-pool lockdown` again"))
            continue
        conn = await connect_direct(env)
        try:
            await pin_schema(conn)
            if check_only:
                found, env_exposed = await check(conn, env.name)
                exposed = exposed or env_exposed
            else:
                found, retries = await lock_down(conn, env.name, policy)
                if retries:
                    found.append(f"{env.name}: {retries} lock retries")
            lines.extend(found)
        except (LockdownError, MigrationError) as exc:
            raise StoreError(str(exc)) from None
        except asyncpg.PostgresError as exc:
            message = str(exc).strip().replace("\n", " ")
            raise StoreError(f"{env.name}: lockdown: {exc.sqlstate} {message}") from None
        finally:
            await conn.close()
    return lines, problems, exposed


def register(app: typer.Typer) -> None:
    """Add the `lockdown` command to `app`."""

    @app.command("lockdown")
    def lockdown(
        env: Annotated[
            str | None, typer.Option(help="Only this environment (default: all).")
        ] = None,
        check_only: Annotated[
            bool,
            typer.Option("--check", help="Only report; exit 1 if anything is exposed, 0 if not."),
        ] = False,
        lock_timeout_ms: Annotated[
            int,
            typer.Option(min=1, help="Longest wait for a table lock before a retry (ms)."),
        ] = DEFAULT_LOCK_TIMEOUT_MS,
    ) -> None:
        """Revoke anon/authenticated/PUBLIC on the shared tables too (RLS on, service_role kept)."""
        import anyio

        envs = queue_environments(env)
        try:
            lines, problems, exposed = anyio.run(
                lockdown_environments, envs, check_only, lock_timeout_ms
            )
        except StoreError as exc:
            die(str(exc), 1)
        print_report(lines, problems)
        if problems or (check_only and exposed):
            raise typer.Exit(1)
