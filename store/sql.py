"""Named SQL queries: every statement the project sends lives in a `.sql` file next to
the code that uses it. A file holds queries each introduced by a ``-- name: <query>``
line (the layout procrastinate and aiosql use), so Python code refers to them by name."""

from __future__ import annotations

import re
from pathlib import Path

_NAME_LINE = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


def parse_queries(text: str) -> dict[str, str]:
    """Split a named-query file into {name: sql}; text before the first name is ignored."""
    matches = list(_NAME_LINE.finditer(text))
    queries: dict[str, str] = {}
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        name = match.group(1)
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice")
        body = text[match.end() : end].strip()
        if not body:
            raise ValueError(f"query {name!r} is empty")
        queries[name] = body
    return queries


def load_queries(path: Path) -> dict[str, str]:
    return parse_queries(path.read_text(encoding="utf-8"))
