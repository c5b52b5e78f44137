"""Whether a queue database answers, as one pool sees it, and what it says of outages.

Both store adapters keep one `OutageWatch`. A call that fails for lack of a database
(refused, reset, timed out, server shutting down) marks the database unreachable: one
log line when that starts, none for the calls that fail after it (their tracebacks go
to DEBUG). While it is unreachable, the next call first *reports* the outage to the
database (`ocr_note_outage`: from this pool's last successful call to now), and only
then runs; the report is the probe, so nothing (a reaper run above all) reaches the
database before the outage is on record. One line says when it answers again.

The state and the lines are pure (`Reachability`, `on_failure`, `on_answer`, …); the
watch holds the state, the lock and the logger.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

import anyio

from store.base import StoreError, StoreUnavailable

log = logging.getLogger("workers.store")  # the name operators filter on, kept from before the move


@dataclass(frozen=True, slots=True)
class Reachability:
    """Times are seconds on a monotonic clock."""

    last_ok: float | None = None
    """The last call the database answered (an error answer included)."""
    failing_since: float | None = None
    """The first call of the current outage that failed; None while it answers."""
    reason: str = ""
    """Why the first failing call failed (one line)."""

    @property
    def down(self) -> bool:
        return self.failing_since is not None


def on_failure(state: Reachability, now: float, reason: str) -> tuple[Reachability, bool]:
    """A call failed for lack of a database. True: an outage starts here (say so)."""
    if state.down:
        return state, False
    return replace(state, failing_since=now, reason=reason), True


def on_answer(state: Reachability, now: float) -> Reachability:
    """A call was answered (an error answer included). During an outage this changes
    nothing: a call sent before it began may still come back, and the outage ends only
    once it is reported (`on_reported`)."""
    return state if state.down else Reachability(last_ok=now)


def on_reported(state: Reachability, now: float) -> tuple[Reachability, float | None]:
    """The outage report went through: the database answers again. The second value is
    how long it was unreachable (from the first failing call), None if it was not."""
    outage = None if state.failing_since is None else max(0.0, now - state.failing_since)
    return Reachability(last_ok=now), outage


def outage_seconds(state: Reachability, now: float) -> float:
    """The stretch to report: from the last call the database answered before the
    outage (the lease of a holder of this pool cannot have run out before it) to now;
    from the first failure when the pool never reached it."""
    since = state.last_ok if state.last_ok is not None else state.failing_since
    return max(0.001, now - (now if since is None else since))


def unreachable_line(env: str, reason: str) -> str:
    return f"queue database '{env}' unreachable: {reason}; will keep trying"


def answers_again_line(env: str, seconds: float) -> str:
    return f"queue database '{env}' answers again after {seconds:.1f} s"


class OutageWatch:
    """One queue database's reachability for one pool (shared by all its workers)."""

    def __init__(
        self,
        env: str,
        report: Callable[[float], Awaitable[None]],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.env = env
        self._report = report
        self._clock = clock
        self._state = Reachability()
        self._lock = anyio.Lock()

    @property
    def state(self) -> Reachability:
        return self._state

    async def before_call(self) -> None:
        """While the database is unreachable, report the outage first (one caller at a
        time; the others are told at once that it is still unreachable). Raises
        `StoreUnavailable` while the report cannot be made."""
        if not self._state.down:
            return
        if self._lock.locked():
            raise StoreUnavailable(self._state.reason)
        async with self._lock:
            if not self._state.down:
                return
            seconds = outage_seconds(self._state, self._clock())
            try:
                await self._report(seconds)
            except StoreUnavailable as exc:
                log.debug("queue database '%s': outage report failed", self.env, exc_info=exc)
                raise
            except StoreError as exc:
                # Answered, but refused the report (e.g. 0009 not applied): the outage is
                # not on record, the reaper will charge its expiries as before.
                log.warning(
                    "queue database '%s': outage of %.1f s not recorded: %s", self.env, seconds, exc
                )
            self._state, outage = on_reported(self._state, self._clock())
            if outage is not None:
                log.warning(answers_again_line(self.env, outage))

    def failed(self, exc: BaseException, reason: str) -> None:
        self._state, began = on_failure(self._state, self._clock(), reason)
        if began:
            log.warning(unreachable_line(self.env, reason))
        log.debug("queue database '%s' call failed", self.env, exc_info=exc)

    def answered(self) -> None:
        self._state = on_answer(self._state, self._clock())
