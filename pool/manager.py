"""The pool manager: N workers in one process, re-divided between index and acte by the
work waiting, supervised until asked to stop.

`run()` warms up (connections, Lua scripts) and fails fast with one clear line if Redis,
a database or the settings are wrong; then it runs, in one task group, the workers, the
preheat (google-genai and the PDF renderer loaded in threads while the workers claim),
the rebalancer (at start and every OCR_REBALANCE_INTERVAL_MS), the
reaper of expired leases, the limiter's publisher, the capacity ledger's maintenance,
the fleet state in Redis, the status printer and, when configured, the health and
metrics endpoint. A worker task that crashes is restarted after a jittered, capped
backoff; repeated crashes make the pool not ready (`pool.supervision`).
`request_stop()` (SIGTERM, SIGINT, or an empty queue with `until_empty`) stops
claiming; in-flight jobs finish within the grace period, after which they are given
back untouched; everything the pool holds is released.
"""

from __future__ import annotations

import logging
import random
import secrets
import time
from collections import deque
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import anyio
from redis.exceptions import RedisError

from capacity import run_maintenance
from capacity.errors import redact
from domain import AllocationRecord, DocumentSource
from pool.allocation import Allocation, AllocationRules, TypeDemand, allocate
from pool.bill import BillPublisher, spent
from pool.day_usage import DayUsage
from pool.fleet_state import FleetState
from pool.leftovers import PoolTempDir, TempDirError, leave, start_clean
from pool.process_limits import limit_threads
from pool.service_times import ServiceTimes
from pool.status.snapshot import Allocation as SnapshotAllocation
from pool.status.snapshot import PoolSnapshot, WorkerCrash, tally_workers
from pool.status.stats import PoolStats
from pool.supervision import (
    Readiness,
    SupervisionPolicy,
    next_streak,
    pool_readiness,
    restart_delay,
)
from pool.wiring.configs import PoolConfig, pool_config
from pool.wiring.runtime import Runtime, StartupError
from store import SourceComposition, StoreError, StoreUnavailable
from workers.pdf import warm_renderer
from workers.worker import JobReport, Outcome, Worker

log = logging.getLogger("pool")
INDEX, ACTE = DocumentSource.INDEX, DocumentSource.ACTE


Policy = Callable[[AllocationRules, TypeDemand, TypeDemand, Allocation | None], Allocation]
WorkerFactory = Callable[[str, DocumentSource, Callable[[JobReport], None]], Worker]
"""(name, mode, on_report) -> a new worker; `Runtime.worker` unless a test passes its own."""


@dataclass(frozen=True, slots=True)
class Demand:
    """The queue as the rebalancer saw it: per environment and type, and the totals."""

    by_env: dict[str, dict[DocumentSource, SourceComposition]]

    def waiting(self, source: DocumentSource) -> int:
        total = 0
        for parts in self.by_env.values():
            part = parts.get(source)
            if part is not None:
                total += part.claimable + part.delayed + part.in_progress
        return total

    def claimable(self) -> int:
        return sum(p.claimable for parts in self.by_env.values() for p in parts.values())

    def idle(self) -> bool:
        """Nothing claimable, waiting out a retry delay, or in progress anywhere."""
        return all(
            p.claimable == 0 and p.delayed == 0 and p.in_progress == 0
            for parts in self.by_env.values()
            for p in parts.values()
        )


def assign_modes(
    workers: list[Worker], allocation: Allocation
) -> list[tuple[Worker, DocumentSource]]:
    """Which workers switch mode to meet `allocation`: as few as possible, idle ones
    first (a busy worker switches only after its current job)."""
    target = {INDEX: allocation.index, ACTE: allocation.acte}
    have = {source: [w for w in workers if w.mode == source] for source in (INDEX, ACTE)}
    changes: list[tuple[Worker, DocumentSource]] = []
    for source, other in ((INDEX, ACTE), (ACTE, INDEX)):
        surplus = len(have[source]) - target[source]
        if surplus <= 0:
            continue
        # Idle workers first, then by name (stable, predictable).
        candidates = sorted(have[source], key=lambda w: (w.current is not None, w.name))
        changes += [(w, other) for w in candidates[:surplus]]
    return changes


