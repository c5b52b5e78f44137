"""How long a failed job waits before it may be claimed again (pure policy)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class JobRetryPolicy:
    base_seconds: float = 30.0
    max_seconds: float = 1800.0
    factor: float = 4.0

    def __post_init__(self) -> None:
        if self.base_seconds < 0 or self.max_seconds < self.base_seconds or self.factor < 1:
            raise ValueError("need 0 <= base_seconds <= max_seconds and factor >= 1")

    def delay(self, attempt: int) -> float:
        """Back-off after the `attempt`-th failed attempt (1-based): base, base x factor, ...
        capped at `max_seconds`. Spreads retries of a failing document (a file not
        uploaded yet, Gemini down for minutes) instead of burning its attempts at once."""
        if attempt < 1:
            raise ValueError(f"attempt counts from 1 (got {attempt})")
        return float(min(self.max_seconds, self.base_seconds * self.factor ** min(attempt - 1, 40)))
