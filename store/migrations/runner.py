"""Apply the numbered migrations once each, recording them in `ocr_pool_migrations`.

Built for tables other programs write to every second (the file format and its
rules are in the package docstring, `store/migrations/__init__.py`):

- each step of a file runs in its own transaction under a short
  `lock_timeout`; a step that cannot get its lock in time (SQLSTATE 55P03) is
  rolled back and retried after a jittered back-off, for a bounded total time,
  then the run stops with one line naming the migration and the step. While a
  step waits for its lock, the writers queued behind it wait too, but never
  longer than the lock timeout;
- a `CONCURRENTLY` step runs outside any transaction, under the same lock
  timeout (set for the session, put back afterwards) and retries; an INVALID
  index left by an interrupted `CREATE INDEX CONCURRENTLY IF NOT EXISTS` is
  dropped (`DROP INDEX CONCURRENTLY`) and rebuilt;
- the ledger row is written only once every step of the file has succeeded, so
  an interrupted file is re-run from its first step (steps are idempotent);
- a recorded checksum that differs from the file is refused ("never edit an
  applied migration"), unless it is one of the file's superseded checksums
  (`store/migrations/superseded.txt`): that text was applied by an earlier release, and
  the file's current text is applied over it (its steps are idempotent; nothing
  the earlier text did is undone) and recorded, so the database runs the current
  definitions — e.g. 0006's `ocr_lockdown()`, which later files call.

Concurrent runs (several machines starting at once) serialise on an advisory
lock, polled rather than waited for (see `try_lock` in runner.sql).
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import anyio
import asyncpg

from store.migrations import (
    DEFAULT_LOCK_TIMEOUT_MS as DEFAULT_LOCK_TIMEOUT_MS,  # its home before; still here
)
from store.migrations import (
    Migration,
    discover,
    superseded_checksums,
)
from store.migrations.steps import Step, StepFormatError, split_steps
from store.sql import load_queries

_Q = load_queries(Path(__file__).with_name("runner.sql"))
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
LOCK_NOT_AVAILABLE = "55P03"
DEFAULT_RETRY_FOR_SECONDS = 600.0


class MigrationError(RuntimeError):
    pass


# --- Policy (pure) ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LockPolicy:
    """How long a statement may wait for a lock, and how long to keep retrying.

    After the n-th failed attempt the next one starts after a back-off drawn
    uniformly from [c/2, c], c = min(max_backoff, first_backoff * 2**(n-1))
    ("equal jitter": several runners, or several steps, do not retry in step).
    No attempt starts that could still be waiting after `retry_for_seconds`.
    """

    lock_timeout_ms: int = DEFAULT_LOCK_TIMEOUT_MS
    retry_for_seconds: float = DEFAULT_RETRY_FOR_SECONDS
    first_backoff_seconds: float = 0.05
    max_backoff_seconds: float = 2.0

    def __post_init__(self) -> None:
        if self.lock_timeout_ms < 1:
            raise ValueError(f"lock timeout must be at least 1 ms (got {self.lock_timeout_ms})")
        if self.retry_for_seconds < 0:
            raise ValueError(f"retry time must not be negative (got {self.retry_for_seconds})")
        if not 0 < self.first_backoff_seconds <= self.max_backoff_seconds:
            raise ValueError("back-off must satisfy 0 < first <= max")

    @property
    def lock_timeout_setting(self) -> str:
        return f"{self.lock_timeout_ms}ms"


def backoff_seconds(policy: LockPolicy, failures: int, jitter: float) -> float:
    """The pause after the `failures`-th failed attempt (1, 2, …); `jitter` in [0, 1]."""
    if failures < 1:
        raise ValueError("failures counts from 1")
    if not 0.0 <= jitter <= 1.0:
        raise ValueError("jitter must lie in [0, 1]")
    exponent = min(failures - 1, 60)  # beyond that the cap holds anyway
    ceiling = min(policy.max_backoff_seconds, policy.first_backoff_seconds * 2.0**exponent)
    return ceiling * (0.5 + 0.5 * jitter)


def next_backoff(
    policy: LockPolicy, failures: int, elapsed_seconds: float, jitter: float
) -> float | None:
    """The pause before the next attempt, or None when the retry time is used up
    (the next attempt could still be waiting for its lock after `retry_for_seconds`)."""
    pause = backoff_seconds(policy, failures, jitter)
    if elapsed_seconds + pause + policy.lock_timeout_ms / 1000 > policy.retry_for_seconds:
        return None
    return pause


# --- Events and report -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StepEvent:
    """What the runner is doing: a step starts, waits for a lock (and will retry
    after `backoff_seconds`), or is done."""

    migration: str
    step: Step
    kind: Literal["start", "lock_wait", "done"]
    attempt: int = 1
    backoff_seconds: float = 0.0


EventSink = Callable[[StepEvent], None]


@dataclass(frozen=True, slots=True)
class MigrationReport:
    applied: list[str]
    already: list[str]
    rewritten: list[str] = field(default_factory=list)
    """Applied by an earlier release's text; the current text was applied over it."""
    lock_retries: int = 0


