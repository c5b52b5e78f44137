"""What the limiter enforces: per-model quotas, the window, and how waiters behave."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ratelimit.policy import CeilingPolicy, WireMargin


@dataclass(frozen=True, slots=True)
class Quota:
    """One model's quota: requests and input tokens per window, requests per day."""

    rpm: int
    tpm: int
    rpd: int | None = None

    def __post_init__(self) -> None:
        if self.rpm < 1 or self.tpm < 1 or (self.rpd is not None and self.rpd < 1):
            raise ValueError(f"quota limits must be positive (got {self})")

    def describe(self) -> str:
        day = f", {self.rpd} requests/day" if self.rpd is not None else ""
        return f"{self.rpm} requests and {self.tpm} input tokens per window{day}"


def check_model(model: str) -> str:
    """A model name as the API and our keys use it: `models/` dropped, no spaces or ':'."""
    name = model.removeprefix("models/")
    if not name or any(c.isspace() or c == ":" for c in name):
        raise ValueError(f"model name must be non-empty, without spaces or ':' (got {model!r})")
    return name


def parse_model_quotas(text: str) -> dict[str, Quota]:
    """`model=rpm:tpm[:rpd],...` (e.g. `gemini-2.5-pro=150:2000000:1000`) -> quotas."""
    quotas: dict[str, Quota] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        model, sep, numbers = item.partition("=")
        parts = numbers.split(":")
        if not sep or len(parts) not in (2, 3) or not all(p.strip().isdigit() for p in parts):
            raise ValueError(f"expected model=rpm:tpm[:rpd], got {item!r}")
        values = [int(p) for p in parts]
        quotas[check_model(model.strip())] = Quota(*values)
    return quotas


def day_offset_seconds(timezone: str, at: datetime | None = None) -> int:
    """Seconds to add to UTC to get the local time of the zone whose midnight resets
    per-day quotas (Gemini: America/Los_Angeles), at `at` (default now)."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {timezone!r}") from exc
    offset = (at or datetime.now(UTC)).astimezone(zone).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


@dataclass(frozen=True, slots=True)
class LimiterConfig:
    quota: Quota
    """The quota of every model not named in `model_quotas`."""
    model_quotas: Mapping[str, Quota] = field(default_factory=dict)
    window_seconds: float = 60.0
    day_timezone: str = "America/Los_Angeles"
    max_poll_seconds: float = 0.25
    """A waiter asks again at least this often (room can free early: refunds, reconciles)."""
    ticket_ttl_seconds: float = 5.0
    """A waiter that stopped asking for this long loses its place (it died)."""
    worker_ttl_seconds: float = 120.0
    """A `gemini:workers` field not refreshed for this long is reaped."""
    decrease: float = 0.7
    """Adaptive ceiling: factor applied to the effective limits by a 429 of ours."""
    recovery_per_window: float = 0.15
    """Adaptive ceiling: factor regained per window after a decrease (0.7 -> 0.95 in 1.7
    windows)."""
    lowest_factor: float = 0.1
    own_share: float = 0.9
    """A 429 naming its quota while the fleet used less than this share of its ceiling in
    that quota is someone else's traffic: it pauses the fleet but leaves the ceiling."""
    lead_seconds: float = 0.5
    """A waiter is granted up to this long before its room frees, told when it may send
    (`Reservation.not_before`): the request is built meanwhile, not after a poll."""
    max_flight_seconds: float = 300.0
    """A grant never settled (its process died) stays in flight this long, then counts as
    arrived at that moment. Must exceed the longest call (the client's timeout)."""
    wire_margin_seconds: float = 0.25
    """From `wire()` (just before the HTTP call) to the arrival at Gemini: the SDK's work,
    connection set-up, the network (see `policy.WireMargin`)."""
    wire_bytes_per_second: float = 2_000_000.0
    """Slowest upload counted in the wire margin (the body's bytes at this rate)."""
    settle_delay_seconds: float = 0.005
    """A settlement waits at most this long for a call of this process to carry it."""

    def __post_init__(self) -> None:
        if not 0.05 <= self.window_seconds <= 86_400:
            raise ValueError(f"window must be 0.05 to 86400 s (got {self.window_seconds})")
        if not 0 < self.max_poll_seconds <= 60:
            raise ValueError(f"max poll must be in (0, 60] s (got {self.max_poll_seconds})")
        if self.ticket_ttl_seconds < 2 * self.max_poll_seconds:
            raise ValueError("ticket ttl must be at least twice the max poll interval")
        if not 0 <= self.lead_seconds <= 60:
            raise ValueError(f"lead must be 0 to 60 s (got {self.lead_seconds})")
        if not 1 <= self.max_flight_seconds <= 86_400:
            raise ValueError(f"max flight must be 1 to 86400 s (got {self.max_flight_seconds})")
        if not 0 <= self.settle_delay_seconds <= 1:
            raise ValueError(f"settle delay must be 0 to 1 s (got {self.settle_delay_seconds})")
        _ = (self.ceiling_policy, self.wire_margin)  # each checks its own values
        day_offset_seconds(self.day_timezone)

    @property
    def ceiling_policy(self) -> CeilingPolicy:
        return CeilingPolicy(
            decrease=self.decrease,
            recovery_per_window=self.recovery_per_window,
            lowest_factor=self.lowest_factor,
            own_share=self.own_share,
        )

    @property
    def wire_margin(self) -> WireMargin:
        return WireMargin(self.wire_margin_seconds, self.wire_bytes_per_second)

    def quota_for(self, model: str) -> Quota:
        return self.model_quotas.get(check_model(model), self.quota)

    @property
    def window_us(self) -> int:
        return round(self.window_seconds * 1_000_000)
