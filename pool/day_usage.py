"""The day's Gemini request count per model, kept where a Redis restart cannot lose it.

The limiter counts the requests of each quota day per model in Redis, and checks
`GEMINI_RPD_LIMIT` (and the per-model daily limits) against that count. Redis may run
without persistence: a restart forgets the count, and the fleet would spend the day's
quota again. Each pool runs a `DayUsage` beside its workers:

- **watch**, every `watch_seconds` (¼ s; at most a quarter of the limiter's window):
  read the counts (one script, `GeminiLimiter.day_counts`) and remember them with this
  process's own grant and refund tallies taken just before. When Redis's epoch is gone
  or changed since the last reading, Redis lost its state: the counts are put back at
  once (`GeminiLimiter.raise_day_count`: the greater of Redis's count and the one given,
  today only), from the last reading plus what this process was granted since (exact for
  this process's own calls) and from what the databases answered last; then flushed.
  The limiter grants nothing for a whole window after Redis comes back empty (its fence),
  so the counts are back before any new call can go out.
- **flush**, every `flush_seconds` (`GEMINI_RPD_FLUSH_SECONDS`, 5 s), right after a loss,
  at start-up (before the first claim) and when the pool stops: merge Redis's counts into
  the queue database of every environment (`ocr_gemini_day_usage_merge`, greatest wins:
  the quota belongs to the API key, shared by every environment), then raise Redis's count
  to the greatest any database holds, today only. This covers what no running pool
  remembers: pools restarted together with Redis (a hard crash of both loses at most the
  last `flush_seconds` of calls; a graceful stop flushes last), a pool starting into an
  emptied Redis, a Redis reloaded from an old snapshot.

A database that cannot be reached (or does not answer within 10 s) is logged once (and
once when it answers again) and tried again next round: neither the pool, nor any grant,
nor the watch waits for it (watch and flush are two loops). A refund made after its
grant was flushed stays counted (the count errs on the side of the quota).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import anyio

from ratelimit.limiter import OUTAGE_ERRORS, GeminiLimiter, LimiterError, ModelMetrics
from store import QueueStore, StoreError

log = logging.getLogger("pool")
T = TypeVar("T")

DAY_ZERO = dt.date(1970, 1, 1)
DEFAULT_FLUSH_SECONDS = 5.0
MAX_WATCH_SECONDS = 0.25
READ_ATTEMPTS = 3
STORE_TIMEOUT_SECONDS = 10.0
"""A database that has not answered a merge by then counts as unreachable this round."""


# --- pure policy ---------------------------------------------------------------------
def quota_date(day: int) -> dt.date:
    """The date of a quota day number (days since 1970-01-01 in the quota's time zone)."""
    return DAY_ZERO + dt.timedelta(days=day)


def quota_day_number(date: dt.date) -> int:
    return (date - DAY_ZERO).days


@dataclass(frozen=True, slots=True)
class Tally:
    """Grants this process received and refunds it made, for one model (ever)."""

    grants: int = 0
    refunds: int = 0


def tallies(metrics: Mapping[str, ModelMetrics]) -> dict[str, Tally]:
    return {model: Tally(m.grants, m.refunds) for model, m in metrics.items()}


@dataclass(frozen=True, slots=True)
class Reading:
    """One reading of Redis's day counts, with this process's tallies taken just before
    (so a grant of this process is never missed: at worst one whose answer was still on
    its way is counted twice; see `DayUsage.read`)."""

    epoch: str
    today: int
    counts: Mapping[str, tuple[int, int]]
    """model -> (quota day, count) as Redis holds them"""
    tallies: Mapping[str, Tally] = field(default_factory=dict)

    def today_counts(self) -> dict[str, int]:
        return {m: c for m, (day, c) in self.counts.items() if day == self.today}

    def by_day(self) -> dict[int, dict[str, int]]:
        """Counts grouped by quota day (zero counts left out); today always present."""
        days: dict[int, dict[str, int]] = {self.today: {}}
        for model, (day, count) in self.counts.items():
            if count > 0:
                days.setdefault(day, {})[model] = count
        return days


def may_have_lost(before: Reading | None, now: Reading) -> bool:
    """May Redis have lost its state since the last reading? Its epoch is created by the
    first `acquire` after Redis came back empty and never changes otherwise; no epoch at
    all means Redis is empty, or nobody asked since it came back (putting the counts back
    then is cheap and harmless: it never lowers one)."""
    if before is None:
        return False
    return now.epoch == "" or now.epoch != before.epoch


def lost(before: Reading | None, now: Reading) -> bool:
    """Did Redis certainly lose its state: the epoch of the last reading is gone?"""
    return before is not None and before.epoch != "" and now.epoch != before.epoch


def memory_floors(before: Reading, now: Mapping[str, Tally], today: int) -> dict[str, int]:
    """Today's count per model as this process knows it after Redis lost its state: the
    last reading, plus the grants and minus the refunds of this process since. A lower
    bound of the fleet's count (exact when this process was the only one calling since
    that reading). Nothing when the day changed in between (which day the grants fell on
    is unknown: the databases' counts stand)."""
    if before.today != today:
        return {}
    counts = before.today_counts()
    floors: dict[str, int] = {}
    for model in sorted(counts.keys() | now.keys()):
        was, is_ = before.tallies.get(model, Tally()), now.get(model, Tally())
        since = (is_.grants - was.grants) - (is_.refunds - was.refunds)
        floor = counts.get(model, 0) + since
        if floor > 0:
            floors[model] = floor
    return floors


def greatest(maps: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """Per model, the greatest count of any of `maps`."""
    merged: dict[str, int] = {}
    for counts in maps:
        for model, count in counts.items():
            merged[model] = max(merged.get(model, 0), count)
    return merged


def raises_needed(redis_today: Mapping[str, int], floors: Mapping[str, int]) -> dict[str, int]:
    """The models whose count Redis must raise, to which count (never lowers one)."""
    return {m: f for m, f in sorted(floors.items()) if f > redis_today.get(m, 0)}


# --- the task ------------------------------------------------------------------------
class DayUsage:
    """Keeps the limiter's day counts durable in the queue databases (see the module)."""

    def __init__(
        self,
        limiter: GeminiLimiter,
        stores: Sequence[QueueStore],
        *,
        flush_seconds: float = DEFAULT_FLUSH_SECONDS,
        watch_seconds: float | None = None,
        store_timeout_seconds: float = STORE_TIMEOUT_SECONDS,
    ) -> None:
        if flush_seconds <= 0:
            raise ValueError(f"flush period must be positive (got {flush_seconds})")
        self.limiter = limiter
        self.stores = list(stores)
        self.flush_seconds = flush_seconds
        self.store_timeout_seconds = store_timeout_seconds
        self.watch_seconds = (
            watch_seconds
            if watch_seconds is not None
            else min(MAX_WATCH_SECONDS, limiter.config.window_seconds / 4)
        )
        self.last: Reading | None = None
        self.durable: dict[int, dict[str, int]] = {}
        """quota day -> model -> greatest count the databases answered"""
        self.losses = 0
        """times Redis was found to have lost its state"""
        self.flushed_at: float | None = None
        """monotonic time of the last flush that reached every database"""
        self._failing: set[str] = set()
        self._limiter_errors: set[str] = set()
        self._flush_now = anyio.Event()

    @property
    def failing(self) -> frozenset[str]:
        """Environments whose database could not be reached at the last flush."""
        return frozenset(self._failing)

    # -- one step each -------------------------------------------------------------
    async def read(self) -> Reading:
        """One reading, with this process's tallies from just before it. A grant of this
        process whose answer arrives while the reading is on its way may or may not be in
        Redis's count: such a reading is taken again (up to 3 times; then the tallies from
        before stand, which can only count that grant twice, never miss it)."""
        for _ in range(READ_ATTEMPTS):
            before = tallies(self.limiter.metrics)
            epoch, today, counts = await self.limiter.day_counts()
            if tallies(self.limiter.metrics) == before:
                break
        return Reading(epoch, today, counts, before)

    async def watch(self) -> bool:
        """Read the counts; if Redis may have lost its state since the last reading, put
        them back at once (memory, and the databases' last answer). Returns True when it
        certainly had (its epoch is gone): the caller flushes at once."""
        now, before = await self.read(), self.last
        if before is None or not may_have_lost(before, now):
            self.last = now
            return False
        floors = greatest(
            (
                memory_floors(before, tallies(self.limiter.metrics), now.today),
                self.durable.get(now.today, {}),
            )
        )
        raised = await self._raise(now, floors)
        certain = lost(before, now)
        if certain:
            self.losses += 1
            log.warning(
                "Gemini day count: Redis lost its state (epoch %s is gone); today's counts "
                "put back: %s",
                before.epoch,
                ", ".join(f"{m} {c}" for m, c in raised.items()) or "none to put back",
            )
        self.last = await self.read() if raised else now
        return certain

    async def flush(self) -> None:
        """Merge Redis's counts into every database (greatest wins), then raise Redis's
        count of today to the greatest any database holds."""
        reading = self.last if self.last is not None else await self.read()
        self.last = reading
        complete = True
        for store in self.stores:
            complete = await self._merge(store, reading) and complete
        self.durable = {d: c for d, c in self.durable.items() if d >= reading.today - 1}
        if complete:
            self.flushed_at = time.monotonic()
        await self._raise(reading, self.durable.get(reading.today, {}))

    async def start(self) -> None:
        """At start-up, before the first claim: put back what the databases hold for
        today (Redis may have come back empty while no pool ran). Never raises."""
        try:
            self.last = await self.read()
            await self.flush()
            self.last = await self.read()
        except OUTAGE_ERRORS as exc:
            log.warning("Gemini day count not restored at start: Redis unreachable (%s)", exc)
        except LimiterError as exc:
            log.error("Gemini day count not restored at start: %s", exc)

    async def stop(self) -> None:
        """A last flush when the pool stops (a graceful restart loses nothing). Never raises."""
        try:
            self.last = await self.read()
            await self.flush()
        except (*OUTAGE_ERRORS, LimiterError) as exc:
            log.warning("Gemini day count: last flush skipped: %s", type(exc).__name__)

    async def run(self) -> None:
        """Watch and flush forever (a pool runs this in its task group), in two loops so
        that a slow database never delays the watch; survives outages of Redis (the
        limiter's publisher reports those) and of the databases."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._flush_loop)
            while True:
                if await self._guarded("watch", self.watch):
                    self._flush_now.set()
                await anyio.sleep(self.watch_seconds)

    async def _flush_loop(self) -> None:
        wait = 0.0 if self.flushed_at is None else self.flush_seconds
        while True:
            with anyio.move_on_after(wait):
                await self._flush_now.wait()
            self._flush_now = anyio.Event()
            await self._guarded("flush", self.flush)
            wait = self.flush_seconds

    # -- helpers -------------------------------------------------------------------
    async def _guarded(self, what: str, step: Callable[[], Awaitable[T]]) -> T | None:
        """Run one step; an outage of Redis is skipped (the limiter's publisher reports
        it), an error of the limiter's script logged once until the step succeeds."""
        try:
            result = await step()
        except OUTAGE_ERRORS:
            return None
        except LimiterError as exc:
            if what not in self._limiter_errors:
                self._limiter_errors.add(what)
                log.error("Gemini day count (%s): %s", what, exc)
            return None
        self._limiter_errors.discard(what)
        return result

    async def _merge(self, store: QueueStore, reading: Reading) -> bool:
        """Merge one database; False (logged once per outage) if it failed."""
        problem = f"no answer within {self.store_timeout_seconds:g} s"
        with anyio.move_on_after(self.store_timeout_seconds):
            try:
                for day, counts in sorted(reading.by_day().items()):
                    stored = await store.merge_gemini_day_usage(quota_date(day), counts)
                    self.durable[day] = greatest((self.durable.get(day, {}), stored))
                problem = ""
            except StoreError as exc:
                problem = str(exc)
        if problem:
            if store.env not in self._failing:
                self._failing.add(store.env)
                log.warning(
                    "Gemini day count not saved in %s (%s); the pool goes on, retrying every %g s",
                    store.env,
                    problem,
                    self.flush_seconds,
                )
            return False
        if store.env in self._failing:
            self._failing.discard(store.env)
            log.info("Gemini day count saved in %s again", store.env)
        return True

    async def _raise(self, reading: Reading, floors: Mapping[str, int]) -> dict[str, int]:
        needed = raises_needed(reading.today_counts(), floors)
        for model, count in needed.items():
            await self.limiter.raise_day_count(model, reading.today, count)
        return needed
