"""What a pool leaves on its machine and in Redis, cleared at its start and at its stop.

**At start** (the end of the warm-up, before the first claim): `start_clean()` sweeps the
temporary directories of this machine's dead pools (`workers/tempdirs.py`: a directory
whose owner's lock is free; a SIGKILLed pool's downloads and acte page ranges are in
it), and for each dead pool of this server and Redis prefix takes its workers out of
`gemini:workers` and `worker_pool:assignments` and its entry out of
`worker_pool:allocation` at once, instead of leaving them to their TTLs. Then it claims
this pool's own directory (locked while the pool runs), where every temporary file of
the pool goes.

**At a clean stop** (the end of the run, after the jobs in hand): the pool's allocation
entry and assignments are removed by `FleetState`, its capacity leases by its workers;
`leave()` takes its workers out of `gemini:workers` (the limiter's `forget_workers`)
and removes its temporary directory. Nothing of a cleanly stopped pool stays behind.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Sequence

import anyio
from redis.exceptions import RedisError

from capacity.errors import redact
from pool.fleet_state import FleetState
from ratelimit import GeminiLimiter
from workers.tempdirs import PoolTempDir, SweepReport, TempDirError, sweep

log = logging.getLogger("pool")


async def start_clean(
    limiter: GeminiLimiter,
    *,
    prefix: str,
    server_id: str,
    pool_id: str,
    workers: Sequence[str],
) -> PoolTempDir:
    """Sweep dead pools' leftovers (files, and their fleet entries in Redis), then claim
    this pool's temporary directory. `TempDirError` when the directory cannot be used."""
    report = await anyio.to_thread.run_sync(sweep)
    _log_sweep(report)
    for swept in report.swept:
        owner = swept.owner or {}
        if owner.get("server") != server_id or owner.get("prefix") != prefix:
            continue  # another server id or Redis prefix on this machine: not ours to say
        dead = str(owner.get("pool") or "")
        names = [str(w) for w in owner.get("workers") or () if isinstance(w, str)]
        if dead and names:
            await _withdraw_dead(limiter, prefix, dead, names)
    record = {
        "pool": pool_id,
        "server": server_id,
        "prefix": prefix,
        "workers": list(workers),
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": round(time.time(), 3),
    }
    return await anyio.to_thread.run_sync(lambda: PoolTempDir.claim(pool_id, record))


async def leave(
    limiter: GeminiLimiter, workers: Sequence[str], scratch: PoolTempDir | None
) -> None:
    """A clean stop's last steps: the temporary directory removed (first: it is local and
    cannot hang), the workers out of `gemini:workers`. Never raises: a failure is logged
    (the directory then goes with the next start's sweep, the entries expire)."""
    if scratch is not None:
        try:
            left = scratch.close()
        except OSError as exc:
            log.warning("temporary directory %s not removed: %s", scratch.path, exc)
        else:
            if left:
                log.warning("removed %d temporary file(s) left in %s", left, scratch.path)
    try:
        await limiter.forget_workers(workers)
    except (RedisError, OSError) as exc:
        log.warning(
            "workers not taken out of gemini:workers (they expire within %.0f s): %s",
            limiter.config.worker_ttl_seconds,
            redact(str(exc)),
        )


async def _withdraw_dead(
    limiter: GeminiLimiter, prefix: str, pool: str, workers: list[str]
) -> None:
    fleet = FleetState(limiter.redis, prefix, pool, ttl_seconds=1)
    await fleet.withdraw_allocation()
    await fleet.publish_assignments(dict.fromkeys(workers))
    try:
        listed = await limiter.forget_workers(workers)
    except (RedisError, OSError) as exc:
        log.warning(
            "dead pool %s: its workers stay in gemini:workers until they expire: %s",
            pool,
            redact(str(exc)),
        )
        return
    log.info(
        "dead pool %s: withdrawn from the fleet state (%d worker(s) were still in gemini:workers)",
        pool,
        listed,
    )


def _log_sweep(report: SweepReport) -> None:
    for swept in report.swept:
        owner = swept.owner or {}
        log.warning(
            "start-up sweep: removed the temporary directory of dead pool %s (pid %s, "
            "server %s): %d file(s) it left",
            owner.get("pool", swept.name),
            owner.get("pid", "?"),
            owner.get("server", "?"),
            swept.files,
        )
    if report.legacy_files:
        log.warning(
            "start-up sweep: removed %d temporary file(s) an earlier release left behind",
            report.legacy_files,
        )
    for failure in report.failures[:5]:
        log.warning("start-up sweep: could not remove %s", failure)


__all__ = ["PoolTempDir", "TempDirError", "leave", "start_clean"]
