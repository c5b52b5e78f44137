"""How the pool divides its workers between index and acte: a pure function of the work
waiting, the measured service times and the rules (no I/O; the rebalancer calls it every
`OCR_REBALANCE_INTERVAL_MS`).

Goal: finish the waiting work as early as possible, i.e. minimise the makespan
`max(work_index / workers_index, work_acte / workers_acte)`, where the work of a type is
`waiting x service_seconds`. In real numbers the optimum gives each type workers in
proportion to its work (`x = P * W_i / W`). In whole workers the optimum is always one of
the two roundings of `x`, but not always the nearest one: with 100 workers, 14 s of index
work and 986 s of acte work, `x = 1.4`; one index worker finishes in 14 s, two finish in
10.06 s (acte: 986 / 98). The rounding that is always optimal is largest-remainder
rounding of the *shares*

    share_i = 1/2 + (P - 1) * W_i / W        share_a = 1/2 + (P - 1) * W_a / W

(they sum to P, differ from the proportional `x` by less than 1/2, and the share of a type
with work is above 1/2, so it rounds to at least one worker). Index gets `round(share_i)`
clamped to its bounds; an exact tie (both roundings give the same makespan) goes to the type
with more work, then to index. The minimums are floors, not additions: the share is
clamped to `[min_index, pool_size - min_acte]`; since the makespan is unimodal in the
number of index workers, clamping the optimum gives the optimum under the minimums.

Hysteresis: when both types have work and `current` is valid for the rules (sums to the
pool size, minimums held, no type with work at 0 workers where the pool allows one),
`current` is kept while `|share_i - current.index| < 1/2 + hysteresis` (`share_i` clamped
to the bounds; see `ideal_index_share`). With the default 1/2 a split is kept until the
ideal share is a whole worker away from it. (With one worker, no minimums and both queues
busy, the share is the proportional `W_i / W`; with the default hysteresis the worker then
stays in its mode until its queue is empty.) If one job more or less moves `share_i` by
less than one worker, demand oscillating by one job changes the split at most once (for
any hysteresis `h > 0`: a move of less than `h` always suffices).

All arithmetic is exact (fractions of the float inputs), so the split is monotonic and
reproducible; floats appear only in `reason` and in the makespan estimates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

__all__ = [
    "Allocation",
    "AllocationRules",
    "TypeDemand",
    "allocate",
    "count_proportional",
    "estimated_makespan",
    "ideal_index_share",
    "makespan_lower_bound",
    "static_split",
]


@dataclass(frozen=True)
class TypeDemand:
    """The work waiting for one type: jobs claimable + retry-delayed + in progress (summed
    over environments), and the measured mean service time of one job."""

    waiting: int
    service_seconds: float

    def __post_init__(self) -> None:
        if self.waiting < 0:
            raise ValueError(f"waiting must be >= 0, got {self.waiting}")
        if not (math.isfinite(self.service_seconds) and self.service_seconds > 0):
            raise ValueError(
                f"service_seconds must be a positive finite number, got {self.service_seconds}"
            )

    @property
    def work(self) -> float:
        """Seconds of work waiting: `waiting x service_seconds` (0.0 when nothing waits)."""
        return self.waiting * self.service_seconds


@dataclass(frozen=True)
class AllocationRules:
    """Pool size, per-type minimums (floors) and hysteresis (in workers, >= 0)."""

    pool_size: int
    min_index: int
    min_acte: int
    hysteresis: float = 0.5

    def __post_init__(self) -> None:
        if self.pool_size < 1:
            raise ValueError(f"OCR_WORKER_POOL_SIZE must be at least 1, got {self.pool_size}")
        if self.min_index < 0:
            raise ValueError(f"OCR_MIN_INDEX_WORKERS must be >= 0, got {self.min_index}")
        if self.min_acte < 0:
            raise ValueError(f"OCR_MIN_ACTE_WORKERS must be >= 0, got {self.min_acte}")
        if self.min_index + self.min_acte > self.pool_size:
            raise ValueError(
                f"OCR_MIN_INDEX_WORKERS + OCR_MIN_ACTE_WORKERS ({self.min_index} + "
                f"{self.min_acte}) must not exceed OCR_WORKER_POOL_SIZE ({self.pool_size})"
            )
        if not (math.isfinite(self.hysteresis) and self.hysteresis >= 0):
            raise ValueError(
                f"OCR_REBALANCE_HYSTERESIS must be a finite number >= 0 (workers), "
                f"got {self.hysteresis}"
            )

    def admits(self, alloc: Allocation) -> bool:
        """Whether `alloc` sums to the pool size and holds both minimums."""
        return (
            alloc.index + alloc.acte == self.pool_size
            and alloc.index >= self.min_index
            and alloc.acte >= self.min_acte
        )


@dataclass(frozen=True)
class Allocation:
    """Workers per type, and why (a short text for logs and the status panel)."""

    index: int
    acte: int
    reason: str = ""

    def as_dict(self) -> dict[str, int | str]:
        return {"index": self.index, "acte": self.acte, "reason": self.reason}

    def split(self) -> tuple[int, int]:
        """(index, acte), without the reason: compare splits with this."""
        return (self.index, self.acte)


def _even(rules: AllocationRules) -> int:
    """Index workers of a 50/50 split within the minimums (an odd worker goes to acte)."""
    return min(max(rules.pool_size // 2, rules.min_index), rules.pool_size - rules.min_acte)


def _bounds(rules: AllocationRules, w_index: Fraction, w_acte: Fraction) -> tuple[int, int]:
    """Allowed index workers: the minimums, and at least one worker for a type with work
    when the other type's minimum leaves one. With one worker, no minimums and work on both
    sides, both bounds cannot hold; the caller then decides by the share."""
    low = rules.min_index
    high = rules.pool_size - rules.min_acte
    if w_index > 0 and low == 0 and high >= 1:
        low = 1
    if w_acte > 0 and rules.min_acte == 0 and rules.min_index <= rules.pool_size - 1:
        high = rules.pool_size - 1
    return low, high


def _share(pool_size: int, w_index: Fraction, w_acte: Fraction) -> Fraction:
    """The makespan-optimal real-valued index share (see the module docstring)."""
    return Fraction(1, 2) + (pool_size - 1) * w_index / (w_index + w_acte)


def _round(share: Fraction, w_index: Fraction, w_acte: Fraction) -> int:
    """Largest-remainder rounding of the two shares; an exact tie goes to the type with
    more work, then to index."""
    whole = math.floor(share)
    rest = share - whole
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and w_index >= w_acte):
        return whole + 1
    return whole


def ideal_index_share(rules: AllocationRules, index: TypeDemand, acte: TypeDemand) -> float:
    """The real-valued index share the hysteresis compares against: `1/2 + (P-1) W_i / W`
    clamped to the allowed bounds; when a queue is empty, the value `allocate` gives."""
    w_i, w_a = Fraction(index.work), Fraction(acte.work)
    if w_i == 0 or w_a == 0:
        return float(allocate(rules, index, acte, None).index)
    return float(_clamped_share(rules, w_i, w_a))


def _clamped_share(rules: AllocationRules, w_index: Fraction, w_acte: Fraction) -> Fraction:
    """The share of `_share` within the bounds; with one worker for two busy queues (no
    bounds can hold), the proportional share `W_i / W`."""
    low, high = _bounds(rules, w_index, w_acte)
    if low > high:
        return w_index / (w_index + w_acte)
    share = _share(rules.pool_size, w_index, w_acte)
    return min(max(share, Fraction(low)), Fraction(high))


def allocate(
    rules: AllocationRules,
    index: TypeDemand,
    acte: TypeDemand,
    current: Allocation | None,
) -> Allocation:
    """The split of `rules.pool_size` workers that finishes the waiting work soonest,
    within the minimums; `current` (the split in force) is kept within the hysteresis.
    See the module docstring for the exact rules."""
    pool = rules.pool_size
    w_i, w_a = Fraction(index.work), Fraction(acte.work)
    valid_current = current is not None and rules.admits(current)

    if w_i == 0 and w_a == 0:
        if current is not None and valid_current:
            return Allocation(current.index, current.acte, "both queues empty: kept")
        n = _even(rules)
        return Allocation(n, pool - n, "both queues empty: even split")
    if w_a == 0:
        return Allocation(pool - rules.min_acte, rules.min_acte, "acte queue empty")
    if w_i == 0:
        return Allocation(rules.min_index, pool - rules.min_index, "index queue empty")

    low, high = _bounds(rules, w_i, w_a)
    share = _clamped_share(rules, w_i, w_a)
    work = f"work {float(w_i):.0f} s index vs {float(w_a):.0f} s acte"
    if low > high:
        # One worker, no minimums, work on both sides: a type must wait whatever we do.
        low, high = 0, 1
        work = f"{work}; one worker for two queues"
    if (
        current is not None
        and valid_current
        and low <= current.index <= high
        and abs(share - current.index) < Fraction(1, 2) + Fraction(rules.hysteresis)
    ):
        return Allocation(
            current.index,
            current.acte,
            f"kept: within hysteresis (ideal index {float(share):.2f}); {work}",
        )
    n = _round(share, w_i, w_a)
    return Allocation(n, pool - n, work)


def count_proportional(rules: AllocationRules, index_waiting: int, acte_waiting: int) -> Allocation:
    """The policy of the system being replaced: workers in proportion to job counts
    (service times ignored), minimums as floors, largest-remainder rounding; an empty
    queue gets its minimum, both empty split evenly. Like `allocate`, a type with jobs
    gets a worker whenever the other's minimum leaves one (a fair baseline). For
    benchmarks."""
    if index_waiting < 0 or acte_waiting < 0:
        raise ValueError("waiting counts must be >= 0")
    pool = rules.pool_size
    if index_waiting == 0 and acte_waiting == 0:
        n = _even(rules)
        return Allocation(n, pool - n, "counts: both queues empty")
    if acte_waiting == 0:
        return Allocation(pool - rules.min_acte, rules.min_acte, "counts: acte queue empty")
    if index_waiting == 0:
        return Allocation(rules.min_index, pool - rules.min_index, "counts: index queue empty")
    n_i, n_a = Fraction(index_waiting), Fraction(acte_waiting)
    exact = pool * n_i / (n_i + n_a)
    low, high = _bounds(rules, n_i, n_a)
    if low <= high:
        exact = min(max(exact, Fraction(low)), Fraction(high))
    n = _round(exact, n_i, n_a)
    return Allocation(n, pool - n, f"counts: {index_waiting} index vs {acte_waiting} acte")


def static_split(rules: AllocationRules) -> Allocation:
    """50/50 within the minimums (an odd worker goes to acte). For benchmarks."""
    n = _even(rules)
    return Allocation(n, rules.pool_size - n, "static 50/50")


def makespan_lower_bound(index: TypeDemand, acte: TypeDemand, pool_size: int) -> float:
    """No split of `pool_size` workers finishes sooner: total work / pool size, but at
    least the longest single job (a job runs on one worker)."""
    if pool_size < 1:
        raise ValueError(f"pool_size must be at least 1, got {pool_size}")
    longest = max(
        (d.service_seconds for d in (index, acte) if d.waiting > 0),
        default=0.0,
    )
    return max((index.work + acte.work) / pool_size, longest)


def estimated_makespan(alloc: Allocation, index: TypeDemand, acte: TypeDemand) -> float:
    """Seconds until the waiting work is done with this split: `max(work_t / workers_t)`
    (fluid, no rounding up to whole jobs); `inf` when a type with work has no worker."""

    def one(work: float, workers: int) -> float:
        if work == 0:
            return 0.0
        return math.inf if workers <= 0 else work / workers

    return max(one(index.work, alloc.index), one(acte.work, alloc.acte))
