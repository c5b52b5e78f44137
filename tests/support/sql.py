"""Direct SQL for test set-up and inspection (named queries in tests/support/queries.sql)."""

from __future__ import annotations

from pathlib import Path

from store.sql import load_queries

Q = load_queries(Path(__file__).with_name("queries.sql"))
