"""Supervision of worker tasks: the restart backoff and the readiness rule (pure), how
crashes show in the panel and /metrics, and a pool in-process (real Postgres, Redis and
the Gemini simulator) whose worker is made to crash mid-job: the job is given back,
the worker restarted, the pool back to its size; repeated crashes make it not ready
until they stop."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain import DocumentSource, Status
from gemini_simulator import SimulatorConfig, run_simulator
from pool.manager import PoolManager
from pool.status.metrics import render_metrics
from pool.status.panel import render_line
from pool.status.snapshot import PoolSnapshot, WorkerCrash
from pool.supervision import (
    NotReady,
    Readiness,
    SupervisionPolicy,
    next_streak,
    pool_readiness,
    recent_crashes,
    restart_delay,
)
from pool.wiring.runtime import Runtime, open_runtime
from store import ClaimedJob
from tests.integration.test_pool_manager import actes, pool_settings, rows
from tests.support.pool_process import wait_for
from tests.unit.test_metrics import parse, value
from tests.unit.test_panel import WALL, sample_snapshot, text_of
from workers.worker import JobReport, Outcome, QueueTarget, Worker

POLICY = SupervisionPolicy()


# -- the restart backoff ---------------------------------------------------------------------
def test_restart_delay_doubles_from_the_base_up_to_the_cap() -> None:
    ceilings = [restart_delay(POLICY, streak, 1.0) for streak in range(1, 10)]
    assert ceilings == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert restart_delay(POLICY, 1000, 1.0) == 60  # no overflow on a long streak


def test_restart_delay_is_jittered_between_half_the_ceiling_and_the_ceiling() -> None:
    assert restart_delay(POLICY, 3, 0.0) == 2.0
    assert restart_delay(POLICY, 3, 0.5) == 3.0
    assert restart_delay(POLICY, 3, 1.0) == 4.0
    assert restart_delay(POLICY, 0, 1.0) == 1.0  # a streak below 1 counts as the first


@given(
    streak=st.integers(min_value=1, max_value=10_000),
    jitter=st.floats(min_value=0, max_value=1),
    base=st.floats(min_value=0.01, max_value=10),
    cap_factor=st.floats(min_value=1, max_value=1000),
)
def test_restart_delay_bounds(streak: int, jitter: float, base: float, cap_factor: float) -> None:
    policy = SupervisionPolicy(restart_base_seconds=base, restart_cap_seconds=base * cap_factor)
    delay = restart_delay(policy, streak, jitter)
    ceiling = min(policy.restart_cap_seconds, base * 2 ** min(streak - 1, 62))
    assert ceiling / 2 <= delay <= ceiling <= policy.restart_cap_seconds
    assert delay >= base / 2  # never a tight loop
    assert restart_delay(policy, streak + 1, 1.0) >= restart_delay(policy, streak, 1.0)


def test_a_healthy_run_starts_the_streak_again() -> None:
    assert next_streak(POLICY, 0, 0.5) == 1
    assert next_streak(POLICY, 1, 0.5) == 2
    assert next_streak(POLICY, 5, 59.9) == 6
    assert next_streak(POLICY, 5, 60.0) == 1


def test_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="restart_base_seconds"):
        SupervisionPolicy(restart_base_seconds=0)
    with pytest.raises(ValueError, match="restart_base_seconds"):
        SupervisionPolicy(restart_base_seconds=10, restart_cap_seconds=5)
    with pytest.raises(ValueError, match="crash_limit"):
        SupervisionPolicy(crash_limit=0)
    with pytest.raises(ValueError, match="healthy_after"):
        SupervisionPolicy(healthy_after_seconds=-1)


# -- the readiness rule ----------------------------------------------------------------------
def ready(
    crash_times: list[float], now: float, *, warmed_up: bool = True, stopping: bool = False
) -> Readiness:
    return pool_readiness(
        POLICY, warmed_up=warmed_up, stopping=stopping, crash_times=crash_times, now=now
    )


def test_ready_once_warmed_up_and_not_while_stopping() -> None:
    assert ready([], 100.0).ready
    assert ready([], 100.0).reason == ""
    warming = ready([], 100.0, warmed_up=False)
    assert (warming.ready, warming.code, warming.reason) == (
        False,
        NotReady.WARMING_UP,
        "warming up",
    )
    stopping = ready([1, 2, 3], 4.0, stopping=True)
    assert (stopping.ready, stopping.code, stopping.reason) == (
        False,
        NotReady.STOPPING,
        "stopping",
    )


def test_three_crashes_in_five_minutes_make_the_pool_not_ready() -> None:
    assert ready([1000.0, 1100.0], 1200.0).ready
    crashing = ready([1000.0, 1100.0, 1200.0], 1200.0)
    assert not crashing.ready
    assert crashing.code is NotReady.WORKER_CRASHES
    assert crashing.reason == "3 worker crashes in the last 5 min (limit 3)"


def test_readiness_recovers_when_crashes_stop() -> None:
    crashes = [1000.0, 1100.0, 1200.0]
    assert not ready(crashes, 1299.9).ready
    assert ready(crashes, 1300.0).ready  # the first crash left the window
    assert recent_crashes(POLICY, crashes, 1300.0) == 2
    assert ready(crashes, 5000.0).ready


@given(
    gaps=st.lists(st.floats(min_value=0, max_value=400), min_size=0, max_size=12),
    later=st.floats(min_value=0, max_value=1000),
)
def test_not_ready_exactly_when_the_limit_is_reached_within_the_window(
    gaps: list[float], later: float
) -> None:
    times, at = [], 0.0
    for gap in gaps:
        at += gap
        times.append(at)
    now = at + later
    in_window = [t for t in times if now - t < POLICY.crash_window_seconds]
    assert ready(times, now).ready == (len(in_window) < POLICY.crash_limit)


# -- what operators see ----------------------------------------------------------------------
def crashed_snapshot(**changes: object) -> PoolSnapshot:
    values: dict[str, object] = {
        "ready": False,
        "ready_code": "worker_crashes",
        "ready_reason": "3 worker crashes in the last 5 min (limit 3)",
        "workers_down": 1,
        "worker_crashes": 4,
        "worker_restarts": 3,
        "last_crash": WorkerCrash("srv-1-pool-a-w01", "RuntimeError: boom\nat line 3", WALL + 1618),
    }
    values.update(changes)
    return sample_snapshot(**values)


def test_crashes_in_the_metrics() -> None:
    families = parse(render_metrics(crashed_snapshot()))
    assert families["ocr_pool_worker_restarts_total"].type == "counter"
    assert value(families, "ocr_pool_worker_restarts_total") == 3
    assert value(families, "ocr_pool_worker_crashes_total") == 4
    assert value(families, "ocr_pool_workers_down") == 1
    assert value(families, "ocr_pool_ready") == 0
    assert value(families, "ocr_pool_not_ready", reason="worker_crashes") == 1
    assert value(families, "ocr_pool_not_ready", reason="warming_up") == 0
    assert value(families, "ocr_pool_not_ready", reason="stopping") == 0
    healthy = parse(render_metrics(sample_snapshot()))
    assert value(healthy, "ocr_pool_worker_restarts_total") == 0
    assert value(healthy, "ocr_pool_workers_down") == 0
    assert {v for _, _, v in healthy["ocr_pool_not_ready"].samples} == {0}


def test_crashes_in_the_panel_and_the_log_line() -> None:
    text = text_of(crashed_snapshot())
    assert "not ready: 3 worker crashes in the last 5 min (limit 3)" in text.splitlines()[0]
    assert (
        "Worker crashes 4, restarted 3, down 1; last: srv-1-pool-a-w01, 12s ago: "
        "RuntimeError: boom at line 3"
    ) in text
    line = render_line(crashed_snapshot())
    assert "\n" not in line
    assert "| not ready (3 worker crashes in the last 5 min (limit 3)) | 4 workers |" in line
    assert "| worker crashes 4, restarted 3, down 1; last: srv-1-pool-a-w01, 12s ago:" in line
    # Nothing about crashes while none happened.
    assert "rash" not in text_of(sample_snapshot())
    assert "rash" not in render_line(sample_snapshot())


# -- a pool whose worker crashes -------------------------------------------------------------
class InjectedCrash(RuntimeError):
    pass


@dataclass
class CrashPlan:
    """Which workers crash, how many times, and how far into a job."""

    crashes: dict[str, int]
    """worker name suffix (e.g. "-w00") -> crashes still to come"""
    after_seconds: float = 0.2
    crashed_at: list[float] = field(default_factory=list)

    def take(self, name: str) -> bool:
        for suffix, left in self.crashes.items():
            if name.endswith(suffix) and left > 0:
                self.crashes[suffix] = left - 1
                return True
        return False


class CrashingWorker(Worker):
    """A worker whose task crashes with a job in hand while its plan says so: the crash
    comes from outside the job's own error handling, as a bug in the loop would."""

    plan: CrashPlan

    async def process(self, job: ClaimedJob, target: QueueTarget) -> JobReport:
        if not self.plan.take(self.name):
            return await super().process(job, target)
        async with anyio.create_task_group() as tg:
            tg.start_soon(functools.partial(Worker.process, self, job, target))
            await anyio.sleep(self.plan.after_seconds)
            self.plan.crashed_at.append(time.time())
            raise InjectedCrash(f"{self.name}: injected crash with {job.id} in hand")
        raise AssertionError("unreachable")


