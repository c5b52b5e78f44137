"""Per-model sliding-window quota: requests and input tokens over the last `window` seconds.

Pure (the clock is injected). An admitted request is recorded at its arrival time and
counts until `window` seconds later; a refused one is not recorded. A refusal says how
long until the window has room for that very request.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

QuotaKind = Literal["requests", "tokens"]
_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class Violation:
    kind: QuotaKind
    limit: int
    used: int
    """In the window before this request."""
    retry_after: float
    """Seconds until the window has room for the request (`window` if it never will)."""


@dataclass(frozen=True, slots=True)
class QuotaDecision:
    violations: tuple[Violation, ...] = ()

    @property
    def admitted(self) -> bool:
        return not self.violations

    @property
    def retry_after(self) -> float:
        return max((v.retry_after for v in self.violations), default=0.0)


@dataclass(frozen=True, slots=True)
class Usage:
    requests: int
    tokens: int


class SlidingWindowQuota:
    """`rpm` requests and `tpm` tokens per model per `window_seconds` (0 = no limit)."""

    def __init__(
        self,
        rpm: int,
        tpm: int,
        window_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock = clock
        self._events: dict[str, deque[tuple[float, int]]] = {}
        self.configure(rpm, tpm, window_seconds)

    def configure(self, rpm: int, tpm: int, window_seconds: float) -> None:
        if rpm < 0 or tpm < 0 or window_seconds <= 0:
            raise ValueError("rpm and tpm must be ≥ 0 and window_seconds > 0")
        self.rpm, self.tpm, self.window = rpm, tpm, window_seconds

    def reset(self) -> None:
        self._events.clear()

    def _live(self, model: str, now: float) -> deque[tuple[float, int]]:
        events = self._events.setdefault(model, deque())
        # An event leaves at arrival + window (to within float rounding, so that a caller
        # coming back exactly `retry_after` later is admitted).
        while events and events[0][0] + self.window <= now + _EPSILON:
            events.popleft()
        return events

    def models(self) -> list[str]:
        """Models that sent admitted requests since the last reset."""
        return list(self._events)

    def usage(self, model: str) -> Usage:
        events = self._live(model, self.clock())
        return Usage(len(events), sum(tokens for _, tokens in events))

    def try_admit(self, model: str, tokens: int) -> QuotaDecision:
        """Record the request if both limits allow it, else say which ones refuse it."""
        now = self.clock()
        events = self._live(model, now)
        violations: list[Violation] = []
        count = len(events)
        if self.rpm and count + 1 > self.rpm:
            # The (count - rpm + 1)-th oldest request must leave the window first.
            oldest_to_leave = events[count - self.rpm][0]
            violations.append(
                Violation("requests", self.rpm, count, oldest_to_leave + self.window - now)
            )
        used = sum(t for _, t in events)
        if self.tpm and used + tokens > self.tpm:
            violations.append(
                Violation("tokens", self.tpm, used, self._token_wait(events, used, tokens, now))
            )
        if violations:
            return QuotaDecision(tuple(violations))
        events.append((now, tokens))
        return QuotaDecision()

    def _token_wait(
        self, events: deque[tuple[float, int]], used: int, tokens: int, now: float
    ) -> float:
        if tokens > self.tpm:
            return self.window  # never fits; Gemini still answers 429
        excess = used + tokens - self.tpm
        freed = 0
        for arrived, amount in events:
            freed += amount
            if freed >= excess:
                return arrived + self.window - now
        return self.window  # pragma: no cover - excess ≤ used, so the loop returns


def format_retry_delay(seconds: float) -> str:
    """A protobuf Duration as Gemini's RetryInfo carries it, rounded up to 0.1 s:
    "13s", "1.5s" (never "0s": at least "0.1s")."""
    tenths = max(1, math.ceil(round(seconds * 10, 6)))
    return f"{tenths // 10}s" if tenths % 10 == 0 else f"{tenths / 10:.1f}s"
