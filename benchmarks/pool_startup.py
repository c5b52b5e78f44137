"""Start-up latency and memory of a real `ocr-pool start` process.

    .venv/bin/python -m benchmarks.pool_startup [--repeat 3] [--workers 32] [--work-seconds 10]

Each repetition: a fresh migrated database holding a backlog (index and acte PDFs),
the simulator (its own process, shared by the repetitions), then `ocr-pool start` as a
child process with the settings in its environment. Measured:

- start → ready: from just before the process is spawned (imports included) to the
  pool's "ready" log line (settings read, connections, Lua scripts, a tiny render);
- start → first claim: to the first job claimed, i.e. the smallest `ocr_started_at` in
  the queue (the claim's own timestamp; the database is polled every few ms for a row
  at status 6 or 5);
- RSS (VmRSS of the child, from /proc) at the first claim (after warm-up), the highest
  while working for `--work-seconds` with every worker busy (jobs in progress, polled
  from the queue, are shown), and the peak (VmHWM) at the end;
- SIGTERM → exit: the graceful stop, jobs in hand finishing.

Also, for reference, the time `ocr-pool --help` takes (the command line alone: no
command's modules), and the time a bare `python -c "import pool.cli, pool.cli.start"` takes
(the modules `ocr-pool start` loads before any work). Medians over
the repetitions; figures, not pass/fail.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import anyio
import asyncpg
from anyio.abc import Process
from rich.console import Console
from rich.table import Table

from benchmarks.support import (
    MAX_ATTEMPTS,
    Backlog,
    drop_prefix,
    environment,
    pool_values,
    simulator_process,
    write_backlog,
)
from domain import DocumentSource
from gemini_simulator import SimulatorConfig
from store.postgres import PostgresStore
from tests.support.databases import temporary_database_async

OCR_POOL = Path(sys.executable).with_name("ocr-pool")
READY_MARK = " ready on "
FIRST_CLAIM = """
SELECT extract(epoch FROM min(ocr_started_at))::float8 AS at
FROM extraction_queue WHERE status_id IN (5, 6)
"""
IMPORTS = "import pool.cli, pool.cli.start"
IN_PROGRESS = "SELECT count(*)::int FROM extraction_queue WHERE status_id = 6"


@dataclass(frozen=True)
class Sample:
    ready: float | None
    """seconds from spawn to the "ready" log line"""
    first_claim: float
    """seconds from spawn to the first claim (the claim's database timestamp)"""
    detected: float
    """seconds from spawn to the poll that saw it"""
    rss_warm_mb: float
    rss_working_mb: float
    hwm_mb: float
    busy_max: int
    stop_seconds: float
    exit_code: int


def proc_status(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of `pid` in MB."""
    values: dict[str, float] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0]) / 1024
    return values


def ready_seconds(log: Path, spawned: float) -> float | None:
    """Seconds from `spawned` to the "pool … ready on …" log line (its asctime, ms)."""
    for line in log.read_text(errors="replace").splitlines():
        if READY_MARK in line and " pool" in line:
            stamp = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
            return stamp.timestamp() - spawned
    return None


async def seed_queue(url: str, backlog: Backlog) -> None:
    store = await PostgresStore.connect("bench", url, max_size=2)
    try:
        for source, paths in (
            (DocumentSource.INDEX, backlog.index),
            (DocumentSource.ACTE, backlog.acte),
        ):
            await store.enqueue(source, [str(p) for p in paths], [0] * len(paths), MAX_ATTEMPTS)
    finally:
        await store.close()


async def one_start(
    backlog: Backlog, sim_url: str, args: argparse.Namespace, work_dir: Path, n: int
) -> Sample:
    prefix = f"bench:startup:{uuid.uuid4().hex[:8]}:"
    log_path = work_dir / f"pool-{n}.log"
    async with temporary_database_async() as url:
        await seed_queue(url, backlog)
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", "/tmp"),
            **environment(pool_values(url, prefix, sim_url, backlog.corpus.parent)),
            "OCR_WORKER_POOL_SIZE": str(args.workers),
            "OCR_RESULT_CACHE": "false",
            **dict(item.split("=", 1) for item in args.env),
        }
        conn = await asyncpg.connect(url)
        try:
            with log_path.open("wb") as log:
                spawned = time.time()
                proc = await anyio.open_process(
                    [str(OCR_POOL), "start"],
                    cwd=work_dir,  # no stray .env
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
                try:
                    return await _observe(proc, conn, spawned, log_path, args)
                finally:
                    if proc.returncode is None:
                        proc.kill()
                        with anyio.CancelScope(shield=True):
                            await proc.wait()
        finally:
            await conn.close()
            await drop_prefix(prefix)


def tail(path: Path, chars: int = 2000) -> str:
    return path.read_text(errors="replace")[-chars:]


async def _observe(
    proc: Process,
    conn: asyncpg.Connection,
    spawned: float,
    log_path: Path,
    args: argparse.Namespace,
) -> Sample:
    with anyio.fail_after(args.timeout):
        while True:
            claimed_at = await conn.fetchval(FIRST_CLAIM)
            if claimed_at is not None:
                detected = time.time() - spawned
                break
            if proc.returncode is not None:
                raise SystemExit(
                    f"ocr-pool start exited ({proc.returncode}) before claiming:\n" + tail(log_path)
                )
            await anyio.sleep(0.005)
    warm = proc_status(proc.pid)["VmRSS"]
    working, busy_max = warm, 0
    until = time.monotonic() + args.work_seconds
    while time.monotonic() < until:
        await anyio.sleep(0.25)
        working = max(working, proc_status(proc.pid)["VmRSS"])
        busy_max = max(busy_max, await conn.fetchval(IN_PROGRESS))
    hwm = proc_status(proc.pid)["VmHWM"]
    asked = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    with anyio.fail_after(args.timeout):
        code = await proc.wait()
    return Sample(
        ready=ready_seconds(log_path, spawned),
        first_claim=float(claimed_at) - spawned,
        detected=detected,
        rss_warm_mb=warm,
        rss_working_mb=working,
        hwm_mb=hwm,
        busy_max=busy_max,
        stop_seconds=time.monotonic() - asked,
        exit_code=code,
    )


def import_seconds() -> float:
    """A bare interpreter importing what `ocr-pool start` imports before any work."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", IMPORTS], check=True)
    return time.perf_counter() - started