class ReturningWorker(Worker):
    """A worker whose loop ends at once, without a stop asked, while its plan says so."""

    plan: CrashPlan

    async def run(self) -> None:
        if self.plan.take(self.name):
            self.plan.crashed_at.append(time.time())
            return
        await super().run()


def crashing_factory(
    runtime: Runtime, plan: CrashPlan, kind: type[CrashingWorker | ReturningWorker] = CrashingWorker
) -> Callable[[str, DocumentSource, Callable[[JobReport], None]], Worker]:
    def make(name: str, mode: DocumentSource, on_report: Callable[[JobReport], None]) -> Worker:
        worker = kind(
            name,
            mode,
            runtime.targets,
            runtime.pipelines,
            runtime.worker_config,
            capacity=runtime.capacity,
            http=runtime.http,
            on_report=on_report,
        )
        worker.plan = plan
        return worker

    return make


@pytest.mark.anyio
@pytest.mark.slow
async def test_a_crashed_worker_is_restarted_and_repeated_crashes_mark_the_pool_not_ready(
    database: str, redis_prefix: str, tmp_path: Path
) -> None:
    paths = actes(tmp_path / "docs", 12)
    # Slow answers (2 calls of 0.4 s per acte): the crash comes with the job in hand.
    config = SimulatorConfig(port=0, latency_ms=400, latency_sigma=0, corpus=(tmp_path,))
    policy = SupervisionPolicy(
        restart_base_seconds=0.1,
        restart_cap_seconds=0.4,
        crash_limit=3,
        crash_window_seconds=6,
    )
    plan = CrashPlan({"-w00": 3})
    seen: dict[str, object] = {}
    async with run_simulator(config) as sim:
        settings = pool_settings(database, redis_prefix, sim.url, ocr_metrics_port=0)
        async with open_runtime(settings) as runtime:
            await runtime.targets[0].store.enqueue(
                DocumentSource.ACTE, [str(p) for p in paths], [0] * 12, 3
            )
            manager = PoolManager(
                runtime,
                pool_id="sup",
                supervision=policy,
                worker_factory=crashing_factory(runtime, plan),
            )
            crashing = manager.workers[0]
            async with anyio.create_task_group() as tg, aiohttp.ClientSession() as http:
                tg.start_soon(manager.run)

                async def get(path: str) -> tuple[int, str]:
                    assert manager.health_url is not None
                    async with http.get(f"{manager.health_url}{path}") as response:
                        return response.status, await response.text()

                async def not_ready_for_crashes() -> bool:
                    if manager.health_url is None:
                        return False
                    status, body = await get("/readyz")
                    if status == 503 and "worker crashes" in body:
                        seen["readyz"] = body.strip()
                        seen["metrics"] = parse((await get("/metrics"))[1])
                        return True
                    return False

                await wait_for(not_ready_for_crashes, within=60, every=0.05)

                async def healthy_again() -> bool:
                    status, _ = await get("/readyz")
                    return status == 200 and manager.worker_restarts == 3

                await wait_for(healthy_again, within=60)
                seen["metrics_after"] = parse((await get("/metrics"))[1])

                async def all_done() -> bool:
                    done = [
                        r
                        for r in await rows(database, "all_rows")
                        if r["status_id"] == Status.OCR_COMPLETE
                    ]
                    return len(done) == 12

                await wait_for(all_done, within=120)
                manager.request_stop()
    # Three crashes, each with a job in hand that was given back untouched.
    assert len(plan.crashed_at) == 3
    assert manager.worker_crashes == 3
    assert manager.worker_restarts == 3
    assert manager.last_crash is not None
    assert manager.last_crash.error.startswith("InjectedCrash: ")  # not the task group's
    name = crashing.name
    released = [r for r in manager.reports if r.worker == name and r.outcome is Outcome.RELEASED]
    assert len(released) == 3
    # The slot holds a new worker of the same name, which went on working.
    assert manager.workers[0] is not crashing
    assert manager.workers[0].name == name
    assert not manager.workers_down
    # Each incarnation before it crashed on its first job: whatever it completed, the
    # restarted one did.
    assert any(r.worker == name and r.outcome is Outcome.COMPLETED for r in manager.reports)
    # Every document was completed, the given-back ones included, no attempt burnt.
    all_rows = await rows(database, "all_rows")
    assert len(all_rows) == 12
    assert all(r["status_id"] == Status.OCR_COMPLETE for r in all_rows), all_rows
    assert all((r["ocr_attempts"] or 0) == 0 for r in all_rows), all_rows
    assert {r.job_id for r in released} <= {str(r["id"]) for r in all_rows}
    # Readiness said why while crashes were repeated, and recovered when they stopped.
    assert seen["readyz"] == "not ready: 3 worker crashes in the last 6 s (limit 3)"
    during = seen["metrics"]
    assert isinstance(during, dict)
    assert value(during, "ocr_pool_ready") == 0
    assert value(during, "ocr_pool_not_ready", reason="worker_crashes") == 1
    assert value(during, "ocr_pool_worker_crashes_total") == 3
    after = seen["metrics_after"]
    assert isinstance(after, dict)
    assert value(after, "ocr_pool_ready") == 1
    assert value(after, "ocr_pool_worker_restarts_total") == 3
    assert value(after, "ocr_pool_workers_down") == 0
    running = sum(v for n, labels, v in after["ocr_pool_workers"].samples)
    assert running == 2  # the pool's size is back


