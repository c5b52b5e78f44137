"""Everything an operator sees of a running pool, at one moment, as plain data.

The pool manager builds a `PoolSnapshot` (from its supervisor, the queue stores,
Redis and `PoolStats`); `pool.status.panel` renders it for a person, `pool.status.metrics` for
Prometheus. It holds no secrets: only counts, names and error texts that were
already redacted by whoever read the source that failed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from capacity import ServerState
from pool.bill import BillRow
from pool.status.stats import TYPES, StatsSnapshot
from ratelimit import FleetUsage
from store import SourceComposition


@dataclass(frozen=True, slots=True)
class Allocation:
    """The manager's current division of the pool (its targets per type)."""

    index: int
    acte: int
    reason: str = ""

    def of(self, source: str) -> int:
        return self.index if source == "index" else self.acte if source == "acte" else 0


@dataclass(frozen=True, slots=True)
class ModeWorkers:
    """The workers currently in one mode."""

    busy: int = 0
    """working on a job (of either type)"""
    idle: int = 0
    """waiting for a job or for capacity"""
    stolen: int = 0
    """of the busy ones, those working on a job of the other type (work stealing)"""

    @property
    def total(self) -> int:
        return self.busy + self.idle


def tally_workers(
    workers: Iterable[tuple[str, str | None]],
) -> dict[str, ModeWorkers]:
    """`(mode, type of the job in hand or None)` per worker -> counts per mode.
    Every type appears, with zeros when no worker is in that mode."""
    counts = {t: [0, 0, 0] for t in TYPES}
    for mode, job_type in workers:
        busy_idle_stolen = counts.setdefault(str(mode), [0, 0, 0])
        if job_type is None:
            busy_idle_stolen[1] += 1
        else:
            busy_idle_stolen[0] += 1
            if str(job_type) != str(mode):
                busy_idle_stolen[2] += 1
    return {mode: ModeWorkers(*c) for mode, c in counts.items()}


@dataclass(frozen=True, slots=True)
class WorkerCrash:
    """The latest worker task crash: which worker, the error (redacted), when."""

    worker: str
    error: str
    at: float
    """wall-clock time (epoch seconds)"""


@dataclass(frozen=True, slots=True)
class PoolSnapshot:
    pool_id: str
    server_id: str
    uptime_seconds: float
    pool_size: int
    allocation: Allocation
    workers: Mapping[str, ModeWorkers]
    """mode -> busy / idle / stolen counts"""
    queue: Mapping[str, Mapping[str, SourceComposition]]
    """environment -> type -> waiting (claimable), delayed, in progress"""
    stats: StatsSnapshot
    gemini: FleetUsage | None = None
    gemini_error: str | None = None
    """why `gemini` is None (Redis unreadable); None when it was read"""
    capacity: ServerState | None = None
    capacity_error: str | None = None
    """why `capacity` is None; None when it was read or capacity is not used"""
    queue_errors: Mapping[str, str] = field(default_factory=dict)
    """environment -> why its queue figures could not be read"""
    ready: bool = False
    ready_reason: str = ""
    """why the pool is not ready (empty when ready)"""
    ready_code: str = ""
    """the same as a closed set for metrics: warming_up, stopping, worker_crashes (or
    empty)"""
    workers_down: int = 0
    """workers that crashed and wait out their restart delay (not in `workers`)"""
    worker_crashes: int = 0
    """worker task crashes since start"""
    worker_restarts: int = 0
    """workers restarted after a crash since start"""
    last_crash: WorkerCrash | None = None
    stopping: bool = False
    spent: tuple[BillRow, ...] = ()
    """This pool's Gemini calls since start, per model (every answer billed)."""
    taken_at: float = 0.0
    """wall-clock time of the snapshot (epoch seconds)"""

    @property
    def busy(self) -> int:
        return sum(w.busy for w in self.workers.values())

    @property
    def idle(self) -> int:
        return sum(w.idle for w in self.workers.values())

    def queue_total(self, source: str) -> SourceComposition:
        """One type's figures summed over the environments."""
        claimable = delayed = in_progress = 0
        for by_type in self.queue.values():
            c = by_type.get(source)
            if c is not None:
                claimable += c.claimable
                delayed += c.delayed
                in_progress += c.in_progress
        return SourceComposition(claimable, delayed, in_progress)
