"""A claiming process for the multi-process queue tests.

Runs N concurrent claim → (hold) → complete loops against one database until
nothing is left to claim, recovering expired leases as it goes, and appends one
line per event to --out ("claimed <id>", "completed <id>", "refused <id>"),
flushed at once so the record survives a SIGKILL.
"""

from __future__ import annotations

import argparse
import os
from typing import TextIO

import anyio

from domain import DocumentSource
from store import StoreError
from store.postgres import PostgresStore


async def claimer(
    store: PostgresStore, worker: str, out: TextIO, lease: float, hold: float, idle_rounds: int
) -> None:
    """Claim and complete until `idle_rounds` empty polls in a row. A database
    outage is waited out (logged as "outage"), as a worker would."""
    idle = 0
    while idle < idle_rounds:
        try:
            idle = await one_round(store, worker, out, lease, hold, idle)
        except StoreError as exc:
            out.write(f"outage {type(exc).__name__}\n")
            out.flush()
            await anyio.sleep(0.2)


async def one_round(
    store: PostgresStore, worker: str, out: TextIO, lease: float, hold: float, idle: int
) -> int:
    """One claim → complete; returns the new count of empty polls in a row."""
    sources = (DocumentSource.INDEX, DocumentSource.ACTE)
    await store.recover_expired()
    job = None
    first = idle % len(sources)
    for offset in range(len(sources)):
        job = await store.claim(worker, sources[(first + offset) % len(sources)], lease)
        if job is not None:
            break
    if job is None:
        await anyio.sleep(0.1)
        return idle + 1
    out.write(f"claimed {job.id}\n")
    out.flush()
    if hold:
        await anyio.sleep(hold)
    accepted = await store.complete(job, f"done by {worker}")
    out.write(f"{'completed' if accepted else 'refused'} {job.id}\n")
    out.flush()
    return 0


async def main(args: argparse.Namespace, out: TextIO) -> None:
    store = await PostgresStore.connect("test", args.database_url, max_size=args.claimers)
    try:
        async with anyio.create_task_group() as tg:
            for n in range(args.claimers):
                worker = f"{args.name}-{os.getpid()}-{n}"
                tg.start_soon(claimer, store, worker, out, args.lease, args.hold, args.idle_rounds)
    finally:
        await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--name", default="p")
    parser.add_argument("--claimers", type=int, default=4)
    parser.add_argument("--lease", type=float, default=30.0)
    parser.add_argument("--hold", type=float, default=0.0)
    parser.add_argument(
        "--idle-rounds", type=int, default=3, help="empty polls in a row before stopping"
    )
    arguments = parser.parse_args()
    with open(arguments.out, "a", buffering=1) as log:
        anyio.run(main, arguments, log)