class PoolManager:
    def __init__(
        self,
        runtime: Runtime,
        config: PoolConfig | None = None,
        *,
        until_empty: bool = False,
        pool_id: str | None = None,
        on_status: Callable[[PoolSnapshot], None] | None = None,
        policy: Policy = allocate,
        supervision: SupervisionPolicy | None = None,
        worker_factory: WorkerFactory | None = None,
    ) -> None:
        config = config or pool_config(runtime.settings)
        self.runtime = runtime
        self.config = config
        self.until_empty = until_empty
        self.pool_id = pool_id or secrets.token_hex(3)
        self.server_id = config.server_id
        self.rules = config.rules
        index_seed, acte_seed = config.seed_seconds
        self.service_times = ServiceTimes(
            runtime.redis,
            config.redis_prefix,
            {INDEX.value: index_seed, ACTE.value: acte_seed},
        )
        self.fleet = FleetState(
            runtime.redis,
            config.redis_prefix,
            self.pool_id,
            ttl_seconds=3 * config.rebalance_seconds + 10,
        )
        self.day_usage = DayUsage(
            runtime.limiter,
            [t.store for t in runtime.targets],
            flush_seconds=config.rpd_flush_seconds,
        )
        self.bill = BillPublisher(
            runtime.redis,
            runtime.gemini.stats,
            prefix=config.redis_prefix,
            timezone=config.quota_timezone,
            prices=runtime.pipelines.prices,
        )
        self.on_status = on_status
        self.policy = policy
        """How the pool is divided (benchmarks compare others with `allocate`)."""
        self.reports: deque[JobReport] = deque(maxlen=10_000)
        """The latest job reports (bounded: a pool runs for months)."""
        self.stats = PoolStats()
        self._report_hooks: list[Callable[[JobReport], None]] = []
        self._times: list[tuple[str, float]] = []
        self.allocation: Allocation | None = None
        self.demand: Demand | None = None
        self.service_seconds: dict[str, float] = {}
        self.ready = False
        self.stopping = False
        self.started_at = time.time()
        self.first_claim_at: float | None = None
        self.health_url: str | None = None
        self._stop = anyio.Event()
        self._workers_done = anyio.Event()
        self._crew: anyio.CancelScope | None = None
        self.supervision = supervision or SupervisionPolicy()
        """Restart backoff and the crash threshold of readiness (`pool.supervision`)."""
        self._new_worker: WorkerFactory = worker_factory or runtime.worker
        """How workers are made, at start and on a restart. Tests pass a factory of
        workers that crash on purpose; nothing else does (no setting reaches it)."""
        self.worker_crashes = 0
        self.worker_restarts = 0
        self.workers_down: set[str] = set()
        """Workers that crashed and wait out their restart delay."""
        self.last_crash: WorkerCrash | None = None
        self._crash_times: deque[float] = deque(maxlen=1000)
        """monotonic time of recent crashes (readiness looks at its window only)"""
        self.workers = [
            self._new_worker(f"{self.server_id}-{self.pool_id}-w{n:02d}", INDEX, self._on_report)
            for n in range(config.rules.pool_size)
        ]

    # -- control ------------------------------------------------------------------------
    def request_stop(self) -> None:
        """Stop claiming; in-flight jobs finish (within the grace period)."""
        if not self.stopping:
            log.info("pool %s stopping: no new claims, finishing jobs in hand", self.pool_id)
        self.stopping = True
        self._stop.set()
        for worker in self.workers:
            worker.stop()

    def force_stop(self) -> None:
        """Stop now: jobs in hand are given back untouched (no attempt counted)."""
        self.request_stop()
        if self._crew is not None:
            self._crew.cancel()

    def add_report_hook(self, hook: Callable[[JobReport], None]) -> None:
        self._report_hooks.append(hook)

    def _note_claim(self, *claimed_at: float) -> None:
        """Keep the earliest claim seen (start-up latency is measured to it)."""
        if claimed_at:
            first = min(claimed_at)
            if self.first_claim_at is None or first < self.first_claim_at:
                self.first_claim_at = first

    def _on_report(self, report: JobReport) -> None:
        self._note_claim(time.time() - report.seconds)
        self.reports.append(report)
        self.stats.record(report)
        if report.outcome is Outcome.COMPLETED and not report.cache_hit:
            self._times.append((report.source.value, report.seconds))
        for hook in self._report_hooks:
            hook(report)

    # -- start-up -----------------------------------------------------------------------
    _scratch: PoolTempDir | None = None
    """This pool's temporary directory (claimed at the end of the warm-up)."""

    async def warm_up(self) -> None:
        """Touch every connection once before the first claim, so a wrong setting or an
        unreachable service fails here, in one line (what only a job needs is loaded by
        `_preheat`, while the workers claim)."""
        await self.runtime.check_redis()
        for target in self.runtime.targets:
            try:
                await target.store.ping()
            except StoreError as exc:
                raise StartupError(str(exc)) from None
        try:
            await self.runtime.limiter.publish()
        except Exception as exc:
            raise StartupError(f"Redis refused the limiter's scripts: {redact(str(exc))}") from None
        await self.day_usage.start()
        if self.runtime.capacity is not None:
            try:
                await self.runtime.capacity.publish()
            except Exception as exc:
                raise StartupError(f"capacity ledger: {redact(str(exc))}") from None
        if not self.config.local_roots:
            log.warning(
                "OCR_LOCAL_ROOTS is unset: a local path in the queue is read wherever it "
                "points; set it to the directories documents may come from"
            )
        try:  # dead pools' temporary files and fleet entries go; this pool's directory
            if self._scratch is None or self._scratch.closed:
                self._scratch = await start_clean(
                    self.runtime.limiter,
                    prefix=self.config.redis_prefix,
                    server_id=self.server_id,
                    pool_id=self.pool_id,
                    workers=[w.name for w in self.workers],
                )
        except (TempDirError, OSError, ValueError) as exc:
            raise StartupError(f"temporary files: {exc}") from None

    async def _preheat(self) -> None:
        """What the first job needs and the first claim does not: google-genai loaded
        and its client made, pymupdf's renderer loaded once (fonts, code pages). Both
        run in threads while the workers claim, so the pool claims within a second of
        its start (imports included) and the first job waits for these only if it gets
        to its Gemini call or its render first. A failure stops the pool with one line;
        jobs in hand are given back untouched."""
        try:
            await self.runtime.gemini.prepare()
        except Exception as exc:
            raise StartupError(
                f"the Gemini SDK: {type(exc).__name__}: {redact(str(exc))}"
            ) from None
        try:
            await anyio.to_thread.run_sync(warm_renderer)
        except Exception as exc:
            raise StartupError(f"the PDF renderer: {type(exc).__name__}: {exc}") from None

    # -- the run ------------------------------------------------------------------------
    async def run(self) -> None:
        threads = limit_threads()
        log.debug("blocking calls (PDF renders, copies) on at most %d threads", threads)
        async with AsyncExitStack() as stack:
            port = self.config.metrics_port
            if port is not None:
                from pool.status.health import serve_health  # aiohttp.web: only when asked

                try:
                    server = await stack.enter_async_context(
                        serve_health(self.config.metrics_host, port, self.snapshot, self.readiness)
                    )
                except OSError as exc:
                    raise StartupError(
                        f"OCR_METRICS_PORT: cannot listen on "
                        f"{self.config.metrics_host}:{port}: {exc.strerror or exc}"
                    ) from None
                self.health_url = server.url  # serve_health logs where it listens
            await self.warm_up()
            await self.rebalance()
            self.ready = True
            log.info(
                "pool %s ready on %s: %d workers (%d index, %d acte)",
                self.pool_id,
                self.server_id,
                len(self.workers),
                self.allocation.index if self.allocation else 0,
                self.allocation.acte if self.allocation else 0,
            )
            await self._run_services()

    def readiness(self) -> tuple[bool, str]:
        state = self.readiness_state()
        return state.ready, state.reason

    def readiness_state(self) -> Readiness:
        """Warmed up, not stopping, and not crashing repeatedly (`pool_readiness`)."""
        return pool_readiness(
            self.supervision,
            warmed_up=self.ready,
            stopping=self.stopping,
            crash_times=self._crash_times,
            now=time.monotonic(),
        )

    async def _run_services(self) -> None:
        try:
            async with anyio.create_task_group() as services:
                services.start_soon(self._every, self._rebalance_seconds, self.rebalance)
                services.start_soon(self._every, self.config.lease_seconds / 2, self._recover)
                services.start_soon(self._every, 2.0, self._publish_assignments)
                services.start_soon(self.runtime.limiter.run_publisher)
                services.start_soon(self.day_usage.run)
                services.start_soon(self.bill.run)
                services.start_soon(self._preheat)
                if self.runtime.capacity is not None:
                    services.start_soon(run_maintenance, self.runtime.capacity)
                if self.on_status is not None:
                    services.start_soon(self._status_loop)
                if self.until_empty:
                    services.start_soon(self._stop_when_empty)
                await self._run_workers()
                services.cancel_scope.cancel()
        finally:
            self.ready = False
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                await self._flush_times()
                await self._flush_bill()
                await self.fleet.withdraw_allocation()
                await self.fleet.publish_assignments({w.name: None for w in self.workers})
                await leave(self.runtime.limiter, [w.name for w in self.workers], self._scratch)
                await self.day_usage.stop()  # last: a slow database cannot hold the others
            if self.on_status is not None:
                with anyio.CancelScope(shield=True), anyio.move_on_after(10):
                    self.on_status(await self.snapshot())

    async def _run_workers(self) -> None:
        running = len(self.workers)

        async def supervised(slot: int) -> None:
            nonlocal running
            try:
                await self._supervise(slot)
            finally:
                running -= 1
                if running == 0:
                    self._workers_done.set()

        async with anyio.create_task_group() as crew:
            self._crew = crew.cancel_scope
            for slot in range(len(self.workers)):
                crew.start_soon(supervised, slot)
            await self._stop.wait()
            with anyio.move_on_after(self.config.shutdown_grace_seconds):
                await self._workers_done.wait()
            if not self._workers_done.is_set():
                log.warning(
                    "grace period of %.0f s over: giving back the jobs still in hand",
                    self.config.shutdown_grace_seconds,
                )
                crew.cancel_scope.cancel()

    async def _supervise(self, slot: int) -> None:
        """Run the worker in `slot` until the pool stops. A crash (a bug in the loop)
        must not shrink the pool: it is logged and counted, and after a jittered,
        capped backoff a new worker of the same name and mode takes the slot. The job
        the crashed one had in hand was given back on the way out, or its lease
        expires and the reaper puts it back (attempt counted)."""
        streak = 0
        while True:
            worker = self.workers[slot]
            started = time.monotonic()
            try:
                await worker.run()
            except Exception as exc:
                log.exception("%s crashed", worker.name)
                cause = _innermost(exc)
                error = f"{type(cause).__name__}: {redact(str(cause))}"
            else:
                if self.stopping:
                    return
                error = "its loop returned while the pool was running"
                log.error("%s stopped: %s", worker.name, error)
            if self.stopping:
                return
            streak = next_streak(self.supervision, streak, time.monotonic() - started)
            delay = restart_delay(self.supervision, streak, random.random())
            self._crash_times.append(time.monotonic())
            self.worker_crashes += 1
            self.workers_down.add(worker.name)
            self.last_crash = WorkerCrash(worker.name, error, time.time())
            readiness = self.readiness_state()
            log.warning(
                "%s: crash %d in a row; restarting it in %.1f s%s",
                worker.name,
                streak,
                delay,
                "" if readiness.ready else f" (pool not ready: {readiness.reason})",
            )
            with anyio.move_on_after(delay):
                await self._stop.wait()
            self.workers_down.discard(worker.name)
            if self.stopping:
                return
            # No await from here to run(): a stop asked now reaches the new worker.
            self.workers[slot] = self._new_worker(worker.name, worker.mode, self._on_report)
            self.worker_restarts += 1
            log.info("%s restarted (%s mode)", worker.name, worker.mode.value)

    async def _flush_bill(self) -> None:
        try:
            await self.bill.flush()
        except (RedisError, OSError) as exc:
            log.warning("pool %s: last Gemini bill not published: %s", self.pool_id, exc)

    @property
    def _rebalance_seconds(self) -> float:
        return self.config.rebalance_seconds

    async def _every(self, seconds: float, call: Callable[[], Any]) -> None:
        while True:
            await anyio.sleep(seconds)
            try:
                await call()
            except Exception:
                log.exception("pool %s: periodic %s failed", self.pool_id, call.__name__)

    # -- rebalancing --------------------------------------------------------------------
    async def read_demand(self) -> Demand:
        by_env: dict[str, dict[DocumentSource, SourceComposition]] = {}
        for target in self.runtime.targets:
            try:
                by_env[target.store.env] = await target.store.composition()
            except StoreUnavailable:
                continue  # the store says once that the database is unreachable
            except StoreError as exc:
                log.warning("queue %s unreadable: %s", target.store.env, exc)
        return Demand(by_env)

    async def rebalance(self) -> Allocation:
        demand = await self.read_demand()
        await self._flush_times()
        self.service_seconds = await self.service_times.current()
        index = TypeDemand(demand.waiting(INDEX), self.service_seconds[INDEX.value])
        acte = TypeDemand(demand.waiting(ACTE), self.service_seconds[ACTE.value])
        decided = self.policy(self.rules, index, acte, self.allocation)
        changed = self.allocation is None or (decided.index, decided.acte) != (
            self.allocation.index,
            self.allocation.acte,
        )
        self.allocation, self.demand = decided, demand
        for worker, mode in assign_modes(self.workers, decided):
            worker.mode = mode
        if changed:
            log.info(
                "allocation: %d index, %d acte (%s)", decided.index, decided.acte, decided.reason
            )
        await self.fleet.publish_allocation(
            {
                "server": self.server_id,
                "index": decided.index,
                "acte": decided.acte,
                "reason": decided.reason,
                "waiting": {"index": index.waiting, "acte": acte.waiting},
                "service_seconds": {"index": index.service_seconds, "acte": acte.service_seconds},
            }
        )
        record = AllocationRecord(
            pool_id=self.pool_id,
            server_id=self.server_id,
            pool_size=self.rules.pool_size,
            index_workers=decided.index,
            acte_workers=decided.acte,
            index_waiting=index.waiting,
            acte_waiting=acte.waiting,
            index_seconds=index.service_seconds,
            acte_seconds=acte.service_seconds,
            reason=decided.reason,
        )
        for target in self.runtime.targets:
            try:
                await target.store.record_allocation(record)
            except StoreUnavailable:
                continue  # the store says once that the database is unreachable
            except StoreError as exc:
                log.warning("allocation not recorded in %s: %s", target.store.env, exc)
        await self._publish_assignments()
        return decided

    async def _flush_times(self) -> None:
        pending, self._times = self._times, []
        for source, seconds in pending:
            await self.service_times.record(source, seconds)

    # -- upkeep -------------------------------------------------------------------------
    async def _recover(self) -> None:
        """Rows whose holder stopped heart-beating go back to the queue (any pool may do
        it; the SQL is idempotent, and counts the lost attempt unless the lease ran out
        during a reported outage of the database: migration 0009)."""
        for target in self.runtime.targets:
            try:
                recovered = await target.store.recover_expired()
            except StoreUnavailable:
                continue  # the store says once that the database is unreachable
            except StoreError as exc:
                log.warning("lease recovery in %s failed: %s", target.store.env, exc)
                continue
            if recovered:
                log.warning(
                    "recovered %d expired lease(s) in %s (holders: %s)",
                    len(recovered),
                    target.store.env,
                    ", ".join(sorted({r.worker_id or "?" for r in recovered})),
                )

    async def _publish_assignments(self) -> None:
        now = time.time()
        rows: dict[str, dict[str, Any] | None] = {}
        for worker in self.workers:
            job = worker.current
            rows[worker.name] = {
                "pool": self.pool_id,
                "server": self.server_id,
                "mode": worker.mode.value,
                "job": None if job is None else str(job.id),
                "job_type": None if job is None else job.source.value,
                "env": None if job is None else job.env,
                "since": worker.since,
                "stolen": worker.stealing,
                "updated": round(now, 3),
            }
        self._note_claim(*(w.since for w in self.workers if w.since is not None))
        await self.fleet.publish_assignments(rows)
        await self._flush_times()

    async def _status_loop(self) -> None:
        """The status once the pool is warmed up, then every OCR_STATUS_INTERVAL_MS."""
        assert self.on_status is not None
        while True:
            self.on_status(await self.snapshot())
            await anyio.sleep(self.config.status_seconds)

    # -- what operators see ---------------------------------------------------------------
    async def snapshot(self) -> PoolSnapshot:
        """The pool now: allocation, workers, queue, Gemini, capacity, stats."""
        demand = await self.read_demand()
        gemini, gemini_error = None, None
        try:
            with anyio.fail_after(10):
                gemini = await self.runtime.limiter.publish()
        except Exception as exc:
            gemini_error = f"Gemini usage unreadable: {type(exc).__name__}: {redact(str(exc))}"
        capacity, capacity_error = None, None
        if self.runtime.capacity is not None:
            try:
                with anyio.fail_after(10):
                    capacity = await self.runtime.capacity.reap()
            except Exception as exc:
                capacity_error = f"capacity unreadable: {type(exc).__name__}: {redact(str(exc))}"
        allocation = self.allocation
        envs = {t.store.env for t in self.runtime.targets}
        readiness = self.readiness_state()
        return PoolSnapshot(
            pool_id=self.pool_id,
            server_id=self.server_id,
            uptime_seconds=self.stats.uptime_seconds,
            pool_size=len(self.workers),
            allocation=SnapshotAllocation(
                allocation.index if allocation else 0,
                allocation.acte if allocation else 0,
                allocation.reason if allocation else "",
            ),
            workers=tally_workers(
                (w.mode.value, None if w.current is None else w.current.source.value)
                for w in self.workers
                if w.name not in self.workers_down
            ),
            queue={
                env: {source.value: part for source, part in parts.items()}
                for env, parts in demand.by_env.items()
            },
            stats=self.stats.snapshot(),
            gemini=gemini,
            gemini_error=gemini_error,
            capacity=capacity,
            capacity_error=capacity_error,
            queue_errors={
                env: "queue unreadable (see the log)" for env in envs - set(demand.by_env)
            },
            ready=readiness.ready,
            ready_reason=readiness.reason,
            ready_code=readiness.code.value if readiness.code else "",
            workers_down=len(self.workers_down),
            worker_crashes=self.worker_crashes,
            worker_restarts=self.worker_restarts,
            last_crash=self.last_crash,
            spent=spent(self.runtime.gemini.stats, self.runtime.pipelines.prices),
            stopping=self.stopping,
            taken_at=time.time(),
        )

    async def _stop_when_empty(self) -> None:
        quiet = 0
        while not self.stopping:
            await anyio.sleep(1.0)
            busy = any(w.current is not None for w in self.workers)
            demand = await self.read_demand()
            quiet = quiet + 1 if not busy and demand.idle() and demand.by_env else 0
            if quiet >= 2:
                log.info("queue empty: pool %s stops (--until-empty)", self.pool_id)
                self.request_stop()


def _innermost(exc: BaseException) -> BaseException:
    """The one error a task group wrapped (and wrapped again), for a one-line note."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc
