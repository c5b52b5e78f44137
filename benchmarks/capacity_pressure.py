"""A pool on index documents while other programs load the host's CPU: the capacity
ledger's fixed costs and stopping pressure guard (before) against measured costs and the
guard's progress rule (now), in the same run, under the same load.

    .venv/bin/python -m benchmarks.capacity_pressure [--seconds 60] [--warm-up 90]
      [--workers 4] [--load 0.9] [--documents 400] [--pages 3] [--latency-ms 1000]

Busy processes (one per core, busy `--load` of every 100 ms) stand for the other programs.
The Gemini simulator runs in a process of its own. One pool of `--workers` workers on a
queue of index documents only, in the benchmark's process (its CPU time is what the
meter measures), with the host's own size (psutil) in the ledger. Phases, `--seconds`
each, one fresh database each, one Redis prefix for the run (so the fleet's measured
cost carries from phase to phase, as it does in production):

    warm-up    no load, measured costs: the fleet measures what an index job uses
               (`--warm-up` seconds)
    1 fixed    load, reserve 20 % (the default): fixed costs, guard stops every lease
    1 measured load, reserve 20 %: measured costs, the pool's only lease is never stopped
    2 fixed    load, reserve 0 % (the guard never presses: costs alone): fixed costs
    2 measured load, reserve 0 %: measured costs

Printed per phase: documents done per minute, most index jobs at once, share of the
phase with no job going, host CPU use, what an index lease was charged. Figures, not
pass/fail.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import anyio
import psutil

from benchmarks.support import (
    Backlog,
    bench_settings,
    drop_prefix,
    enqueue,
    simulator_process,
    write_backlog,
)
from capacity import CapacityLedger
from domain import DocumentSource
from gemini_simulator import SimulatorConfig
from pool.manager import PoolManager
from pool.wiring.configs import host_config
from pool.wiring.runtime import open_runtime
from tests.support.databases import temporary_database_async
from workers.worker import JobReport, Outcome

INDEX = DocumentSource.INDEX

BUSY = """
import sys, time
busy = float(sys.argv[1]) * 0.1
while True:
    end = time.perf_counter() + busy
    while time.perf_counter() < end:
        pass
    time.sleep(0.1 - busy)
