"""What a pool tells the fleet in Redis: its share of `worker_pool:allocation` (one JSON
for all pools) and its workers in `worker_pool:assignments` (hash: worker → JSON with
mode, job, since). Both expire when the pool stops refreshing them; a clean stop removes
them at once. Redis errors are logged, never raised: this is for people watching."""

from __future__ import annotations

import json
import logging
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from pool.scripts import script_text

log = logging.getLogger("pool")

ALLOCATION_KEY = "worker_pool:allocation"
ASSIGNMENTS_KEY = "worker_pool:assignments"
ASSIGNMENT_DEADLINES_KEY = "worker_pool:assignments:expires"


class FleetState:
    def __init__(self, redis: Redis, prefix: str, pool_id: str, ttl_seconds: float) -> None:
        self.pool_id = pool_id
        self.ttl_ms = max(1000, round(ttl_seconds * 1000))
        self.allocation_key = f"{prefix}{ALLOCATION_KEY}"
        self.assignments_key = f"{prefix}{ASSIGNMENTS_KEY}"
        self.deadlines_key = f"{prefix}{ASSIGNMENT_DEADLINES_KEY}"
        self._allocation = redis.register_script(script_text("allocation"))
        self._assignments = redis.register_script(script_text("assignments"))
        self._failing = False

    async def publish_allocation(self, entry: dict[str, Any]) -> None:
        await self._call(
            self._allocation,
            [self.allocation_key],
            [self.pool_id, json.dumps(entry, separators=(",", ":")), self.ttl_ms],
        )

    async def withdraw_allocation(self) -> None:
        await self._call(self._allocation, [self.allocation_key], [self.pool_id, "", self.ttl_ms])

    async def publish_assignments(self, rows: dict[str, dict[str, Any] | None]) -> None:
        """`rows`: worker → its assignment, or None to remove the worker."""
        args: list[str | int] = [self.ttl_ms]
        for worker, row in rows.items():
            args += [worker, "" if row is None else json.dumps(row, separators=(",", ":"))]
        await self._call(self._assignments, [self.assignments_key, self.deadlines_key], args)

    async def _call(self, script: Any, keys: list[str], args: list[Any]) -> None:
        try:
            await script(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            if not self._failing:
                log.warning("could not publish the pool's state to Redis: %s", exc)
            self._failing = True
            return
        if self._failing:
            log.info("publishing the pool's state to Redis again")
        self._failing = False
