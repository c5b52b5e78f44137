"""A real pool (`ocr-pool start --until-empty`, a child process) OCRs a batch while its
private Postgres is stopped three times, each time for three times the lease, with
documents in flight (the Gemini simulator answers slowly). Every document ends done
once with its content, no attempt is charged, no finished result is thrown away, and
each outage is one line when it starts and one when it ends, without a traceback."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import pytest

from domain import Status
from gemini_simulator import SimulatorConfig, run_simulator
from store.migrations.runner import apply_migrations
from store.sql import load_queries
from tests.integration.test_workers_e2e import check_acte_content, check_index_content, make_corpus
from tests.support.pool_process import PoolProcess, pool_env, wait_for
from tests.support.postgres_server import PostgresServer, postgres_server
from tests.support.sql import Q

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
OQ = load_queries(Path(__file__).parents[1] / "support" / "outages.sql")
LEASE_SECONDS = 3
OUTAGE_SECONDS = 3 * LEASE_SECONDS
OUTAGES = 3


async def fetch(url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


async def count(url: str, name: str) -> int:
    return int((await fetch(url, OQ[name]))[0][0])


async def prepare(server: PostgresServer, paths: list[Path]) -> None:
    conn = await asyncpg.connect(server.url)
    try:
        await apply_migrations(conn)
        await conn.execute(Q["watch_completions"])
        for path in paths:
            source = "index" if path.name.startswith("index") else "acte"
            await conn.execute(Q["enqueue_one"], source, str(path))
    finally:
        await conn.close()


async def test_three_outages_three_leases_long_lose_no_result_and_charge_no_attempt(
    tmp_path: Path, redis_prefix: str
) -> None:
    corpus = make_corpus(tmp_path / "docs", 30, 30, seed=900)
    paths = [*corpus.index, *corpus.acte]
    # Every Gemini call takes 1.5 s: documents are in the middle of their calls (or
    # finishing them) whenever the database goes away.
    config = SimulatorConfig(port=0, corpus=(corpus.directory,), latency_ms=1500, latency_sigma=0)
    stops: list[tuple[int, float]] = []  # (rows in flight at the stop, seconds down)
    with postgres_server() as server:
        await prepare(server, paths)
        async with run_simulator(config) as sim:
            env = pool_env(
                server.url,
                redis_prefix,
                sim.url,
                "outages",
                OCR_WORKER_POOL_SIZE=4,
                OCR_LEASE_SECONDS=LEASE_SECONDS,
                OCR_HEARTBEAT_SECONDS=1,
                OCR_RENDER_DPI=100,
            )
            pool = PoolProcess(env, tmp_path / "pool.log", "--until-empty")
            try:
                done_before = 0
                for _ in range(OUTAGES):
                    floor = done_before + 2

                    async def in_flight_after_progress(floor: int = floor) -> bool:
                        return (
                            await count(server.url, "in_progress") >= 2
                            and await count(server.url, "completed_count") >= floor
                        )

                    await wait_for(in_flight_after_progress, within=120)
                    in_flight = await count(server.url, "in_progress")
                    started = time.monotonic()
                    server.stop()
                    await anyio.sleep(OUTAGE_SECONDS)
                    server.start()
                    stops.append((in_flight, time.monotonic() - started))
                    # The next outage comes once results held through this one landed
                    # and new documents are under way.
                    await anyio.sleep(2 * LEASE_SECONDS)
                    done_before = await count(server.url, "completed_count")
                code = await pool.wait(within=300)
            finally:
                pool.stop()
            output = pool.output()
        outcome = await fetch(server.url, OQ["outcome_rows"])
        rows = {Path(r["supabase_path"]).name: r for r in outcome}
        completions = {r["id"]: r["n"] for r in await fetch(server.url, Q["completion_counts"])}
        on_record = await fetch(server.url, OQ["outages"])

    assert code == 0, output[-4000:]
    # Every document done once, with the content of its pages.
    assert len(rows) == len(paths)
    for path, pages in corpus.index.items():
        row = rows[path.name]
        assert row["status_id"] == Status.OCR_COMPLETE, (path.name, row["ocr_error"])
        check_index_content(row, pages)
    for path, deed in corpus.acte.items():
        row = rows[path.name]
        assert row["status_id"] == Status.OCR_COMPLETE, (path.name, row["ocr_error"])
        check_acte_content(row, deed)
    assert len(completions) == len(paths)
    assert set(completions.values()) == {1}
    # No attempt charged by the outages, nothing at 4.
    attempts = [r["ocr_attempts"] for r in rows.values()]
    expiries = [r["ocr_lease_expiries"] for r in rows.values()]
    assert set(attempts) == {0}
    assert not [r for r in rows.values() if r["status_id"] == Status.ERROR]
    # Documents really were in flight, and results really waited for the database.
    assert all(in_flight >= 2 for in_flight, _ in stops)
    assert all(down >= OUTAGE_SECONDS for _, down in stops)
    delayed = re.findall(r"complete \w+ \S+ written ([\d.]+) s late", output)
    assert delayed
    # No finished result thrown away.
    discarded = output.count("could not complete") + output.count("discarded")
    assert discarded == 0
    # One line when an outage starts, one when it ends, no traceback.
    started_lines = output.count("queue database 'default' unreachable")
    ended_lines = output.count("queue database 'default' answers again")
    assert (started_lines, ended_lines) == (OUTAGES, OUTAGES), output[-4000:]
    assert "Traceback" not in output
    # What the manager itself says while the database is away (its file, not this work).
    manager_lines = sum(
        output.count(text)
        for text in ("queue default unreadable", "allocation not recorded", "not saved in")
    )
    assert len(on_record) >= OUTAGES  # reported to the database by the pool
    seconds_on_record = ", ".join(f"{r['seconds']:.1f} s" for r in on_record)
    print(
        f"\n{len(paths)} documents ({len(corpus.index)} index, {len(corpus.acte)} acte), "
        f"pool of 4, lease {LEASE_SECONDS} s, heartbeat 1 s, Gemini answers in 1.5 s\n"
        f"{OUTAGES} outages: "
        + ", ".join(f"{down:.1f} s with {n} in flight" for n, down in stops)
        + f"\noutages on record: {len(on_record)} "
        f"({seconds_on_record})\n"
        f"completions delayed by an outage: {len(delayed)} "
        f"(held {min(map(float, delayed)):.1f}-{max(map(float, delayed)):.1f} s)\n"
        f"results discarded: {discarded}; done once: {len(completions)}/{len(paths)}; "
        f"at status 4: 0\n"
        f"attempts charged (ocr_attempts): {sum(attempts)} in all, max {max(attempts)}; "
        f"every claim was attempt 1; leases recovered (ocr_lease_expiries): {sum(expiries)}\n"
        f"log: {len(output.splitlines())} lines, {started_lines} 'unreachable' + "
        f"{ended_lines} 'answers again', tracebacks: {output.count('Traceback')}; "
        f"the manager's own lines about the unreadable queue: {manager_lines}"
    )