def help_seconds() -> float:
    """`ocr-pool --help`, the installed command (the script beside this interpreter)."""
    started = time.perf_counter()
    command = Path(sys.executable).with_name("ocr-pool")
    subprocess.run([str(command), "--help"], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


async def main(args: argparse.Namespace) -> tuple[list[Sample], list[float], list[float]]:
    helps = [help_seconds() for _ in range(args.repeat)]
    imports = [import_seconds() for _ in range(args.repeat)]
    samples: list[Sample] = []
    with tempfile.TemporaryDirectory(prefix="pool-startup-") as tmp:
        work_dir = Path(tmp)
        backlog = write_backlog(
            work_dir / "backlog", args.index, args.acte, index_pages=args.index_pages
        )
        config = SimulatorConfig(
            port=0,
            rpm=0,
            tpm=0,
            corpus=(backlog.corpus,),
            latency_ms=args.latency_ms,
            latency_per_1k_tokens_ms=args.latency_per_1k_tokens_ms,
            latency_sigma=0.3,
        )
        with simulator_process(config) as sim_url:
            for n in range(args.repeat):
                samples.append(await one_start(backlog, sim_url, args, work_dir, n))
    return samples, helps, imports


def report(
    samples: list[Sample], helps: list[float], imports: list[float], args: argparse.Namespace
) -> None:
    out = Console() if sys.stdout.isatty() else Console(width=150)
    table = Table(
        title=f"ocr-pool start, {args.workers} workers ({os.cpu_count()} cores), "
        f"{len(samples)} runs"
    )
    rows: list[tuple[str, list[float], str]] = [
        ("ocr-pool --help", helps, "s"),
        (f"python -c '{IMPORTS}' (reference)", imports, "s"),
        ("start → ready (log line)", [s.ready for s in samples if s.ready is not None], "s"),
        ("start → first claim (ocr_started_at)", [s.first_claim for s in samples], "s"),
        ("start → first claim seen by the poll", [s.detected for s in samples], "s"),
        ("RSS at the first claim", [s.rss_warm_mb for s in samples], "MB"),
        (
            f"RSS while working ({args.work_seconds:g} s, highest)",
            [s.rss_working_mb for s in samples],
            "MB",
        ),
        ("VmHWM (peak RSS) before SIGTERM", [s.hwm_mb for s in samples], "MB"),
        ("jobs in progress at once (highest)", [float(s.busy_max) for s in samples], ""),
        ("SIGTERM → exit (jobs in hand finish)", [s.stop_seconds for s in samples], "s"),
    ]
    table.add_column("measure")
    table.add_column("median", justify="right")
    table.add_column("runs", justify="right")
    for name, values, unit in rows:
        if not values:
            table.add_row(name, "?", "")
            continue
        digits = 0 if unit in ("MB", "") else 2
        table.add_row(
            name,
            f"{statistics.median(values):.{digits}f} {unit}".rstrip(),
            ", ".join(f"{v:.{digits}f}" for v in values),
        )
    out.print(table)
    codes = {s.exit_code for s in samples}
    if codes != {0}:
        out.print(f"exit codes after SIGTERM: {sorted(codes)}", style="yellow")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment of the pool (repeatable), e.g. MALLOC_ARENA_MAX=1",
    )
    parser.add_argument("--workers", type=int, default=32, help="OCR_WORKER_POOL_SIZE")
    parser.add_argument("--work-seconds", type=float, default=10.0)
    parser.add_argument("--index", type=int, default=64, help="index documents queued")
    parser.add_argument("--acte", type=int, default=192, help="acte documents queued")
    parser.add_argument("--index-pages", type=int, default=8)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--latency-per-1k-tokens-ms", type=float, default=100.0)
    parser.add_argument("--timeout", type=float, default=120.0, help="per wait, seconds")
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args()
    report(*anyio.run(main, arguments), arguments)
