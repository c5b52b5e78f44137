"""Continuation requests: the client sends back the answer Gemini cut and asks for the rest.

A user text part whose first line is exactly `--- DÉJÀ TRANSCRIT ---` carries, after
that line, the text the model already produced for this same request. It is not content
(the answer is derived from the other parts, as for the first request); the answer is
then only what comes after that partial text (`remainder`), so that the partial text
followed by the continuation is the whole answer. The output cap applies to it as to
any answer.
"""

from __future__ import annotations

MARKER = "--- DÉJÀ TRANSCRIT ---"
TAIL_CHARS = 200
"""How much of the partial text's end is looked for when it is not a prefix."""


def partial_of(text: str) -> str | None:
    """The partial answer a continuation part carries; None if `text` is not one."""
    first, newline, rest = text.partition("\n")
    if first.rstrip("\r") != MARKER:
        return None
    return rest if newline else ""


def remainder(full: str, partial: str) -> str:
    """What `full` holds after `partial`, the beginning of it the client already has:

    - `partial` empty: all of `full`;
    - `full` starts with `partial`: the rest;
    - else, when the last `TAIL_CHARS` characters of `partial` occur in `full`: what
      follows the occurrence whose end is nearest to `len(partial)` (the earlier one on
      a tie): the client may have trimmed or re-spaced the beginning, and a repeated
      passage elsewhere in the answer must not be taken for it;
    - else all of `full` (the partial text is not from this answer).
    """
    if not partial:
        return full
    if full.startswith(partial):
        return full[len(partial) :]
    tail = partial[-TAIL_CHARS:]
    ends: list[int] = []
    start = full.find(tail)
    while start >= 0:
        ends.append(start + len(tail))
        start = full.find(tail, start + 1)
    if not ends:
        return full
    expected = len(partial)
    end = min(ends, key=lambda e: (abs(e - expected), e))
    return full[end:]
