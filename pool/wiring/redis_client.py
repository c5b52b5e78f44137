"""The one way the pool and every command open Redis: from REDIS_URL, a connection
within 5 s and a reply within 10 s. redis-py is imported on first use, so a command
that does not touch Redis does not load it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from pool.wiring.settings import Settings

if TYPE_CHECKING:
    from redis.asyncio import Redis

CONNECT_TIMEOUT_SECONDS = 5
REPLY_TIMEOUT_SECONDS = 10


def new_redis(settings: Settings, *, decode_responses: bool = False) -> Redis:
    """A client (a pool of connections, opened on first use); the caller closes it."""
    from redis.asyncio import Redis

    return Redis.from_url(
        settings.redis_url.get_secret_value(),
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        socket_timeout=REPLY_TIMEOUT_SECONDS,
        decode_responses=decode_responses,
    )


@asynccontextmanager
async def redis_client(
    settings: Settings, *, decode_responses: bool = False
) -> AsyncIterator[Redis]:
    """`new_redis`, closed on exit: for a command's few reads."""
    redis = new_redis(settings, decode_responses=decode_responses)
    try:
        yield redis
    finally:
        await redis.aclose()
