"""Admission policy, as pure functions (the Lua scripts apply the same rule atomically).

available = max × (1 − reserve%), in milli-units, rounded down.
A request is admitted while allocated − held + request ≤ available in each
dimension that grows; a dimension that does not grow (a lease shrinking or
renewed at the same size) is always admitted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from capacity.resources import MILLI, ZERO, Resources


def available_milli(maximum: float, reserve_percent: float) -> int:
    """max × (1 − reserve/100) in milli-units, rounded down (never promises more than exists)."""
    if not math.isfinite(maximum) or maximum <= 0:
        raise ValueError(f"maximum must be a finite number > 0 (got {maximum!r})")
    if not 0 <= reserve_percent < 100:
        raise ValueError(f"reserve percent must be in [0, 100) (got {reserve_percent!r})")
    # round() first: 23.4 * 1000 * 0.8 is 18720.000000000004 in floats.
    return math.floor(round(maximum * MILLI * (100 - reserve_percent) / 100, 6))


@dataclass(frozen=True, slots=True)
class Limits:
    """A server's size and the share kept free for the OS and other programs."""

    max_cpu: float
    max_ram: float
    reserve_cpu_percent: float = 20.0
    reserve_ram_percent: float = 20.0

    @property
    def available(self) -> Resources:
        return Resources(
            available_milli(self.max_cpu, self.reserve_cpu_percent),
            available_milli(self.max_ram, self.reserve_ram_percent),
        )


@dataclass(frozen=True, slots=True)
class Decision:
    admitted: bool
    short: tuple[str, ...] = ()
    """Dimensions that would exceed what is available: ("cpu",), ("ram",) or both."""

    @property
    def reason(self) -> str:
        """`ok`, or the short dimensions joined by `+` (as the acquire script answers)."""
        return "ok" if self.admitted else "+".join(self.short)


def decide(
    allocated: Resources, request: Resources, available: Resources, held: Resources = ZERO
) -> Decision:
    """Whether `request` fits. `allocated` includes `held`, what this holder already has
    (its lease is replaced by the request, not added to)."""
    short = [
        name
        for name, total, want, has, avail in (
            ("cpu", allocated.cpu_m, request.cpu_m, held.cpu_m, available.cpu_m),
            ("ram", allocated.ram_m, request.ram_m, held.ram_m, available.ram_m),
        )
        if want > has and total - has + want > avail
    ]
    return Decision(not short, tuple(short))


def can_ever_fit(request: Resources, available: Resources) -> bool:
    """False when the request exceeds the whole available capacity: waiting is useless."""
    return request.cpu_m <= available.cpu_m and request.ram_m <= available.ram_m
