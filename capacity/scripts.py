"""The ledger's Lua scripts: each is the shared prelude `capacity/lua/ledger.lua` (reaping,
totals, argument checks), a newline, then the operation's file; registered once per Redis
client and called by SHA (redis-py loads a script again after NOSCRIPT, e.g. a restarted
Redis). Other programs assemble the same text (PROTOCOL.md)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

NAMES = ("acquire", "renew", "release", "reap", "publish", "measure")


@cache
def script_text(name: str) -> str:
    """The full text of one operation: prelude, newline, then the operation."""
    if name not in NAMES:
        raise ValueError(f"no capacity script named {name!r}")
    lua = files("capacity") / "lua"
    prelude = (lua / "ledger.lua").read_text(encoding="utf-8")
    body = (lua / f"{name}.lua").read_text(encoding="utf-8")
    return f"{prelude}\n{body}"


def script_sha(name: str) -> str:
    """The SHA1 other programs pass to EVALSHA (after SCRIPT LOAD of the same file)."""
    return hashlib.sha1(script_text(name).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Scripts:
    acquire: AsyncScript
    renew: AsyncScript
    release: AsyncScript
    reap: AsyncScript
    publish: AsyncScript
    measure: AsyncScript

    @classmethod
    def register(cls, redis: Redis) -> Scripts:
        return cls(*(redis.register_script(script_text(name)) for name in NAMES))
