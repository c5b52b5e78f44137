"""The prompts (French, in `workers/prompts/*.md`) and a digest that versions them."""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources

from workers.boost.natures import CLOSED_NATURES

NAMES = ("index_page", "acte_extract", "acte_boost")


@cache
def prompt(name: str) -> str:
    """The prompt's text; `{{NATURES}}` becomes the closed list of deed natures, one per
    line (the same list the index boost normalises to)."""
    if name not in NAMES:
        raise KeyError(f"no prompt {name!r} (known: {', '.join(NAMES)})")
    text = resources.files("workers").joinpath("prompts", f"{name}.md").read_text("utf-8")
    return text.replace("{{NATURES}}", "\n".join(CLOSED_NATURES)).strip()


@cache
def prompts_digest() -> str:
    """Eight hex digits that change whenever any prompt's text changes (part of the
    result-cache key, so editing a prompt never serves results of the old one)."""
    digest = hashlib.sha256()
    for name in NAMES:
        digest.update(prompt(name).encode())
        digest.update(b"\0")
    return digest.hexdigest()[:8]