# --- Lock discipline (shared with `ocr-pool lockdown`) -----------------------------------


def _is_lock_timeout(exc: BaseException) -> bool:
    return isinstance(exc, asyncpg.PostgresError) and exc.sqlstate == LOCK_NOT_AVAILABLE


async def with_lock_retries(
    policy: LockPolicy,
    what: str,
    attempt: Callable[[], Awaitable[None]],
    *,
    on_wait: Callable[[int, float], None] | None = None,
    jitter: Callable[[], float] = random.random,
) -> int:
    """Run `attempt` until it does not fail on a lock timeout; return the retries.

    `attempt` must leave nothing behind when it fails (a rolled-back transaction,
    an idempotent statement). Gives up with one line naming `what`.
    """
    started = time.monotonic()
    failures = 0
    while True:
        try:
            await attempt()
            return failures
        except asyncpg.PostgresError as exc:
            if not _is_lock_timeout(exc):
                raise
        failures += 1
        elapsed = time.monotonic() - started
        pause = next_backoff(policy, failures, elapsed, jitter())
        if pause is None:
            raise MigrationError(
                f"{what}: no lock within {policy.lock_timeout_ms} ms in {failures} attempts "
                f"over {elapsed:.1f} s (another session holds a conflicting lock on the table: "
                "see pg_locks); this step was not applied, the ones before it are; run again later"
            )
        if on_wait is not None:
            on_wait(failures, pause)
        await anyio.sleep(pause)


@asynccontextmanager
async def short_transaction(
    conn: asyncpg.Connection, policy: LockPolicy
) -> AsyncIterator[asyncpg.Connection]:
    """A transaction whose statements wait at most the policy's lock timeout."""
    async with conn.transaction():
        await conn.fetchval(_Q["set_local_lock_timeout"], policy.lock_timeout_setting)
        yield conn


@asynccontextmanager
async def session_lock_timeout(
    conn: asyncpg.Connection, policy: LockPolicy
) -> AsyncIterator[asyncpg.Connection]:
    """The policy's lock timeout for the session (statements outside transactions),
    put back as it was afterwards."""
    before = await conn.fetchval(_Q["get_lock_timeout"])
    await conn.fetchval(_Q["set_session_lock_timeout"], policy.lock_timeout_setting)
    try:
        yield conn
    finally:
        await conn.fetchval(_Q["set_session_lock_timeout"], before)


# --- The runner ----------------------------------------------------------------------


def plan(migrations: list[Migration]) -> list[tuple[Migration, list[Step]]]:
    """Every migration with its steps; a file that breaks the step format stops
    the run before anything is applied."""
    planned: list[tuple[Migration, list[Step]]] = []
    for migration in migrations:
        try:
            planned.append((migration, split_steps(migration.sql)))
        except StepFormatError as exc:
            raise MigrationError(f"migration {migration.label}: {exc}") from None
    return planned


async def _advisory_lock(conn: asyncpg.Connection) -> None:
    pause = 0.05
    while not await conn.fetchval(_Q["try_lock"]):
        await anyio.sleep(pause * (0.5 + random.random()))
        pause = min(pause * 2, 1.0)


async def _run_step(
    conn: asyncpg.Connection,
    migration: Migration,
    step: Step,
    policy: LockPolicy,
    on_event: EventSink | None,
    jitter: Callable[[], float],
) -> int:
    what = f"migration {migration.label} {step.label}"

    def waiting(failures: int, pause: float) -> None:
        if on_event is not None:
            on_event(StepEvent(migration.label, step, "lock_wait", failures + 1, pause))

    if on_event is not None:
        on_event(StepEvent(migration.label, step, "start"))
    try:
        retries = await _attempt_step(conn, step, policy, what, waiting, jitter)
    except asyncpg.PostgresError as exc:  # not a lock timeout: that one is retried
        message = str(exc).strip().replace("\n", " ")
        raise MigrationError(f"{what}: {exc.sqlstate} {message}") from exc
    if on_event is not None:
        on_event(StepEvent(migration.label, step, "done", retries + 1))
    return retries


