"""Makespan of one backlog under four ways of dividing the pool: ours (`allocate`, work
stealing on), ours without stealing, a static 50/50 split and the count-proportional
policy of the system being replaced (both without stealing).

    .venv/bin/python -m benchmarks.pool_makespan [--index 200] [--acte 600] [--workers 8]
      [--index-pages 8] [--latency-ms 30] [--latency-per-1k-tokens-ms 170]
      [--rebalance-ms 1000] [--policies ours,static] [--decisions]

Each policy gets a fresh database and Redis prefix, the same PDFs, the result cache off,
the same simulator (reset before each run, so its seeded latency draws start again). An
index document is `--index-pages` pages read one at a time (one Gemini call of about
1,800 input tokens each: the page image and the prompt), an acte two calls (extract,
boost: about 1,440 input tokens together). The simulator's latency is mostly per token,
so with the defaults an index job takes about 8x an acte job; the run prints the ratio
it measured. The latency is scaled down so that all four runs take under ten minutes,
but kept well above the pool's own CPU time per call (about 20-25 ms on a 2-core
machine), which would otherwise set the pace instead of the allocation. The simulator
runs in a process of its own. Before the measured runs, a small unmeasured run warms up
the simulator's page recognition and this process's lazy imports.

Makespan: from the first claim to the last job completed (the pool runs with
`until_empty`; its stop detection, a couple of seconds later, is not counted). Ideal:
total measured work / workers (mean service time per type, from the run's own job
reports, x jobs), and at least the longest job. Lost capacity (workers x makespan -
work) is split into the ramp (before all workers first hold a job), the middle and the
tail (after the last moment all workers held a job). Figures, not pass/fail; the goal
is ours within 10 % of ideal.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import asyncpg
from rich.console import Console
from rich.table import Table

from benchmarks.support import (
    Backlog,
    bench_settings,
    drop_prefix,
    enqueue,
    simulator_calls,
    simulator_process,
    simulator_reset,
    write_backlog,
)
from domain import DocumentSource
from gemini_simulator import SimulatorConfig
from pool.allocation import (
    Allocation,
    AllocationRules,
    TypeDemand,
    allocate,
    count_proportional,
    makespan_lower_bound,
    static_split,
)
from pool.manager import Policy, PoolManager
from pool.wiring.runtime import open_runtime
from tests.support.databases import temporary_database_async
from tests.support.sql import Q
from workers.worker import JobReport, Outcome

INDEX, ACTE = DocumentSource.INDEX, DocumentSource.ACTE
GOAL_PERCENT = 10.0


def _static(
    rules: AllocationRules, index: TypeDemand, acte: TypeDemand, current: Allocation | None
) -> Allocation:
    return static_split(rules)


def _counts(
    rules: AllocationRules, index: TypeDemand, acte: TypeDemand, current: Allocation | None
) -> Allocation:
    return count_proportional(rules, index.waiting, acte.waiting)


@dataclass(frozen=True)
class PolicySpec:
    key: str
    name: str
    policy: Policy
    steal: bool


POLICIES = (
    PolicySpec("ours", "ours (allocate + stealing)", allocate, True),
    PolicySpec("ours-nosteal", "ours, no stealing", allocate, False),
    PolicySpec("static", "static 50/50, no stealing", _static, False),
    PolicySpec("counts", "count-proportional (old), no stealing", _counts, False),
)


@dataclass(frozen=True)
class Decision:
    """One rebalance: what the policy saw and decided."""

    at: float
    index_waiting: int
    acte_waiting: int
    index_seconds: float
    acte_seconds: float
    index_workers: int
    acte_workers: int


def recording(policy: Policy, log: list[Decision]) -> Policy:
    """`policy`, appending each decision to `log`."""

    def decide(
        rules: AllocationRules, index: TypeDemand, acte: TypeDemand, current: Allocation | None
    ) -> Allocation:
        decided = policy(rules, index, acte, current)
        log.append(
            Decision(
                time.time(),
                index.waiting,
                acte.waiting,
                index.service_seconds,
                acte.service_seconds,
                decided.index,
                decided.acte,
            )
        )
        return decided

    return decide


@dataclass(frozen=True)
class Job:
    source: DocumentSource
    claimed: float
    done: float
    calls: int
    tokens: int

    @property
    def seconds(self) -> float:
        return self.done - self.claimed


@dataclass(frozen=True)
class IdleSplit:
    """Idle worker-seconds between the first claim and the last completion."""

    ramp: float
    middle: float
    tail: float


def idle_split(jobs: list[Job], workers: int) -> IdleSplit:
    """Split `workers x makespan - busy` into ramp / middle / tail (see the module doc);
    a run that never had every worker busy counts all its idle time as tail."""
    start = min(j.claimed for j in jobs)
    end = max(j.done for j in jobs)
    # At equal times a completion sorts before a claim (-1 < 1).
    events = sorted([(j.claimed, 1) for j in jobs] + [(j.done, -1) for j in jobs])
    segments: list[tuple[float, float, int]] = []
    busy, previous = 0, start
    for at, delta in events:
        if at > previous:
            segments.append((previous, at, busy))
        busy += delta
        previous = at
    full = [(a, b) for a, b, n in segments if n >= workers]
    ramp_end = full[0][0] if full else start
    tail_start = full[-1][1] if full else start
    zones = [0.0, 0.0, 0.0]
    for a, b, n in segments:
        for zone, (lo, hi) in enumerate(
            ((start, ramp_end), (ramp_end, tail_start), (tail_start, end))
        ):
            overlap = min(b, hi) - max(a, lo)
            if overlap > 0:
                zones[zone] += overlap * max(0, workers - n)
    return IdleSplit(*zones)


@dataclass
class RunResult:
    spec: PolicySpec
    jobs: list[Job]
    other_outcomes: dict[str, int]
    decisions: list[Decision]
    workers: int
    n_index: int
    n_acte: int
    manager_first_claim: float | None
    gemini_calls: int
    unknown_pages: int
    wall_seconds: float
    load_average: float
    status_counts: dict[int, int] = field(default_factory=dict)

    @property
    def first_claim(self) -> float:
        return min(j.claimed for j in self.jobs)

    @property
    def last_done(self) -> float:
        return max(j.done for j in self.jobs)

    @property
    def makespan(self) -> float:
        return self.last_done - self.first_claim

    def mean(self, source: DocumentSource) -> float:
        return statistics.fmean(j.seconds for j in self.jobs if j.source == source)

    def last_of(self, source: DocumentSource) -> float:
        return max(j.done for j in self.jobs if j.source == source) - self.first_claim

    @property
    def work(self) -> float:
        return sum(j.seconds for j in self.jobs)

    @property
    def ideal(self) -> float:
        bound = makespan_lower_bound(
            TypeDemand(self.n_index, self.mean(INDEX)),
            TypeDemand(self.n_acte, self.mean(ACTE)),
            self.workers,
        )
        return max(bound, max(j.seconds for j in self.jobs))

    @property
    def over_ideal_percent(self) -> float:
        return 100.0 * (self.makespan / self.ideal - 1.0)

    @property
    def jobs_per_minute(self) -> float:
        return 60.0 * len(self.jobs) / self.makespan


async def status_counts(url: str) -> dict[int, int]:
    conn = await asyncpg.connect(url)
    try:
        return {r["status_id"]: r["n"] for r in await conn.fetch(Q["status_counts"])}
    finally:
        await conn.close()


async def run_policy(
    spec: PolicySpec, backlog: Backlog, sim_url: str, args: argparse.Namespace
) -> RunResult:
    prefix = f"bench:makespan:{uuid.uuid4().hex[:8]}:"
    decisions: list[Decision] = []
    jobs: list[Job] = []
    others: dict[str, int] = {}

    def on_report(report: JobReport) -> None:
        done = time.time()
        if report.outcome is Outcome.COMPLETED:
            jobs.append(
                Job(
                    report.source,
                    done - report.seconds,
                    done,
                    report.gemini_calls,
                    report.input_tokens,
                )
            )
        else:
            others[report.outcome.value] = others.get(report.outcome.value, 0) + 1

    await simulator_reset(sim_url)
    load = os.getloadavg()[0]
    started = time.monotonic()
    try:
        async with temporary_database_async() as url:
            settings = bench_settings(
                url,
                prefix,
                sim_url,
                backlog.corpus.parent,
                ocr_worker_pool_size=args.workers,
                ocr_work_stealing=spec.steal,
                ocr_rebalance_interval_ms=args.rebalance_ms,
                ocr_result_cache=False,
                ocr_index_page_concurrency=args.page_concurrency,
            )
            async with open_runtime(settings) as runtime:
                await enqueue(runtime, INDEX, backlog.index)
                await enqueue(runtime, ACTE, backlog.acte)
                manager = PoolManager(
                    runtime, until_empty=True, policy=recording(spec.policy, decisions)
                )
                manager.add_report_hook(on_report)
                with anyio.fail_after(args.timeout):
                    await manager.run()
            counts = await status_counts(url)
    finally:
        await drop_prefix(prefix)
    calls, unknown = await simulator_calls(sim_url)
    return RunResult(
        spec=spec,
        jobs=jobs,
        other_outcomes=others,
        decisions=decisions,
        workers=args.workers,
        n_index=len(backlog.index),
        n_acte=len(backlog.acte),
        manager_first_claim=manager.first_claim_at,
        gemini_calls=calls,
        unknown_pages=unknown,
        wall_seconds=time.monotonic() - started,
        load_average=load,
        status_counts=counts,
    )


async def warm_up(directory: Path, sim_url: str, args: argparse.Namespace) -> None:
    """One index document with every distinct page and a few actes, not measured."""
    pages = write_backlog(
        directory,
        1,
        4,
        index_pages=args.distinct_pages,
        distinct_pages=args.distinct_pages,
        seed=args.seed,
    )
    # write_backlog draws pages at random; the corpus file itself has every page once.
    warm = Backlog([pages.corpus], pages.acte, pages.corpus)  # all under `directory`
    spec = PolicySpec("warm-up", "warm-up", allocate, True)
    ns = argparse.Namespace(**{**vars(args), "workers": 2})
    await run_policy(spec, warm, sim_url, ns)


async def main(args: argparse.Namespace) -> list[RunResult]:
    wanted = args.policies.split(",") if args.policies else [p.key for p in POLICIES]
    unknown = set(wanted) - {p.key for p in POLICIES}
    if unknown:
        raise SystemExit(f"unknown policy {', '.join(sorted(unknown))}")
    specs = [p for p in POLICIES if p.key in wanted]
    out = console()
    with tempfile.TemporaryDirectory(prefix="pool-makespan-") as tmp:
        backlog = write_backlog(
            Path(tmp) / "backlog",
            args.index,
            args.acte,
            index_pages=args.index_pages,
            distinct_pages=args.distinct_pages,
            seed=args.seed,
        )
        config = SimulatorConfig(
            port=0,
            rpm=0,
            tpm=0,
            corpus=(backlog.corpus,),
            latency_ms=args.latency_ms,
            latency_per_1k_tokens_ms=args.latency_per_1k_tokens_ms,
            latency_sigma=args.latency_sigma,
            seed=args.seed,
        )
        with simulator_process(config) as sim_url:
            await warm_up(Path(tmp) / "warm", sim_url, args)
            results = []
            for spec in specs:
                out.print(f"running {spec.name} ...", style="dim")
                result = await run_policy(spec, backlog, sim_url, args)
                out.print(
                    f"  makespan {result.makespan:.1f} s, ideal {result.ideal:.1f} s "
                    f"({result.wall_seconds:.0f} s wall)",
                    style="dim",
                )
                results.append(result)
    return results


def console() -> Console:
    """Wide enough for the tables when the output is not a terminal (a log, a pipe)."""
    return Console() if sys.stdout.isatty() else Console(width=150)


def report(results: list[RunResult], args: argparse.Namespace) -> None:
    out = console()
    title = (
        f"makespan of {args.index} index ({args.index_pages} pages, {args.page_concurrency} "
        f"at a time) + {args.acte} acte documents, {args.workers} workers, rebalance every "
        f"{args.rebalance_ms} ms; simulator {args.latency_ms:g} ms + "
        f"{args.latency_per_1k_tokens_ms:g} ms/1k input tokens, sigma {args.latency_sigma:g}"
    )
    table = Table(title=title)
    for column in ("policy", "makespan s", "ideal s", "vs ideal", "jobs/min"):
        table.add_column(column, justify="left" if column == "policy" else "right")
    for r in results:
        table.add_row(
            r.spec.name,
            f"{r.makespan:.1f}",
            f"{r.ideal:.1f}",
            f"{r.over_ideal_percent:+.1f} %",
            f"{r.jobs_per_minute:.0f}",
        )
    out.print(table)

    detail = Table(
        title="per run: mean service time per job, when each type drained (s after the first "
        "claim), lost capacity (idle worker-seconds / workers)"
    )
    columns = (
        "policy",
        "index s",
        "acte s",
        "ratio",
        "longest s",
        "index done",
        "acte done",
        "ramp",
        "middle",
        "tail",
        "load",
    )
    for column in columns:
        detail.add_column(column, justify="left" if column == "policy" else "right")
    for r in results:
        idle = idle_split(r.jobs, r.workers)
        detail.add_row(
            r.spec.name,
            f"{r.mean(INDEX):.2f}",
            f"{r.mean(ACTE):.3f}",
            f"{r.mean(INDEX) / r.mean(ACTE):.1f}x",
            f"{max(j.seconds for j in r.jobs):.2f}",
            f"{r.last_of(INDEX):.1f}",
            f"{r.last_of(ACTE):.1f}",
            f"{idle.ramp / r.workers:.1f}",
            f"{idle.middle / r.workers:.1f}",
            f"{idle.tail / r.workers:.1f}",
            f"{r.load_average:.1f}",
        )
    out.print(detail)
    out.print(
        "makespan = ideal + ramp + middle + tail when the longest job does not bind "
        "(ramp: before every worker first held a job; tail: after the last moment they all "
        "did); load: the machine's 1-min load average when the run started."
    )
    for source in (INDEX, ACTE):
        jobs = [j for r in results for j in r.jobs if j.source == source]
        out.print(
            f"{source.value}: {statistics.fmean(j.calls for j in jobs):.1f} Gemini calls and "
            f"{statistics.fmean(j.tokens for j in jobs):,.0f} input tokens per job (all runs)"
        )
    for r in results:
        problems = []
        if r.other_outcomes:
            problems.append(f"outcomes other than completed: {r.other_outcomes}")
        expected = {5: r.n_index + r.n_acte}
        if r.status_counts != expected:
            problems.append(f"queue ended as {r.status_counts}, expected {expected}")
        if len(r.jobs) != r.n_index + r.n_acte:
            problems.append(f"{len(r.jobs)} completions for {r.n_index + r.n_acte} jobs")
        calls = r.n_index * args.index_pages + 2 * r.n_acte
        if r.gemini_calls != calls:
            problems.append(f"the simulator answered {r.gemini_calls} calls, expected {calls}")
        if r.unknown_pages:
            problems.append(f"{r.unknown_pages} page images the simulator did not recognise")
        if r.manager_first_claim is not None:
            lag = r.manager_first_claim - r.first_claim
            if abs(lag) > 0.5:
                problems.append(
                    f"manager.first_claim_at is {lag:+.2f} s after the first claim "
                    "(it is stamped by the 2-s assignment publisher)"
                )
        for problem in problems:
            out.print(f"{r.spec.name}: {problem}", style="yellow")
    if args.decisions:
        for r in results:
            show_decisions(out, r)
    ours = next((r for r in results if r.spec.key == "ours"), None)
    if ours is not None:
        verdict = "met" if ours.over_ideal_percent <= GOAL_PERCENT else "NOT met"
        out.print(
            f"goal: ours within {GOAL_PERCENT:.0f} % of ideal: {verdict} "
            f"({ours.over_ideal_percent:+.1f} %)"
        )


def show_decisions(out: Console, r: RunResult) -> None:
    """The splits a run went through (only the rebalances that changed it)."""
    table = Table(title=f"{r.spec.name}: splits over time (from the first claim)")
    for column in ("t s", "waiting index", "waiting acte", "index s", "acte s", "split"):
        table.add_column(column, justify="right")
    last: tuple[int, int] | None = None
    for d in r.decisions:
        split = (d.index_workers, d.acte_workers)
        if split == last:
            continue
        last = split
        table.add_row(
            f"{d.at - r.first_claim:.1f}",
            str(d.index_waiting),
            str(d.acte_waiting),
            f"{d.index_seconds:.2f}",
            f"{d.acte_seconds:.3f}",
            f"{split[0]} / {split[1]}",
        )
    out.print(table)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--index", type=int, default=200, help="index documents")
    parser.add_argument("--acte", type=int, default=600, help="acte documents")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--index-pages", type=int, default=8, help="pages per index document")
    parser.add_argument(
        "--page-concurrency", type=int, default=1, help="OCR_INDEX_PAGE_CONCURRENCY"
    )
    parser.add_argument(
        "--distinct-pages", type=int, default=24, help="distinct index pages in the backlog"
    )
    parser.add_argument("--latency-ms", type=float, default=30.0)
    parser.add_argument("--latency-per-1k-tokens-ms", type=float, default=170.0)
    parser.add_argument("--latency-sigma", type=float, default=0.3)
    parser.add_argument("--rebalance-ms", type=int, default=1000)
    parser.add_argument(
        "--policies",
        default="",
        help="comma-separated subset of " + ",".join(p.key for p in POLICIES),
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=900.0, help="per run, seconds")
    parser.add_argument(
        "--decisions", action="store_true", help="print each run's splits over time"
    )
    parser.add_argument("--verbose", action="store_true", help="the pool's INFO log on stderr")
    return parser.parse_args(argv)


def run(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    results = anyio.run(main, args)
    report(results, args)


if __name__ == "__main__":
    run()
