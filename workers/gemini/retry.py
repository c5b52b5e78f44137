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
from typing import Any


class Failure(StrEnum):
    QUOTA = "quota"
    """429: the limiter's fleet cooldown decides when to try again."""
    TRANSIENT = "transient"
    """5xx, timeout, connection error, malformed or non-conforming answer: back off, retry."""
    BLOCKED = "blocked"
    """Safety or policy block: asking again gives the same answer."""
    REJECTED = "rejected"
    """4xx other than 429: the request itself is wrong for this document."""
    AUTH = "auth"
    """The API key is refused: no document is at fault; nothing should be failed."""


TRANSIENT_STATUS = frozenset({408, 409, 500, 502, 503, 504})
KEY_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_SERVICE_BLOCKED", "SERVICE_DISABLED"})


def classify_status(code: int, body: Any = None) -> Failure:
    """What an HTTP error from Gemini means for the caller. `body` is the error JSON:
    Gemini answers an unknown key with 400 (reason API_KEY_INVALID), not 401, and a
    disabled API or unregistered caller with 403; those are the deployment's problem,
    never a document's."""
    if code == 429:
        return Failure.QUOTA
    if code == 401 or key_refused(body):
        return Failure.AUTH
    if code in TRANSIENT_STATUS or code >= 500:
        return Failure.TRANSIENT
    return Failure.REJECTED


def key_refused(body: Any) -> bool:
    """Whether a Gemini error body says the API key (not the request) was refused."""
    error = body.get("error", body) if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return False
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and detail.get("reason") in KEY_REASONS:
            return True
    message = str(error.get("message") or "")
    return "API key not valid" in message or "unregistered callers" in message


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
