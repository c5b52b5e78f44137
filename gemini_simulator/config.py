"""What a simulator is told at start, and the part of it that `POST /_sim/config` may change."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A setting has a wrong name or value (the message names it)."""


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    host: str = "127.0.0.1"
    port: int = 8765
    """0: any free port (read the chosen one from `Simulator.url`)."""
    rpm: int = 1600
    """Requests per model per window (generateContent only); 0 = unlimited."""
    tpm: int = 6_400_000
    """Input tokens (the simulator's own count) per model per window; 0 = unlimited."""
    window_seconds: float = 60.0
    latency_ms: float = 50.0
    """Base latency of a 200 answer."""
    latency_per_1k_tokens_ms: float = 2.0
    """Added per 1000 input tokens."""
    latency_sigma: float = 0.25
    """Sigma of the lognormal factor the latency is multiplied by (0 = exact)."""
    fault_5xx: float = 0.0
    fault_hang: float = 0.0
    fault_malformed: float = 0.0
    fault_safety: float = 0.0
    fault_bad_json: float = 0.0
    hang_seconds: float = 600.0
    max_output_tokens: int = 0
    thinking_ratio: float = 1.0
    """Thoughts of a thinking model asked for dynamic thinking, per answer token
    (`gemini_simulator.thinking`); 0 = the simulated models never think."""
    """The model's own output limit: answers are cut at the smaller of this and the
    request's `maxOutputTokens` (finish reason MAX_TOKENS); 0 = no limit of its own."""
    seed: int = 0
    corpus: tuple[Path, ...] = ()
    """PDF files or directories whose pages images are recognised against."""
    log_path: Path | None = None
    """JSONL file every request record is appended to."""
    max_body_mb: float = 64.0

    def __post_init__(self) -> None:
        validate(self)

    def updated(self, changes: Mapping[str, Any]) -> SimulatorConfig:
        """A copy with `changes` (field name → JSON value) applied; ConfigError if invalid."""
        unknown = sorted(set(changes) - RUNTIME_FIELDS)
        if unknown:
            raise ConfigError(
                f"unknown or start-only setting(s): {', '.join(unknown)} "
                f"(changeable: {', '.join(sorted(RUNTIME_FIELDS))})"
            )
        coerced: dict[str, Any] = {name: _coerce(name, value) for name, value in changes.items()}
        try:
            return dataclasses.replace(self, **coerced)
        except TypeError as exc:  # pragma: no cover - names were checked above
            raise ConfigError(str(exc)) from exc

    def runtime_view(self) -> dict[str, Any]:
        """The settings as JSON (what `GET /_sim/config` returns)."""
        view: dict[str, Any] = {name: getattr(self, name) for name in sorted(RUNTIME_FIELDS)}
        view["host"] = self.host
        view["port"] = self.port
        view["corpus"] = [str(p) for p in self.corpus]
        view["log_path"] = None if self.log_path is None else str(self.log_path)
        return view

    @property
    def fault_rates(self) -> dict[str, float]:
        return {
            "5xx": self.fault_5xx,
            "hang": self.fault_hang,
            "malformed": self.fault_malformed,
            "safety": self.fault_safety,
            "bad_json": self.fault_bad_json,
        }


_INT_FIELDS = frozenset({"rpm", "tpm", "seed", "max_output_tokens"})
_FLOAT_FIELDS = frozenset(
    {
        "window_seconds",
        "latency_ms",
        "latency_per_1k_tokens_ms",
        "latency_sigma",
        "fault_5xx",
        "fault_hang",
        "fault_malformed",
        "fault_safety",
        "fault_bad_json",
        "hang_seconds",
        "thinking_ratio",
    }
)
RUNTIME_FIELDS = _INT_FIELDS | _FLOAT_FIELDS
"""What `POST /_sim/config` may change."""


def _coerce(name: str, value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number (got {value!r})")
    if name in _INT_FIELDS:
        if isinstance(value, float) and not value.is_integer():
            raise ConfigError(f"{name} must be an integer (got {value!r})")
        return int(value)
    return float(value)


def validate(config: SimulatorConfig) -> None:
    for name in sorted(RUNTIME_FIELDS):
        value = getattr(config, name)
        if not math.isfinite(value):
            raise ConfigError(f"{name} must be finite (got {value!r})")
        if name != "seed" and value < 0:
            raise ConfigError(f"{name} must be ≥ 0 (got {value!r})")
    if config.window_seconds <= 0:
        raise ConfigError(f"window_seconds must be > 0 (got {config.window_seconds!r})")
    for kind, rate in config.fault_rates.items():
        if rate > 1:
            raise ConfigError(f"fault_{kind} is a probability, 0..1 (got {rate!r})")
    total = sum(config.fault_rates.values())
    if total > 1 + 1e-9:
        raise ConfigError(f"the fault rates add up to {total:g}; at most 1")
    if not 0 <= config.port <= 65535:
        raise ConfigError(f"port must be 0..65535 (got {config.port!r})")
    if config.max_body_mb <= 0:
        raise ConfigError(f"max_body_mb must be > 0 (got {config.max_body_mb!r})")
