"""Reading a server's ledger straight from Redis (not through the scripts) and
checking it: what the multi-process tests sample continuously."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from decimal import Decimal

import redis

from capacity.keys import ServerKeys
from capacity.resources import Resources


def milli(value: bytes | str | None) -> int:
    """A `cpu:allocated` / `ram:allocated` value (plain decimal) in milli-units."""
    if value is None:
        return 0
    raw = value.decode() if isinstance(value, bytes) else value
    return int(Decimal(raw) * 1000)


@dataclass(frozen=True, slots=True)
class Row:
    held: Resources
    expires_ms: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    at: float
    """time.monotonic() when the reply arrived"""
    now_ms: int
    """Redis time of the snapshot"""
    allocated: Resources
    leases: dict[str, Row]
    totals_present: bool = True
    """False when the `allocated` keys had expired (with the latest live lease)."""

    @property
    def leases_total(self) -> Resources:
        total = Resources(0, 0)
        for row in self.leases.values():
            total += row.held
        return total

    @property
    def stale_ms(self) -> int:
        """How long the most overdue lease has been expired without being reaped (0: none)."""
        return max((self.now_ms - row.expires_ms for row in self.leases.values()), default=0)


def snapshot(client: redis.Redis, keys: ServerKeys) -> Snapshot:
    """The allocated totals, the lease hash and the Redis time, in one MULTI (consistent)."""
    pipe = client.pipeline(transaction=True)
    pipe.time()
    pipe.get(keys.cpu_allocated)
    pipe.get(keys.ram_allocated)
    pipe.hgetall(keys.workers)
    (seconds, micros), cpu, ram, workers = pipe.execute()
    leases = {}
    for holder, raw in workers.items():
        data = json.loads(raw)
        leases[holder.decode()] = Row(
            Resources(int(data["cpu_m"]), int(data["ram_m"])), int(data["expires_ms"])
        )
    return Snapshot(
        at=time.monotonic(),
        now_ms=int(seconds) * 1000 + int(micros) // 1000,
        allocated=Resources(milli(cpu), milli(ram)),
        leases=leases,
        totals_present=cpu is not None and ram is not None,
    )


@dataclass
class Audit:
    """Running checks over many snapshots: never above `available`, and `allocated`
    always the sum of the leases in the hash (or gone, once every lease is over)."""

    available: Resources
    samples: int = 0
    max_cpu_m: int = 0
    max_ram_m: int = 0
    max_stale_ms: int = 0
    violations: list[str] = field(default_factory=list)

    def check(self, snap: Snapshot) -> None:
        self.samples += 1
        self.max_cpu_m = max(self.max_cpu_m, snap.allocated.cpu_m)
        self.max_ram_m = max(self.max_ram_m, snap.allocated.ram_m)
        self.max_stale_ms = max(self.max_stale_ms, snap.stale_ms)
        if len(self.violations) >= 20:
            return
        if not snap.totals_present:
            # The totals expire with the latest live lease: only once every lease is over.
            live = [h for h, row in snap.leases.items() if row.expires_ms > snap.now_ms]
            if live:
                self.violations.append(f"allocated keys gone while {live} still hold leases")
        elif snap.allocated != snap.leases_total:
            self.violations.append(
                f"allocated {snap.allocated} != sum of leases {snap.leases_total}"
            )
        if (
            snap.allocated.cpu_m > self.available.cpu_m
            or snap.allocated.ram_m > self.available.ram_m
        ):
            self.violations.append(f"over-allocated: {snap.allocated} > {self.available}")

    def summary(self) -> str:
        return (
            f"{self.samples} snapshots; max allocated {self.max_cpu_m / 1000:g} vCPU / "
            f"{self.max_ram_m / 1000:g} GB of available {self.available}; "
            f"expired leases lingered at most {self.max_stale_ms} ms"
        )
