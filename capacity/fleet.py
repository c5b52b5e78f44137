"""Every server's ledger, for `ocr-pool capacity` and other readers."""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis
from redis.exceptions import RedisError

from capacity.errors import CapacityError, redact
from capacity.keys import scan_patterns, server_id_of
from capacity.ledger import CapacityLedger
from capacity.state import ServerState, text


async def server_ids(redis: Redis, prefix: str = "") -> list[str]:
    """Ids of the servers that have ledger keys under `prefix` (SCAN, never KEYS)."""
    found: set[str] = set()
    try:
        for pattern in scan_patterns(prefix):
            async for key in redis.scan_iter(match=pattern, count=500):
                server_id = server_id_of(prefix, text(key))
                if server_id is not None:
                    found.add(server_id)
    except RedisError as exc:
        raise CapacityError(
            redact(f"capacity ledger: listing servers failed: {type(exc).__name__}: {exc}")
        ) from None
    return sorted(found)


async def read_fleet(
    redis: Redis, prefix: str = "", servers: Sequence[str] | None = None
) -> list[ServerState]:
    """Each server's state, expired leases reaped first."""
    ids = list(servers) if servers else await server_ids(redis, prefix)
    return [await CapacityLedger(redis, server_id, prefix=prefix).reap() for server_id in ids]
