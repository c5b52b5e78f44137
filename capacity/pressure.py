"""The pressure guard: while the host's real CPU or memory use is above
(100 − reserve)%, nothing new is admitted. Decisions are pure functions;
`PressureGuard` adds the readings (from a `HostProbe`) and a short cache.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from capacity.probe import CpuSample, HostProbe, Probe


@dataclass(frozen=True, slots=True)
class Reading:
    """The host's use, in percent: CPU busy time since the previous reading, memory now."""

    cpu_percent: float
    ram_percent: float


@dataclass(frozen=True, slots=True)
class Pressure:
    reading: Reading
    cpu_limit: float
    ram_limit: float
    over: tuple[str, ...]
    """Dimensions above their limit: ("cpu",), ("ram",), both or none."""

    @property
    def blocked(self) -> bool:
        return bool(self.over)

    def describe(self) -> str:
        return (
            f"host cpu {self.reading.cpu_percent:.1f}% (limit {self.cpu_limit:g}%), "
            f"ram {self.reading.ram_percent:.1f}% (limit {self.ram_limit:g}%)"
        )

    @property
    def pressing(self) -> str:
        """What is over its limit, e.g. `cpu 91.3% > 80%` ('' when nothing is)."""
        return pressing_text(
            self.over,
            {"cpu": self.reading.cpu_percent, "ram": self.reading.ram_percent},
            {"cpu": self.cpu_limit, "ram": self.ram_limit},
        )


def pressing_text(over: tuple[str, ...], use: dict[str, float], limits: dict[str, float]) -> str:
    """`cpu 91.3% > 80%, ram 85.0% > 80%` for the dimensions in `over`."""
    return ", ".join(f"{name} {use[name]:.1f}% > {limits[name]:g}%" for name in over)


def progress_allowed(pressure: Pressure, others_held: int) -> bool:
    """The progress rule: host pressure holds back a participant's (a pool's) further
    leases, never its only one. `others_held` counts the leases it holds (or is being
    granted) besides the one asked for; at 0 the lease is admitted whatever the host's
    load, so a pool always has a job going."""
    if others_held < 0:
        raise ValueError(f"others_held must not be negative (got {others_held})")
    return not pressure.blocked or others_held == 0


def limit_percent(reserve_percent: float) -> float:
    """The use above which admission stops: 100 − reserve."""
    if not 0 <= reserve_percent < 100:
        raise ValueError(f"reserve percent must be in [0, 100) (got {reserve_percent!r})")
    return 100.0 - reserve_percent


def judge(reading: Reading, reserve_cpu_percent: float, reserve_ram_percent: float) -> Pressure:
    """Blocked while CPU or memory use is strictly above its limit (a 0% reserve never blocks)."""
    cpu_limit = limit_percent(reserve_cpu_percent)
    ram_limit = limit_percent(reserve_ram_percent)
    over = tuple(
        name
        for name, use, limit in (
            ("cpu", reading.cpu_percent, cpu_limit),
            ("ram", reading.ram_percent, ram_limit),
        )
        if use > limit
    )
    return Pressure(reading, cpu_limit, ram_limit, over)


def busy_percent(before: CpuSample | None, after: CpuSample) -> float:
    """CPU use between two samples of cumulated CPU times (since boot when `before` is None)."""
    busy = after.busy - (before.busy if before else 0.0)
    total = after.total - (before.total if before else 0.0)
    if total <= 0:
        return 0.0
    return max(0.0, min(100.0, 100.0 * busy / total))


class PressureGuard:
    """Measures the host and judges it, at most once per `min_interval` seconds.

    The CPU figure is the busy share since the previous measurement (the first one:
    since the guard was made), so short spikes are averaged, not ignored.
    """

    def __init__(
        self,
        reserve_cpu_percent: float,
        reserve_ram_percent: float,
        *,
        probe: Probe | None = None,
        min_interval: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        limit_percent(reserve_cpu_percent)
        limit_percent(reserve_ram_percent)
        self.reserve_cpu_percent = reserve_cpu_percent
        self.reserve_ram_percent = reserve_ram_percent
        self._probe: Probe = probe or HostProbe()
        self._min_interval = min_interval
        self._clock = clock
        self._cpu_base: CpuSample | None = self._probe.cpu_sample()
        self._last: Pressure | None = None
        self._last_at = 0.0

    def check(self) -> Pressure:
        now = self._clock()
        if self._last is not None and now - self._last_at < self._min_interval:
            return self._last
        sample = self._probe.cpu_sample()
        reading = Reading(busy_percent(self._cpu_base, sample), self._probe.memory_percent())
        self._cpu_base = sample
        self._last = judge(reading, self.reserve_cpu_percent, self.reserve_ram_percent)
        self._last_at = now
        return self._last
