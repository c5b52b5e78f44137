"""How much a model may think before it answers. Pure.

Gemini 2.5 and later models think unless told otherwise; their thoughts are billed as
output tokens and count against `max_output_tokens`. Transcribing a page needs no
reasoning, so by default every request asks for the least thinking the model allows:

- Gemini 1.x and 2.0 cannot think: no thinking configuration is sent (they refuse one);
- Gemini 2.5 Flash and Flash-Lite: budget 0 (thinking off);
- Gemini 2.5 Pro cannot turn thinking off: its smallest budget, 128 tokens;
- Gemini 3 models take a thinking *level* instead: the lowest one, MINIMAL on Flash
  models, LOW on Pro ones (a request may not carry both a level and a budget);
- any other name (a proxy's alias, a simulator's model): budget 0.

An explicit budget (`GEMINI_THINKING_BUDGET`, per step) is sent as given, -1 meaning
"dynamic": the model decides, which is what Gemini does when nothing is sent.
"""

from __future__ import annotations

from dataclasses import dataclass

NO_THINKING_FAMILIES = ("gemini-1.", "gemini-2.0")
PRO_25_MIN_BUDGET = 128
DYNAMIC = -1


@dataclass(frozen=True, slots=True)
class Thinking:
    """What to send as `thinkingConfig`: a budget (tokens, -1 dynamic) or a level."""

    budget: int | None = None
    level: str | None = None


def _name(model: str) -> str:
    return model.removeprefix("models/").lower()


def thinking_for(model: str, budget: int | None = None) -> Thinking | None:
    """The thinking configuration of a request to `model`; None: send none.
    `budget` None asks for the least thinking the model allows."""
    name = _name(model)
    if name.startswith(NO_THINKING_FAMILIES):
        return None
    if budget is not None:
        if budget < DYNAMIC:
            raise ValueError(f"thinking budget must be -1 (dynamic) or >= 0 (got {budget})")
        return Thinking(budget=budget)
    if name.startswith("gemini-2.5-pro"):
        return Thinking(budget=PRO_25_MIN_BUDGET)
    if name.startswith("gemini-3"):
        return Thinking(level="MINIMAL" if "flash" in name else "LOW")
    return Thinking(budget=0)