async def _attempt_step(
    conn: asyncpg.Connection,
    step: Step,
    policy: LockPolicy,
    what: str,
    waiting: Callable[[int, float], None],
    jitter: Callable[[], float],
) -> int:
    if not step.concurrent:

        async def in_transaction() -> None:
            async with short_transaction(conn, policy):
                await conn.execute(step.sql)

        retries = await with_lock_retries(
            policy, what, in_transaction, on_wait=waiting, jitter=jitter
        )
    else:
        index = step.index_name

        async def outside_transaction() -> None:
            if index is not None:
                drop = await conn.fetchval(_Q["drop_invalid_index"], index)
                if drop is not None:
                    await conn.execute(drop)
            await conn.execute(step.sql)

        async with session_lock_timeout(conn, policy):
            retries = await with_lock_retries(
                policy, what, outside_transaction, on_wait=waiting, jitter=jitter
            )
    return retries


async def apply_migrations(
    conn: asyncpg.Connection,
    schema: str = "public",
    migrations: list[Migration] | None = None,
    *,
    lock_timeout_ms: int = DEFAULT_LOCK_TIMEOUT_MS,
    retry_for_seconds: float = DEFAULT_RETRY_FOR_SECONDS,
    on_event: EventSink | None = None,
    jitter: Callable[[], float] = random.random,
) -> MigrationReport:
    """Apply what is missing of `migrations` (default: the package's) to `schema`.

    `conn` must not be inside a transaction. `lock_timeout_ms` bounds every wait
    for a lock; a step keeps retrying for `retry_for_seconds` in all.
    """
    if not _IDENTIFIER.match(schema):
        raise MigrationError(f"schema name {schema!r} is not a plain SQL identifier")
    if conn.is_in_transaction():
        raise MigrationError("migrations need a connection that is not inside a transaction")
    try:
        policy = LockPolicy(lock_timeout_ms=lock_timeout_ms, retry_for_seconds=retry_for_seconds)
    except ValueError as exc:
        raise MigrationError(str(exc)) from None
    todo = plan(discover() if migrations is None else migrations)
    superseded = superseded_checksums()
    # Functions are created with `SET search_path FROM CURRENT`: pin it to the
    # target schema (plus pg_temp last, so temp objects can never shadow ours).
    await conn.fetchval(_Q["set_search_path"], f'"{schema}", pg_temp')
    await _advisory_lock(conn)
    try:

        async def create_ledger() -> None:
            async with short_transaction(conn, policy):
                await conn.execute(_Q["create_ledger"])

        retries = await with_lock_retries(policy, "the ledger ocr_pool_migrations", create_ledger)
        done = {r["version"]: (r["name"], r["checksum"]) for r in await conn.fetch(_Q["applied"])}
        applied: list[str] = []
        already: list[str] = []
        rewritten: list[str] = []
        for migration, steps in todo:
            if migration.version in done:
                name, checksum = done[migration.version]
                if checksum == migration.checksum:
                    already.append(migration.label)
                    continue
                if checksum not in superseded.get(migration.version, frozenset()):
                    raise MigrationError(
                        f"migration {migration.label} changed after it was applied "
                        f"(recorded as {migration.version:04d}_{name}); "
                        "never edit an applied migration, add a new one"
                    )
            for step in steps:
                retries += await _run_step(conn, migration, step, policy, on_event, jitter)
            query = "rerecord" if migration.version in done else "record"

            async def record(m: Migration = migration, query: str = query) -> None:
                async with short_transaction(conn, policy):
                    await conn.execute(_Q[query], m.version, m.name, m.checksum)

            retries += await with_lock_retries(
                policy, f"the ledger row of {migration.label}", record
            )
            (rewritten if migration.version in done else applied).append(migration.label)
        return MigrationReport(
            applied=applied, already=already, rewritten=rewritten, lock_retries=retries
        )
    finally:
        if not conn.is_closed():
            await conn.fetchval(_Q["unlock"])
