"""Measured mean service time of one job per type, fleet-wide, in Redis.

Every pool folds each finished job's duration into an exponentially weighted moving
average (`pool/lua/ewma.lua`, atomic, called by SHA) kept in one hash that a person can
read with `redis-cli HGETALL {prefix}worker_pool:service_seconds`:

    index          4.210        mean seconds of one index job
    index:samples  1832         jobs folded in so far
    acte           61.500
    acte:samples   97

Until a type has a sample, its seed (a setting) stands in; the first sample replaces the
seed. The hash expires a week after the last sample, so a fleet that stopped long ago
starts again from the seeds. Redis being down never stops the rebalancer: `current()`
answers with the last values it knew (or the seeds), `record()` drops the sample; each
outage is logged once.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping

from redis.asyncio import Redis
from redis.exceptions import RedisError

from capacity.errors import redact
from pool.scripts import script_text

log = logging.getLogger("pool.service_times")

KEY = "worker_pool:service_seconds"

MIN_SECONDS = 0.05
"""A job shorter than this is measured as this (clock noise, cache hits)."""
MAX_SECONDS = 6 * 3600.0
"""A job longer than this is measured as this (a stuck job must not poison the mean)."""
TTL_MS = 7 * 86_400_000


def _parse(value: object) -> float | None:
    """A stored mean, or None if missing or unreadable."""
    if not isinstance(value, bytes | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number > 0 else None


class ServiceTimes:
    """The fleet's mean service seconds per type (`seeds` names the types)."""

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        seeds: Mapping[str, float],
        alpha: float = 0.2,
    ) -> None:
        if not seeds:
            raise ValueError("seeds must name at least one job type")
        for source, seed in seeds.items():
            if not source or ":" in source:
                raise ValueError(f"bad job type {source!r} (empty or containing ':')")
            if not (math.isfinite(seed) and seed > 0):
                raise ValueError(f"seed for {source} must be a positive number, got {seed}")
        if not (0 < alpha <= 1):
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.key = f"{prefix}{KEY}"
        self.seeds = dict(seeds)
        self.alpha = alpha
        self._redis = redis
        self._ewma = redis.register_script(script_text("ewma"))
        self._known = dict(self.seeds)
        self._failing = False

    async def record(self, source: str, seconds: float) -> float:
        """Fold one job's duration into its type's mean; returns the new mean. Durations
        are clamped to [MIN_SECONDS, MAX_SECONDS]; a NaN or a Redis error drops the sample
        (logged) and returns the last known mean."""
        if source not in self.seeds:
            raise ValueError(f"unknown job type {source!r}; expected one of {sorted(self.seeds)}")
        if math.isnan(seconds):
            log.warning("service time for %s is NaN: sample dropped", source)
            return self._known[source]
        clamped = min(max(seconds, MIN_SECONDS), MAX_SECONDS)
        try:
            raw = await self._ewma(
                keys=[self.key],
                args=[source, repr(clamped), repr(self.alpha), MIN_SECONDS, MAX_SECONDS, TTL_MS],
            )
        except (RedisError, OSError) as exc:
            self._failed("record", exc)
            return self._known[source]
        self._recovered()
        mean = _parse(raw)
        if mean is None:  # only if someone else wrote nonsense between our calls
            return self._known[source]
        self._known[source] = mean
        return mean

    async def current(self) -> dict[str, float]:
        """Mean seconds per type: measured where there are samples, else the seed. Never
        raises for Redis: on error, the last values known to this process (or the seeds)."""
        sources = list(self.seeds)
        try:
            values = await self._redis.hmget(self.key, sources)
        except (RedisError, OSError) as exc:
            self._failed("read", exc)
            return dict(self._known)
        self._recovered()
        means: dict[str, float] = {}
        for source, value in zip(sources, values, strict=True):
            parsed = _parse(value)
            means[source] = self.seeds[source] if parsed is None else parsed
        self._known = dict(means)
        return means

    def _failed(self, what: str, exc: BaseException) -> None:
        if self._failing:
            log.debug("service times: %s failed again: %s", what, type(exc).__name__)
            return
        self._failing = True
        log.warning(
            "service times: Redis %s failed (%s: %s); using the last known means until it "
            "answers again",
            what,
            type(exc).__name__,
            redact(str(exc)),
        )

    def _recovered(self) -> None:
        if self._failing:
            self._failing = False
            log.info("service times: Redis answers again")
