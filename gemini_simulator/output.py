"""The output cap: an answer longer than `max_output_tokens` is cut, as Gemini cuts it.

The cap is the smaller of the positive values among the request's
`generationConfig.maxOutputTokens` and the simulator's `max_output_tokens` setting (the
model's own output limit; 0 = none). An answer whose output tokens (ceil(chars / 4))
exceed it is cut to its first `cap * 4` characters and finishes with `MAX_TOKENS`
(a JSON answer so cut is no longer valid JSON, as with Gemini); otherwise `STOP`.
"""

from __future__ import annotations

from dataclasses import dataclass

from gemini_simulator.tokens import output_tokens

STOP = "STOP"
MAX_TOKENS = "MAX_TOKENS"
CHARS_PER_TOKEN = 4


def effective_cap(requested: int | None, model_limit: int) -> int | None:
    """The smaller of the positive values among the two; None when neither is."""
    caps = [cap for cap in (requested, model_limit) if cap is not None and cap > 0]
    return min(caps) if caps else None


@dataclass(frozen=True, slots=True)
class Output:
    text: str
    finish_reason: str
    """STOP or MAX_TOKENS."""
    tokens: int
    """Output tokens of `text` (the cut text when cut)."""


def capped(text: str, cap: int | None) -> Output:
    """`text` as sent under `cap` output tokens."""
    if cap is not None and output_tokens(text) > cap:
        cut = text[: cap * CHARS_PER_TOKEN]
        return Output(cut, MAX_TOKENS, output_tokens(cut))
    return Output(text, STOP, output_tokens(text))
