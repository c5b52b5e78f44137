"""What `ocr-pool status` shows of the fleet: the queue figures per environment and type,
and the running pools, from `worker_pool:allocation` and `worker_pool:assignments`
(readable from any machine). Tables are `FitTable`s (every value whole at any width)."""

from __future__ import annotations

import json
from typing import Any

from redis.exceptions import RedisError

from capacity.errors import redact
from pool.fleet_state import ALLOCATION_KEY, ASSIGNMENTS_KEY
from pool.status.tables import Column, FitTable
from pool.wiring.redis_client import redis_client
from pool.wiring.settings import Settings, redact_url
from store import SourceStats


async def read_pools(settings: Settings) -> dict[str, Any]:
    """`{"pools": {id: {...allocation, "workers": {name: assignment}}}}`; raises on Redis errors."""
    prefix = settings.ocr_redis_prefix
    async with redis_client(settings, decode_responses=True) as redis:
        raw = await redis.get(f"{prefix}{ALLOCATION_KEY}")
        assignments = await redis.hgetall(f"{prefix}{ASSIGNMENTS_KEY}")
    pools: dict[str, Any] = {}
    if raw:
        for pool_id, entry in json.loads(raw).get("pools", {}).items():
            pools[pool_id] = {**entry, "workers": {}}
    for worker, value in sorted(assignments.items()):
        row = json.loads(value)
        pool = pools.setdefault(str(row.get("pool", "?")), {"workers": {}})
        pool["workers"][worker] = row
    return {"pools": pools}


async def pools_or_error(settings: Settings) -> dict[str, Any] | str:
    try:
        return await read_pools(settings)
    except (RedisError, OSError, ValueError) as exc:
        target = redact_url(settings.redis_url.get_secret_value())
        return f"Redis {target}: {type(exc).__name__}: {redact(str(exc))}"


def pools_table(view: dict[str, Any]) -> FitTable:
    table = FitTable(
        (
            Column("pool", justify="left", key=True),
            Column("server", justify="left", key=True),
            Column("index"),
            Column("acte"),
            Column("busy"),
            Column("stolen"),
            Column("reason", justify="left", free=True),
        ),
        title="Pools (worker_pool:allocation, worker_pool:assignments)",
    )
    for pool_id, pool in sorted(view["pools"].items()):
        workers = pool.get("workers", {}).values()
        table.add_row(
            pool_id,
            str(pool.get("server", "?")),
            str(pool.get("index", "-")),
            str(pool.get("acte", "-")),
            str(sum(1 for w in workers if w.get("job"))),
            str(sum(1 for w in workers if w.get("stolen"))),
            str(pool.get("reason", "")),
        )
    return table


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def queue_stats_table(stats: dict[str, list[SourceStats]]) -> FitTable:
    """The queue per environment and type (`ocr_queue_stats`)."""
    table = FitTable(
        (
            Column("env", justify="left", key=True),
            Column("type", justify="left", key=True),
            Column("pending"),
            Column("in progress", "in\nprogress"),
            Column("failed"),
            Column("done today", "done\ntoday"),
            Column("done last h", "done\nlast h"),
            Column("oldest wait", "oldest\nwait"),
            Column("p50 s"),
            Column("p95 s"),
        ),
        title="OCR queue",
    )
    for env, rows in stats.items():
        for s in rows:
            table.add_row(
                env,
                s.document_source,
                f"{s.pending:,}",
                f"{s.in_progress:,}",
                f"{s.failed:,}",
                f"{s.completed_today:,}",
                f"{s.completed_last_hour:,}",
                _seconds(s.oldest_pending_seconds),
                _seconds(s.p50_processing_seconds),
                _seconds(s.p95_processing_seconds),
            )
    return table
