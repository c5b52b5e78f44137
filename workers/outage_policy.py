"""How a worker waits out an outage of its queue database (pure policy).

A worker whose database cannot be reached keeps working: its lease runs out, but the
lease token still fences the row (migration 0009), so the result is taken once the
database answers again unless another worker claimed the row meanwhile. The end of a
job (complete, fail, release) is retried until then; renewals are retried sooner than
the heartbeat period. After the database answers, the reaper gives a holder one whole
lease to take its row back, so every wait here stays well under a lease.
"""

from __future__ import annotations

FIRST_PAUSE_SECONDS = 0.2
LONGEST_PAUSE_SECONDS = 5.0


def outage_pause(failures: int, lease_seconds: float) -> float:
    """Pause before the next try after `failures` failed ones in a row (1-based):
    0.2 s doubling, at most 5 s and at most a quarter of the lease (never under 0.2 s),
    so the holder is back at least four times within the lease the reaper leaves it."""
    if failures < 1:
        raise ValueError(f"failures count from 1 (got {failures})")
    if lease_seconds <= 0:
        raise ValueError(f"the lease must be positive (got {lease_seconds})")
    cap = max(FIRST_PAUSE_SECONDS, min(LONGEST_PAUSE_SECONDS, lease_seconds / 4))
    return float(min(cap, FIRST_PAUSE_SECONDS * 2 ** min(failures - 1, 30)))


def renew_pause(failures: int, heartbeat_seconds: float, lease_seconds: float) -> float:
    """Pause before the next heartbeat: the heartbeat period while renewals go through
    (`failures` = 0), else `outage_pause`, never longer than the period."""
    if failures == 0:
        return heartbeat_seconds
    return min(heartbeat_seconds, outage_pause(failures, lease_seconds))


def refused_too_long(refused_for: float, lease_seconds: float) -> bool:
    """A database that answers but keeps refusing a write (not an outage: a bug, a
    permission) is given up on after one lease period."""
    return refused_for >= lease_seconds
