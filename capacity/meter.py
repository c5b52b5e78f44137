"""The CPU meter of one process: its CPU time, attributed to the leases it holds.

The ledger tells the meter when a lease starts, changes kind or ends; at each of those
moments (and when the samples are taken) the CPU time the process used since the last
moment is split between the leases held throughout it (`costs.split_cpu`, weighted by
the current cost of their kind). Between two moments the set of leases does not
change, so nothing has to run in the background. CPU used while no lease is held (the
pool's own upkeep) is counted against nobody.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from capacity.costs import Sample, split_cpu
from capacity.probe import process_cpu_seconds


@dataclass(slots=True)
class _Held:
    kind: str
    cpu_seconds: float = 0.0
    held_seconds: float = 0.0


class CpuMeter:
    """`weight(kind)` is the kind's current cost in vCPU (how a shared interval is split)."""

    def __init__(
        self,
        weight: Callable[[str], float],
        *,
        cpu_seconds: Callable[[], float] = process_cpu_seconds,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._weight = weight
        self._cpu = cpu_seconds
        self._clock = clock
        self._held: dict[str, _Held] = {}
        self._done: dict[str, Sample] = {}
        self._last_cpu = cpu_seconds()
        self._last_at = clock()

    @property
    def holders(self) -> dict[str, str]:
        """holder -> kind, for the leases being metered."""
        return {holder: held.kind for holder, held in self._held.items()}

    def tick(self) -> None:
        """Attribute the CPU time used since the previous tick to the leases held."""
        cpu, now = self._cpu(), self._clock()
        used, elapsed = cpu - self._last_cpu, now - self._last_at
        self._last_cpu, self._last_at = cpu, now
        if elapsed <= 0 or not self._held:
            return
        shares = split_cpu(used, {h: self._weight(x.kind) for h, x in self._held.items()})
        for holder, share in shares.items():
            held = self._held[holder]
            held.cpu_seconds += share
            held.held_seconds += elapsed

    def hold(self, holder: str, kind: str) -> None:
        """`holder` holds a lease of `kind` from now (a new lease, or one changing kind)."""
        self.tick()
        if holder in self._held:
            self._close(holder)
        self._held[holder] = _Held(kind)

    def drop(self, holder: str) -> None:
        """`holder`'s lease ended (released or lost)."""
        if holder in self._held:
            self.tick()
            self._close(holder)

    def take(self) -> dict[str, Sample]:
        """Everything measured since the previous take, per kind (leases still held
        included, up to now), and start again from zero."""
        self.tick()
        for holder in list(self._held):
            kind = self._held[holder].kind
            self._close(holder)
            self._held[holder] = _Held(kind)
        taken, self._done = self._done, {}
        return {kind: sample for kind, sample in taken.items() if sample.held_seconds > 0}

    def put_back(self, samples: dict[str, Sample]) -> None:
        """Samples that could not be delivered, to be taken again next time."""
        for kind, sample in samples.items():
            self._done[kind] = self._done.get(kind, Sample(0.0, 0.0)) + sample

    def _close(self, holder: str) -> None:
        held = self._held.pop(holder)
        if held.held_seconds > 0:
            self.put_back({held.kind: Sample(held.cpu_seconds, held.held_seconds)})
