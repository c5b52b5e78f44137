"""The pool's Lua scripts (`pool/lua/*.lua`), loaded once, registered per Redis client
and called by SHA (redis-py loads them again after NOSCRIPT, e.g. a restarted Redis)."""

from __future__ import annotations

import hashlib
from functools import cache
from importlib.resources import files

NAMES = ("ewma", "allocation", "assignments")


@cache
def script_text(name: str) -> str:
    """The text of one of the pool's Lua scripts (`pool/lua/<name>.lua`)."""
    if name not in NAMES:
        raise ValueError(f"no pool script named {name!r}")
    return (files("pool") / "lua" / f"{name}.lua").read_text(encoding="utf-8")


def script_sha(name: str) -> str:
    """The SHA1 other programs pass to EVALSHA (after SCRIPT LOAD of the same file)."""
    return hashlib.sha1(script_text(name).encode()).hexdigest()
