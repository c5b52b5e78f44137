"""The limiter's policy as pure functions (the Lua scripts compute the same; tests keep
them in step): when a settled grant's slot counts from, how a local deadline follows from
a grant, and the adaptive ceiling after a 429.

**Stamp at the wire.** Gemini counts a request when it *arrives*, 0.05-0.5 s after the
grant (building, rendering, connection set-up). A grant is therefore in flight from the
grant until it is settled, and cannot leave the window meanwhile. Settling stamps its
slot at an upper bound of the arrival: the moment it was sent plus the wire margin, and
never later than the answer (an answer comes after the arrival, so the answer time is a
hard bound when the send time is unknown). Both are measured on the caller's monotonic
clock from just before the granting call left (`asked_at`): Redis granted at `granted_us`
no earlier than that, so `granted_us + (t - asked_at)` is never earlier than t in Redis
time.

**The ceiling after a 429.** A 429 whose QuotaFailure names a quota (requests or input
tokens per minute) while the fleet used less than `own_share` of its ceiling in that quota
is someone else's traffic on a shared quota: the fleet pauses for its RetryInfo delay, and
the ceiling is left alone. Any other 429 (we were at our ceiling, or the body does not say
which quota) means the quota is smaller than our ceiling: the ceiling is multiplied by
`decrease`, once per round of 429s, and comes back by `recovery_per_window` of the limits
per window after that (additive increase: 0.7 -> 0.95 in 1.7 windows).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Dimension = Literal["requests", "tokens", ""]


@dataclass(frozen=True, slots=True)
class WireMargin:
    """How long a request may take from `wire()` (just before the HTTP call) to its
    arrival at Gemini: the SDK's own work and connection set-up (`seconds`) and the body's
    upload at no less than `bytes_per_second`."""

    seconds: float = 0.1
    bytes_per_second: float = 2_000_000.0

    def __post_init__(self) -> None:
        if self.seconds < 0 or self.bytes_per_second <= 0:
            raise ValueError(f"wire margin must be >= 0 s at a positive rate (got {self})")

    def us(self, body_bytes: int) -> int:
        return math.ceil((self.seconds + max(0, body_bytes) / self.bytes_per_second) * 1e6)


def arrival_bound_us(
    *,
    sent_after_us: int | None,
    answered_after_us: int,
    body_bytes: int,
    margin: WireMargin,
    flight_us: int | None = None,
) -> int:
    """Microseconds after the grant by which the request had certainly reached Gemini:
    sent + margin when the caller marked the send, and never later than the answer. With
    `flight_us` (the grant's flight), never later than its in-flight stamp either, so the
    settled stamp is `min(granted + bound, now)` without reading the slot (settled_stamp_us
    gives the same)."""
    answered = max(0, answered_after_us)
    bound = (
        answered
        if sent_after_us is None
        else min(answered, max(0, sent_after_us) + margin.us(body_bytes))
    )
    return bound if flight_us is None else min(bound, flight_us)


def settled_stamp_us(
    *, granted_us: int, arrival_after_us: int, now_us: int, in_flight_stamp_us: int
) -> int:
    """The slot's stamp once settled (settle_grant in window.lua): the arrival bound,
    never later than now nor than the in-flight stamp it replaces."""
    return min(granted_us + arrival_after_us, now_us, in_flight_stamp_us)


def local_deadline(received_at: float, granted_us: int, not_before_us: int) -> float:
    """The caller's monotonic time at which Redis time has certainly reached
    `not_before_us`, given the grant reply (Redis time `granted_us`) was received at
    `received_at`: Redis granted before the reply came back."""
    return received_at + max(0, not_before_us - granted_us) / 1e6


def ceiling_factor(
    factor: float | None, factor_at_us: int | None, now_us: int, window_us: int, alpha: float
) -> float:
    """The ceiling now: the factor set at `factor_at_us` plus `alpha` per window since."""
    if factor is None:
        return 1.0
    at = now_us if factor_at_us is None else factor_at_us
    return min(1.0, factor + alpha * (now_us - at) / window_us)


def quota_dimension(quota_ids: Iterable[str]) -> Dimension:
    """Which limit a 429's QuotaFailure names: input tokens, requests, or unknown."""
    ids = list(quota_ids)
    tokens = any("Token" in q for q in ids)
    requests = any("Request" in q for q in ids)
    if tokens and not requests:
        return "tokens"
    if requests and not tokens:
        return "requests"
    return ""


def ceiling_share(
    *,
    requests: int,
    tokens: int,
    rpm_limit: int,
    tpm_limit: int,
    factor: float,
    dimension: Dimension,
) -> float:
    """How much of its ceiling the fleet used when a 429 came (1.0 = all of it)."""
    by_requests = requests / max(1, math.floor(rpm_limit * factor))
    by_tokens = tokens / max(1, math.floor(tpm_limit * factor))
    if dimension == "requests":
        return by_requests
    if dimension == "tokens":
        return by_tokens
    return max(by_requests, by_tokens)


@dataclass(frozen=True, slots=True)
class CeilingPolicy:
    decrease: float = 0.7
    """Factor applied to the ceiling by a 429 of ours."""
    recovery_per_window: float = 0.15
    """Ceiling regained per window (of the limits) after a decrease: 0.7 -> 0.95 in 1.7."""
    lowest_factor: float = 0.1
    own_share: float = 0.9
    """A 429 naming its quota is ours when the fleet used at least this share of its
    ceiling in that quota."""

    def __post_init__(self) -> None:
        if not 0 < self.decrease < 1 or not 0 < self.lowest_factor <= 1:
            raise ValueError("decrease must be in (0, 1) and lowest factor in (0, 1]")
        if self.recovery_per_window < 0:
            raise ValueError("recovery per window must not be negative")
        if not 0 < self.own_share <= 1:
            raise ValueError("own share must be in (0, 1]")

    def foreign(self, *, share: float, dimension: Dimension) -> bool:
        """Is a 429 someone else's traffic? Only when it names its quota and we used less
        than `own_share` of our ceiling in it."""
        return dimension != "" and share < self.own_share

    def after_429(
        self, factor: float, *, share: float, dimension: Dimension, per_day: bool, new_round: bool
    ) -> tuple[float, bool]:
        """(ceiling factor, lowered?) after a 429 that came at `share` of the ceiling in
        the quota it names (`dimension`)."""
        if per_day or not new_round or self.foreign(share=share, dimension=dimension):
            return factor, False
        return max(self.lowest_factor, factor * self.decrease), True

    def windows_to_reach(self, start: float, target: float) -> float:
        """Windows the ceiling takes from `start` back to `target` (inf if never)."""
        if start >= target:
            return 0.0
        if self.recovery_per_window == 0:
            return math.inf
        return (target - start) / self.recovery_per_window
