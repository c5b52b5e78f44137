"""A migration file's steps (pure text processing, no database).

A file is divided into steps by lines ``-- step: <free text>``; text before the
first marker is a step of its own, and a step holding no statement (only
comments and blank lines) is skipped. The file format is documented in the
package docstring (`store/migrations/__init__.py`); the runner gives each step its own
transaction, or none for a ``CONCURRENTLY`` step.

The scanner knows enough SQL to find the top level of a file: quoted strings
(``'…'``, ``E'…'``), quoted identifiers, dollar-quoted bodies, line and (nested)
block comments. So a ``-- step:`` line inside a function body is not a marker, a
``;`` inside a string ends no statement, and ``CONCURRENTLY`` in a comment or a
string does not make a step concurrent.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

_MARKER = re.compile(r"--[ \t]*step:[ \t]*(.*?)\s*$", re.IGNORECASE)
_CONCURRENTLY = re.compile(r"\bconcurrently\b", re.IGNORECASE)
_CREATE_INDEX_CONCURRENTLY = re.compile(
    r"^\s*create\s+(?:unique\s+)?index\s+concurrently\b", re.IGNORECASE
)
_IF_NOT_EXISTS_NAME = re.compile(
    r"^\s*create\s+(?:unique\s+)?index\s+concurrently\s+if\s+not\s+exists\s+"
    r'("(?:[^"]|"")+"|[a-z_][a-z0-9_$]*)\s+on\b',
    re.IGNORECASE,
)
_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_\x80-\uffff][A-Za-z0-9_\x80-\uffff]*)?\$")
_IDENTIFIER_CHAR = re.compile(r"[A-Za-z0-9_$\x80-\uffff]")


class StepFormatError(ValueError):
    """A migration file that breaks the step format (see the package docstring)."""


class _Kind(Enum):
    CODE = "code"
    SEMICOLON = "semicolon"
    LINE_COMMENT = "line comment"
    BLOCK_COMMENT = "block comment"
    QUOTED = "quoted"


@dataclass(frozen=True, slots=True)
class _Token:
    kind: _Kind
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a migration file.

    `number` counts the file's non-empty steps from 1; `title` is the marker's
    text ("" for text before the first marker); `sql` is the step's text without
    its marker line; `code` is that text with comments blanked out (what the
    database executes); `statements` counts its top-level statements.
    """

    number: int
    title: str
    sql: str
    code: str
    statements: int

    @property
    def concurrent(self) -> bool:
        """True when the step must run outside any transaction (`CONCURRENTLY`)."""
        return _CONCURRENTLY.search(_outside_quotes(self.code)) is not None

    @property
    def label(self) -> str:
        return f"step {self.number}" + (f" ({self.title})" if self.title else "")

    @property
    def index_name(self) -> str | None:
        """The index a `CREATE INDEX CONCURRENTLY IF NOT EXISTS <name>` step builds."""
        return concurrent_index_name(self.code)


def _scan(sql: str) -> Iterator[_Token]:
    """Top-level tokens of `sql`; runs of plain code come out as one CODE token."""
    i, n = 0, len(sql)
    code_start = 0

    def flush(upto: int) -> Iterator[_Token]:
        if upto > code_start:
            yield _Token(_Kind.CODE, code_start, upto)

    while i < n:
        ch = sql[i]
        if ch == "-" and sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end < 0 else end
            yield from flush(i)
            yield _Token(_Kind.LINE_COMMENT, i, end)
            i = code_start = end
        elif ch == "/" and sql.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if sql.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif sql.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            if depth:
                raise StepFormatError("unterminated /* comment")
            yield from flush(i)
            yield _Token(_Kind.BLOCK_COMMENT, i, j)
            i = code_start = j
        elif ch == "'":
            escapes = i > 0 and sql[i - 1] in "eE" and (i < 2 or not _is_ident(sql[i - 2]))
            j = _end_of_quoted(sql, i, "'", backslash=escapes)
            yield from flush(i - 1 if escapes else i)
            yield _Token(_Kind.QUOTED, i - 1 if escapes else i, j)
            i = code_start = j
        elif ch == '"':
            j = _end_of_quoted(sql, i, '"', backslash=False)
            yield from flush(i)
            yield _Token(_Kind.QUOTED, i, j)
            i = code_start = j
        elif ch == "$" and (i == 0 or not _is_ident(sql[i - 1])):
            tag = _DOLLAR_TAG.match(sql, i)
            if tag is None:
                i += 1  # a parameter ($1) or a lone dollar
                continue
            close = sql.find(tag.group(0), tag.end())
            if close < 0:
                raise StepFormatError(f"unterminated dollar-quoted string {tag.group(0)}")
            yield from flush(i)
            yield _Token(_Kind.QUOTED, i, close + len(tag.group(0)))
            i = code_start = close + len(tag.group(0))
        elif ch == ";":
            yield from flush(i)
            yield _Token(_Kind.SEMICOLON, i, i + 1)
            i = code_start = i + 1
        else:
            i += 1
    yield from flush(n)


