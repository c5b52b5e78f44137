"""What the limiter enforces: per-model quotas, the window, and how waiters behave."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


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
    """Adaptive ceiling: factor applied to the effective limits on a 429."""
    recovery_per_window: float = 0.05
    """Adaptive ceiling: factor regained per quiet window (0.5 -> 1.0 in 10 windows)."""
    lowest_factor: float = 0.1

    def __post_init__(self) -> None:
        if not 0.05 <= self.window_seconds <= 86_400:
            raise ValueError(f"window must be 0.05 to 86400 s (got {self.window_seconds})")
        if not 0 < self.max_poll_seconds <= 60:
            raise ValueError(f"max poll must be in (0, 60] s (got {self.max_poll_seconds})")
        if self.ticket_ttl_seconds < 2 * self.max_poll_seconds:
            raise ValueError("ticket ttl must be at least twice the max poll interval")
        if not 0 < self.decrease < 1 or not 0 < self.lowest_factor <= 1:
            raise ValueError("decrease must be in (0, 1) and lowest factor in (0, 1]")
        if self.recovery_per_window < 0:
            raise ValueError("recovery per window must not be negative")
        day_offset_seconds(self.day_timezone)

    def quota_for(self, model: str) -> Quota:
        return self.model_quotas.get(check_model(model), self.quota)

    @property
    def window_us(self) -> int:
        return round(self.window_seconds * 1_000_000)
