"""How long an answer takes: (base + per-1k-input-tokens) × a seeded lognormal factor."""

from __future__ import annotations

import random


class LatencyModel:
    def __init__(self, base_ms: float, per_1k_tokens_ms: float, sigma: float, seed: int) -> None:
        self.base_ms = base_ms
        self.per_1k_tokens_ms = per_1k_tokens_ms
        self.sigma = sigma
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        self._rng = random.Random(f"latency:{seed}")

    def seconds(self, input_tokens: int) -> float:
        """The factor has median 1 (mu = 0); sigma = 0 gives the exact figure."""
        nominal_ms = self.base_ms + self.per_1k_tokens_ms * input_tokens / 1000
        factor = self._rng.lognormvariate(0.0, self.sigma) if self.sigma > 0 else 1.0
        return max(0.0, nominal_ms * factor / 1000)
