"""How much the simulated model thinks before it answers, as Gemini 2.5 and later do.

Gemini bills thoughts as output tokens and counts them against `maxOutputTokens`; with no
`thinkingConfig` (or `thinkingBudget` -1) a 2.5 model thinks as much as it likes. The
simulator's own rule, deterministic so tests can check the bill:

- only a model named like a thinking Gemini thinks: `gemini-<version>…` with a version
  of 2.5 or later (any other name — `gemini-2.0-flash`, a test's `sim-model` — never
  does);
- `thinkingBudget` 0: no thoughts;
- dynamic thinking (no config, budget -1, or level HIGH / unspecified):
  max(`MIN_THOUGHTS`, ceil(answer tokens × `thinking_ratio`)) tokens;
- a positive budget: the dynamic amount, at most the budget;
- a level: the dynamic amount × its factor (MINIMAL 0.1, LOW 0.3, MEDIUM 0.6, HIGH 1).

Thoughts come first within the output cap: `split_cap` gives what is left for the answer.
"""

from __future__ import annotations

import math
import re

THINKING_SINCE = 2.5
_VERSION = re.compile(r"^gemini-(\d+(?:\.\d+)?)")
MIN_THOUGHTS = 64
LEVEL_FACTORS = {"MINIMAL": 0.1, "LOW": 0.3, "MEDIUM": 0.6, "HIGH": 1.0}


def thinks(model: str) -> bool:
    match = _VERSION.match(model.removeprefix("models/").lower())
    return match is not None and float(match.group(1)) >= THINKING_SINCE


def thought_tokens(
    model: str, budget: int | None, level: str | None, answer_tokens: int, ratio: float
) -> int:
    if not thinks(model) or budget == 0 or ratio <= 0:
        return 0
    dynamic = max(MIN_THOUGHTS, math.ceil(answer_tokens * ratio))
    if level is not None:
        return math.ceil(dynamic * LEVEL_FACTORS.get(level.upper(), 1.0))
    if budget is not None and budget > 0:
        return min(budget, dynamic)
    return dynamic


def split_cap(cap: int | None, thoughts: int) -> tuple[int, int | None]:
    """(thoughts actually produced, room left for the answer) under an output cap."""
    if cap is None:
        return thoughts, None
    produced = min(thoughts, cap)
    return produced, cap - produced
