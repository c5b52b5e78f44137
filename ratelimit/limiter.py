"""The shared Gemini limiter: every pool on every machine asks Redis before each call.

`acquire(model, tokens)` waits (asynchronously) until one Lua script grants the request
against every limit of the model at once: requests and input tokens in a sliding window,
requests per day, the adaptive ceiling, a fleet cooldown after a 429, and the queue of
older waiters (head-of-line: nobody takes the room an older, larger request waits for).

A grant is *in flight* until it is settled: `reconcile` (the API's token count), `release`
(the call ended without one: a 429, a network error) or `refund` (it never went out). Its
slot counts from when the request reached Gemini, not from the grant: the caller calls
`wire()` just before the HTTP call, and the slot is stamped at that moment plus the wire
margin, never later than the answer (`ratelimit.policy`). A waiter may be granted up to
`lead_seconds` before its room frees; `wire()` (or `acquire` itself, unless `early`) waits
until then. Settlements cost no round trip of their own: they ride on this process's next
call to Redis, or go on their own after `settle_delay_seconds`.

The estimate counters of the reconciles an acquire carried (the stats hash) are summed in
the process and go with its next publish (once a second in a pool) or settle, at the
latest after `COUNTERS_DELAY_SECONDS`: the hot path writes none of them.

When Redis cannot be reached, nothing is granted (fail closed): waiters retry with backoff
and one line is logged per outage.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import sniffio
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ReadOnlyError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ratelimit.config import LimiterConfig, Quota, check_model, day_offset_seconds
from ratelimit.estimate import EstimateStats
from ratelimit.policy import arrival_bound_us, local_deadline, quota_dimension
from ratelimit.quota_error import QuotaSignal
from ratelimit.scripts import Scripts
from ratelimit.usage import FleetUsage, parse_fleet_usage

log = logging.getLogger("ratelimit")

OUTAGE_ERRORS = (RedisConnectionError, RedisTimeoutError, ReadOnlyError, OSError)
MAX_BACKOFF_SECONDS = 5.0
DEFAULT_429_DELAY_SECONDS = 5.0
MAX_CARRIED = 256
"""Settlements carried by one call at most (the rest go with the next)."""
DAY_OFFSET_SECONDS = 60.0
"""The quota day's offset from UTC is looked up again after this long (DST changes)."""
COUNTERS_DELAY_SECONDS = 2.0
"""Estimate counters summed in the process wait at most this long for a publish (a pool's
publisher runs every second) or settle to carry them, then go on their own."""


class LimiterError(Exception):
    """Redis answered the limiter with an error (not an outage): a bug or a wrong key type."""


class RequestTooLarge(ValueError):
    """A request asks for more tokens than the model's whole window allows: it never fits."""


class ReservationExpired(LimiterError):
    """`wire()` was called after the grant's in-flight deadline: the grant may already count
    as arrived and left the window, so sending now could exceed the quota. Acquire again."""


@dataclass(slots=True)
class Reservation:
    """A granted request. Call `wire()` just before sending it, then settle it once:
    `reconcile` after an answer, `release` after a call that may have reached Gemini
    without a token count (429, network error), `refund` if it never went out."""

    id: str
    model: str
    tokens: int
    granted_at_us: int
    """Redis time of the grant, microseconds since the epoch"""
    waited: float
    """seconds between asking and the grant"""
    not_before: float = 0.0
    """monotonic time from which the request may leave (its slot is free by then)"""
    not_before_us: int = 0
    """the same in Redis time"""
    asked_at: float = 0.0
    """monotonic time just before the granting call left for Redis"""
    flight_seconds: float = 300.0
    flight_us: int = 300_000_000
    """the same in microseconds, as the grant's in-flight stamp was computed"""
    sent_at: float | None = None
    """monotonic time `wire()` let the request go"""
    body_bytes: int = 0
    settled: bool = False


@dataclass(frozen=True, slots=True)
class Cooldown:
    seconds: float
    ceiling_factor: float
    lowered: bool
    share: float = 1.0
    """share of its ceiling the fleet used when the 429 came (below `own_share`: not ours)"""


@dataclass(slots=True)
class ModelMetrics:
    grants: int = 0
    wait_seconds: float = 0.0
    max_wait_seconds: float = 0.0
    refunds: int = 0
    quota_errors: int = 0
    estimates: EstimateStats = field(default_factory=EstimateStats)


@dataclass(slots=True)
class _Settlement:
    model: str
    estimate: int
    kind: str
    """r: reconcile, k: keep the estimate (release), f: refund"""
    actual: int
    made_at: float
    arg: str
    """its script argument (settle_all in window.lua): 'model|grant id|grant time|estimate|
    kind|actual|arrival bound|worker'"""


Counters = dict[str, list[int]]
"""model -> [reconciled, estimated tokens, actual tokens, abs error tokens] not yet in its
stats hash (COUNTERS in window.lua)"""


SETTINGS = struct.Struct("<dddddddddd")
"""acquire.lua's settings numbers (struct.unpack('<dddddddddd') there)"""


def acquire_settings(
    model: str,
    prefix: str,
    *,
    rpm: int,
    tpm: int,
    rpd: int,
    window_us: int,
    ticket_ttl_us: int,
    day_offset: int,
    worker_ttl_us: int,
    recovery: float,
    lead_us: int,
    flight_us: int,
) -> bytes:
    """acquire.lua's first argument: ten numbers as little-endian doubles (whole numbers up
    to 2**53 exactly; the script reads them without parsing text), then 'model|prefix'.
    Their ranges are checked here, once per model and flight; the script only checks the
    argument's form."""
    for name, value, low, high in (
        ("rpm limit", rpm, 1, 10**12),
        ("tpm limit", tpm, 1, 10**15),
        ("rpd limit", rpd, 0, 10**12),
        ("window (us)", window_us, 1000, 10**12),
        ("ticket ttl (us)", ticket_ttl_us, 1000, 10**12),
        ("day offset (s)", day_offset, -86_400, 86_400),
        ("worker ttl (us)", worker_ttl_us, 1000, 10**12),
        ("lead (us)", lead_us, 0, 10**9),
        ("flight (us)", flight_us, 1000, 10**12),
    ):
        if not low <= value <= high:
            raise ValueError(f"gemini limiter: {name} must be {low} to {high} (got {value})")
    if not recovery >= 0:
        raise ValueError(f"gemini limiter: recovery must be a number >= 0 (got {recovery})")
    numbers = SETTINGS.pack(
        rpm, tpm, rpd, window_us, ticket_ttl_us, day_offset, worker_ttl_us, recovery,
        lead_us, flight_us,
    )  # fmt: skip
    return numbers + f"{model}|{prefix}".encode()


