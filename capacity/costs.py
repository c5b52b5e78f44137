"""Measured costs, as pure functions: what a lease of each kind really uses.

A worker type's configured cost (`OCR_CAPACITY_COSTS`) is a guess made once; what it
uses depends on the documents and on how long it waits on Gemini. So each pool measures
the CPU time its process spends while it holds leases, splits it between the leases
held at that moment (`split_cpu`), and folds it per kind into a fleet-wide average of
**vCPU per held second** (`fold`, mirrored by `capacity/lua/measure.lua`). Admission then
charges the measured cost with some headroom, never more than the configured cost and
never less than a floor (`effective_cost`): configured costs are the seeds (used until
something is measured) and the caps. RAM is not measured: it stays as configured.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from capacity.resources import MILLI, Resources

HALF_LIFE_SECONDS = 30.0
"""Held seconds after which a sample weighs half of the average: with 8 busy workers
the fleet's figure follows a change within about a minute."""
HEADROOM = 1.25
"""Admission charges the measured use plus a quarter (renders come in bursts)."""
FLOOR_CPU_M = 50
"""No kind is charged less than 0.05 vCPU (bounded by its configured cost)."""
MAX_SAMPLE = 1024.0
"""A sample above this many vCPU per held second is clock noise: clamped."""


@dataclass(frozen=True, slots=True)
class Sample:
    """CPU seconds used while leases of one kind were held, over the seconds they were held
    (summed over those leases: two leases held 3 s are 6 held seconds)."""

    cpu_seconds: float
    held_seconds: float

    def __add__(self, other: Sample) -> Sample:
        return Sample(self.cpu_seconds + other.cpu_seconds, self.held_seconds + other.held_seconds)

    @property
    def rate(self) -> float:
        """vCPU per held second (0 when nothing was held)."""
        if self.held_seconds <= 0:
            return 0.0
        return min(max(self.cpu_seconds / self.held_seconds, 0.0), MAX_SAMPLE)


def split_cpu(cpu_seconds: float, weights: Mapping[str, float]) -> dict[str, float]:
    """Share `cpu_seconds` (what the process used over an interval) between the holders
    that held a lease during all of it, in proportion to their weights (the current cost
    of their kind). Equal shares when no weight is positive; nothing for nobody."""
    if not weights:
        return {}
    used = max(0.0, cpu_seconds)
    positive = {h: w for h, w in weights.items() if math.isfinite(w) and w > 0}
    if not positive:
        each = used / len(weights)
        return dict.fromkeys(weights, each)
    total = sum(positive.values())
    # the weight's share first: used * w / total can round badly (w, total subnormal)
    return {h: used * (positive.get(h, 0.0) / total) for h in weights}


def weight_of(held_seconds: float, half_life: float = HALF_LIFE_SECONDS) -> float:
    """How much a sample spanning `held_seconds` moves the average: 1 − 2^(−held/half-life)."""
    if half_life <= 0:
        raise ValueError(f"half life must be positive (got {half_life!r})")
    if held_seconds <= 0:
        return 0.0
    return 1.0 - math.pow(2.0, -held_seconds / half_life)


def fold(
    mean: float | None, seed: float, sample: Sample, half_life: float = HALF_LIFE_SECONDS
) -> float:
    """The new fleet average after `sample`: a time-weighted moving average that starts
    from `seed` (the configured cost), so a first short sample cannot swing it to 0."""
    start = seed if mean is None or not math.isfinite(mean) or mean < 0 else mean
    return start + weight_of(sample.held_seconds, half_life) * (sample.rate - start)


def effective_cost(
    configured: Resources,
    measured_cpu: float | None,
    *,
    headroom: float = HEADROOM,
    floor_cpu_m: int = FLOOR_CPU_M,
) -> Resources:
    """What admission charges for one lease of a kind: the measured vCPU × headroom,
    between the floor and the configured cost (the cap); the configured cost as is until
    something is measured. RAM as configured."""
    if measured_cpu is None or not math.isfinite(measured_cpu) or measured_cpu < 0:
        return configured
    wanted = math.ceil(round(measured_cpu * headroom * MILLI, 6))
    floor = min(floor_cpu_m, configured.cpu_m)
    return Resources(min(configured.cpu_m, max(floor, wanted)), configured.ram_m)


def effective_costs(
    configured: Mapping[str, Resources], measured: Mapping[str, float]
) -> dict[str, Resources]:
    """`effective_cost` of every configured kind."""
    return {kind: effective_cost(cost, measured.get(kind)) for kind, cost in configured.items()}
