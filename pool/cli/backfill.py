"""`ocr-pool backfill`: give rows completed before this release what it writes
(`file_content_json`, an index's `boosted_file_content`), derived from their stored text
without calling Gemini (`workers.pipelines.backfill`). Safe on a live table: small
batches, one short update per row, a lock timeout, nothing overwritten."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from pool.cli.migrate import connect_direct
from pool.wiring.settings import QueueEnvironment
from store import StoreError
from store.sql import load_queries
from workers.pipelines.backfill import derive

_Q = load_queries(Path(__file__).with_name("backfill.sql"))


@dataclass(slots=True)
class BackfillReport:
    env: str
    examined: int = 0
    structured: dict[str, int] = field(default_factory=lambda: {"index": 0, "acte": 0})
    boosted: int = 0
    rewritten: int = 0
    """Earlier ocr-pool index results (JSON) rewritten as the production text."""
    unreadable: int = 0
    changed_meanwhile: int = 0
    acte_without_boost: int = 0

    def lines(self, dry_run: bool) -> list[str]:
        verb = "would give" if dry_run else "gave"
        lines = [
            f"{self.env}: {self.examined} completed row(s) examined; {verb} file_content_json "
            f"to {self.structured['index']} index and {self.structured['acte']} acte row(s), "
            f"boosted_file_content to {self.boosted} index row(s)"
        ]
        if self.rewritten:
            lines.append(
                f"{self.env}: {self.rewritten} index row(s) held an earlier ocr-pool JSON in "
                "file_content: rewritten as the production text"
            )
        if self.acte_without_boost:
            lines.append(
                f"{self.env}: {self.acte_without_boost} acte row(s) have no "
                "boosted_file_content; only Gemini can make it (requeue them to redo them)"
            )
        if self.unreadable:
            lines.append(
                f"{self.env}: {self.unreadable} index row(s) left alone: their text is not in a "
                "layout this command can read"
            )
        if self.changed_meanwhile:
            lines.append(
                f"{self.env}: {self.changed_meanwhile} row(s) changed while being read; "
                "run again to cover them"
            )
        return lines


async def backfill_environment(
    env: QueueEnvironment,
    *,
    source: str | None = None,
    batch_size: int = 200,
    dry_run: bool = False,
    progress: Callable[[BackfillReport], None] | None = None,
) -> BackfillReport:
    if env.database_url is None:
        raise StoreError(
            f"{env.name}: no direct database URL ({env.name.upper()}_DATABASE_URL); "
            "backfill runs over a direct connection"
        )
    conn = await connect_direct(env)
    report = BackfillReport(env.name)
    try:
        await conn.fetchval(_Q["session"])
        last = None
        while True:
            if last is None:
                rows = await conn.fetch(_Q["first_batch"], source, batch_size)
            else:
                rows = await conn.fetch(_Q["next_batch"], source, batch_size, last)
            if not rows:
                break
            for row in rows:
                await _one(conn, row, report, dry_run)
            last = rows[-1]["id"]
            if progress is not None:
                progress(report)
    except asyncpg.PostgresError as exc:
        raise StoreError(f"queue database '{env.name}': {exc}") from None
    finally:
        await conn.close()
    return report


async def _one(
    conn: asyncpg.Connection, row: asyncpg.Record, report: BackfillReport, dry_run: bool
) -> None:
    report.examined += 1
    source = row["source"]
    derived = derive(source, row["file_content"], row["boosted_file_content"])
    if derived is None:
        report.unreadable += 1
        return
    if not dry_run:
        written = await conn.fetchval(
            _Q["update_row"],
            row["id"],
            json.dumps(derived.file_content_json, ensure_ascii=False),
            derived.boosted_file_content,
            derived.file_content,
            row["digest"],
        )
        if written is None:
            report.changed_meanwhile += 1
            return
    report.structured[source] += 1
    if derived.boosted_file_content is not None and row["boosted_file_content"] is None:
        report.boosted += 1
    if derived.file_content is not None:
        report.rewritten += 1
    if source == "acte" and row["boosted_file_content"] is None:
        report.acte_without_boost += 1
