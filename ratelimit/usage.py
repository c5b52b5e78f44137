"""The fleet's Gemini usage as `publish.lua` reports it (for status and metrics)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ModelUsage:
    model: str
    window_seconds: float
    rpm: int
    """requests in the last window"""
    tpm: int
    """input tokens in the last window"""
    rpd: int
    """requests since the daily reset"""
    rpm_limit: int | None
    tpm_limit: int | None
    rpd_limit: int | None
    factor: float
    """adaptive ceiling: effective limits are the configured ones times this"""
    waiting: int
    cooldown_seconds: float
    cooldown_reason: str
    stats: Mapping[str, int] = field(default_factory=dict)

    @property
    def rpm_effective(self) -> int | None:
        return None if self.rpm_limit is None else max(1, int(self.rpm_limit * self.factor))

    @property
    def tpm_effective(self) -> int | None:
        return None if self.tpm_limit is None else max(1, int(self.tpm_limit * self.factor))

    @property
    def estimate_error_ratio(self) -> float | None:
        """Sum of |actual - estimate| over actual tokens, over every reconciled call."""
        actual = self.stats.get("actual_tokens", 0)
        return self.stats.get("abs_error_tokens", 0) / actual if actual else None

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "window_seconds": self.window_seconds,
            "rpm": self.rpm,
            "tpm": self.tpm,
            "rpd": self.rpd,
            "rpm_limit": self.rpm_limit,
            "tpm_limit": self.tpm_limit,
            "rpd_limit": self.rpd_limit,
            "ceiling_factor": round(self.factor, 4),
            "rpm_effective": self.rpm_effective,
            "tpm_effective": self.tpm_effective,
            "waiting": self.waiting,
            "cooldown_seconds": round(self.cooldown_seconds, 3),
            "cooldown_reason": self.cooldown_reason,
            "estimate_error_ratio": self.estimate_error_ratio,
            "stats": dict(self.stats),
        }


@dataclass(frozen=True, slots=True)
class FleetUsage:
    models: tuple[ModelUsage, ...]
    workers: int
    fence_seconds: float
    """time left during which nothing is granted after Redis lost the window"""

    @property
    def rpm(self) -> int:
        return sum(m.rpm for m in self.models)

    @property
    def tpm(self) -> int:
        return sum(m.tpm for m in self.models)

    def as_json(self) -> dict[str, Any]:
        return {
            "rpm": self.rpm,
            "tpm": self.tpm,
            "workers": self.workers,
            "fence_seconds": self.fence_seconds,
            "models": [m.as_json() for m in self.models],
        }


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def parse_fleet_usage(reply: str | bytes) -> FleetUsage:
    data = json.loads(reply)
    models = data.get("models") or []  # cjson encodes an empty list as {}
    return FleetUsage(
        models=tuple(
            ModelUsage(
                model=m["model"],
                window_seconds=m["window_us"] / 1e6,
                rpm=int(m["rpm"]),
                tpm=int(m["tpm"]),
                rpd=int(m["rpd"]),
                rpm_limit=_int(m.get("rpm_limit")),
                tpm_limit=_int(m.get("tpm_limit")),
                rpd_limit=_int(m.get("rpd_limit")) or None,
                factor=float(m["factor"]),
                waiting=int(m["waiting"]),
                cooldown_seconds=m["cooldown_ms"] / 1000,
                cooldown_reason=m.get("cooldown_reason") or "",
                stats={k: int(v) for k, v in (m.get("stats") or {}).items()},
            )
            for m in (models if isinstance(models, list) else [])
        ),
        workers=int(data.get("workers", 0)),
        fence_seconds=int(data.get("fence_ms", 0)) / 1000,
    )
