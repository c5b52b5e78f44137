"""The shared Gemini limiter: every pool on every machine asks Redis before each call.

`acquire(model, tokens)` waits (asynchronously) until one Lua script grants the request
against every limit of the model at once: requests and input tokens in a sliding window,
requests per day, the adaptive ceiling, a fleet cooldown after a 429, and the queue of
older waiters (head-of-line: nobody takes the room an older, larger request waits for).
`reconcile` replaces the estimate by the API's count; `refund` takes back a call that
never went out. When Redis cannot be reached, nothing is granted (fail closed): waiters
retry with backoff and one line is logged per outage.
"""

from __future__ import annotations

import logging
import random
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import anyio
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from benchmarks.limiter_1b66f58.config import LimiterConfig, check_model, day_offset_seconds
from benchmarks.limiter_1b66f58.scripts import Scripts
from ratelimit.estimate import EstimateStats
from ratelimit.quota_error import QuotaSignal
from ratelimit.usage import FleetUsage, parse_fleet_usage

log = logging.getLogger("ratelimit")

OUTAGE_ERRORS = (RedisConnectionError, RedisTimeoutError, ReadOnlyError, OSError)
MAX_BACKOFF_SECONDS = 5.0
DEFAULT_429_DELAY_SECONDS = 5.0


class LimiterError(Exception):
    """Redis answered the limiter with an error (not an outage): a bug or a wrong key type."""


class RequestTooLarge(ValueError):
    """A request asks for more tokens than the model's whole window allows: it never fits."""


@dataclass(frozen=True, slots=True)
class Reservation:
    """A granted request. Pass it to `reconcile` after the call, or `refund` if none was made."""

    id: str
    model: str
    tokens: int
    granted_at_us: int
    """Redis time of the grant, microseconds since the epoch"""
    waited: float
    """seconds between asking and the grant"""


@dataclass(frozen=True, slots=True)
class Cooldown:
    seconds: float
    ceiling_factor: float
    lowered: bool


@dataclass(slots=True)
class ModelMetrics:
    grants: int = 0
    wait_seconds: float = 0.0
    max_wait_seconds: float = 0.0
    refunds: int = 0
    quota_errors: int = 0
    estimates: EstimateStats = field(default_factory=EstimateStats)


