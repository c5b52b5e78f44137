"""The database side of ocr-pool: numbered migrations and named SQL queries.

Every statement the project sends lives in a `.sql` file in this package or next
to the code that uses it. `load_queries` reads a file of named queries, each
introduced by a ``-- name: <query>`` line (the layout procrastinate and
aiosql use), so Python code refers to queries by name.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

_NAME_LINE = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)
_MIGRATION_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"


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


def discover() -> list[Migration]:
    """The migrations shipped with the package, in version order."""
    found: list[Migration] = []
    for entry in resources.files(__name__).iterdir():
        match = _MIGRATION_FILE.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migration files share a version number: {versions}")
    return found


def combined_sql() -> str:
    """All migrations as one script, for the Supabase SQL editor."""
    parts = [f"-- ===== {m.label} =====\n{m.sql.strip()}\n" for m in discover()]
    # Functions take `SET search_path FROM CURRENT`: pin it as `ocr-pool migrate` does,
    # whatever the editor's session has (it may include "$user").
    header = "SET search_path = public, pg_temp;\n"
    return header + "\n".join(parts)
