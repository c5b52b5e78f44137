"""Does a fleet of pools keep to a quota Gemini counts by *arrival*? Before and after, in
the same run, judged by a strict stand-in's own count of arrivals, never by the limiter.

    .venv/bin/python -m benchmarks.limiter_arrivals [--windows 60 10] [--pools 2 4]
      [--releases 1b66f58 wire answer] [--span 3] [--latency 1 4] [--skip-recovery]
      [--skip-sdk] [--redis-url redis://127.0.0.1:6379/0]

1. Every (window, pools, release) runs at once, each against its own stand-in
   (`tests.support.quota_server.ArrivalQuota`: 30 requests per window by arrival, 429
   beyond, answers after 1-4 s of "thinking"), its pools separate processes
   (`tests.support.limiter_pool`, 8 workers each, a request built for 0.05-0.5 s after
   its grant), a standing backlog for `span` windows. Printed: calls, 429s, quota used
   (accepted arrivals over the span / 30 per window) and the fullest window the stand-in
   saw. Releases: `1b66f58` (the previous one: stamped at the grant), `wire` (this one:
   stamped at the send + margin), `answer` (this one without `wire()`: stamped at the
   answer, the design that costs no round trip and no client change).
2. A 429 injected once, 1.5 windows in (10 s window, 2 pools): the time until the stand-in
   counts >= 95 % of the limit in the trailing window again.
3. The wire margin: from `wire()` to the stand-in's arrival, for the aiohttp pools above and
   for the real client (google-genai) with bodies of 0, 0.3 and 5 MB.
Figures, not pass/fail.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory

import anyio

from benchmarks.support import drop_prefix
from tests.support.quota_server import ArrivalQuota, serve_arrival_quota

LIMIT = 30


@dataclass(frozen=True)
class Scenario:
    window: float
    pools: int
    release: str
    span: int
    """windows of standing backlog"""
    inject: bool = False

    @property
    def name(self) -> str:
        return f"{self.window:g}s-{self.pools}p-{self.release}{'-429' if self.inject else ''}"


@dataclass
class Outcome:
    scenario: Scenario
    quota: ArrivalQuota
    start: float
    calls: list[dict[str, object]]


async def run_scenario(
    scenario: Scenario, redis_url: str, workdir: Path, start: float, latency: tuple[float, float]
) -> Outcome:
    prefix = f"bench:arrivals:{uuid.uuid4().hex[:8]}:"
    inject_at = start + 1.5 * scenario.window if scenario.inject else None
    quota = ArrivalQuota(LIMIT, scenario.window, latency=latency, inject_at=inject_at)
    seconds = scenario.span * scenario.window
    outs = [workdir / f"{scenario.name}-{n}.jsonl" for n in range(scenario.pools)]
    async with serve_arrival_quota(quota):
        options = {
            "--redis-url": redis_url,
            "--prefix": prefix,
            "--base-url": quota.base_url,
            "--release": scenario.release,
            "--seconds": str(seconds),
            "--window": str(scenario.window),
            "--rpm": str(LIMIT),
            "--start-at": str(start),
        }
        flags = [part for pair in options.items() for part in pair]
        commands = [
            [sys.executable, "-m", "tests.support.limiter_pool", *flags, "--seed", str(n)]
            for n in range(scenario.pools)
        ]
        commands = [
            [*command, "--out", str(out)] for command, out in zip(commands, outs, strict=True)
        ]
        async with anyio.create_task_group() as tg:
            for command in commands:
                tg.start_soon(anyio.run_process, command)
    await drop_prefix(prefix, redis_url)
    calls = [json.loads(line) for out in outs for line in out.read_text().splitlines()]
    return Outcome(scenario, quota, start, calls)


def used_share(outcome: Outcome) -> float:
    """Accepted arrivals over the span, per window, as a share of the limit."""
    end = outcome.start + outcome.scenario.span * outcome.scenario.window
    inside = [t for t in outcome.quota.accepted() if outcome.start <= t < end]
    return len(inside) / (LIMIT * outcome.scenario.span)


def steady_share(outcome: Outcome) -> float:
    """The window over the mean time a slot takes to come round (from the k-th accepted
    arrival to the (k + limit)-th): the share of the quota a long backlog would use,
    whatever the alignment of the run with the windows."""
    times = outcome.quota.accepted()
    cycles = [times[i + LIMIT] - times[i] for i in range(len(times) - LIMIT)]
    return outcome.scenario.window / statistics.fmean(cycles) if cycles else 0.0


def recovery_seconds(outcome: Outcome) -> float | None:
    """From the injected 429 until the stand-in counts >= 95 % of the limit in the
    trailing window again (None if it never did)."""
    injected = outcome.quota.injected
    if injected is None:
        return None
    times = outcome.quota.accepted()
    need = -(-95 * LIMIT // 100)
    window = outcome.scenario.window
    start = 0
    for end, t in enumerate(times):
        while times[start] < t - window:
            start += 1
        if t > injected + 0.5 and end - start + 1 >= need:
            return t - injected
    return None


def wire_gaps(outcomes: list[Outcome]) -> list[float]:
    """Milliseconds from the pool's send mark to the stand-in's arrival, per call."""
    gaps: list[float] = []
    for outcome in outcomes:
        if outcome.scenario.release != "wire":
            continue
        sent = {str(c["call"]): float(c["sent"]) for c in outcome.calls}  # type: ignore[arg-type]
        gaps += [(a.at - sent[a.call]) * 1000 for a in outcome.quota.arrivals if a.call in sent]
    return gaps


def quantiles(values: list[float]) -> str:
    if len(values) < 2:
        return "n/a"
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return f"p50 {cuts[49]:.2f}, p99 {cuts[98]:.2f}, max {max(values):.2f} ms ({len(values)})"


async def sdk_margins(sizes: list[int]) -> list[tuple[int, list[float]]]:
    """`wire()` to arrival through the real client (google-genai over aiohttp)."""
    from redis.asyncio import Redis

    from ratelimit import GeminiLimiter, LimiterConfig, Quota
    from ratelimit.limiter import Reservation
    from workers.gemini import GeminiClient, GeminiRequest, Image, Text

    marks: list[float] = []

    class Marking(GeminiLimiter):
        async def wire(self, reservation: Reservation, *, body_bytes: int = 0) -> None:
            await super().wire(reservation, body_bytes=body_bytes)
            marks.append(time.time())

    prefix = f"bench:sdk:{uuid.uuid4().hex[:8]}:"
    redis = Redis.from_url("redis://127.0.0.1:6379/0")
    out: list[tuple[int, list[float]]] = []
    quota = ArrivalQuota(10**6, 60.0)
    async with serve_arrival_quota(quota):
        limiter = Marking(redis, LimiterConfig(Quota(10**6, 10**12)), prefix=prefix)
        client = GeminiClient(limiter, api_key="k", base_url=quota.base_url)
        for size in sizes:
            gaps: list[float] = []
            part = Image(b"\x89PNG" + bytes(size), 1000, 1000) if size else Text("bonjour")
            for _ in range(30):
                marks.clear()
                before = len(quota.arrivals)
                await client.generate(GeminiRequest(model="sim", parts=(part,)))
                gaps.append((quota.arrivals[before].at - marks[0]) * 1000)
            out.append((size, gaps))
        await client.aclose()
        await limiter.aclose()
    await redis.aclose()
    await drop_prefix(prefix)
    return out


async def main(args: argparse.Namespace) -> None:
    latency = (args.latency[0], args.latency[1])
    scenarios = [
        Scenario(window, pools, release, args.span)
        for window in args.windows
        for pools in args.pools
        for release in args.releases
    ]
    if not args.skip_recovery:
        scenarios += [
            Scenario(10.0, 2, release, args.recovery_span, inject=True)
            for release in args.releases
            if release != "answer"
        ]
    longest = max(s.span * s.window for s in scenarios)
    print(
        f"{len(scenarios)} scenarios at once, the longest {longest:g} s; stand-in: {LIMIT} "
        f"requests per window by arrival, answers after {latency[0]:g}-{latency[1]:g} s; "
        f"pools: 8 workers, request built 0.05-0.5 s after its grant",
        flush=True,
    )
    outcomes: list[Outcome] = []
    with TemporaryDirectory() as tmp:
        processes = sum(s.pools for s in scenarios)
        start = time.time() + 5 + processes  # every process imported and connected by then

        async def one(scenario: Scenario) -> None:
            outcomes.append(await run_scenario(scenario, args.redis_url, Path(tmp), start, latency))

        async with anyio.create_task_group() as tg:
            for scenario in scenarios:
                tg.start_soon(one, scenario)

    order = {s: n for n, s in enumerate(scenarios)}
    outcomes.sort(key=lambda o: order[o.scenario])
    print("\n1. Standing backlog against the strict stand-in (30 per window by arrival)")
    print(
        f"{'window':>6} {'pools':>5} {'release':<8} {'calls':>6} {'429s':>5} {'used':>7} "
        f"{'steady':>7} {'fullest':>8}"
    )
    for o in outcomes:
        if o.scenario.inject:
            continue
        s = o.scenario
        errors = sum(1 for a in o.quota.arrivals if a.status == 429)
        print(
            f"{s.window:>5g}s {s.pools:>5} {s.release:<8} {len(o.quota.arrivals):>6} "
            f"{errors:>5} {used_share(o):>6.1%} {steady_share(o):>6.1%} "
            f"{o.quota.fullest_window():>5}/{LIMIT}"
        )
    if not args.skip_recovery:
        print("\n2. One 429 injected 15 s in (10 s window, 2 pools, RetryInfo 2 s)")
        print(f"{'release':<8} {'back to >= 95 %':>16} {'other 429s':>10} {'used':>7}")
        for o in outcomes:
            if not o.scenario.inject:
                continue
            back = recovery_seconds(o)
            others = sum(1 for a in o.quota.arrivals if a.status == 429) - 1
            shown = f"{back:.1f} s" if back is not None else "never"
            print(f"{o.scenario.release:<8} {shown:>16} {others:>10} {used_share(o):>6.1%}")
    print("\n3. Wire margin: from wire() to the stand-in's arrival")
    print(f"aiohttp pools above: {quantiles(wire_gaps(outcomes))}")
    if not args.skip_sdk:
        for size, gaps in await sdk_margins([0, 300_000, 5_000_000]):
            print(f"google-genai client, {size / 1e6:g} MB image: {quantiles(gaps)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=float, nargs="+", default=[60.0, 10.0])
    parser.add_argument("--pools", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--releases", nargs="+", default=["1b66f58", "wire", "answer"])
    parser.add_argument("--span", type=int, default=3, help="windows of backlog per scenario")
    parser.add_argument("--recovery-span", type=int, default=9)
    parser.add_argument("--latency", type=float, nargs=2, default=[1.0, 4.0])
    parser.add_argument("--skip-recovery", action="store_true")
    parser.add_argument("--skip-sdk", action="store_true")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    anyio.run(main, parser.parse_args())