def _is_ident(ch: str) -> bool:
    return _IDENTIFIER_CHAR.match(ch) is not None


def _end_of_quoted(sql: str, start: int, quote: str, *, backslash: bool) -> int:
    j = start + 1
    while j < len(sql):
        ch = sql[j]
        if backslash and ch == "\\":
            j += 2
            continue
        if ch == quote:
            if sql.startswith(quote * 2, j):
                j += 2
                continue
            return j + 1
        j += 1
    raise StepFormatError(f"unterminated quoted text starting {sql[start : start + 30]!r}")


def _at_line_start(sql: str, pos: int) -> bool:
    line_start = sql.rfind("\n", 0, pos) + 1
    return sql[line_start:pos].strip() == ""


def _outside_quotes(code: str) -> str:
    """`code` with every quoted string, identifier and dollar body blanked out."""
    parts: list[str] = []
    for token in _scan(code):
        text = code[token.start : token.end]
        parts.append(" " if token.kind is _Kind.QUOTED else text)
    return "".join(parts)


def _summarise(text: str) -> tuple[str, int]:
    """(text with comments blanked out, number of top-level statements)."""
    code: list[str] = []
    statements = 0
    pending = False  # the current statement has content
    for token in _scan(text):
        piece = text[token.start : token.end]
        if token.kind in (_Kind.LINE_COMMENT, _Kind.BLOCK_COMMENT):
            code.append(" ")
            continue
        code.append(piece)
        if token.kind is _Kind.SEMICOLON:
            statements += pending
            pending = False
        elif token.kind is _Kind.QUOTED or piece.strip():
            pending = True
    statements += pending
    return "".join(code).strip(), statements


def split_steps(sql: str) -> list[Step]:
    """The steps of a migration file, in order (see the package docstring).

    Raises StepFormatError for a step that holds `CONCURRENTLY` together with
    another statement, or a `CREATE INDEX CONCURRENTLY` without `IF NOT EXISTS`
    and a name (it could not be re-run).
    """
    chunks: list[tuple[str, str]] = []  # (title, text)
    title, start = "", 0
    for token in _scan(sql):
        if token.kind is not _Kind.LINE_COMMENT or not _at_line_start(sql, token.start):
            continue
        marker = _MARKER.match(sql, token.start, token.end)
        if marker is None:
            continue
        chunks.append((title, sql[start : sql.rfind("\n", 0, token.start) + 1]))
        title, start = marker.group(1), token.end
    chunks.append((title, sql[start:]))

    steps: list[Step] = []
    for chunk_title, text in chunks:
        code, statements = _summarise(text)
        if statements == 0:
            continue
        step = Step(len(steps) + 1, chunk_title, text.strip(), code, statements)
        if step.concurrent:
            if statements > 1:
                raise StepFormatError(
                    f"{step.label}: a CONCURRENTLY statement must be alone in its step "
                    f"(found {statements} statements)"
                )
            if _CREATE_INDEX_CONCURRENTLY.match(code) and step.index_name is None:
                raise StepFormatError(
                    f"{step.label}: write CREATE INDEX CONCURRENTLY IF NOT EXISTS <name> "
                    "so that the step can be re-run"
                )
        steps.append(step)
    return steps


def concurrent_index_name(code: str) -> str | None:
    """The index named by `CREATE [UNIQUE] INDEX CONCURRENTLY IF NOT EXISTS <name> ON …`,
    as the catalog spells it (unquoted names fold to lower case), else None."""
    match = _IF_NOT_EXISTS_NAME.match(code)
    if match is None:
        return None
    name = match.group(1)
    if name.startswith('"'):
        return name[1:-1].replace('""', '"')
    return name.lower()
