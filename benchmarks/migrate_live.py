"""`ocr-pool migrate` on a live copy of the registre extractor's table.

    uv run python -m benchmarks.migrate_live [--rows 1000000] [--hold 2.0]
                                             [--lock-timeout-ms 200] [--earlier-release]

Builds the original's table (tests/support/original_shape.sql) in a database of
its own, grows it to --rows rows, then migrates it while one writer inserts a
row every 50 ms and another updates one every 50 ms, timing every statement.
Another program holds ROW EXCLUSIVE on the table (an open transaction that
wrote a row) for --hold seconds when the migration starts, and a long read holds
its snapshot for --hold seconds once the first index build starts.

Prints the figures: worst / p99 / p50 wait of the writers, migrate duration,
lock retries per step. --earlier-release runs the same scenario with the
release before the step format (0001 in one transaction with plain CREATE
INDEX, no lock timeout), for comparison. Figures only, no pass/fail.
"""

from __future__ import annotations

import argparse

import anyio
from rich.console import Console

from tests.support.databases import temporary_database_async
from tests.support.live_migration import LiveFigures, earlier_release, run_live_migration


async def measure(rows: int, hold: float, lock_timeout_ms: int, earlier: bool) -> LiveFigures:
    async with temporary_database_async(migrate=False) as url:
        return await run_live_migration(
            url,
            rows,
            hold_seconds=hold,
            lock_timeout_ms=lock_timeout_ms,
            migrations=earlier_release() if earlier else None,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--hold", type=float, default=2.0, help="seconds each holder holds")
    parser.add_argument("--lock-timeout-ms", type=int, default=200)
    parser.add_argument(
        "--earlier-release",
        action="store_true",
        help="also run the release before the step format (no lock timeout), to compare",
    )
    args = parser.parse_args()
    console = Console()
    runs = [("this release (steps, lock timeout, CONCURRENTLY)", False)]
    if args.earlier_release:
        runs.append(("earlier release (one transaction, CREATE INDEX, no lock timeout)", True))
    for title, earlier in runs:
        # The earlier release had no lock timeout: a 10-minute one is the same here.
        timeout = 600_000 if earlier else args.lock_timeout_ms
        figures = anyio.run(measure, args.rows, args.hold, timeout, earlier)
        console.print(f"[bold]{title}[/bold]")
        for line in figures.lines():
            console.print("  " + line, markup=False, highlight=False, soft_wrap=True)


if __name__ == "__main__":
    main()
