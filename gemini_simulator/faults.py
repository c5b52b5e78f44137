"""Which fault (if any) a generateContent request gets: one seeded draw per request.

One uniform number u in [0, 1) is drawn for every request, whatever the rates; the
kinds take consecutive slices of [0, 1) in the order 5xx, hang, malformed, safety,
bad_json, each as wide as its rate. So a seed gives the same sequence of draws, and a
rate change moves only the slices. `bad_json` only applies to requests that ask for
JSON (response schema or JSON MIME type); the others get no fault. 5xx faults
alternate 500 INTERNAL / 503 UNAVAILABLE, starting with 500.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

FaultKind = Literal["5xx", "hang", "malformed", "safety", "bad_json"]
FAULT_KINDS: tuple[FaultKind, ...] = ("5xx", "hang", "malformed", "safety", "bad_json")


@dataclass(frozen=True, slots=True)
class Fault:
    kind: FaultKind
    status: int = 200
    """HTTP status it is answered with (500 or 503 for 5xx)."""


def pick_kind(u: float, rates: Mapping[str, float]) -> FaultKind | None:
    """The kind whose slice of [0, 1) holds `u` (pure)."""
    edge = 0.0
    for kind in FAULT_KINDS:
        edge += rates.get(kind, 0.0)
        if u < edge:
            return kind
    return None


class FaultPlan:
    def __init__(self, rates: Mapping[str, float], seed: int) -> None:
        self.rates = dict(rates)
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        self._rng = random.Random(f"faults:{seed}")
        self._server_errors = 0

    def decide(self, *, wants_json: bool) -> Fault | None:
        kind = pick_kind(self._rng.random(), self.rates)
        if kind is None or (kind == "bad_json" and not wants_json):
            return None
        if kind == "5xx":
            status = 500 if self._server_errors % 2 == 0 else 503
            self._server_errors += 1
            return Fault(kind, status)
        return Fault(kind)
