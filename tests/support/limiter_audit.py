"""Reading the grant logs of the limiter stress test: the fullest sliding window, how
much of the limits a run used, and who waited how long."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Grant:
    at_us: int
    reserved: int
    final: int
    counted: bool
    waited: float
    granted_us: int = 0
    """when Redis granted it (its send, `at_us`, may come later: an early grant waits for
    its moment)"""


def read_grants(paths: Iterable[Path]) -> list[Grant]:
    grants = [
        Grant(e["g"], e["r"], e["f"], e["c"], e["w"], e.get("t", e["g"]))
        for path in paths
        for e in map(json.loads, path.read_text(encoding="utf-8").splitlines())
    ]
    return sorted(grants, key=lambda g: g.at_us)


@dataclass(frozen=True, slots=True)
class Fullest:
    requests: int
    tokens: int
    requests_at_us: int
    tokens_at_us: int


def fullest_window(grants: Sequence[Grant], window_us: int) -> Fullest:
    """The most requests and tokens in any window (t - window, t] ending at a grant."""
    best_requests = best_tokens = 0
    requests_at = tokens_at = 0
    start = 0
    requests = tokens = 0
    for grant in grants:
        requests += grant.counted
        tokens += grant.final
        while grants[start].at_us <= grant.at_us - window_us:
            requests -= grants[start].counted
            tokens -= grants[start].final
            start += 1
        if requests > best_requests:
            best_requests, requests_at = requests, grant.at_us
        if tokens > best_tokens:
            best_tokens, tokens_at = tokens, grant.at_us
    return Fullest(best_requests, best_tokens, requests_at, tokens_at)


def used_share(
    grants: Sequence[Grant], start_us: int, end_us: int, window_us: int, limit: int, *, tokens: bool
) -> float:
    """What share of `limit` per window the grants in [start, end) used on average."""
    inside = [g for g in grants if start_us <= g.at_us < end_us]
    used = sum(g.final for g in inside) if tokens else sum(g.counted for g in inside)
    return used / (limit * (end_us - start_us) / window_us)
