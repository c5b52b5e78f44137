"""The page layout of the production text columns: each page begins with a line
`--- Page N ---` (the registre extractor's readers split on it). Pure functions."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

PAGE_MARKER = re.compile(
    r"^[ \t]*---[ \t]*Page[ \t]+(\d+)[ \t]*---[ \t]*$", re.IGNORECASE | re.MULTILINE
)


def page_marker(number: int) -> str:
    return f"--- Page {number} ---"


def join_pages(pages: Mapping[int, str]) -> str:
    """`{1: text, 2: text}` → the column's text, pages in order, a blank line between."""
    return "\n\n".join(f"{page_marker(n)}\n{pages[n].strip()}" for n in sorted(pages))


@dataclass(frozen=True, slots=True)
class SplitText:
    pages: list[tuple[int, str]]
    """(number as written, text after its marker) in order of appearance."""
    preamble: str
    """Text before the first marker (stripped; usually empty)."""


def split_pages(text: str) -> SplitText:
    """Cut a text on its `--- Page N ---` lines."""
    markers = list(PAGE_MARKER.finditer(text))
    if not markers:
        return SplitText([], text.strip())
    pages: list[tuple[int, str]] = []
    for i, marker in enumerate(markers):
        end = markers[i + 1].start() if i + 1 < len(markers) else len(text)
        pages.append((int(marker.group(1)), text[marker.end() : end].strip("\n")))
    return SplitText(pages, text[: markers[0].start()].strip())


def stitch(
    partial: str, continuation: str, *, max_overlap: int = 300, min_overlap: int = 16
) -> str:
    """`partial` followed by its `continuation`. A model asked to continue sometimes starts
    by repeating the end of what it already wrote: the longest such overlap (at least
    `min_overlap` characters, so an ordinary repeated word is not eaten) is dropped."""
    limit = min(max_overlap, len(partial), len(continuation))
    for size in range(limit, min_overlap - 1, -1):
        if partial.endswith(continuation[:size]):
            return partial + continuation[size:]
    return partial + continuation
