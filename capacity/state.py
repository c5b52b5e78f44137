"""What the ledger answers: admissions, leases, a server's state. Parsing of the
scripts' replies lives here too (pure)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from capacity.pressure import Pressure, pressing_text
from capacity.resources import Resources


def text(value: Any) -> str:
    """A Redis reply element as str (clients may or may not decode responses)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def pairs(flat: Sequence[Any]) -> dict[str, str]:
    """A flat [field, value, ...] reply as a dict."""
    items = [text(v) for v in flat]
    return dict(zip(items[::2], items[1::2], strict=True))


@dataclass(frozen=True, slots=True)
class Admission:
    """The answer to an acquire.

    `reason`: ok | cpu | ram | cpu+ram (not enough room) | pressure (host too busy,
    decided before Redis) | taken (holder held under another token) | no-capacity
    (no limits given nor published for the server).
    """

    admitted: bool
    reason: str
    holder: str
    kind: str
    token: str
    request: Resources
    allocated: Resources | None = None
    """The server's total after this call (None if Redis was not asked)."""
    available: Resources | None = None
    expires_ms: int = 0
    now_ms: int = 0
    pressure: Pressure | None = None
    """The host pressure that refused it; on an admission, the pressure it was admitted
    despite (the progress rule: its participant held no other lease)."""

    def describe(self) -> str:
        if self.admitted:
            said = f"{self.holder}: admitted {self.request} ({self.kind or 'no kind'})"
            if self.pressure is not None and self.pressure.blocked:
                said += (
                    f" despite host pressure ({self.pressure.pressing}): "
                    "its pool's only lease, so that work goes on"
                )
            return said
        if self.reason == "pressure" and self.pressure is not None:
            detail = f"{self.pressure.pressing}; {self.pressure.describe()}"
        elif self.reason == "taken":
            detail = "the holder id is held under another token"
        elif self.reason == "no-capacity":
            detail = "no limits given nor published for this server"
        elif self.allocated is not None and self.available is not None:
            detail = f"allocated {self.allocated}, available {self.available}"
        else:
            detail = ""
        why = f"{self.reason}: {detail}" if detail else self.reason
        return f"{self.holder}: refused {self.request} ({why})"


@dataclass(frozen=True, slots=True)
class LeaseInfo:
    """One live lease as stored in `server:<id>:workers`."""

    holder: str
    kind: str
    held: Resources
    since_ms: int
    expires_ms: int
    ttl_ms: int

    @classmethod
    def parse(cls, holder: str, raw: str) -> LeaseInfo:
        data = json.loads(raw)
        return cls(
            holder=holder,
            kind=str(data.get("kind") or ""),
            held=Resources(int(data["cpu_m"]), int(data["ram_m"])),
            since_ms=int(data.get("since_ms") or 0),
            expires_ms=int(data["expires_ms"]),
            ttl_ms=int(data.get("ttl_ms") or 0),
        )


@dataclass(frozen=True, slots=True)
class ServerState:
    """One server's ledger after a reap, read atomically."""

    server_id: str
    now_ms: int
    allocated: Resources
    leases: tuple[LeaseInfo, ...]
    capacity: Mapping[str, str] = field(default_factory=dict)
    """The published hash (limits, host readings); empty if nobody published."""
    reaped: tuple[str, ...] = ()
    """Holders whose expired leases this call removed."""

    @classmethod
    def parse(cls, server_id: str, reply: Sequence[Any]) -> ServerState:
        workers = pairs(reply[5])
        return cls(
            server_id=server_id,
            now_ms=int(reply[3]),
            allocated=Resources(int(reply[1]), int(reply[2])),
            leases=tuple(
                sorted(
                    (LeaseInfo.parse(holder, raw) for holder, raw in workers.items()),
                    key=lambda lease: (lease.since_ms, lease.holder),
                )
            ),
            capacity=pairs(reply[6]),
            reaped=tuple(text(h) for h in reply[4]),
        )

    def _number(self, name: str) -> float | None:
        try:
            return float(self.capacity[name])
        except (KeyError, ValueError):
            return None

    @property
    def available(self) -> Resources | None:
        cpu, ram = self._number("cpu_available_m"), self._number("ram_available_m")
        if cpu is None or ram is None:
            return None
        return Resources(int(cpu), int(ram))

    @property
    def max_cpu(self) -> float | None:
        return self._number("cpu_max")

    @property
    def max_ram(self) -> float | None:
        return self._number("ram_max")

    @property
    def reserve_cpu_percent(self) -> float | None:
        return self._number("cpu_reserve_percent")

    @property
    def reserve_ram_percent(self) -> float | None:
        return self._number("ram_reserve_percent")

    @property
    def host_cpu_percent(self) -> float | None:
        return self._number("cpu_percent")

    @property
    def host_ram_percent(self) -> float | None:
        return self._number("ram_percent")

    @property
    def pressure(self) -> bool | None:
        value = self.capacity.get("pressure")
        return None if value is None else value == "1"

    @property
    def pressing(self) -> str:
        """What the publisher's host is pressed by, e.g. `cpu 91.3% > 80%` ('' if nothing)."""
        if not self.pressure:
            return ""
        use = {"cpu": self.host_cpu_percent, "ram": self.host_ram_percent}
        limits = {
            "cpu": self._number("cpu_limit_percent"),
            "ram": self._number("ram_limit_percent"),
        }
        named = self.capacity.get("pressure_over")
        over = tuple(x for x in (named or "").split("+") if x in use)
        if not named:  # a publisher that does not say: compare the readings
            over = tuple(
                name
                for name in ("cpu", "ram")
                if (u := use[name]) is not None and (lim := limits[name]) is not None and u > lim
            )
        if any(use[name] is None or limits[name] is None for name in over):
            return "+".join(over)
        return pressing_text(
            over,
            {k: v for k, v in use.items() if v is not None},
            {k: v for k, v in limits.items() if v is not None},
        )

    @property
    def costs(self) -> str:
        """What a lease of each kind is charged now (`kind=cpu:ram,...`, as published)."""
        return self.capacity.get("costs", "")

    @property
    def published_age_seconds(self) -> float | None:
        published = self._number("published_ms")
        return None if published is None else max(0.0, (self.now_ms - published) / 1000)

    @property
    def by_kind(self) -> dict[str, int]:
        return dict(Counter(lease.kind or "-" for lease in self.leases))

    def leases_total(self) -> Resources:
        """The sum of the live leases; equals `allocated` by construction."""
        total = Resources(0, 0)
        for lease in self.leases:
            total += lease.held
        return total
