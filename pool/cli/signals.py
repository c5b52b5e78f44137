"""What a stop signal means to a running pool (pure policy, no I/O).

One `systemctl stop` or Ctrl-C can reach the pool more than once: under `uv run`, and
with systemd's default `KillMode=control-group`, the signal goes to every process of
the group *and* `uv` forwards its own copy to the pool (SIGTERM at once, SIGINT about
200 ms later). So:

- the first SIGTERM or SIGINT stops claiming; jobs in hand finish within
  `OCR_SHUTDOWN_GRACE_SECONDS` (a graceful stop);
- the same signal again within `REPEAT_WINDOW_SECONDS` of the previous one is the same
  stop (counted as one);
- a later SIGTERM changes nothing until the grace deadline (a supervisor repeating
  its request must not cut the graceful finish short); after it, it forces;
- a later SIGINT (a second Ctrl-C), or SIGQUIT at any time (Ctrl-\\), forces: the
  jobs in hand are given back untouched at once.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from enum import StrEnum

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)
REPEAT_WINDOW_SECONDS = 1.0
"""A copy of a signal arriving this soon after the previous one is the same request
(uv forwards SIGINT after 200 ms; SIGTERM at once)."""


class Action(StrEnum):
    STOP = "stop"
    """Stop claiming, finish the jobs in hand within the grace period."""
    FORCE = "force"
    """Give the jobs in hand back now."""
    SAME = "same"
    """A copy of the signal just handled: nothing more to do."""
    ALREADY_STOPPING = "already_stopping"
    """SIGTERM during the graceful stop: it goes on until the grace deadline."""


@dataclass(frozen=True, slots=True)
class SignalState:
    stop_since: float | None = None
    """when the first stop signal came (monotonic), None before it"""
    last_seen: dict[int, float] = field(default_factory=dict)
    """signal number -> when it was last received"""


def on_signal(
    state: SignalState,
    signum: int,
    now: float,
    grace_seconds: float,
    repeat_window: float = REPEAT_WINDOW_SECONDS,
) -> tuple[Action, SignalState]:
    """The action for `signum` received at `now` (monotonic seconds), and the state
    for the next signal."""
    previous = state.last_seen.get(signum)
    seen = SignalState(
        state.stop_since if state.stop_since is not None else now,
        {**state.last_seen, signum: now},
    )
    if signum == signal.SIGQUIT:
        return Action.FORCE, seen
    if state.stop_since is None:
        return Action.STOP, seen
    if previous is not None and now - previous < repeat_window:
        return Action.SAME, seen
    if signum == signal.SIGTERM:
        if now - state.stop_since >= grace_seconds:
            return Action.FORCE, seen
        return Action.ALREADY_STOPPING, seen
    return Action.FORCE, seen
