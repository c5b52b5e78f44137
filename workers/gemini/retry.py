"""When to retry a Gemini call, and how long to wait first (pure policy).

The SDK retries nothing by default and ignores RetryInfo; here every attempt goes
back through the shared limiter, so a 429 waits out the fleet cooldown there rather
than sleeping locally. Other transient failures (5xx, timeouts, a broken answer)
back off exponentially with full jitter.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum


class Failure(StrEnum):
    QUOTA = "quota"
    """429: the limiter's fleet cooldown decides when to try again."""
    TRANSIENT = "transient"
    """5xx, timeout, connection error, malformed or non-conforming answer: back off, retry."""
    BLOCKED = "blocked"
    """Safety or policy block: asking again gives the same answer."""
    REJECTED = "rejected"
    """4xx other than 429: the request itself is wrong for this document."""


TRANSIENT_STATUS = frozenset({408, 409, 500, 502, 503, 504})
AUTH_STATUS = frozenset({401, 403})


def classify_status(code: int) -> Failure:
    """What an HTTP error status from Gemini means for the caller."""
    if code == 429:
        return Failure.QUOTA
    if code in TRANSIENT_STATUS or code >= 500 or code in AUTH_STATUS:
        # A refused key is a deployment problem, not the document's: never a permanent
        # failure of the row (the job goes back to the queue once attempts run out).
        return Failure.TRANSIENT
    return Failure.REJECTED


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 5
    """Calls per request for transient failures (the first included)."""
    max_quota_retries: int = 30
    """429s tolerated per request before giving up (each waits a fleet cooldown)."""
    base_delay: float = 1.0
    max_delay: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.max_quota_retries < 0:
            raise ValueError("max_attempts must be >= 1 and max_quota_retries >= 0")
        if not 0 <= self.base_delay <= self.max_delay:
            raise ValueError("need 0 <= base_delay <= max_delay")

    def delay(self, failures: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after the `failures`-th transient failure (1-based):
        uniform in [0, min(max_delay, base_delay * 2**(failures-1))] ("full jitter",
        so many workers that failed together do not retry together)."""
        if failures < 1:
            raise ValueError(f"failures counts from 1 (got {failures})")
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** min(failures - 1, 30))
        return (rng or random).uniform(0.0, ceiling)
