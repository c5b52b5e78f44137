"""The limiter's Lua scripts (ratelimit/lua/*.lua): each operation is the shared prelude
`window.lua` followed by the operation's file, registered once per Redis client and called
by SHA (redis-py loads it again after NOSCRIPT, e.g. a restarted Redis)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

NAMES = ("acquire", "reconcile", "withdraw", "report", "publish")


@cache
def script_text(name: str) -> str:
    """The full text of one operation: prelude, then the operation."""
    if name not in NAMES:
        raise ValueError(f"no limiter script named {name!r}")
    lua = files("benchmarks.limiter_1b66f58") / "lua"
    prelude = (lua / "window.lua").read_text(encoding="utf-8")
    body = (lua / f"{name}.lua").read_text(encoding="utf-8")
    return f"{prelude}\n{body}"


def script_sha(name: str) -> str:
    """The SHA1 other programs pass to EVALSHA after SCRIPT LOAD of the same text."""
    return hashlib.sha1(script_text(name).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Scripts:
    acquire: AsyncScript
    reconcile: AsyncScript
    withdraw: AsyncScript
    report: AsyncScript
    publish: AsyncScript

    @classmethod
    def register(cls, redis: Redis) -> Scripts:
        return cls(*(redis.register_script(script_text(name)) for name in NAMES))