"""


@contextmanager
def cpu_load(share: float) -> Iterator[int]:
    """One busy process per core, each busy `share` of every 100 ms."""
    cores = psutil.cpu_count(logical=True) or 1
    procs = [subprocess.Popen([sys.executable, "-c", BUSY, str(share)]) for _ in range(cores)]
    try:
        yield cores
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


@dataclass(frozen=True)
class Phase:
    name: str
    measured: bool
    reserve_cpu: float
    load: bool


@dataclass
class Result:
    phase: Phase
    seconds: float
    done: int
    max_index: int
    idle_share: float
    host_cpu: float
    charged_start: float
    charged_end: float
    measured_end: float | None

    @property
    def per_minute(self) -> float:
        return 60 * self.done / self.seconds


async def run_phase(
    phase: Phase, n: int, backlog: Backlog, sim_url: str, prefix: str, args: argparse.Namespace
) -> Result:
    finished: list[float] = []

    def on_report(report: JobReport) -> None:
        if report.outcome is Outcome.COMPLETED:
            finished.append(time.monotonic())

    async with temporary_database_async() as url:
        settings = bench_settings(
            url,
            prefix,
            sim_url,
            backlog.corpus.parent,
            ocr_server_id=f"bench-pressure-{n}",
            ocr_worker_pool_size=args.workers,
            ocr_min_index_workers=0,
            ocr_min_acte_workers=0,
            ocr_result_cache=False,
            ocr_render_dpi=200,
            ocr_rebalance_interval_ms=2000,
            ocr_capacity_lease_seconds=args.capacity_lease,
            ocr_shutdown_grace_seconds=120,
            server_max_cpu=None,
            server_max_ram=None,
            server_reserve_cpu_percent=phase.reserve_cpu,
            server_reserve_ram_percent=20,
        )
        async with open_runtime(settings) as runtime:
            # Before: fixed costs and a guard that stops every lease; now: the defaults.
            runtime.capacity = CapacityLedger.for_host(
                runtime.redis,
                replace(
                    host_config(settings),
                    max_cpu=None,
                    max_ram=None,
                    reserve_cpu_percent=phase.reserve_cpu,
                    reserve_ram_percent=20,
                    prefix=prefix,
                    lease_seconds=args.capacity_lease,
                ),
                measure=phase.measured,
                guarantee_progress=phase.measured,
            )
            ledger = runtime.capacity
            await ledger.refresh_costs()
            charged_start = ledger.cost("index").cpu
            await enqueue(runtime, INDEX, backlog.index)
            manager = PoolManager(runtime)
            manager.add_report_hook(on_report)
            samples: list[int] = []
            async with anyio.create_task_group() as tg:
                tg.start_soon(manager.run)
                for _ in range(1200):  # the warm-up: at most a minute
                    if manager.ready:
                        break
                    await anyio.sleep(0.05)
                psutil.cpu_percent()
                started = time.monotonic()
                finished.clear()
                duration = args.warm_up if not phase.load else args.seconds
                while time.monotonic() - started < duration:
                    samples.append(
                        sum(
                            1
                            for w in manager.workers
                            if w.current is not None and w.current.source == INDEX
                        )
                    )
                    await anyio.sleep(0.05)
                seconds = time.monotonic() - started
                host_cpu = psutil.cpu_percent()
                done = sum(1 for t in finished if t - started <= seconds)
                manager.request_stop()
            charged_end = ledger.cost("index").cpu
            measured_end = ledger.measured.get("index")
    return Result(
        phase=phase,
        seconds=seconds,
        done=done,
        max_index=max(samples, default=0),
        idle_share=sum(1 for s in samples if s == 0) / max(1, len(samples)),
        host_cpu=host_cpu,
        charged_start=charged_start,
        charged_end=charged_end,
        measured_end=measured_end,
    )


PHASES = [
    Phase("warm-up: no load, measured", True, 0, False),
    Phase("1 load 90%, reserve 20%: fixed costs, guard stops all", False, 20, True),
    Phase("1 load 90%, reserve 20%: measured costs, progress rule", True, 20, True),
    Phase("2 load 90%, reserve 0%: fixed costs", False, 0, True),
    Phase("2 load 90%, reserve 0%: measured costs", True, 0, True),
]


async def main(args: argparse.Namespace) -> list[Result]:
    prefix = f"bench:pressure:{uuid.uuid4().hex[:8]}:"
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="ocr-bench-pressure-") as tmp:
        backlog = write_backlog(
            Path(tmp), args.documents, 0, index_pages=args.pages, distinct_pages=12
        )
        config = SimulatorConfig(
            port=0,
            latency_ms=args.latency_ms,
            latency_per_1k_tokens_ms=100,
            latency_sigma=0.2,
            corpus=(backlog.corpus,),
        )
        try:
            with simulator_process(config) as sim_url:
                for n, phase in enumerate(PHASES):
                    if phase.load:
                        with cpu_load(args.load):
                            await anyio.sleep(2)  # the guard's reading catches up
                            result = await run_phase(phase, n, backlog, sim_url, prefix, args)
                    else:
                        result = await run_phase(phase, n, backlog, sim_url, prefix, args)
                    results.append(result)
                    print(line(result), flush=True)
        finally:
            await drop_prefix(prefix)
    return results


def line(r: Result) -> str:
    measured = "-" if r.measured_end is None else f"{r.measured_end:.3f}"
    return (
        f"| {r.phase.name} | {r.per_minute:.1f} | {r.max_index} | {100 * r.idle_share:.0f} % "
        f"| {r.host_cpu:.0f} % | {r.charged_start:g} → {r.charged_end:g} | {measured} |"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="measured per phase")
    parser.add_argument("--warm-up", type=float, default=90.0, help="the no-load phase")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--load", type=float, default=0.9, help="busy share of each core")
    parser.add_argument("--documents", type=int, default=400)
    parser.add_argument("--pages", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=1000.0)
    parser.add_argument("--capacity-lease", type=float, default=6.0)
    return parser.parse_args(argv)


def run(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    print(
        f"host: {psutil.cpu_count(logical=True)} vCPU, {psutil.virtual_memory().total / 2**30:.1f}"
        f" GB; {args.workers} workers, index documents of {args.pages} pages at 200 DPI; "
        f"simulator {args.latency_ms:g} ms + 100 ms per 1k tokens; external load "
        f"{100 * args.load:.0f} % of every core; {args.seconds:g} s per phase "
        f"({args.warm_up:g} s warm-up); capacity lease "
        f"{args.capacity_lease:g} s (costs refreshed every {args.capacity_lease / 2:g} s)"
    )
    print(
        "| phase | documents/min | most index jobs at once | time with no job | host CPU "
        "| index lease charged (vCPU, start → end) | measured vCPU per held second |"
    )
    print("|---|---:|---:|---:|---:|---|---:|")
    anyio.run(main, args)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    run()
