"""The capacity ledger of one server: atomic acquire / renew / release / reap in Redis.

Every call runs one Lua script (capacity/lua/) that first reaps expired leases and
recomputes the server's totals from the live ones, so `allocated` always equals
the sum of live leases and a dead holder's share comes back without anyone
cleaning up. Times are Redis server times.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from capacity.costs import HALF_LIFE_SECONDS, Sample, effective_costs
from capacity.errors import CapacityError, CapacityRefused, redact
from capacity.keys import check_server_id, measured_key, server_keys
from capacity.lease import Lease
from capacity.meter import CpuMeter
from capacity.policy import Limits, can_ever_fit
from capacity.pressure import Pressure, PressureGuard, progress_allowed
from capacity.probe import resolve_limits
from capacity.resources import DEFAULT_COSTS, Resources, format_costs
from capacity.scripts import Scripts
from capacity.state import Admission, ServerState, pairs, text

log = logging.getLogger("capacity")
T = TypeVar("T")

MAX_LEASE_SECONDS = 86_400.0
MEASURED_KEEP_SECONDS = 7 * 86_400.0
"""The fleet's measured costs are forgotten a week after the last sample."""
PROGRESS_LOG_SECONDS = 60.0


async def _call(server_id: str, what: str, call: Callable[[], Awaitable[T]]) -> T:
    """Run one script call; a dropped connection (e.g. Redis restarted) is retried once,
    which is safe: every operation is idempotent under its holder's token."""
    try:
        try:
            return await call()
        except (RedisConnectionError, RedisTimeoutError):
            await anyio.sleep(0.05)
            return await call()
    except RedisError as exc:
        raise CapacityError(
            redact(f"capacity ledger ({server_id}): {what} failed: {type(exc).__name__}: {exc}")
        ) from None


@dataclass(frozen=True, slots=True)
class HostConfig:
    """A machine's ledger as configured: its size (None: what psutil reports), the share
    kept free, the Redis prefix, the lease term and each kind's cost."""

    server_id: str
    max_cpu: float | None = None
    max_ram: float | None = None
    reserve_cpu_percent: float = 20.0
    reserve_ram_percent: float = 20.0
    prefix: str = ""
    lease_seconds: float = 30.0
    costs: Mapping[str, Resources] = field(default_factory=lambda: dict(DEFAULT_COSTS))


class CapacityLedger:
    """One server's ledger, as seen by one process.

    `limits` (the server's size and reserves) are sent with every acquire and
    published by `publish()`; without them, acquires use the limits last published
    for the server by another participant. `guard`, when given, refuses acquires
    while the host is under pressure (decided locally, before Redis), except, with
    `guarantee_progress`, when this ledger holds no other lease: the pool always has
    one job going (`pressure.progress_allowed`).

    `costs` are what a lease of each kind is charged *at most* and until something is
    measured. With `measure`, the process's CPU time is attributed to the leases it
    holds (`CpuMeter`) and `refresh_costs()` folds it into the fleet's average per kind
    (`capacity:measured`) and charges that (with headroom, within the configured cost:
    `costs.effective_cost`).
    """

    def __init__(
        self,
        redis: Redis,
        server_id: str,
        *,
        prefix: str = "",
        limits: Limits | None = None,
        lease_seconds: float = 30.0,
        costs: Mapping[str, Resources] = DEFAULT_COSTS,
        guard: PressureGuard | None = None,
        keep_seconds: float = 86_400.0,
        measure: bool = True,
        guarantee_progress: bool = True,
        half_life_seconds: float = HALF_LIFE_SECONDS,
    ) -> None:
        if not 0.01 <= lease_seconds <= MAX_LEASE_SECONDS:
            raise ValueError(f"lease_seconds must be in [0.01, 86400] (got {lease_seconds!r})")
        self.redis = redis
        self.server_id = check_server_id(server_id)
        self.prefix = prefix
        self.keys = server_keys(prefix, server_id)
        self.limits = limits
        self.lease_seconds = lease_seconds
        self.configured = dict(costs)
        """The configured costs: seeds until something is measured, and caps."""
        self.costs = dict(costs)
        """What a lease of each kind is charged now."""
        self.measured: dict[str, float] = {}
        """The fleet's measured vCPU per held second, per kind (as last read)."""
        self.guard = guard
        self.keep_seconds = keep_seconds
        self.guarantee_progress = guarantee_progress
        if half_life_seconds <= 0:
            raise ValueError(f"half_life_seconds must be positive (got {half_life_seconds!r})")
        self.half_life_seconds = half_life_seconds
        self.meter = CpuMeter(self._weight) if measure else None
        self._scripts = Scripts.register(redis)
        self._available = limits.available if limits is not None else None
        self._measured_key = measured_key(prefix)
        self._holding: dict[str, str] = {}
        """holder -> token of the leases this ledger (this process) holds."""
        self._passing = 0
        """Acquires admitted by the progress rule and not yet answered by Redis."""
        self._progress_logged = -PROGRESS_LOG_SECONDS
        self._logged_costs = dict(costs)

    @classmethod
    def for_host(cls, redis: Redis, config: HostConfig, **options: Any) -> CapacityLedger:
        """The ledger of the machine this process runs on: limits from `config` (psutil
        where unset) and a pressure guard on the same reserves. `options` go to the
        constructor (tests and benchmarks: `measure`, `guarantee_progress`, ...)."""
        limits = resolve_limits(
            config.max_cpu, config.max_ram, config.reserve_cpu_percent, config.reserve_ram_percent
        )
        options.setdefault(
            "guard", PressureGuard(config.reserve_cpu_percent, config.reserve_ram_percent)
        )
        return cls(
            redis,
            config.server_id,
            limits=limits,
            prefix=config.prefix,
            lease_seconds=config.lease_seconds,
            costs=config.costs,
            **options,
        )

    @property
    def lease_ms(self) -> int:
        return round(self.lease_seconds * 1000)

    @property
    def heartbeat_seconds(self) -> float:
        """How often a holder renews: a third of the lease, so two beats may be missed."""
        return self.lease_seconds / 3

    @property
    def available(self) -> Resources | None:
        return self._available

    def cost(self, kind: str) -> Resources:
        try:
            return self.costs[kind]
        except KeyError:
            raise ValueError(
                f"no cost for worker type {kind!r} (known: {', '.join(sorted(self.costs))})"
            ) from None

    @property
    def holding(self) -> int:
        """Leases this ledger holds now."""
        return len(self._holding)

    def _weight(self, kind: str) -> float:
        cost = self.costs.get(kind)
        return cost.cpu if cost is not None else 1.0

    def forget(self, holder: str, token: str) -> None:
        """`holder`'s lease (under `token`) is over for this process: released, lost, or
        given up on. Stops its metering; it no longer counts for the progress rule."""
        if self._holding.get(holder) == token:
            del self._holding[holder]
            if self.meter is not None:
                self.meter.drop(holder)

    def _admits_despite(self, pressure: Pressure, holder: str) -> bool:
        others = len(self._holding) - (holder in self._holding) + self._passing
        return self.guarantee_progress and progress_allowed(pressure, others)

    def _note_progress(self, admission: Admission) -> None:
        now = time.monotonic()
        if now - self._progress_logged >= PROGRESS_LOG_SECONDS:
            self._progress_logged = now
            log.warning("capacity %s: %s", self.server_id, admission.describe())

    # --- the operations ---------------------------------------------------------
    async def acquire(
        self,
        holder: str,
        kind: str,
        request: Resources | None = None,
        *,
        token: str | None = None,
    ) -> Admission:
        """Take (or resize, with the same token) `holder`'s lease of `request`
        (default: the cost of `kind`). Never raises for a refusal: see `Admission`."""
        if not holder:
            raise ValueError("holder must not be empty")
        request = request if request is not None else self.cost(kind)
        token = token or secrets.token_hex(8)
        despite: Pressure | None = None
        if self.guard is not None:
            pressure = self.guard.check()
            if pressure.blocked:
                if not self._admits_despite(pressure, holder):
                    return Admission(
                        False, "pressure", holder, kind, token, request, pressure=pressure
                    )
                despite = pressure
                self._passing += 1
        avail = self._available
        try:
            reply = await _call(
                self.server_id,
                "acquire",
                lambda: self._scripts.acquire(
                    keys=list(self.keys.all),
                    args=[
                        holder,
                        token,
                        kind,
                        request.cpu_m,
                        request.ram_m,
                        self.lease_ms,
                        "" if avail is None else avail.cpu_m,
                        "" if avail is None else avail.ram_m,
                    ],
                ),
            )
        finally:
            if despite is not None:
                self._passing -= 1
        status = text(reply[0])
        available = None if int(reply[3]) < 0 else Resources(int(reply[3]), int(reply[4]))
        if status == "ok":
            self._holding[holder] = token
            if self.meter is not None:
                self.meter.hold(holder, kind)
        admission = Admission(
            admitted=status == "ok",
            reason=status,
            holder=holder,
            kind=kind,
            token=token,
            request=request,
            allocated=Resources(int(reply[1]), int(reply[2])),
            available=available,
            expires_ms=int(reply[5]),
            now_ms=int(reply[6]),
            pressure=despite,
        )
        if despite is not None and admission.admitted:
            self._note_progress(admission)
        return admission

    async def renew(self, holder: str, token: str) -> int | None:
        """Extend the lease by `lease_seconds` from now; its new expiry (Redis ms), or None
        if the lease is gone (expired and reaped, released, or taken over)."""
        reply = await _call(
            self.server_id,
            "renew",
            lambda: self._scripts.renew(
                keys=list(self.keys.all[:3]), args=[holder, token, self.lease_ms]
            ),
        )
        if int(reply[0]) != 1:
            self.forget(holder, token)
            return None
        return int(reply[1])

    async def release(self, holder: str, token: str) -> bool:
        """Give the lease back; False if there was none under this holder and token."""
        try:
            reply = await _call(
                self.server_id,
                "release",
                lambda: self._scripts.release(keys=list(self.keys.all[:3]), args=[holder, token]),
            )
        finally:
            self.forget(holder, token)  # even if Redis did not answer: it expires on its own
        return int(reply[0]) == 1

    async def reap(self) -> ServerState:
        """Remove expired leases and read the server's whole ledger (one atomic script)."""
        reply = await _call(
            self.server_id, "reap", lambda: self._scripts.reap(keys=list(self.keys.all), args=[])
        )
        state = ServerState.parse(self.server_id, reply)
        for holder in state.reaped:
            log.warning("capacity %s: lease of %s expired and was reaped", self.server_id, holder)
        return state

    async def publish(self) -> None:
        """Write this server's limits and the host's readings to `server:<id>:capacity`
        (what `ocr-pool capacity` shows, and the limits of acquires that pass none)."""
        fields: dict[str, str] = {
            "publisher": f"{socket.gethostname()} pid {os.getpid()}",
            "costs": format_costs(self.costs),
            "costs_configured": format_costs(self.configured),
            "costs_measured": ",".join(f"{k}={v:.3g}" for k, v in sorted(self.measured.items())),
            "lease_ms": str(self.lease_ms),
        }
        if self.limits is not None and self._available is not None:
            fields |= {
                "cpu_max": f"{self.limits.max_cpu:g}",
                "ram_max": f"{self.limits.max_ram:g}",
                "cpu_reserve_percent": f"{self.limits.reserve_cpu_percent:g}",
                "ram_reserve_percent": f"{self.limits.reserve_ram_percent:g}",
                "cpu_available_m": str(self._available.cpu_m),
                "ram_available_m": str(self._available.ram_m),
                "cpu_available": f"{self._available.cpu:g}",
                "ram_available": f"{self._available.ram:g}",
            }
        if self.guard is not None:
            pressure = self.guard.check()
            fields |= {
                "cpu_percent": f"{pressure.reading.cpu_percent:.1f}",
                "ram_percent": f"{pressure.reading.ram_percent:.1f}",
                "cpu_limit_percent": f"{pressure.cpu_limit:g}",
                "ram_limit_percent": f"{pressure.ram_limit:g}",
                "pressure": "1" if pressure.blocked else "0",
                "pressure_over": "+".join(pressure.over),
            }
        args: list[str | int] = [max(1, round(self.keep_seconds * 1000))]
        for name, value in fields.items():
            args += [name, value]
        await _call(
            self.server_id,
            "publish",
            lambda: self._scripts.publish(keys=[self.keys.capacity], args=args),
        )

    async def refresh_costs(self) -> dict[str, Resources]:
        """Fold what the meter measured since last time into the fleet's average per kind
        (`capacity:measured`, one script), read the fleet's averages and charge them from
        now on (`costs.effective_cost`). Without a meter, the configured costs stay.
        On a Redis error the samples are kept for the next call."""
        if self.meter is None:
            return self.costs
        samples = self.meter.take()
        args: list[str | float] = [self.half_life_seconds, round(MEASURED_KEEP_SECONDS * 1000)]
        for kind, cost in self.configured.items():
            if not kind or ":" in kind or any(c.isspace() for c in kind):
                continue
            sample = samples.get(kind, Sample(0.0, 0.0))
            args += [kind, cost.cpu, f"{sample.cpu_seconds:.6f}", f"{sample.held_seconds:.6f}"]
        try:
            reply = await _call(
                self.server_id,
                "measure",
                lambda: self._scripts.measure(keys=[self._measured_key], args=args),
            )
        except CapacityError:
            self.meter.put_back(samples)
            raise
        measured = {kind: float(value) for kind, value in pairs(reply).items() if value}
        self.measured = measured
        self.costs = effective_costs(self.configured, measured)
        moved = [
            kind
            for kind, cost in self.costs.items()
            if abs(cost.cpu_m - self._logged_costs[kind].cpu_m)
            > 0.2 * max(self._logged_costs[kind].cpu_m, 1)
        ]
        if moved:
            self._logged_costs = dict(self.costs)
            log.info(
                "capacity %s: costs now %s (measured vCPU per held second: %s; configured %s)",
                self.server_id,
                format_costs(self.costs),
                ", ".join(f"{k} {v:.3g}" for k, v in sorted(measured.items())) or "none yet",
                format_costs(self.configured),
            )
        return self.costs

    # --- leases -------------------------------------------------------------------
    async def lease(
        self,
        holder: str,
        kind: str,
        request: Resources | None = None,
        *,
        wait: bool = False,
        poll: float = 1.0,
        max_wait: float | None = None,
    ) -> Lease:
        """A `Lease` for `holder`, or `CapacityRefused`. With `wait`, retries every
        ~`poll` s (jittered) while the refusal is for room or pressure, for at most
        `max_wait` s (default: no limit)."""
        request = request if request is not None else self.cost(kind)
        deadline = None if max_wait is None else time.monotonic() + max_wait
        while True:
            started = time.monotonic()
            admission = await self.acquire(holder, kind, request)
            if admission.admitted:
                return Lease(self, admission, started + self.lease_seconds)
            if not wait or admission.reason in ("taken", "no-capacity"):
                raise CapacityRefused(admission)
            available = admission.available
            if available is not None and not can_ever_fit(request, available):
                raise CapacityRefused(
                    admission,
                    f"{holder}: {request} can never fit in this server's available {available}",
                )
            pause = poll * (0.5 + secrets.randbelow(1000) / 1000)
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CapacityRefused(admission)
                pause = min(pause, left)
            await anyio.sleep(pause)

    @asynccontextmanager
    async def hold(
        self,
        holder: str,
        kind: str,
        request: Resources | None = None,
        *,
        wait: bool = True,
        poll: float = 1.0,
        max_wait: float | None = None,
    ) -> AsyncIterator[Lease]:
        """Hold a lease for the body of an `async with`: acquired (waiting for room by
        default), renewed in the background every `heartbeat_seconds`, released at the
        end even on error or cancellation. Check `lease.lost` in long bodies."""
        lease = await self.lease(holder, kind, request, wait=wait, poll=poll, max_wait=max_wait)
        async with lease.kept():
            yield lease
