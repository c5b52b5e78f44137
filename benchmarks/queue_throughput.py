"""Claim + complete throughput of the queue, no OCR: direct Postgres and the
Supabase path (PostgREST stand-in in its own process), 1 / 4 / 16 claimers.

    uv run python -m benchmarks.queue_throughput [--rows 20000] [--supabase-rows 4000]

Creates and drops its own database. Prints a table; the goal is >= 2,000 jobs/s
on the direct path (figures, not a pass/fail test).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass

import anyio
import asyncpg
from rich.console import Console
from rich.table import Table

from domain import DocumentSource
from store import QueueStore
from store.postgres import PostgresStore
from store.supabase import SupabaseStore
from tests.support.databases import temporary_database_async
from tests.support.sql import Q

GOAL = 2000.0


@dataclass(frozen=True)
class Run:
    path: str
    claimers: int
    jobs: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds


async def seed(url: str, rows: int) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(Q["truncate_queue"])
        await conn.execute(Q["seed"], "index", rows)
        await conn.execute(Q["vacuum_queue"])
    finally:
        await conn.close()


async def check_all_done(url: str, rows: int) -> None:
    conn = await asyncpg.connect(url)
    try:
        counts = {r["status_id"]: r["n"] for r in await conn.fetch(Q["status_counts"])}
    finally:
        await conn.close()
    if counts != {5: rows}:
        raise SystemExit(f"queue not drained exactly once: {counts}")


async def drain(store: QueueStore, claimers: int) -> int:
    done = 0

    async def loop(n: int) -> None:
        nonlocal done
        worker = f"bench-{n}"
        while (job := await store.claim(worker, DocumentSource.INDEX, 60)) is not None:
            if not await store.complete(job, "{}"):
                raise SystemExit(f"complete refused for {job.id}")
            done += 1

    async with anyio.create_task_group() as tg:
        for n in range(claimers):
            tg.start_soon(loop, n)
    return done


async def measure(path: str, url: str, store: QueueStore, claimers: int, rows: int) -> Run:
    await seed(url, rows)
    start = time.perf_counter()
    jobs = await drain(store, claimers)
    seconds = time.perf_counter() - start
    await check_all_done(url, rows)
    return Run(path, claimers, jobs, seconds)


def start_postgrest(url: str, key: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.postgrest", "--database-url", url, "--key", key],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


async def main(args: argparse.Namespace) -> list[Run]:
    runs: list[Run] = []
    async with temporary_database_async() as url:
        direct = await PostgresStore.connect("bench", url, max_size=max(args.concurrency))
        try:
            for claimers in args.concurrency:
                runs.append(await measure("direct", url, direct, claimers, args.rows))
        finally:
            await direct.close()
        key = uuid.uuid4().hex
        proc, base_url = start_postgrest(url, key)
        try:
            supabase = await SupabaseStore.connect("bench", base_url, key)
            try:
                for claimers in args.concurrency:
                    runs.append(
                        await measure("supabase", url, supabase, claimers, args.supabase_rows)
                    )
            finally:
                await supabase.close()
        finally:
            proc.terminate()
            proc.wait()
    return runs


def report(runs: list[Run]) -> None:
    console = Console()
    table = Table(title=f"claim + complete, no OCR ({os.cpu_count()} cores, 1 client process)")
    for column in ("path", "claimers", "jobs", "seconds", "jobs/s"):
        table.add_column(column, justify="left" if column == "path" else "right")
    for run in runs:
        table.add_row(
            run.path, str(run.claimers), f"{run.jobs:,}", f"{run.seconds:.2f}", f"{run.rate:,.0f}"
        )
    console.print(table)
    best = max(r.rate for r in runs if r.path == "direct")
    verdict = "met" if best >= GOAL else "NOT met"
    console.print(f"goal >= {GOAL:,.0f} jobs/s direct: {verdict} (best {best:,.0f} jobs/s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--supabase-rows", type=int, default=4_000)
    parser.add_argument(
        "--concurrency", type=lambda v: [int(x) for x in v.split(",")], default=[1, 4, 16]
    )
    report(anyio.run(main, parser.parse_args()))