@pytest.mark.anyio
@pytest.mark.slow
async def test_a_worker_loop_that_ends_unasked_is_restarted(
    database: str, redis_prefix: str, tmp_path: Path
) -> None:
    plan = CrashPlan({"-w01": 2})
    policy = SupervisionPolicy(restart_base_seconds=0.05, restart_cap_seconds=0.1)
    async with run_simulator(SimulatorConfig(port=0, corpus=(tmp_path,))) as sim:
        settings = pool_settings(database, redis_prefix, sim.url)
        async with open_runtime(settings) as runtime:
            manager = PoolManager(
                runtime,
                supervision=policy,
                worker_factory=crashing_factory(runtime, plan, ReturningWorker),
            )
            async with anyio.create_task_group() as tg:
                tg.start_soon(manager.run)

                async def restarted_twice() -> bool:
                    return manager.worker_restarts == 2

                await wait_for(restarted_twice, within=30)
                snap = await manager.snapshot()
                manager.request_stop()
    assert manager.worker_crashes == 2
    assert manager.last_crash is not None
    assert manager.last_crash.worker.endswith("-w01")
    assert manager.last_crash.error == "its loop returned while the pool was running"
    assert snap.ready  # 2 crashes: under the limit of 3
    assert snap.workers_down == 0
    assert sum(w.total for w in snap.workers.values()) == 2


