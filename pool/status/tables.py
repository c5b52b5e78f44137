"""Tables that show every value whole, at whatever width they are printed.

`ocr-pool status`, `gemini` (and its bill), `capacity`, the demo's summary and the status
panel print their tables as `FitTable`s. A `FitTable` picks its layout when it is
rendered, for the width it is given (a terminal's, `COLUMNS`, 80 in a pipe, or a panel's
inside):

1. its own style with the full headers, when the whole table fits;
2. the narrow headers (shorter words, or two lines);
3. the narrow headers in the tight style (no vertical rules, padding shared);
4. one block per row: the row's key values as a heading, then one `header  value` line
   per column.

In layouts 1-3 no value is ever wrapped or cut: only a free-text column (a reason, a
list of holders) wraps, at word boundaries, and only when the rest of the table fits
around at least `FREE_MIN` columns of it. In layout 4 a value wider than the whole line
folds onto the next one; nothing is lost. Headers are labels: they may be shortened,
values never. Cells are plain text (never read as Rich markup) unless given as `Text`.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Literal

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.measure import Measurement
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

FREE_MIN = 20
"""Columns a free-text column keeps when it wraps."""
_BIG = 100_000

Cell = str | Text
Style = Literal["boxed", "light"]
"""`boxed`: Rich's default (heavy head, rules and edges), for commands; `light`: a rule
under the head only, for the status panel."""


@dataclass(frozen=True, slots=True)
class Column:
    header: str
    narrow: str = ""
    """The header when the full ones do not fit ("" = the same); may hold a newline."""
    justify: Literal["left", "right"] = "right"
    key: bool = False
    """Names the row: its value heads the row's block in the one-block-per-row layout."""
    free: bool = False
    """Free text (a reason, a list): may wrap at word boundaries. Never a figure."""

    @property
    def label(self) -> str:
        """The header on one line (the one-block-per-row layout)."""
        return " ".join(self.header.split())


def as_text(cell: Cell) -> Text:
    """A cell as Text: a `str` is shown as typed (brackets are not markup)."""
    return cell if isinstance(cell, Text) else Text(cell)


def _width(text: str) -> int:
    return max((cell_len(line) for line in text.splitlines()), default=0)


@cache
def _measuring_console() -> Console:
    return Console(file=io.StringIO(), width=_BIG, color_system=None, legacy_windows=False)


def natural_width(renderable: RenderableType) -> int:
    """Columns `renderable` takes when nothing limits it."""
    console = _measuring_console()
    return Measurement.get(console, console.options.update_width(_BIG), renderable).maximum


def least_width(renderable: RenderableType) -> int:
    """The fewest columns `renderable` can be given."""
    console = _measuring_console()
    return Measurement.get(console, console.options.update_width(_BIG), renderable).minimum


