"""Demo set-up: a database of its own on the local server, and sample PDFs.

`python -m pool.cli.demo ADMIN_URL NAME SAMPLES_DIR` creates database NAME when
missing and prints its URL; scripts/demo.sh then migrates and enqueues.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import anyio
import asyncpg

from pool.cli.samples import write_samples
from store.sql import load_queries

_Q = load_queries(Path(__file__).with_name("demo.sql"))
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


async def ensure_database(admin_url: str, name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"database name {name!r} is not a plain identifier")
    conn = await asyncpg.connect(admin_url)
    try:
        if not await conn.fetchval(_Q["database_exists"], name):
            # CREATE DATABASE takes no parameters; the name is checked above.
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))


def main() -> None:
    admin_url, name, samples = sys.argv[1:4]
    url = anyio.run(ensure_database, admin_url, name)
    write_samples(Path(samples), 6, 6)
    print(url)


if __name__ == "__main__":
    main()
