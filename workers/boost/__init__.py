"""Deterministic boost of index pages: deed natures corrected and normalised with domain
rules (no model call). `boost_index` is the entry point; its module documents the
policy."""

import hashlib
from functools import cache
from importlib import resources

from workers.boost.index_boost import BoostResult, boost_index
from workers.boost.natures import ADDED_NATURES, CLOSED_NATURES, ORIGINAL_NATURES, read_nature


@cache
def rules_digest() -> str:
    """Eight hex digits that change whenever any module of this package changes (part of
    the index result-cache key: a cached boost made by other rules is never served)."""
    digest = hashlib.sha256()
    for entry in sorted(resources.files(__name__).iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".py"):
            digest.update(entry.name.encode() + b"\0" + entry.read_bytes() + b"\0")
    return digest.hexdigest()[:8]


__all__ = [
    "ADDED_NATURES",
    "CLOSED_NATURES",
    "ORIGINAL_NATURES",
    "BoostResult",
    "boost_index",
    "read_nature",
    "rules_digest",
]
