"""Amounts of CPU and RAM, kept as integer milli-units, and the worker-type costs.

1 vCPU = 1000 milli-vCPU and 1 GB = 1000 milli-GB, so sums never drift the way
repeated float additions do. Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

MILLI = 1000


def to_milli(value: float, what: str = "amount") -> int:
    """`value` (vCPU or GB) in whole milli-units; refuses negative or non-finite values."""
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{what} must be a finite number >= 0 (got {value!r})")
    return round(value * MILLI)


def from_milli(milli: int) -> float:
    return milli / MILLI


@dataclass(frozen=True, slots=True, order=True)
class Resources:
    """CPU in milli-vCPU and RAM in milli-GB (GB = 2**30 bytes, as `SERVER_MAX_RAM`)."""

    cpu_m: int
    ram_m: int

    def __post_init__(self) -> None:
        if self.cpu_m < 0 or self.ram_m < 0:
            raise ValueError(f"resources must not be negative (got {self.cpu_m}, {self.ram_m})")

    @classmethod
    def of(cls, cpu: float, ram: float) -> Resources:
        """From vCPUs and GB."""
        return cls(to_milli(cpu, "cpu"), to_milli(ram, "ram"))

    @property
    def cpu(self) -> float:
        return from_milli(self.cpu_m)

    @property
    def ram(self) -> float:
        return from_milli(self.ram_m)

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.cpu_m + other.cpu_m, self.ram_m + other.ram_m)

    def __str__(self) -> str:
        return f"{self.cpu:g} vCPU / {self.ram:g} GB"


ZERO = Resources(0, 0)

DEFAULT_COSTS: Mapping[str, Resources] = MappingProxyType(
    {
        "registre": Resources.of(3, 1),
        "index": Resources.of(1.5, 0.75),
        "acte": Resources.of(1, 0.5),
    }
)
"""What one worker of each type holds, from the system being replaced."""


def parse_costs(text: str, base: Mapping[str, Resources] = DEFAULT_COSTS) -> dict[str, Resources]:
    """Costs from `"kind=cpu:ram,..."` (e.g. `"index=2:1,acte=1:0.5"`) over `base`.

    Kinds not named keep their `base` cost; an empty text gives `base` unchanged.
    Raises ValueError with a one-line message naming the faulty item.
    """
    costs = dict(base)
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        kind, eq, amounts = item.partition("=")
        kind = kind.strip().lower()
        cpu_text, colon, ram_text = amounts.partition(":")
        if not eq or not kind or not colon:
            raise ValueError(f"{item!r} is not of the form kind=cpu:ram (e.g. index=1.5:0.75)")
        try:
            costs[kind] = Resources.of(float(cpu_text), float(ram_text))
        except ValueError:
            raise ValueError(
                f"{item!r}: cpu and ram must be numbers >= 0 (e.g. index=1.5:0.75)"
            ) from None
    return costs


def format_costs(costs: Mapping[str, Resources]) -> str:
    """The inverse of `parse_costs` (for display and `.env` files)."""
    return ",".join(f"{kind}={cost.cpu:g}:{cost.ram:g}" for kind, cost in costs.items())
