"""One worker: claim a job of its mode (environments in priority order), keep its lease
alive, fetch the document, run the pipeline (or reuse a cached result), then complete
or fail it. It never dies on a bad document, a lost lease or an outage: it logs, backs
off and goes on, until asked to stop; then it finishes the job in hand and returns.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

import aiohttp
import anyio

from capacity import CapacityError, CapacityLedger, CapacityRefused, Lease
from capacity.errors import redact
from domain import DocumentSource
from store import ClaimedJob, FailOutcome, QueueStore, ResultRefused, StoreError, StoreUnavailable
from workers import log_context
from workers.documents import FetchConfig, StorageTarget, fetch_document
from workers.errors import JobError, PermanentJobError, ServiceUnavailable
from workers.job_policy import JobRetryPolicy
from workers.outage_policy import outage_pause, refused_too_long, renew_pause
from workers.pdf import inspect_pdf
from workers.pipelines import acte, index
from workers.pipelines.context import PipelineContext
from workers.pipelines.result import PipelineResult
from workers.pipelines.schema import Usage

log = logging.getLogger("workers")
T = TypeVar("T")


class Outcome(StrEnum):
    COMPLETED = "completed"
    REQUEUED = "requeued"
    """Failed this attempt; back at status 3 for another."""
    FAILED = "failed"
    """Status 4: permanent error, or attempts used up."""
    LOST = "lost"
    """The lease was lost (expired, recovered by another pool): nothing written."""
    RELEASED = "released"
    """Given back untouched (the worker was cancelled mid-job)."""


@dataclass(frozen=True, slots=True)
class QueueTarget:
    """One environment's queue, and where its documents are stored."""

    store: QueueStore
    storage: StorageTarget | None = None


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    fetch: FetchConfig
    lease_seconds: float = 120.0
    heartbeat_seconds: float = 20.0
    idle_poll_seconds: float = 2.0
    """Longest pause between claims while the queue has nothing for this worker."""
    retry: JobRetryPolicy = field(default_factory=JobRetryPolicy)
    use_cache: bool = True
    steal: bool = True
    """An idle worker takes one job of the other type rather than wait (then returns)."""


@dataclass(frozen=True, slots=True)
class JobReport:
    worker: str
    env: str
    job_id: str
    source: DocumentSource
    outcome: Outcome
    seconds: float
    gemini_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    thinking_tokens: int = 0
    cut_answers: int = 0
    cost_usd: float | None = 0.0
    """None: a model used has no price."""
    cache_hit: bool = False
    error: str | None = None
    held_seconds: float = 0.0
    """How long the job's end (complete, fail, release) waited for the queue database
    to answer again after an outage (0: written at once)."""


@dataclass(slots=True)
class _Attempt:
    result: PipelineResult | None = None
    cache_hit: bool = False


