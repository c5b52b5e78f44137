"""What psutil measures of this host: its size, CPU times and memory use (the I/O edge)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol

import psutil

from capacity.policy import Limits

GB = 2**30


@dataclass(frozen=True, slots=True)
class CpuSample:
    """Cumulated CPU seconds over all cores since boot: busy and total."""

    busy: float
    total: float


class Probe(Protocol):
    def cpu_sample(self) -> CpuSample: ...

    def memory_percent(self) -> float: ...


class HostProbe:
    """psutil readings of the machine this process runs on."""

    def cpu_sample(self) -> CpuSample:
        times = psutil.cpu_times()
        total = sum(times)
        # On Linux guest time is already counted in user/nice (as psutil.cpu_percent does).
        total -= getattr(times, "guest", 0.0) + getattr(times, "guest_nice", 0.0)
        idle = times.idle + getattr(times, "iowait", 0.0)
        return CpuSample(busy=total - idle, total=total)

    def memory_percent(self) -> float:
        """(total − available) / total, in percent: memory the host cannot hand out now."""
        return float(psutil.virtual_memory().percent)


_own: dict[int, psutil.Process] = {}


def process_cpu_seconds() -> float:
    """CPU seconds this process has used (user + system, all its threads)."""
    pid = os.getpid()  # a forked child is another process
    process = _own.get(pid) or _own.setdefault(pid, psutil.Process(pid))
    times = process.cpu_times()
    return float(times.user + times.system)


def machine_size() -> tuple[float, float]:
    """(logical CPUs, RAM in GB) as psutil measures them."""
    return float(psutil.cpu_count(logical=True) or 1), psutil.virtual_memory().total / GB


def resolve_limits(
    max_cpu: float | None,
    max_ram: float | None,
    reserve_cpu_percent: float = 20.0,
    reserve_ram_percent: float = 20.0,
) -> Limits:
    """`SERVER_MAX_CPU` / `SERVER_MAX_RAM` when set, else what psutil measures."""
    measured_cpu, measured_ram = machine_size() if max_cpu is None or max_ram is None else (0, 0)
    return Limits(
        max_cpu if max_cpu is not None else measured_cpu,
        max_ram if max_ram is not None else round(measured_ram, 3),
        reserve_cpu_percent,
        reserve_ram_percent,
    )
