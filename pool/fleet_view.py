"""The fleet's pools as `ocr-pool status` shows them, from `worker_pool:allocation`
and `worker_pool:assignments` (readable from any machine)."""

from __future__ import annotations

import json
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from rich.table import Table

from capacity.errors import redact
from pool.fleet_state import ALLOCATION_KEY, ASSIGNMENTS_KEY
from pool.settings import Settings, redact_url


async def read_pools(settings: Settings) -> dict[str, Any]:
    """`{"pools": {id: {...allocation, "workers": {name: assignment}}}}`; raises on Redis errors."""
    redis = Redis.from_url(
        settings.redis_url.get_secret_value(),
        socket_connect_timeout=5,
        socket_timeout=10,
        decode_responses=True,
    )
    prefix = settings.ocr_redis_prefix
    try:
        raw = await redis.get(f"{prefix}{ALLOCATION_KEY}")
        assignments = await redis.hgetall(f"{prefix}{ASSIGNMENTS_KEY}")
    finally:
        await redis.aclose()
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


def pools_table(view: dict[str, Any]) -> Table:
    table = Table(title="Pools (worker_pool:allocation, worker_pool:assignments)")
    for column in ("pool", "server", "index", "acte", "busy", "stolen", "reason"):
        table.add_column(
            column, justify="right" if column in ("index", "acte", "busy", "stolen") else "left"
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
