"""Many processes claiming from one queue: each row exactly once, and a SIGKILLed
holder's rows come back and complete exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import anyio
import asyncpg
import pytest

from store.migrations.runner import apply_migrations
from tests.support.postgres_server import postgres_server
from tests.support.sql import Q

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def start_claimers(
    url: str, out_dir: Path, count: int, *extra: str, prefix: str = "p"
) -> list[subprocess.Popen[bytes]]:
    return [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.claimer",
                "--database-url",
                url,
                "--out",
                str(out_dir / f"{prefix}{n}.log"),
                "--name",
                f"{prefix}{n}",
                *extra,
            ],
            cwd=ROOT,
        )
        for n in range(count)
    ]


def events(out_dir: Path, prefix: str = "p") -> dict[str, Counter[str]]:
    found: dict[str, Counter[str]] = {
        "claimed": Counter(),
        "completed": Counter(),
        "refused": Counter(),
    }
    for log in out_dir.glob(f"{prefix}*.log"):
        for line in log.read_text().splitlines():
            kind, _, job = line.partition(" ")
            if kind in found:
                found[kind][job] += 1
    return found


async def seed(url: str, index_rows: int, acte_rows: int) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(Q["truncate_queue"])
        await conn.execute(Q["seed"], "index", index_rows)
        await conn.execute(Q["seed"], "acte", acte_rows)
    finally:
        await conn.close()


async def migrate_and_seed(url: str, index_rows: int, acte_rows: int) -> None:
    conn = await asyncpg.connect(url)
    try:
        await apply_migrations(conn)
    finally:
        await conn.close()
    await seed(url, index_rows, acte_rows)


async def completed_rows(url: str) -> dict[str, str]:
    conn = await asyncpg.connect(url)
    try:
        return {str(r["id"]): r["file_content"] for r in await conn.fetch(Q["completed_rows"])}
    finally:
        await conn.close()


async def status_counts(url: str) -> dict[int, int]:
    conn = await asyncpg.connect(url)
    try:
        return {r["status_id"]: r["n"] for r in await conn.fetch(Q["status_counts"])}
    finally:
        await conn.close()


def test_eight_processes_drain_2000_rows_each_claimed_once(
    migrated_url: str, tmp_path: Path
) -> None:
    anyio.run(seed, migrated_url, 1200, 800)
    procs = start_claimers(migrated_url, tmp_path, 8, "--claimers", "4")
    assert [p.wait(timeout=240) for p in procs] == [0] * 8
    seen = events(tmp_path)
    assert len(seen["claimed"]) == 2000
    assert max(seen["claimed"].values()) == 1  # nobody claimed a row twice
    assert seen["completed"] == seen["claimed"]
    assert not seen["refused"]
    assert anyio.run(status_counts, migrated_url) == {5: 2000}
    # The work really was shared: every process claimed something.
    per_process = [len((tmp_path / f"p{n}.log").read_text().splitlines()) for n in range(8)]
    assert all(lines > 1 for lines in per_process)


def test_sigkilled_holder_rows_recovered_and_completed_once(
    migrated_url: str, tmp_path: Path
) -> None:
    anyio.run(seed, migrated_url, 150, 150)
    lease = "1.5"
    victim = start_claimers(
        migrated_url, tmp_path, 1, "--claimers", "4", "--lease", lease, "--hold", "30"
    )[0]
    # Wait until the victim holds its four rows, then kill it without warning.
    log = tmp_path / "p0.log"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if log.exists() and log.read_text().count("claimed") >= 4:
            break
        time.sleep(0.05)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    held = set(events(tmp_path)["claimed"])
    assert len(held) == 4

    survivors = start_claimers(
        migrated_url,
        tmp_path,
        3,
        "--claimers",
        "4",
        "--lease",
        lease,
        "--hold",
        "0.01",
        "--idle-rounds",
        "40",
        prefix="s",
    )
    assert [p.wait(timeout=240) for p in survivors] == [0, 0, 0]
    completed = events(tmp_path, prefix="s")["completed"]
    assert len(completed) == 300
    assert max(completed.values()) == 1  # each row completed exactly once
    assert held <= set(completed)  # the dead holder's rows were recovered and done
    assert anyio.run(status_counts, migrated_url) == {5: 300}


def test_postgres_crash_mid_drain_loses_nothing(tmp_path: Path) -> None:
    """Crash the server (immediate stop: no checkpoint, unflushed async commits
    lost) while 4 processes drain the queue; after it comes back every row is
    completed exactly once."""
    with postgres_server() as server:
        anyio.run(migrate_and_seed, server.url, 400, 400)
        procs = start_claimers(
            server.url,
            tmp_path,
            4,
            "--claimers",
            "4",
            "--lease",
            "3",
            "--hold",
            "0.02",
            "--idle-rounds",
            "60",
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and sum(events(tmp_path)["completed"].values()) < 150:
            time.sleep(0.05)
        server.crash()
        time.sleep(1.0)
        server.start()
        assert [p.wait(timeout=240) for p in procs] == [0] * 4
        outages = sum(log.read_text().count("outage") for log in tmp_path.glob("p*.log"))
        assert outages > 0  # the claimers really saw the crash
        accepted = events(tmp_path)["completed"]
        assert max(accepted.values()) == 1  # no row's result was accepted twice
        assert anyio.run(status_counts, server.url) == {5: 800}
        rows = anyio.run(completed_rows, server.url)
        assert len(rows) == 800
        assert all(content.startswith("done by ") for content in rows.values())