def _text(value: bytes | str | int) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class _Outage:
    """Tracks whether Redis is reachable; logs one line when it goes and one when it's back.

    A single failed call is not an outage: after a Redis restart the pooled connection is
    dead and the next call reconnects at once. The outage is announced at the second
    failure in a row (the retry after a short backoff), and only an announced outage is
    said to be over."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.since: float | None = None
        self.failures = 0
        self.announced = False
        self.outages = 0

    def failed(self, exc: BaseException) -> None:
        if self.since is None:
            self.since = time.monotonic()
        self.failures += 1
        if self.failures >= 2 and not self.announced:
            self.announced = True
            self.outages += 1
            log.error(
                "Gemini limiter: Redis unreachable at %s (%s); no Gemini call is made until "
                "it answers again, retrying with backoff",
                self.where,
                type(exc).__name__,
            )

    def answered(self) -> None:
        if self.announced and self.since is not None:
            log.warning(
                "Gemini limiter: Redis at %s answers again after %.1f s",
                self.where,
                time.monotonic() - self.since,
            )
        self.since = None
        self.failures = 0
        self.announced = False

    @property
    def down(self) -> bool:
        return self.since is not None


async def _send(connection: Any, command: tuple[str | int | float | bytes, ...]) -> None:
    """Write one command on a connection this task holds, without a write timeout: with
    `socket_timeout` set, redis-py bounds the write by `asyncio.wait_for`, which on Python
    3.11 starts a task and costs two more turns of the event loop (~40 us of a ~150 us
    call). A command of a few hundred bytes on a connection with no other command in
    flight never waits for the socket; the reply is still read within `socket_timeout`."""
    timeout = connection.socket_timeout
    connection.socket_timeout = None
    try:
        await connection.send_packed_command(connection.pack_command(*command))
    finally:
        connection.socket_timeout = timeout


def _backoff(attempt: int) -> float:
    return min(MAX_BACKOFF_SECONDS, 0.05 * 2.0 ** min(attempt, 10)) * random.uniform(0.5, 1.0)


def _us(seconds: float) -> int:
    return round(seconds * 1_000_000)


class GeminiLimiter:
    """One process's handle on the fleet-wide limiter (share it between its tasks)."""

    def __init__(self, redis: Redis, config: LimiterConfig, *, prefix: str = "") -> None:
        self.redis = redis
        self.config = config
        self.prefix = prefix
        self.metrics: dict[str, ModelMetrics] = {}
        self._scripts = Scripts.register(redis)
        self._epoch = ""
        kwargs = redis.connection_pool.connection_kwargs
        self._outage = _Outage(f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}")
        self._pending: list[_Settlement] = []
        self._counters: Counters = {}
        self._flush_timer: asyncio.TimerHandle | None = None
        self._counters_timer: asyncio.TimerHandle | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._offset = (0, -1.0)
        self._settings: dict[tuple[str, int, int], bytes] = {}
        self._window_us = config.window_us
        self._worker_ttl_us = _us(config.worker_ttl_seconds)
        self._ticket_ttl_us = _us(config.ticket_ttl_seconds)
        self._margin = config.wire_margin
        self._models: dict[str, tuple[str, Quota]] = {}

    # -- helpers -------------------------------------------------------------------
    def _metrics(self, model: str) -> ModelMetrics:
        metrics = self.metrics.get(model)
        if metrics is None:
            metrics = self.metrics[model] = ModelMetrics()
        return metrics

    def _model(self, model: str) -> tuple[str, Quota]:
        """The checked model name and its quota (looked up once per name)."""
        known = self._models.get(model)
        if known is None:
            name = check_model(model)
            known = self._models[model] = (name, self.config.quota_for(name))
        return known

    def _day_offset(self) -> int:
        offset, until = self._offset
        now = time.monotonic()
        if now >= until:
            offset = day_offset_seconds(self.config.day_timezone)
            self._offset = (offset, now + DAY_OFFSET_SECONDS)
        return offset

    def _model_settings(self, model: str, flight_us: int) -> bytes:
        """acquire.lua's settings argument for `model` (built once, sent as is)."""
        offset = self._day_offset()
        key = (model, offset, flight_us)
        settings = self._settings.get(key)
        if settings is None:
            quota = self.config.quota_for(model)
            settings = acquire_settings(
                model,
                self.prefix,
                rpm=quota.rpm,
                tpm=quota.tpm,
                rpd=quota.rpd or 0,
                window_us=self._window_us,
                ticket_ttl_us=self._ticket_ttl_us,
                day_offset=offset,
                worker_ttl_us=self._worker_ttl_us,
                recovery=self.config.recovery_per_window,
                lead_us=_us(self.config.lead_seconds),
                flight_us=flight_us,
            )
            self._settings[key] = settings
        return settings

    @property
    def redis_down(self) -> bool:
        return self._outage.down

    @property
    def pending_settlements(self) -> int:
        """Settlements not yet delivered to Redis."""
        return len(self._pending)

    async def _evalsha(self, sha: str, args: Sequence[str | int | float | bytes]) -> Any:
        """EVALSHA on a connection of the client's pool, without the client's command
        wrapper (its retry loop, response callbacks and instrumentation: about 12 us of a
        ~150 us call; the limiter handles outages itself). redis-py closes a
        connection that fails or is cancelled mid-command before it goes back to the pool.

        A pooled connection Redis closed while it sat idle (Redis restarted) can pass the
        pool's check when the event loop has not yet seen the close: its command fails with
        ConnectionError and is sent once more, at once, on a new connection, as the client's
        own retry would. A script the dead server may have run before it closed is then run
        twice: a grant or a day's request counted twice (on the safe side), a settlement
        found gone the second time (no effect)."""
        redis = self.redis
        if redis.connection is not None:  # a single-connection client: its lock is needed
            return await redis.evalsha(sha, 0, *args)
        pool = redis.connection_pool
        connection = await pool.get_connection()  # type: ignore[no-untyped-call]  # redis-py: unannotated
        try:
            try:
                await _send(connection, ("EVALSHA", sha, 0, *args))
                return await connection.read_response()
            except RedisConnectionError:
                await connection.disconnect()
            await _send(connection, ("EVALSHA", sha, 0, *args))
            return await connection.read_response()
        finally:
            await pool.release(connection)

    async def _once(self, script: str, args: Sequence[str | int | float | bytes]) -> Any:
        """One script call; outage errors propagate, other Redis errors become LimiterError.
        Called by SHA; a Redis that does not know the script (restarted) gets it loaded."""
        registered = getattr(self._scripts, script)
        try:
            try:
                reply = await self._evalsha(registered.sha, args)
            except NoScriptError:
                reply = await registered(keys=[], args=list(args))
        except OUTAGE_ERRORS:
            raise
        except RedisError as exc:
            raise LimiterError(f"Gemini limiter: {script} failed: {exc}") from None
        self._outage.answered()
        return reply

    # -- settlements carried by any call ---------------------------------------------
    def _take(self) -> list[_Settlement]:
        """Pending settlements for one call (oldest first); ones too old to matter (their
        grant has left the window whatever happened) are dropped."""
        if not self._pending:
            return []
        horizon = time.monotonic() - self.config.max_flight_seconds - self.config.window_seconds
        if len(self._pending) <= MAX_CARRIED and self._pending[0].made_at > horizon:
            carried, self._pending = self._pending, []  # the oldest is recent: all are
            return carried
        carried = [s for s in self._pending[:MAX_CARRIED] if s.made_at > horizon]
        del self._pending[:MAX_CARRIED]
        return carried

    def _put_back(self, carried: list[_Settlement], counters: Counters | None = None) -> None:
        if counters:
            self._add_counters(counters)
        if carried:
            self._pending[:0] = carried
            self._schedule_flush(retry=True)

    def _take_counters(self) -> Counters:
        counters, self._counters = self._counters, {}
        return counters

    def _add_counters(self, counters: Counters) -> None:
        for model, sums in counters.items():
            mine = self._counters.setdefault(model, [0, 0, 0, 0])
            for k, value in enumerate(sums):
                mine[k] += value

    def _count(self, carried: list[_Settlement], missing: str) -> None:
        """Sum the estimate counters of the reconciles an acquire carried, but those whose
        grant Redis did not find (`missing`: their positions, from 1)."""
        skip = {int(i) for i in missing.split(",")} if missing else set()
        counted = False
        for position, settlement in enumerate(carried, 1):
            if settlement.kind == "r" and position not in skip:
                sums = self._counters.get(settlement.model)
                if sums is None:
                    sums = self._counters[settlement.model] = [0, 0, 0, 0]
                sums[0] += 1
                sums[1] += settlement.estimate
                sums[2] += settlement.actual
                sums[3] += abs(settlement.actual - settlement.estimate)
                counted = True
        if counted and self._counters_timer is None:
            self._schedule_counters()

    @staticmethod
    def _carry(carried: list[_Settlement], counters: Counters | None = None) -> list[str | int]:
        args: list[str | int] = [len(carried), *[settlement.arg for settlement in carried]]
        if counters:
            args.append(len(counters))
            args.extend(
                f"{model}|{sums[0]}|{sums[1]}|{sums[2]}|{sums[3]}"
                for model, sums in counters.items()
            )
        return args

    async def _carrying(self, script: str, head: Sequence[str | int | float | bytes]) -> Any:
        """`script` with this process's pending settlements and estimate counters after its
        own arguments; they are put back if the call did not reach Redis."""
        carried = self._take()
        counters = self._take_counters()
        try:
            return await self._once(script, [*head, *self._carry(carried, counters)])
        except BaseException:
            self._put_back(carried, counters)
            raise

    def _schedule_flush(self, *, retry: bool = False) -> None:
        """Deliver pending settlements after `settle_delay_seconds` unless a call of this
        process carried them by then (asyncio: a timer; other event loops flush inline)."""
        if self._flush_timer is not None or (self._flusher and not self._flusher.done()):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        delay = self.config.settle_delay_seconds if not retry else 0.25
        self._flush_timer = loop.call_later(delay, self._flush_due)

    def _schedule_counters(self) -> None:
        """Deliver the estimate counters after COUNTERS_DELAY_SECONDS unless a publish or
        settle carried them by then (asyncio only; elsewhere they wait for one)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._counters_timer = loop.call_later(COUNTERS_DELAY_SECONDS, self._counters_due)

    def _counters_due(self) -> None:
        self._counters_timer = None
        if self._counters or self._pending:
            self._start_flush()

    def _flush_due(self) -> None:
        self._flush_timer = None
        if self._pending:
            self._start_flush()

    def _start_flush(self) -> None:
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        """One settle call with what is pending now (a timer's delivery): settlements made
        while it runs wait for a call to carry them, or their own timer, like any other."""
        try:
            delivered = await self._flush_once()
        except LimiterError as exc:
            log.error("%s; %d settlements dropped", exc, len(self._pending))
            self._pending.clear()
            self._counters.clear()
            return
        except asyncio.CancelledError:
            return
        self._flusher = None
        if not delivered:
            self._schedule_flush(retry=True)
        elif self._pending:
            self._schedule_flush()

    async def _flush_once(self) -> bool:
        """Deliver up to MAX_CARRIED pending settlements and every estimate counter in one
        settle call. False if Redis could not be reached (they stay pending)."""
        carried = self._take()
        counters = self._take_counters()
        args = (self.prefix, self._window_us, self._day_offset(), self._worker_ttl_us)
        try:
            await self._once("settle", [*args, *self._carry(carried, counters)])
        except OUTAGE_ERRORS as exc:
            self._outage.failed(exc)
            self._pending[:0] = carried
            self._add_counters(counters)
            return False
        except BaseException:
            self._pending[:0] = carried
            self._add_counters(counters)
            raise
        return True

    async def flush(self) -> bool:
        """Deliver every pending settlement and estimate counter now. False if Redis could
        not be reached (they stay pending and are tried again)."""
        while self._pending or self._counters:
            if not await self._flush_once():
                return False
        return True

    async def aclose(self) -> None:
        """Deliver what is pending (best effort, at most a second) and stop the timers."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        if self._counters_timer is not None:
            self._counters_timer.cancel()
            self._counters_timer = None
        with anyio.CancelScope(shield=True), anyio.move_on_after(1.0):
            await self.flush()

    # -- acquire -------------------------------------------------------------------
    async def acquire(
        self,
        model: str,
        estimated_tokens: int,
        *,
        worker: str = "",
        early: bool = False,
        flight_seconds: float | None = None,
    ) -> Reservation:
        """Wait until the fleet may send one request of `estimated_tokens` input tokens.

        With `early`, return as soon as the grant is made, possibly up to `lead_seconds`
        before its room frees: the caller must then `await wire(reservation)` just before
        sending. Without, this returns only once the request may leave. `flight_seconds`
        bounds the call (default `max_flight_seconds`): a grant never settled counts as
        arrived then."""
        model, quota = self._model(model)
        if estimated_tokens < 0:
            raise ValueError(f"estimated tokens must not be negative (got {estimated_tokens})")
        if estimated_tokens > quota.tpm:
            raise RequestTooLarge(
                f"a request of {estimated_tokens} input tokens can never fit {model}'s "
                f"limit of {quota.tpm} tokens per window"
            )
        flight = self.config.max_flight_seconds if flight_seconds is None else flight_seconds
        if not 1 <= flight <= 86_400:
            raise ValueError(f"flight must be 1 to 86400 s (got {flight})")
        flight_us = _us(flight)
        ticket = os.urandom(8).hex()  # an id, not a secret: secrets.token_hex adds calls
        arrival = 0
        started = time.monotonic()
        failures = 0
        reservation: Reservation | None = None
        try:
            while True:
                settings = self._model_settings(model, flight_us)
                attempt = f"{ticket}|{arrival}|{estimated_tokens}|{self._epoch}|{worker}"
                asked = time.monotonic()
                carried = self._take()
                try:
                    reply = await self._once("acquire", [settings, attempt, *self._carry(carried)])
                except OUTAGE_ERRORS as exc:
                    self._put_back(carried)
                    self._outage.failed(exc)
                    await anyio.sleep(_backoff(failures))
                    failures += 1
                    continue
                except BaseException:
                    self._put_back(carried)
                    raise
                received = time.monotonic()
                failures = 0
                fields = _text(reply).split("|")
                if carried:
                    self._count(carried, fields[-1])
                self._epoch = fields[2]
                arrival = int(fields[3])
                if fields[0] == "1":
                    granted_us = int(fields[1])
                    not_before_us = int(fields[4])
                    reservation = Reservation(
                        id=ticket,
                        model=model,
                        tokens=estimated_tokens,
                        granted_at_us=granted_us,
                        waited=received - started,
                        not_before=local_deadline(received, granted_us, not_before_us),
                        not_before_us=not_before_us,
                        asked_at=asked,
                        flight_seconds=flight,
                        flight_us=flight_us,
                    )
                    waited = received - started
                    if not early:
                        await self._until(reservation.not_before)
                        waited = time.monotonic() - started
                    metrics = self._metrics(model)
                    metrics.grants += 1
                    metrics.wait_seconds += waited
                    metrics.max_wait_seconds = max(metrics.max_wait_seconds, waited)
                    return reservation
                retry = int(fields[1]) / 1e6
                await anyio.sleep(min(retry, self.config.max_poll_seconds))
        except BaseException:
            # A waiter that gives up leaves the queue; a grant it never got to use (the
            # reply was lost to the cancellation, or it was waiting for its moment to
            # send) is taken back.
            with anyio.CancelScope(shield=True), anyio.move_on_after(1.0):
                await self._withdraw(model, ticket, estimated_tokens, worker)
            raise

    async def _withdraw(self, model: str, ticket: str, tokens: int, worker: str) -> None:
        args = (self.prefix, model, ticket, tokens, worker, self._worker_ttl_us)
        for attempt in range(2):
            try:
                await self._once("withdraw", args)
                return
            except OUTAGE_ERRORS as exc:
                self._outage.failed(exc)
                if attempt == 0:
                    await anyio.sleep(0.05)

    @staticmethod
    async def _until(moment: float) -> None:
        delay = moment - time.monotonic()
        if delay > 0:
            await anyio.sleep(delay)

    async def wire(self, reservation: Reservation, *, body_bytes: int = 0) -> None:
        """Call just before the HTTP request leaves: waits until its slot is free
        (`not_before`), then marks the moment. The slot is stamped at that moment plus the
        wire margin for `body_bytes` (never later than the answer)."""
        if reservation.settled:
            raise ValueError("this reservation was already settled")
        delay = reservation.not_before - time.monotonic()
        if delay > 0:
            await anyio.sleep(delay)
        now = time.monotonic()
        if now - reservation.asked_at > reservation.flight_seconds - 1:
            await self.refund(reservation)
            raise ReservationExpired(
                f"Gemini limiter: the grant for {reservation.model} is older than its "
                f"{reservation.flight_seconds:g} s flight; acquire again"
            )
        reservation.sent_at = now
        reservation.body_bytes = max(0, body_bytes)

    # -- after the call ------------------------------------------------------------
    async def reconcile(
        self, reservation: Reservation, actual_input_tokens: int, *, worker: str = ""
    ) -> bool:
        """Settle the grant with the tokens the API counted instead of the estimate. The
        settlement rides on this process's next call to Redis (or goes on its own within
        `settle_delay_seconds`); True when it is accepted for delivery, False when the
        reservation was already settled."""
        if actual_input_tokens < 0:
            raise ValueError(f"actual tokens must not be negative (got {actual_input_tokens})")
        if reservation.settled:
            return False
        self._metrics(reservation.model).estimates.add(reservation.tokens, actual_input_tokens)
        queued = self._settle(reservation, "r", actual_input_tokens, worker)
        if self._flush_inline(queued):
            await self.flush()
        return queued

    async def release(self, reservation: Reservation, *, worker: str = "") -> bool:
        """Settle a grant whose call ended without a token count but may have reached
        Gemini (a 429, a 5xx, a timeout): it keeps its estimate in the window."""
        queued = self._settle(reservation, "k", reservation.tokens, worker)
        if self._flush_inline(queued):
            await self.flush()
        return queued

    async def refund(self, reservation: Reservation, *, worker: str = "") -> bool:
        """Give back a grant whose call never went out (request, tokens and today's count)."""
        if reservation.settled:
            return False
        self._metrics(reservation.model).refunds += 1
        queued = self._settle(reservation, "f", 0, worker)
        if self._flush_inline(queued):
            await self.flush()
        return queued

    def _flush_inline(self, queued: bool) -> bool:
        """Whether a settlement just queued must go now: on asyncio a timer delivers what no
        call carried (no coroutine on the hot path); elsewhere it goes at once."""
        if not queued or self._flush_timer is not None:  # a timer: asyncio
            return False
        return sniffio.current_async_library() != "asyncio"

    def _settle(self, reservation: Reservation, kind: str, actual: int, worker: str) -> bool:
        """Queue a settlement; the caller then flushes if `_flush_inline()` says so."""
        if reservation.settled:
            return False
        reservation.settled = True
        now = time.monotonic()
        sent = reservation.sent_at
        arrival = arrival_bound_us(
            sent_after_us=None if sent is None else _us(sent - reservation.asked_at) + 1,
            answered_after_us=_us(now - reservation.asked_at) + 1,
            body_bytes=reservation.body_bytes,
            margin=self._margin,
            flight_us=reservation.flight_us,
        )
        model = reservation.model
        self._pending.append(
            _Settlement(
                model,
                reservation.tokens,
                kind,
                actual,
                now,
                f"{model}|{reservation.id}|{reservation.granted_at_us}|{reservation.tokens}|"
                f"{kind}|{actual}|{arrival}|{worker}",
            )
        )
        self._schedule_flush()
        return True

    async def report_quota_error(
        self,
        model: str,
        signal: QuotaSignal,
        *,
        reservation: Reservation | None = None,
        default_delay: float = DEFAULT_429_DELAY_SECONDS,
        worker: str = "",
    ) -> Cooldown | None:
        """After a 429: pause `model` for the whole fleet (RetryInfo's delay, or until the
        daily reset for a per-day quota) and, if the fleet was at its ceiling, lower it.
        `reservation` (the request that got the 429) is released. Returns None if Redis
        could not be told."""
        model = check_model(model)
        self._metrics(model).quota_errors += 1
        if reservation is not None and not reservation.settled:
            self._settle(reservation, "k", reservation.tokens, worker)
        delay = signal.retry_delay if signal.retry_delay is not None else default_delay
        head = (
            self.prefix,
            model,
            round(delay * 1000),
            1 if signal.per_day else 0,
            reservation.granted_at_us if reservation is not None else 0,
            signal.describe()[:200],
            self.config.decrease,
            self.config.lowest_factor,
            self.config.recovery_per_window,
            self._window_us,
            self._day_offset(),
            quota_dimension(signal.quota_ids),
            self.config.own_share,
            self._worker_ttl_us,
        )
        try:
            reply = await self._carrying("report", head)
        except OUTAGE_ERRORS as exc:
            self._outage.failed(exc)
            return None
        cooldown = Cooldown(
            seconds=int(reply[0]) / 1000,
            ceiling_factor=float(_text(reply[1])),
            lowered=reply[2] == 1,
            share=float(_text(reply[3])),
        )
        log.warning(
            "Gemini %s: %s at %.0f%% of the ceiling; fleet paused %.1f s, ceiling %.0f%% of "
            "the limits%s",
            model,
            signal.describe(),
            cooldown.share * 100,
            cooldown.seconds,
            cooldown.ceiling_factor * 100,
            "" if cooldown.lowered or signal.per_day else " (not lowered)",
        )
        return cooldown

    # -- inspection ----------------------------------------------------------------
    async def publish(self) -> FleetUsage:
        """Refresh gemini:rpm:current / gemini:tpm:current (and per-model keys), reap
        stale gemini:workers fields, deliver pending settlements; return the fleet's
        usage. Raises on an outage."""
        head = (
            self.prefix,
            self._window_us,
            self._day_offset(),
            self.config.recovery_per_window,
            self._worker_ttl_us,
        )
        reply = await self._carrying("publish", head)
        return parse_fleet_usage(reply)

    async def run_publisher(self, interval: float = 1.0) -> None:
        """Publish forever (a pool runs this in its task group); survives outages."""
        while True:
            try:
                await self.publish()
                self._outage.answered()
            except OUTAGE_ERRORS as exc:
                self._outage.failed(exc)
            await anyio.sleep(interval)

    # -- the day's count, kept durable by the caller ---------------------------------
    # Redis may run without persistence: a restart forgets the requests counted today.
    # These two calls let a caller that can keep the counts (the pool: its queue database,
    # pool/day_usage.py) read them out and put them back; the limiter itself knows nothing
    # of where they are kept. A quota day is a day number: days since 1970-01-01 in
    # `config.day_timezone`, by Redis TIME (the day `acquire` counts requests in).
    async def day_counts(self) -> tuple[str, int, dict[str, tuple[int, int]]]:
        """`(epoch, today, {model: (quota_day, count)})`, read by one script (day_counts.lua).

        `epoch` is the id of Redis's current epoch, '' while none exists (Redis came back
        empty and nobody acquired since): a caller that sees it change knows that Redis lost
        its state in between. `today` is the quota day now. Each model seen has the day its
        count belongs to, an earlier one when nothing was granted since that day ended.
        Raises on an outage (OUTAGE_ERRORS) or `LimiterError`."""
        reply = await self._once("day_counts", (self.prefix, self._day_offset()))
        return self._day_counts_reply(reply)

    async def raise_day_count(self, model: str, quota_day: int, count: int) -> bool:
        """Make `model`'s request count for `quota_day` at least `count` (atomically: the
        greater of the two), if `quota_day` is today in Redis; for any other day nothing
        changes and False is returned, so a count from yesterday never lands in today.
        Never lowers a count. Raises on an outage (OUTAGE_ERRORS) or `LimiterError`."""
        model = check_model(model)
        if quota_day < 0 or count < 0:
            raise ValueError(f"quota day and count must not be negative ({quota_day}, {count})")
        reply = await self._once(
            "day_counts", (self.prefix, self._day_offset(), model, quota_day, count)
        )
        return self._day_counts_reply(reply)[1] == quota_day

    @staticmethod
    def _day_counts_reply(reply: Sequence[object]) -> tuple[str, int, dict[str, tuple[int, int]]]:
        def text(value: object) -> str:
            return value.decode() if isinstance(value, bytes) else str(value)

        counts = {
            text(reply[i]): (int(text(reply[i + 1])), int(text(reply[i + 2])))
            for i in range(2, len(reply) - 2, 3)
        }
        return text(reply[0]), int(text(reply[1])), counts

    # -- a pool leaving ------------------------------------------------------------------
    async def forget_workers(self, workers: Sequence[str]) -> int:
        """Take `workers` out of `gemini:workers` at once (a pool stopping cleanly: they
        make no more calls), after delivering this process's pending settlements, which
        would list them again as idle. Returns how many were listed. Raises on an outage."""
        from ratelimit.keys import fleet_keys

        await self.flush()
        names = [worker for worker in workers if worker]
        if not names:
            return 0
        keys = fleet_keys(self.prefix)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hdel(keys.workers, *names)
            pipe.zrem(keys.worker_expiry, *names)
            removed, _ = await pipe.execute()
        return int(removed)


async def read_fleet_usage(redis: Redis, prefix: str, config: LimiterConfig) -> FleetUsage:
    """Run publish.lua once (any process may: `ocr-pool status` does)."""
    script = Scripts.register(redis).publish
    try:
        reply = await script(
            keys=[],
            args=[
                prefix,
                config.window_us,
                day_offset_seconds(config.day_timezone),
                config.recovery_per_window,
                _us(config.worker_ttl_seconds),
                0,
            ],
        )
    except OUTAGE_ERRORS:
        raise
    except RedisError as exc:
        raise LimiterError(f"Gemini limiter: publish failed: {exc}") from None
    return parse_fleet_usage(reply)
