"""A rule's answer for one inscription: the nature, the rule family and why."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Proposal:
    nature: str
    rule: str
    """The rule family, as `BoostNote.rule`."""
    reason: str
    """Why, in French, for a person reading the row."""


def sentence(*clauses: str) -> str:
    """Clauses joined by « ; », capitalised, ending with a period."""
    text = " ; ".join(clauses)
    return text[:1].upper() + text[1:] + "."