def _text(value: bytes | str | int) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class _Outage:
    """Tracks whether Redis is reachable; logs one line when it goes and one when it's back."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.since: float | None = None
        self.outages = 0

    def failed(self, exc: BaseException) -> None:
        if self.since is None:
            self.since = time.monotonic()
            self.outages += 1
            log.error(
                "Gemini limiter: Redis unreachable at %s (%s); no Gemini call is made until "
                "it answers again, retrying with backoff",
                self.where,
                type(exc).__name__,
            )

    def answered(self) -> None:
        if self.since is not None:
            log.warning(
                "Gemini limiter: Redis at %s answers again after %.1f s",
                self.where,
                time.monotonic() - self.since,
            )
            self.since = None

    @property
    def down(self) -> bool:
        return self.since is not None


def _backoff(attempt: int) -> float:
    return min(MAX_BACKOFF_SECONDS, 0.05 * 2.0 ** min(attempt, 10)) * random.uniform(0.5, 1.0)


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

    # -- helpers -------------------------------------------------------------------
    def _metrics(self, model: str) -> ModelMetrics:
        return self.metrics.setdefault(model, ModelMetrics())

    def _day_offset(self) -> int:
        return day_offset_seconds(self.config.day_timezone)

    @property
    def redis_down(self) -> bool:
        return self._outage.down

    async def _once(self, script: str, args: Sequence[str | int | float]) -> list[object]:
        """One script call; outage errors propagate, other Redis errors become LimiterError."""
        try:
            reply = await getattr(self._scripts, script)(keys=[], args=list(args))
        except OUTAGE_ERRORS:
            raise
        except RedisError as exc:
            raise LimiterError(f"Gemini limiter: {script} failed: {exc}") from None
        self._outage.answered()
        return reply  # type: ignore[no-any-return]

    async def _best_effort(self, script: str, args: Sequence[str | int | float]) -> bool:
        """For calls after the fact (reconcile, refund, withdraw): one retry, then give up.
        Giving up is safe: the grant keeps its estimate, a ticket expires on its own."""
        for attempt in range(2):
            try:
                await self._once(script, args)
                return True
            except OUTAGE_ERRORS as exc:
                self._outage.failed(exc)
                if attempt == 0:
                    await anyio.sleep(0.05)
        return False

    # -- acquire -------------------------------------------------------------------
    async def acquire(self, model: str, estimated_tokens: int, *, worker: str = "") -> Reservation:
        """Wait until the fleet may send one request of `estimated_tokens` input tokens."""
        model = check_model(model)
        quota = self.config.quota_for(model)
        if estimated_tokens < 0:
            raise ValueError(f"estimated tokens must not be negative (got {estimated_tokens})")
        if estimated_tokens > quota.tpm:
            raise RequestTooLarge(
                f"a request of {estimated_tokens} input tokens can never fit {model}'s "
                f"limit of {quota.tpm} tokens per window"
            )
        ticket = secrets.token_hex(8)
        arrival = 0
        started = time.monotonic()
        failures = 0
        try:
            while True:
                args = (
                    self.prefix,
                    model,
                    ticket,
                    arrival,
                    estimated_tokens,
                    quota.rpm,
                    quota.tpm,
                    quota.rpd or 0,
                    self.config.window_us,
                    round(self.config.ticket_ttl_seconds * 1e6),
                    self._day_offset(),
                    self._epoch,
                    secrets.token_hex(8),
                    worker,
                    round(self.config.worker_ttl_seconds * 1e6),
                    self.config.recovery_per_window,
                )
                try:
                    reply = await self._once("acquire", args)
                except OUTAGE_ERRORS as exc:
                    self._outage.failed(exc)
                    await anyio.sleep(_backoff(failures))
                    failures += 1
                    continue
                failures = 0
                self._epoch = _text(reply[2])  # type: ignore[arg-type]
                arrival = int(_text(reply[3]))  # type: ignore[arg-type]
                if reply[0] == 1:
                    waited = time.monotonic() - started
                    metrics = self._metrics(model)
                    metrics.grants += 1
                    metrics.wait_seconds += waited
                    metrics.max_wait_seconds = max(metrics.max_wait_seconds, waited)
                    return Reservation(
                        id=ticket,
                        model=model,
                        tokens=estimated_tokens,
                        granted_at_us=int(_text(reply[1])),  # type: ignore[arg-type]
                        waited=waited,
                    )
                retry = int(_text(reply[1])) / 1e6  # type: ignore[arg-type]
                await anyio.sleep(min(retry, self.config.max_poll_seconds))
        except BaseException:
            with anyio.CancelScope(shield=True), anyio.move_on_after(1.0):
                await self._best_effort(
                    "withdraw",
                    (
                        self.prefix,
                        model,
                        ticket,
                        worker,
                        round(self.config.worker_ttl_seconds * 1e6),
                    ),
                )
            raise

    # -- after the call ------------------------------------------------------------
    async def reconcile(
        self, reservation: Reservation, actual_input_tokens: int, *, worker: str = ""
    ) -> bool:
        """Charge the window with the tokens the API counted instead of the estimate.
        Returns False if Redis could not be told (the estimate then stays charged)."""
        if actual_input_tokens < 0:
            raise ValueError(f"actual tokens must not be negative (got {actual_input_tokens})")
        self._metrics(reservation.model).estimates.add(reservation.tokens, actual_input_tokens)
        return await self._settle(reservation, actual_input_tokens, worker)

    async def refund(self, reservation: Reservation, *, worker: str = "") -> bool:
        """Give back a grant whose call never went out (request, tokens and today's count)."""
        self._metrics(reservation.model).refunds += 1
        return await self._settle(reservation, -1, worker)

    async def _settle(self, reservation: Reservation, actual: int, worker: str) -> bool:
        return await self._best_effort(
            "reconcile",
            (
                self.prefix,
                reservation.model,
                reservation.id,
                actual,
                reservation.tokens,
                self.config.window_us,
                self._day_offset(),
                worker,
                round(self.config.worker_ttl_seconds * 1e6),
            ),
        )

    async def report_quota_error(
        self,
        model: str,
        signal: QuotaSignal,
        *,
        reservation: Reservation | None = None,
        default_delay: float = DEFAULT_429_DELAY_SECONDS,
    ) -> Cooldown | None:
        """After a 429: pause `model` for the whole fleet (RetryInfo's delay, or until the
        daily reset for a per-day quota) and lower the adaptive ceiling.
        Returns None if Redis could not be told."""
        model = check_model(model)
        self._metrics(model).quota_errors += 1
        delay = signal.retry_delay if signal.retry_delay is not None else default_delay
        args = (
            self.prefix,
            model,
            round(delay * 1000),
            1 if signal.per_day else 0,
            reservation.granted_at_us if reservation is not None else 0,
            signal.describe()[:200],
            self.config.decrease,
            self.config.lowest_factor,
            self.config.recovery_per_window,
            self.config.window_us,
            self._day_offset(),
        )
        try:
            reply = await self._once("report", args)
        except OUTAGE_ERRORS as exc:
            self._outage.failed(exc)
            return None
        cooldown = Cooldown(
            seconds=int(reply[0]) / 1000,  # type: ignore[call-overload]
            ceiling_factor=float(_text(reply[1])),  # type: ignore[arg-type]
            lowered=reply[2] == 1,
        )
        log.warning(
            "Gemini %s: %s; fleet paused %.1f s, ceiling %.0f%% of the limits",
            model,
            signal.describe(),
            cooldown.seconds,
            cooldown.ceiling_factor * 100,
        )
        return cooldown

    # -- inspection ----------------------------------------------------------------
    async def publish(self) -> FleetUsage:
        """Refresh gemini:rpm:current / gemini:tpm:current (and per-model keys), reap
        stale gemini:workers fields; return the fleet's usage. Raises on an outage."""
        return await read_fleet_usage(self.redis, self.prefix, self.config)

    async def run_publisher(self, interval: float = 1.0) -> None:
        """Publish forever (a pool runs this in its task group); survives outages."""
        while True:
            try:
                await self.publish()
                self._outage.answered()
            except OUTAGE_ERRORS as exc:
                self._outage.failed(exc)
            await anyio.sleep(interval)


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
            ],
        )
    except OUTAGE_ERRORS:
        raise
    except RedisError as exc:
        raise LimiterError(f"Gemini limiter: publish failed: {exc}") from None
    return parse_fleet_usage(reply)