class Worker:
    def __init__(
        self,
        name: str,
        mode: DocumentSource,
        targets: Sequence[QueueTarget],
        pipelines: PipelineContext,
        config: WorkerConfig,
        *,
        capacity: CapacityLedger | None = None,
        http: aiohttp.ClientSession | None = None,
        on_report: Callable[[JobReport], None] | None = None,
    ) -> None:
        if not targets:
            raise ValueError("a worker needs at least one queue")
        self.name = name
        self.mode = mode
        """The type this worker claims; the pool manager may change it between jobs."""
        self.targets = list(targets)
        self.pipelines = pipelines
        self.config = config
        self.capacity = capacity
        self.http = http
        self.on_report = on_report
        self.current: ClaimedJob | None = None
        self.since: float | None = None
        """Wall-clock time the job in hand was claimed."""
        self.stealing = False
        """True while the job in hand is of the other type (work stealing)."""
        self._stopping = False
        self._idle_scope: anyio.CancelScope | None = None
        self._claim_errors = 0
        self._unavailable_streak = 0

    # -- control ------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop claiming; the job in hand (if any) is finished first."""
        self._stopping = True
        if self._idle_scope is not None:
            self._idle_scope.cancel()

    @property
    def stopping(self) -> bool:
        return self._stopping

    async def run(self) -> None:
        idle_pause = 0.0
        while not self._stopping:
            worked = await self._work_while_claimable()
            if self._stopping:
                break
            idle_pause = (
                0.0
                if worked
                else min(self.config.idle_poll_seconds, max(0.1, idle_pause * 2 or 0.25))
            )
            if idle_pause:
                await self._pause(idle_pause)

    async def _pause(self, seconds: float) -> None:
        with anyio.CancelScope() as scope:
            self._idle_scope = scope
            if self._stopping:
                scope.cancel()
            await anyio.sleep(seconds)
        self._idle_scope = None

    async def _work_while_claimable(self) -> bool:
        """Hold capacity for the current mode and process jobs until none is claimable,
        the mode changes or a stop is asked. True if at least one job was processed."""
        mode = self.mode
        if self.capacity is None:
            return await self._drain(mode)
        lease = await self._capacity_lease(self.capacity, mode)
        if lease is None:
            return False
        async with lease.kept():
            return await self._drain(mode, lease)

    async def _capacity_lease(self, ledger: CapacityLedger, mode: DocumentSource) -> Lease | None:
        """Wait for room on this machine for a worker of `mode`; None once stopping.
        Each ask is shielded: a stop must never cancel a grant Redis already made
        (the lease would be held, unknown to us, until it expired)."""
        refusals = 0
        while not self._stopping:
            try:
                with anyio.CancelScope(shield=True):
                    return await ledger.lease(self.name, mode.value, wait=False)
            except CapacityRefused as exc:
                refusals += 1
                if refusals == 1 or refusals % 60 == 0:
                    log.info("%s: waiting for capacity: %s", self.name, exc)
            except CapacityError as exc:
                log.warning("%s: no capacity lease (%s); will retry", self.name, exc)
            await self._pause(min(self.config.idle_poll_seconds, 1.0))
        return None

    async def _drain(self, mode: DocumentSource, lease: Lease | None = None) -> bool:
        worked = False
        while not self._stopping and self.mode == mode:
            claimed = await self._claim(mode)
            if claimed is None:
                # Work stealing: rather than sit idle, one job of the other type, then
                # back to this worker's own mode (the caller re-leases capacity for it).
                return await self._steal(mode, lease) or worked
            await self.process(*claimed)
            worked = True
        return worked

    async def _steal(self, mode: DocumentSource, lease: Lease | None) -> bool:
        if not self.config.steal or self._stopping:
            return False
        other = DocumentSource.ACTE if mode == DocumentSource.INDEX else DocumentSource.INDEX
        if lease is not None:
            try:
                admitted = (await lease.resize(other.value)).admitted
            except CapacityError as exc:
                log.warning("%s: cannot resize capacity to steal: %s", self.name, exc)
                admitted = False
            if not admitted:
                return False
        claimed = await self._claim(other)
        if claimed is None:
            return False
        self.stealing = True
        try:
            await self.process(*claimed)
        finally:
            self.stealing = False
        return True

    async def _claim(self, mode: DocumentSource) -> tuple[ClaimedJob, QueueTarget] | None:
        for target in self.targets:
            try:
                job = await target.store.claim(self.name, mode, self.config.lease_seconds)
            except StoreUnavailable:
                continue  # the store says once that the database is unreachable
            except StoreError as exc:
                self._claim_errors += 1
                if self._claim_errors == 1 or self._claim_errors % 100 == 0:
                    log.error("%s: claim from %s failed: %s", self.name, target.store.env, exc)
                continue
            if self._claim_errors:
                log.info("%s: claiming from %s again", self.name, target.store.env)
                self._claim_errors = 0
            if job is not None:
                return job, target
        return None

    # -- one job ------------------------------------------------------------------------
    async def process(self, job: ClaimedJob, target: QueueTarget) -> JobReport:
        """Work on a claimed job to its end; always reports, never raises (except on
        cancellation, after giving the job back). Every line logged meanwhile, here or
        deep in the pipeline, carries the document's id, type, environment and this
        worker (`workers.log_context`)."""
        with log_context.about(job.id, job.source.value, job.env, self.name):
            return await self._process(job, target)

    async def _process(self, job: ClaimedJob, target: QueueTarget) -> JobReport:
        self.current = job
        self.since = time.time()
        started = time.monotonic()
        attempt = _Attempt()
        error: JobError | None = None
        unavailable: ServiceUnavailable | None = None
        lost = anyio.Event()
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._keep_lease, job, target.store, lost, tg.cancel_scope)
                try:
                    attempt = await self._attempt(job, target)
                except ServiceUnavailable as exc:
                    unavailable = exc
                except JobError as exc:
                    error = exc
                except Exception as exc:
                    log.exception("%s: unexpected error on %s %s", self.name, job.source, job.id)
                    error = JobError(f"internal error: {type(exc).__name__}: {redact(str(exc))}")
                finally:
                    tg.cancel_scope.cancel()
        except BaseException:
            if not lost.is_set():
                with anyio.CancelScope(shield=True), anyio.move_on_after(10):
                    await self._settle("release", lambda: target.store.release(job), job, False)
                self._report(job, Outcome.RELEASED, started, attempt)
            self.current = self.since = None
            raise
        self.current = self.since = None
        if lost.is_set():
            return self._report(job, Outcome.LOST, started, attempt)
        if unavailable is not None:
            return await self._give_back(job, target, unavailable, started)
        self._unavailable_streak = 0
        if error is not None:
            return await self._fail(job, target, error, started)
        assert attempt.result is not None
        result = attempt.result
        try:
            written, held = await self._settle(
                "complete",
                lambda: target.store.complete(
                    job, result.file_content, result.boosted_file_content, result.file_content_json
                ),
                job,
                False,
            )
        except ResultRefused as refused:
            return await self._fail(job, target, PermanentJobError(str(refused)), started)
        if not written:
            log.warning(
                "%s: result of %s %s discarded: another worker has claimed it since",
                self.name,
                job.source,
                job.id,
            )
        outcome = Outcome.COMPLETED if written else Outcome.LOST
        return self._report(job, outcome, started, attempt, held_seconds=held)

    async def _attempt(self, job: ClaimedJob, target: QueueTarget) -> _Attempt:
        ctx = self.pipelines
        key = (index if job.source == DocumentSource.INDEX else acte).pipeline_key(ctx.models)
        async with fetch_document(
            job.supabase_path,
            job.source.value,
            self.config.fetch,
            storage=target.storage,
            session=self.http,
        ) as document:
            if self.config.use_cache:
                cached = await self._cached(target.store, document.sha256, key)
                if cached is not None:
                    return _Attempt(cached, cache_hit=True)
            info = await inspect_pdf(document.path, ctx.pdf_limits, label=document.label)
            if job.source == DocumentSource.INDEX:
                result = await index.run_index(
                    document.path, info, ctx, worker=self.name, label=document.label
                )
            else:
                result = await acte.run_acte(document.path, info, ctx, worker=self.name)
        result = result.without_nul()
        if self.config.use_cache:
            try:
                await target.store.store_result(
                    document.sha256,
                    key,
                    result.file_content,
                    result.boosted_file_content,
                    result.file_content_json,
                )
            except StoreError as exc:
                level = logging.DEBUG if isinstance(exc, StoreUnavailable) else logging.WARNING
                log.log(level, "%s: result not cached: %s", self.name, exc)
        return _Attempt(result)

    async def _cached(self, store: QueueStore, sha256: str, key: str) -> PipelineResult | None:
        try:
            hit = await store.cached_result(sha256, key)
        except StoreError as exc:
            level = logging.DEBUG if isinstance(exc, StoreUnavailable) else logging.WARNING
            log.log(level, "%s: result cache unavailable: %s", self.name, exc)
            return None
        if hit is None:
            return None
        return PipelineResult(hit.file_content, hit.boosted_file_content, hit.file_content_json)

    async def _give_back(
        self, job: ClaimedJob, target: QueueTarget, problem: ServiceUnavailable, started: float
    ) -> JobReport:
        """The service refused us, not the document: the job goes back untouched (no
        attempt counted) and this worker pauses, longer each time it happens again."""
        _, held = await self._settle("release", lambda: target.store.release(job), job, False)
        self._unavailable_streak += 1
        pause = min(60.0, 5.0 * 2 ** min(self._unavailable_streak - 1, 4))
        if self._unavailable_streak == 1 or self._unavailable_streak % 10 == 0:
            log.error(
                "%s: %s; %s %s given back untouched, pausing %.0f s",
                self.name,
                problem,
                job.source,
                job.id,
                pause,
            )
        report = self._report(
            job, Outcome.RELEASED, started, _Attempt(), str(problem), held_seconds=held
        )
        await self._pause(pause)
        return report

    async def _fail(
        self, job: ClaimedJob, target: QueueTarget, error: JobError, started: float
    ) -> JobReport:
        delay = 0.0 if error.permanent else self.config.retry.delay(job.attempt)
        outcome, held = await self._settle(
            "fail",
            lambda: target.store.fail(
                job, error.message, retryable=not error.permanent, retry_delay_seconds=delay
            ),
            job,
            FailOutcome.LOST,
        )
        kind = {
            FailOutcome.REQUEUED: Outcome.REQUEUED,
            FailOutcome.FAILED: Outcome.FAILED,
        }.get(outcome, Outcome.LOST)
        level = logging.WARNING if kind is not Outcome.REQUEUED else logging.INFO
        log.log(
            level,
            "%s: %s %s attempt %d/%d %s: %s",
            self.name,
            job.source,
            job.id,
            job.attempt,
            job.max_attempts,
            kind,
            error.message,
        )
        return self._report(job, kind, started, _Attempt(), error.message, held_seconds=held)

    async def _keep_lease(
        self,
        job: ClaimedJob,
        store: QueueStore,
        lost: anyio.Event,
        work: anyio.CancelScope,
    ) -> None:
        """Heartbeat every `heartbeat_seconds`. While the database cannot be reached the
        work goes on: the lease runs out, but its token still fences the row, so the
        result is taken once the database answers again unless another worker claimed
        the row meanwhile; renewals are retried sooner, to take the lease back soon after.
        When the database says another worker has the row, or keeps refusing the renewal
        (not an outage) for a whole lease period, the work stops: nothing must be written
        over the new holder's result."""
        lease = self.config.lease_seconds
        failures = 0
        refused_since: float | None = None
        while True:
            await anyio.sleep(renew_pause(failures, self.config.heartbeat_seconds, lease))
            try:
                held = await store.heartbeat(job, lease)
            except StoreUnavailable:
                failures += 1  # the store says once that the database is unreachable
                continue
            except StoreError as exc:
                now = time.monotonic()
                refused_since = now if refused_since is None else refused_since
                if not refused_too_long(now - refused_since, lease):
                    log.warning("%s: heartbeat failed, will retry: %s", self.name, exc)
                    failures += 1
                    continue
                held = False
            if not held:
                log.warning("%s: lease on %s %s lost; abandoning it", self.name, job.source, job.id)
                lost.set()
                work.cancel()
                return
            failures, refused_since = 0, None

    async def _settle(
        self,
        what: str,
        call: Callable[[], Awaitable[T]],
        job: ClaimedJob,
        default: T,
    ) -> tuple[T, float]:
        """Write a job's end; returns what the store said and how long it waited.

        Through an outage of the database the write is retried until it answers, as long
        as this worker runs (on a stop, the pool's `OCR_SHUTDOWN_GRACE_SECONDS` bounds
        it: then the write is abandoned and the row is recovered after its lease).
        Whether it is still ours is the database's to say then: the lease token fences
        the row until another worker claims it. A database that answers but refuses the
        write (not an outage) is retried for one lease period, then given up (`default`).
        """
        lease = self.config.lease_seconds
        started = time.monotonic()
        failures = 0
        refused_since: float | None = None
        while True:
            try:
                value = await call()
            except StoreUnavailable:
                failures += 1  # the store says once that the database is unreachable
            except StoreError as exc:
                failures += 1
                now = time.monotonic()
                refused_since = now if refused_since is None else refused_since
                if refused_too_long(now - refused_since, lease):
                    log.error(
                        "%s: could not %s %s %s: %s", self.name, what, job.source, job.id, exc
                    )
                    return default, now - started
                log.warning("%s: %s of %s failed, retrying: %s", self.name, what, job.id, exc)
            else:
                held = time.monotonic() - started if failures else 0.0
                if failures:
                    log.info(
                        "%s: %s %s %s written %.1f s late, once the queue database answered",
                        self.name,
                        what,
                        job.source,
                        job.id,
                        held,
                    )
                return value, held
            await anyio.sleep(outage_pause(failures, lease))

    def _report(
        self,
        job: ClaimedJob,
        outcome: Outcome,
        started: float,
        attempt: _Attempt,
        error: str | None = None,
        *,
        held_seconds: float = 0.0,
    ) -> JobReport:
        result = attempt.result
        usage = result.usage if result is not None else Usage()
        report = JobReport(
            worker=self.name,
            env=job.env,
            job_id=str(job.id),
            source=job.source,
            outcome=outcome,
            seconds=time.monotonic() - started,
            gemini_calls=usage.gemini_calls,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            thinking_tokens=usage.thinking_tokens,
            cut_answers=usage.cut_answers,
            cost_usd=usage.cost_usd,
            cache_hit=attempt.cache_hit,
            error=error,
            held_seconds=held_seconds,
        )
        if self.on_report is not None:
            self.on_report(report)
        return report
