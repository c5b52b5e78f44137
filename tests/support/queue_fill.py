"""A small queue of sample documents for tests that run real pool processes."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from pool.cli.samples import acte_paragraphs, index_lines, write_pdf
from tests.support.sql import Q


def make_documents(directory: Path, count: int) -> list[Path]:
    """`count` two-page index PDFs and as many two-page actes (`index-NN.pdf`, `acte-NN.pdf`)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(count):
        index = directory / f"index-{n:02d}.pdf"
        write_pdf(index, [index_lines(n * 7 + p, 6) for p in range(2)])
        acte = directory / f"acte-{n:02d}.pdf"
        write_pdf(acte, [acte_paragraphs(n * 7 + p, 5) for p in range(2)])
        paths += [index, acte]
    return paths


async def fetch(url: str, name: str) -> list[asyncpg.Record]:
    """The rows of the named query `name` of tests/support/queries.sql."""
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(Q[name]))
    finally:
        await conn.close()


async def enqueue_all(url: str, paths: list[Path]) -> None:
    """An empty queue, then `paths` queued (type from the file name)."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(Q["truncate_queue_and_cache"])
        for path in paths:
            source = "index" if path.name.startswith("index") else "acte"
            await conn.execute(Q["enqueue_one"], source, str(path))
    finally:
        await conn.close()
