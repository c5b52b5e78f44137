"""How the pool manager supervises its worker tasks (pure policy, no I/O).

- **Restart with backoff.** A worker task that crashes (its loop raised, or returned
  while the pool was not stopping) is restarted after `restart_delay`: the ceiling
  `base × 2^(streak−1)`, capped, with equal jitter (between half the ceiling and the
  ceiling), so workers that crash together do not restart in lockstep. The streak is
  the worker's crashes in a row; a run that lasted `healthy_after_seconds` starts it
  again at 1 (`next_streak`).
- **Readiness.** The pool is not ready while warming up, once stopping, and while
  `crash_limit` or more worker crashes (any workers) happened in the last
  `crash_window_seconds` (`pool_readiness`). It is ready again by itself once crashes
  stop: when the oldest of them leaves the window.

The defaults (1 s doubling to 60 s; 3 crashes in 5 minutes) are documented in the
README ("Supervision"); tests pass a faster `SupervisionPolicy` to the manager.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class SupervisionPolicy:
    restart_base_seconds: float = 1.0
    """Ceiling of the delay before the first restart of a worker."""
    restart_cap_seconds: float = 60.0
    """The delay's ceiling never exceeds this."""
    healthy_after_seconds: float = 60.0
    """A worker that ran this long before crashing starts its streak again at 1."""
    crash_limit: int = 3
    """This many crashes within the window make the pool not ready."""
    crash_window_seconds: float = 300.0

    def __post_init__(self) -> None:
        if self.restart_base_seconds <= 0 or self.restart_cap_seconds < self.restart_base_seconds:
            raise ValueError("need 0 < restart_base_seconds <= restart_cap_seconds")
        if self.crash_limit < 1 or self.crash_window_seconds <= 0:
            raise ValueError("need crash_limit >= 1 and crash_window_seconds > 0")
        if self.healthy_after_seconds < 0:
            raise ValueError("need healthy_after_seconds >= 0")


def restart_delay(policy: SupervisionPolicy, streak: int, jitter: float) -> float:
    """Seconds to wait before restarting a worker that crashed `streak` times in a row
    (≥ 1). `jitter` in [0, 1] (a uniform draw) places the delay between half the
    ceiling and the ceiling."""
    exponent = min(max(streak, 1) - 1, 62)  # 2^62 s is past any cap: no overflow
    ceiling = min(policy.restart_cap_seconds, policy.restart_base_seconds * 2.0**exponent)
    return ceiling * (0.5 + 0.5 * min(max(jitter, 0.0), 1.0))


def next_streak(policy: SupervisionPolicy, streak: int, ran_seconds: float) -> int:
    """The worker's crash streak after a crash that ended a run of `ran_seconds`."""
    return 1 if ran_seconds >= policy.healthy_after_seconds else streak + 1


class NotReady(StrEnum):
    """Why the pool is not ready (a metric label: a closed set)."""

    WARMING_UP = "warming_up"
    STOPPING = "stopping"
    WORKER_CRASHES = "worker_crashes"


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    code: NotReady | None = None
    reason: str = ""
    """why not, for /readyz and the panel (empty when ready)"""


def recent_crashes(policy: SupervisionPolicy, crash_times: Iterable[float], now: float) -> int:
    """Crashes within the window ending at `now` (same clock as `crash_times`)."""
    return sum(1 for at in crash_times if now - at < policy.crash_window_seconds)


def pool_readiness(
    policy: SupervisionPolicy,
    *,
    warmed_up: bool,
    stopping: bool,
    crash_times: Iterable[float],
    now: float,
) -> Readiness:
    """Whether the pool is ready: warmed up, not stopping, and fewer than
    `crash_limit` worker crashes in the last `crash_window_seconds`."""
    if stopping:
        return Readiness(False, NotReady.STOPPING, "stopping")
    if not warmed_up:
        return Readiness(False, NotReady.WARMING_UP, "warming up")
    crashes = recent_crashes(policy, crash_times, now)
    if crashes >= policy.crash_limit:
        return Readiness(
            False,
            NotReady.WORKER_CRASHES,
            f"{crashes} worker crashes in the last {_span(policy.crash_window_seconds)} "
            f"(limit {policy.crash_limit})",
        )
    return Readiness(True)


def _span(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"
