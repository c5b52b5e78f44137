"""`ocr-pool` command line.

Only what the commands' signatures need is imported here (typer, the document types):
each command imports what it runs when it runs, so `ocr-pool --help` and a mistyped
option answer without loading Gemini's SDK, pydantic settings, Redis or Postgres drivers."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from domain import DocumentSource
from gemini_simulator.cli import register as register_simulator
from pool.cli.capacity import register as register_capacity
from pool.cli.cleanup import register as register_cleanup
from pool.cli.console import (
    die,
    environment_or_exit,
    err,
    out,
    print_report,
    queue_environments,
    settings_or_exit,
)
from pool.cli.gemini import register as register_gemini
from pool.cli.kit import Group, finish, print_version
from pool.cli.lockdown import register as register_lockdown
from store.migrations import DEFAULT_LOCK_TIMEOUT_MS

if TYPE_CHECKING:
    from store import SourceStats

app = typer.Typer(
    name="ocr-pool",
    help="OCR of Quebec land-registry documents (index, acte) with Gemini, from a shared queue.",
    no_args_is_help=True,
    cls=Group,
    pretty_exceptions_enable=False,
)
T = TypeVar("T")


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            is_eager=True,
            callback=print_version,
            expose_value=True,
            help="Print the version of ocr-pool and exit.",
        ),
    ] = False,
) -> None:
    """OCR of Quebec land-registry documents (index, acte) with Gemini, from a shared queue."""


def _run(main: Callable[[], Awaitable[T]]) -> T:
    import anyio

    from pool.wiring.settings import SettingsError
    from store import StoreError

    try:
        return anyio.run(main)
    except SettingsError as exc:
        die(str(exc), 2)
    except StoreError as exc:
        die(str(exc), 1)


@app.command()
def migrate(
    env: Annotated[str | None, typer.Option(help="Only this environment (default: all).")] = None,
    print_sql: Annotated[
        bool, typer.Option("--print-sql", help="Print all migrations as one script and exit.")
    ] = False,
    lock_timeout_ms: Annotated[
        int, typer.Option(min=1, help="Longest wait for a table lock before a retry (ms).")
    ] = DEFAULT_LOCK_TIMEOUT_MS,
    create_database: Annotated[
        bool,
        typer.Option(
            "--create-database",
            help="Create the database named in the URL when it is missing (local server only).",
        ),
    ] = False,
) -> None:
    """Create or upgrade the queue table, its SQL functions and dashboard views."""
    if print_sql:
        from store.migrations import combined_sql

        sys.stdout.write(combined_sql(lock_timeout_ms))
        return
    from pool.cli.migrate import check_can_create, migrate_environments

    settings = settings_or_exit()

    async def main() -> None:
        envs = [settings.environment(env)] if env else settings.require_queue()
        if create_database:
            check_can_create(envs)
        lines, problems = await migrate_environments(
            envs,
            lock_timeout_ms,
            lambda line: err.print(line, markup=False, highlight=False, soft_wrap=True),
            create=create_database,
        )
        print_report(lines, problems)
        if problems:
            raise typer.Exit(1)

    _run(main)


@app.command()
def backfill(
    env: Annotated[str | None, typer.Option(help="Only this environment (default: all).")] = None,
    source: Annotated[
        DocumentSource | None, typer.Option(help="Only this type (default: both).")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=10_000, help="Rows per read.")] = 200,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be written; write nothing.")
    ] = False,
) -> None:
    """Give rows completed before this release file_content_json (and an index its
    boosted_file_content), derived from their stored text without calling Gemini."""
    from pool.cli.backfill import backfill_environment

    settings = settings_or_exit()

    async def main() -> None:
        envs = [settings.environment(env)] if env else settings.require_queue()
        for target in envs:
            report = await backfill_environment(
                target,
                source=None if source is None else source.value,
                batch_size=batch_size,
                dry_run=dry_run,
            )
            for line in report.lines(dry_run):
                out.print(line, markup=False, highlight=False)

    _run(main)


@app.command()
def enqueue(
    paths: Annotated[
        list[str],
        typer.Argument(metavar="FILE|DIR", help="PDF files or directories (searched recursively)."),
    ],
    source: Annotated[DocumentSource, typer.Option(help="Document type.")],
    env: Annotated[
        str | None, typer.Option(help="Target environment (default: first configured).")
    ] = None,
    batch_size: Annotated[
        int, typer.Option(min=1, max=10_000, help="Rows per database call.")
    ] = 500,
    priority: Annotated[
        int | None, typer.Option(help="Claim priority for all files (default: from file size).")
    ] = None,
) -> None:
    """Queue local PDFs for OCR (status 3). Files already queued and not done are reported."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from pool.cli.ingest import batches, duplicate_line, enqueue_batch, scan, summary_line
    from pool.wiring.configs import store_addresses
    from store import open_stores

    settings = settings_or_exit()
    target = environment_or_exit(settings, env)
    found = scan(paths)
    for problem in found.problems():
        err.print(f"ocr-pool: {problem}", markup=False, highlight=False, soft_wrap=True)
    if found.skipped:
        err.print(f"skipped {len(found.skipped)} non-PDF file(s) in directories", highlight=False)

    async def main() -> tuple[int, list[tuple[str, int]]]:
        created = 0
        duplicates: list[tuple[str, int]] = []
        if not found.files:
            return created, duplicates
        async with open_stores(store_addresses(settings, [target])) as (store,):
            with Progress(
                TextColumn("enqueue"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=err,
                disable=len(found.files) < batch_size,
            ) as progress:
                task = progress.add_task("enqueue", total=len(found.files))
                for batch in batches(found.files, batch_size):
                    results = await enqueue_batch(
                        store, source, batch, settings.ocr_max_attempts, priority
                    )
                    for result in results:
                        if result.created:
                            created += 1
                        else:
                            duplicates.append((result.supabase_path, result.status_id))
                    progress.advance(task, len(batch))
        return created, duplicates

    created, duplicates = _run(main)
    for path, status in duplicates:
        out.print(
            duplicate_line(path, status, source, env),
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    out.print(
        summary_line(created, len(duplicates), source, target.name, found),
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    if found.refused:
        raise typer.Exit(1)


@app.command("requeue-failed")
def requeue_failed(
    source: Annotated[DocumentSource | None, typer.Option(help="Only this document type.")] = None,
    env: Annotated[str | None, typer.Option(help="Only this environment (default: all).")] = None,
) -> None:
    """Put documents that failed OCR (status 4) back in the queue with fresh attempts."""
    from pool.wiring.configs import store_addresses
    from store import open_stores

    settings = settings_or_exit()
    envs = queue_environments(env, settings)

    async def main() -> None:
        async with open_stores(store_addresses(settings, envs)) as stores:
            for store in stores:
                count = await store.requeue_failed(source)
                out.print(f"{store.env}: requeued {count} document(s)", markup=False)

    _run(main)


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Queue figures per environment and type, running pools, Gemini usage per model."""
    import anyio

    from pool.cli.fleet import pools_or_error, pools_table, queue_stats_table
    from pool.cli.gemini import gemini_or_error, gemini_table
    from pool.wiring.configs import store_addresses
    from store import open_stores

    settings = settings_or_exit()
    envs = queue_environments(None, settings)

    async def main() -> dict[str, list[SourceStats]]:
        async with open_stores(store_addresses(settings, envs)) as stores:
            return {store.env: await store.stats() for store in stores}

    stats = _run(main)
    gemini = gemini_or_error(settings)
    pools = anyio.run(pools_or_error, settings)
    if as_json:
        payload = {
            "queues": {env: [dataclasses.asdict(s) for s in rows] for env, rows in stats.items()},
            "gemini": {"error": gemini} if isinstance(gemini, str) else gemini.as_json(),
            "pools": {"error": pools} if isinstance(pools, str) else pools["pools"],
        }
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        return
    out.print(queue_stats_table(stats))
    if isinstance(pools, str):
        out.print(f"Pools: {pools}", markup=False, highlight=False)
    elif pools["pools"]:
        out.print(pools_table(pools))
    else:
        out.print("Pools: none running", highlight=False)
    if isinstance(gemini, str):
        out.print(f"Gemini limiter: {gemini}", markup=False, highlight=False)
    elif gemini.models:
        out.print(gemini_table(gemini))


register_capacity(app)
register_gemini(app)
register_simulator(app)
register_lockdown(app)
register_cleanup(app)


@app.command()
def start(
    until_empty: Annotated[
        bool,
        typer.Option("--until-empty", help="Exit 0 once the queue has nothing left to claim."),
    ] = False,
) -> None:
    """Run a pool of OCR_WORKER_POOL_SIZE workers until SIGTERM/SIGINT (jobs in hand finish)."""
    import anyio

    from pool.cli.start import configure_logging, run_pool, status_printer
    from pool.process_limits import bound_malloc
    from pool.wiring.runtime import StartupError
    from pool.wiring.settings import SettingsError
    from store import StoreError

    bound_malloc()  # before any thread: a pool's memory, not the environment's
    settings = settings_or_exit()
    configure_logging(settings)
    show = status_printer(out, settings.ocr_log_format)
    try:
        anyio.run(lambda: run_pool(settings, until_empty=until_empty, on_status=show))
    except StartupError as exc:
        die(str(exc), 1)
    except SettingsError as exc:
        die(str(exc), 2)
    except StoreError as exc:
        die(str(exc), 1)


@app.command()
def demo(
    documents: Annotated[int, typer.Option(min=1, max=500, help="Sample PDFs per type.")] = 6,
    samples: Annotated[
        Path, typer.Option(help="Where sample PDFs are written (a new folder per run).")
    ] = Path(".services/demo-samples"),
    admin_url: Annotated[
        str, typer.Option(help="Server where the demo database is created (no DATABASE_URL).")
    ] = "postgresql://postgres@127.0.0.1:5432/postgres",
) -> None:
    """Queue sample PDFs in a demo database and OCR them (simulator unless GEMINI_API_KEY)."""
    import anyio

    from pool.cli.demo_run import run_demo, summary_table
    from pool.cli.start import configure_logging, status_printer
    from pool.process_limits import bound_malloc
    from pool.wiring.runtime import StartupError
    from pool.wiring.settings import SettingsError
    from store import StoreError

    bound_malloc()
    settings = settings_or_exit()
    configure_logging(settings)
    show = status_printer(out, settings.ocr_log_format)
    root = samples.expanduser().resolve()
    try:
        manager = anyio.run(lambda: run_demo(documents, root, admin_url, out, show))
    except StartupError as exc:
        die(str(exc), 1)
    except SettingsError as exc:
        die(str(exc), 2)
    except (StoreError, OSError) as exc:
        die(str(exc), 1)
    except Exception as exc:  # e.g. the admin server refused: one line, no traceback
        from capacity.errors import redact

        die(f"demo: {type(exc).__name__}: {redact(str(exc))}", 1)
    out.print(summary_table(manager))


finish(app)


def main() -> None:
    app(prog_name="ocr-pool")
