"""Deterministic boost of index pages: deed natures corrected and normalised with domain
rules (no model call). `boost_index` is the entry point; its module documents the
policy."""

from workers.boost.index_boost import BoostResult, boost_index
from workers.boost.natures import ADDED_NATURES, CLOSED_NATURES, ORIGINAL_NATURES, read_nature

__all__ = [
    "ADDED_NATURES",
    "CLOSED_NATURES",
    "ORIGINAL_NATURES",
    "BoostResult",
    "boost_index",
    "read_nature",
]
