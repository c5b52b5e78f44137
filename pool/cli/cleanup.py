"""`ocr-pool cleanup`: old rows of ocr-pool's own tables (never the queue)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from pool.cli.console import die, print_report, queue_environments
from store.migrations import DEFAULT_LOCK_TIMEOUT_MS

if TYPE_CHECKING:
    from pool.wiring.settings import QueueEnvironment


async def cleanup_environments(
    envs: list[QueueEnvironment],
    older_than_text: str,
    dry_run: bool,
    batch_size: int,
    lock_timeout_ms: int,
) -> tuple[list[str], list[str]]:
    """(report lines, problems): environments without a direct URL are problems."""
    from pool.cli.cleanup_rules import clean_environment, parse_duration
    from pool.cli.migrate import no_direct_url

    older_than = parse_duration(older_than_text)
    lines: list[str] = []
    problems: list[str] = []
    for env in envs:
        if env.database_url is None:
            problems.append(no_direct_url(env, "then run `ocr-pool cleanup` again"))
            continue
        lines += await clean_environment(
            env,
            older_than,
            dry_run=dry_run,
            batch_size=batch_size,
            lock_timeout_ms=lock_timeout_ms,
        )
    return lines, problems


def register(app: typer.Typer) -> None:
    """Add the `cleanup` command to `app`."""

    @app.command("cleanup")
    def cleanup(
        older_than: Annotated[
            str,
            typer.Option(
                "--older-than",
                help="Age past which rows go: 30d, 12h or 90m (days, hours, minutes).",
            ),
        ],
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Count what would be deleted; delete nothing.")
        ] = False,
        env: Annotated[
            str | None, typer.Option(help="Only this environment (default: all).")
        ] = None,
        batch_size: Annotated[
            int, typer.Option(min=1, max=100_000, help="Rows per delete (one transaction each).")
        ] = 1000,
        lock_timeout_ms: Annotated[
            int,
            typer.Option(min=1, help="Longest wait for a table lock before a retry (ms)."),
        ] = DEFAULT_LOCK_TIMEOUT_MS,
    ) -> None:
        """Delete old rows of ocr-pool's own tables (allocation log, result cache, outages,
        daily Gemini counts); never a queue row."""
        import anyio

        from pool.cli.cleanup_rules import parse_duration
        from store import StoreError

        try:
            parse_duration(older_than)
        except ValueError as exc:
            die(f"--older-than: {exc}", 2)
        envs = queue_environments(env)
        try:
            lines, problems = anyio.run(
                cleanup_environments, envs, older_than, dry_run, batch_size, lock_timeout_ms
            )
        except StoreError as exc:
            die(str(exc), 1)
        print_report(lines, problems)
        if problems:
            raise typer.Exit(1)
