"""Content text read as a page: header lines, table rows and their cells, items in a cell.

- A **row** is a line with the cell separator " | " (cells are stripped; a line with no
  separator is one cell; "a|b" is not split; a trailing separator whose space the text
  layer dropped still counts: "a |" is two cells). When no line of the content has a
  separator, every non-empty line is a row.
- A **header line** is `Label : value`: a line with " : " and no cell separator. Its key
  is the label's first word, lower-cased, accents removed (`Circonscription foncière`
  → `circonscription`); a schema property matches it when the property name's first
  `_`-separated token, read the same way, is that key (`lot_number` → `lot`).
- In a cell, items are separated by " ; " and an item's fields by " / ".
- A **window** `(first, last)` (1-based, inclusive) keeps only rows first..last.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

HEADER_SEPARATOR = " : "
_CELL_SEPARATOR = re.compile(r" \|(?= )")
_ITEM_SEPARATOR = re.compile(r" ;(?= )")
_FIELD_SEPARATOR = re.compile(r" /(?= )")


def _split(separator: re.Pattern[str], text: str) -> list[str]:
    return [part.strip() for part in separator.split(f" {text} ")]


def split_cells(line: str) -> list[str]:
    """'a | b | | c |' → ['a', 'b', '', 'c', ''] (cells stripped; a line with no ' | ' is
    one cell; 'a|b' is not split)."""
    return _split(_CELL_SEPARATOR, line)


def has_cells(line: str) -> bool:
    """Whether the line is split into cells (holds the cell separator)."""
    return _CELL_SEPARATOR.search(f" {line} ") is not None


def split_items(cell: str) -> list[str]:
    """'A / x ; B' → ['A / x', 'B'] (empty items dropped: an empty cell has no item)."""
    return [item for item in _split(_ITEM_SEPARATOR, cell) if item]


def split_fields(item: str) -> list[str]:
    """'TREMBLAY, Marie / Vendeur' → ['TREMBLAY, Marie', 'Vendeur']."""
    return _split(_FIELD_SEPARATOR, item)


def fold(word: str) -> str:
    """Lower-cased, accents removed: 'Foncière' → 'fonciere'."""
    decomposed = unicodedata.normalize("NFKD", word.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def property_key(name: str) -> str:
    """The header key a schema property is filled from: 'lot_number' → 'lot'."""
    return fold(name.split("_", 1)[0])


@dataclass(frozen=True, slots=True)
class Header:
    key: str
    """The label's first word, folded."""
    value: str


def header_of(line: str) -> Header | None:
    """`Label : value` → Header(folded first word of the label, value); else None."""
    if HEADER_SEPARATOR not in line or has_cells(line):
        return None
    label, value = line.split(HEADER_SEPARATOR, 1)
    words = label.split()
    if not words:
        return None
    return Header(fold(words[0]), value.strip())


@dataclass(frozen=True, slots=True)
class Content:
    """What an answer is made of: the derived text, whether it was illegible, and the
    window of rows the prompt asked for."""

    text: str
    illegible: bool = False
    window: tuple[int, int] | None = None
    """Rows first..last (1-based, inclusive) only; None: every row."""

    @property
    def rows(self) -> list[str]:
        """Lines with cells if any line has some, else every non-empty line; windowed."""
        lines = [line for line in self.text.splitlines() if line.strip()]
        table = [line for line in lines if has_cells(line)]
        rows = table if table else lines
        if self.window is None:
            return rows
        first, last = self.window
        return rows[max(first, 1) - 1 : max(last, 0)]

    @property
    def headers(self) -> list[Header]:
        """The header lines, in order."""
        found = (header_of(line) for line in self.text.splitlines())
        return [header for header in found if header is not None]

    def header_value(self, name: str) -> str:
        """The value of the first header line matching property `name`; "" if none."""
        key = property_key(name)
        return next((h.value for h in self.headers if h.key == key), "")