@pytest.mark.anyio
@pytest.mark.slow
async def test_a_stop_during_the_restart_delay_ends_the_pool_without_a_restart(
    database: str, redis_prefix: str, tmp_path: Path
) -> None:
    plan = CrashPlan({"-w00": 1})
    # A delay far longer than the test: only the stop can end it.
    policy = SupervisionPolicy(restart_base_seconds=600, restart_cap_seconds=600)
    async with run_simulator(SimulatorConfig(port=0, corpus=(tmp_path,))) as sim:
        settings = pool_settings(database, redis_prefix, sim.url)
        async with open_runtime(settings) as runtime:
            manager = PoolManager(
                runtime,
                supervision=policy,
                worker_factory=crashing_factory(runtime, plan, ReturningWorker),
            )
            # The pool ends within a minute: not after the restart delay.
            with anyio.fail_after(60):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(manager.run)

                    async def down() -> bool:
                        return len(manager.workers_down) == 1

                    await wait_for(down, within=30)
                    snap = await manager.snapshot()
                    manager.request_stop()
    assert manager.worker_crashes == 1
    assert manager.worker_restarts == 0
    assert not manager.workers_down
    assert snap.workers_down == 1
    assert sum(w.total for w in snap.workers.values()) == 1  # the down one is not counted
    assert "down 1" in render_line(snap)
