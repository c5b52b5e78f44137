"""How much room each step gives Gemini's answer (and its thinking), and the most a model
can give.

Light on purpose (no SDK import): the settings module builds an `OutputRoom` at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass

SMALL_OUTPUT_MODELS = ("gemini-1.0", "gemini-1.5", "gemini-2.0")
"""Model families whose answers stop at 8,192 output tokens; later ones allow 65,536."""
ROOM_GROWTH = 4
"""An index page cut at its room is asked again with this many times more."""


@dataclass(frozen=True, slots=True)
class OutputRoom:
    """`max_output_tokens` of each step's first request. Sized for the common case (an
    index page's JSON, a score of pages of an acte per request); an answer cut at it is
    continued, split or asked again with more room, never stored."""

    index: int = 8192
    acte_extract: int = 32768
    acte_boost: int = 32768

    def __post_init__(self) -> None:
        for name in ("index", "acte_extract", "acte_boost"):
            if getattr(self, name) < 1:
                raise ValueError(f"OutputRoom.{name} must be >= 1")


@dataclass(frozen=True, slots=True)
class ThinkingBudgets:
    """Thinking budget of each step's requests (tokens; -1: as the model likes); None:
    the least the model allows (`workers.gemini.thinking`)."""

    index: int | None = None
    acte_extract: int | None = None
    acte_boost: int | None = None


def model_output_limit(model: str) -> int:
    """The most output tokens `model` can produce in one answer (thinking included), as
    Google documents it: 8,192 for the 1.x and 2.0 families, 65,536 for 2.5 and later
    (and for names it does not know, such as a simulator's)."""
    name = model.removeprefix("models/").lower()
    return 8192 if name.startswith(SMALL_OUTPUT_MODELS) else 65536


def next_room(
    room: int, ceiling: int, cut_tokens: int, previous_cut_tokens: int | None
) -> int | None:
    """More room for a page whose answer was cut at `room` tokens, or None when more room
    cannot help: `room` is already the model's `ceiling`, or the last increase produced no
    longer answer (the cut comes from a cap other than ours)."""
    if room >= ceiling:
        return None
    if previous_cut_tokens is not None and cut_tokens <= previous_cut_tokens:
        return None
    return min(room * ROOM_GROWTH, ceiling)