class FitTable:
    """A table that never cuts a value (see the module's docstring)."""

    def __init__(
        self,
        columns: Sequence[Column],
        *,
        title: str = "",
        style: Style = "boxed",
    ) -> None:
        self.columns = tuple(columns)
        self.title = title
        self.style: Style = style
        self.rows: list[tuple[tuple[Text, ...], str]] = []

    def add_row(self, *cells: Cell, style: str = "") -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"{len(cells)} cells for {len(self.columns)} columns")
        self.rows.append((tuple(as_text(c) for c in cells), style))

    # -- layouts ----------------------------------------------------------------------------
    def _table(self, narrow: bool, style: Style) -> Table:
        if style == "boxed":
            table = Table(title=self.title or None, title_justify="left")
        else:
            table = Table(
                title=self.title or None,
                title_justify="left",
                box=box.SIMPLE_HEAD,
                show_edge=False,
                pad_edge=False,
                collapse_padding=True,
            )
        for column in self.columns:
            header = (column.narrow or column.header) if narrow else column.header
            table.add_column(
                Text(header),
                justify=column.justify,
                no_wrap=not column.free,
                overflow="fold" if column.free else "ellipsis",
            )
        for cells, row_style in self.rows:
            table.add_row(*cells, style=row_style or None)
        return table

    def _needs(self, table: Table, narrow: bool) -> int:
        """Columns `table` needs with every value whole: its natural width, less what
        free-text columns may give up by wrapping down to `FREE_MIN`."""
        need = natural_width(table)
        for n, column in enumerate(self.columns):
            if not column.free:
                continue
            header = (column.narrow or column.header) if narrow else column.header
            widest = max([_width(header), *(c[n].cell_len for c, _ in self.rows)])
            need -= max(0, widest - max(FREE_MIN, _width(header)))
        return need

    def tables(self) -> Iterable[tuple[Table, int]]:
        """Layouts 1-3 in order, with the columns each needs."""
        tried: list[tuple[bool, Style]] = [(False, self.style), (True, self.style)]
        if self.style != "light":
            tried.append((True, "light"))
        for narrow, style in tried:
            table = self._table(narrow, style)
            yield table, self._needs(table, narrow)

    def blocks(self, width: int = _BIG) -> RenderableType:
        """Layout 4: one block per row; its labels are the full headers on one line, or
        the narrow ones when a value would not fit beside a full one."""
        parts: list[RenderableType] = []
        if self.title:
            parts.append(Text(self.title, style="table.title"))
        keys = [n for n, c in enumerate(self.columns) if c.key] or [0]
        shown = [n for n in range(len(self.columns)) if n not in keys]
        figures = [n for n in shown if not self.columns[n].free]
        widest = max((c[n].cell_len for c, _ in self.rows for n in figures), default=0)
        labels = {n: self.columns[n].label for n in shown}
        if 2 + max(map(len, labels.values()), default=0) + 2 + widest > width:
            labels = {n: " ".join((c.narrow or c.header).split()) for n, c in self._at(shown)}
        for cells, row_style in self.rows:
            heading = Text(" · ").join(cells[n] for n in keys)
            heading.stylize("bold")
            if row_style:
                heading.stylize(row_style)
            grid = Table.grid(padding=(0, 2))
            grid.add_column(no_wrap=True, style="dim")
            grid.add_column(overflow="fold")
            for n in shown:
                grid.add_row(labels[n], cells[n])
            parts += [heading, Padding(grid, (0, 0, 0, 2), expand=False)]
        return Group(*parts)

    def _at(self, indexes: Iterable[int]) -> Iterable[tuple[int, Column]]:
        return ((n, self.columns[n]) for n in indexes)

    def layout(self, width: int) -> RenderableType:
        """The first layout that shows every value whole in `width` columns."""
        for table, needs in self.tables():
            if needs <= width:
                return table
        return self.blocks(width)

    # -- Rich protocol ------------------------------------------------------------------------
    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.layout(options.max_width)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        first, _ = next(iter(self.tables()))
        blocks = self.blocks()
        least = min(least_width(blocks), natural_width(blocks))
        return Measurement(least, max(least, natural_width(first))).clamp(
            max_width=options.max_width
        )


class SideBySide:
    """Two renderables side by side when both fit whole in the width, else one above the
    other (so neither is squeezed into a narrower layout)."""

    def __init__(self, left: RenderableType, right: RenderableType, gap: int = 6) -> None:
        self.left = left
        self.right = right
        self.gap = gap

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        left, right = natural_width(self.left), natural_width(self.right)
        if left + self.gap + right <= options.max_width:
            grid = Table.grid(padding=(0, self.gap, 0, 0))
            grid.add_column(width=left)
            grid.add_column(width=right)
            grid.add_row(self.left, self.right)
            yield grid
        else:
            yield Group(self.left, Text(""), self.right)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        least = max(least_width(self.left), least_width(self.right))
        most = natural_width(self.left) + self.gap + natural_width(self.right)
        return Measurement(least, most).clamp(max_width=options.max_width)


def render_text(renderable: RenderableType, width: int) -> str:
    """`renderable` as plain text at `width` columns (tests, and the demo's transcript)."""
    console = Console(
        file=io.StringIO(), width=width, color_system=None, record=True, legacy_windows=False
    )
    console.print(renderable)
    return console.export_text()
