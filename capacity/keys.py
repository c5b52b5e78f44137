"""Redis key names of the ledger (DESIGN.md), all under `OCR_REDIS_PREFIX`."""

from __future__ import annotations

from dataclasses import dataclass


def check_server_id(server_id: str) -> str:
    """A server id is non-empty, without spaces or ':' (it sits between colons in keys)."""
    if not server_id or any(c.isspace() or c == ":" for c in server_id):
        raise ValueError(f"server id must be non-empty, without spaces or ':' (got {server_id!r})")
    return server_id


@dataclass(frozen=True, slots=True)
class ServerKeys:
    workers: str
    """hash: holder -> lease JSON"""
    cpu_allocated: str
    """string: vCPUs held by live leases"""
    ram_allocated: str
    """string: GB held by live leases"""
    capacity: str
    """hash: published limits and host readings"""

    @property
    def all(self) -> tuple[str, str, str, str]:
        return (self.workers, self.cpu_allocated, self.ram_allocated, self.capacity)


def server_keys(prefix: str, server_id: str) -> ServerKeys:
    base = f"{prefix}server:{check_server_id(server_id)}:"
    return ServerKeys(
        workers=f"{base}workers",
        cpu_allocated=f"{base}cpu:allocated",
        ram_allocated=f"{base}ram:allocated",
        capacity=f"{base}capacity",
    )


MEASURED = "capacity:measured"
"""hash, fleet-wide: kind -> measured vCPU per held second (capacity/lua/measure.lua)"""


def measured_key(prefix: str) -> str:
    return f"{prefix}{MEASURED}"


_SUFFIXES = (":workers", ":cpu:allocated", ":ram:allocated", ":capacity")


def scan_patterns(prefix: str) -> list[str]:
    """SCAN MATCH patterns finding every server's keys (glob characters of the prefix escaped)."""
    escaped = "".join(f"\\{c}" if c in "*?[]\\" else c for c in prefix)
    return [f"{escaped}server:*{suffix}" for suffix in _SUFFIXES]


def server_id_of(prefix: str, key: str) -> str | None:
    """The server id in one of the ledger's keys, or None if the key is not one."""
    head = f"{prefix}server:"
    if not key.startswith(head):
        return None
    rest = key[len(head) :]
    for suffix in _SUFFIXES:
        if rest.endswith(suffix):
            server_id = rest[: -len(suffix)]
            if server_id and ":" not in server_id:
                return server_id
    return None
