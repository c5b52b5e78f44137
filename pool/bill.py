"""The fleet's Gemini bill for the day, in Redis: every pool adds what its client spent.

`P gemini:bill:<day>` (a hash; `<day>` is the quota day, YYYY-MM-DD in
`GEMINI_QUOTA_TIMEZONE`, the day `GEMINI_RPD_LIMIT` counts) holds per model
`<model>:requests`, `<model>:input_tokens`, `<model>:output_tokens`,
`<model>:thinking_tokens` (integers) and `<model>:cost_usd` (a float, at each pool's price
table). Answered, cut and broken answers are all billed; an error answer carries no usage.
Each pool flushes the growth of its client's counters every few seconds (one round trip,
off the calls' path) and once more when it stops; the key expires a week after the day.
`ocr-pool gemini` reads it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import anyio
from redis.asyncio import Redis
from redis.exceptions import RedisError

from workers.gemini.client import ClientStats, TokenCounts
from workers.pricing import PriceTable

log = logging.getLogger("pool")

COUNTERS = ("requests", "input_tokens", "output_tokens", "thinking_tokens")
KEEP_SECONDS = 8 * 86400


def bill_key(prefix: str, day: str) -> str:
    return f"{prefix}gemini:bill:{day}"


def quota_day(timezone: str, now: dt.datetime | None = None) -> str:
    moment = now if now is not None else dt.datetime.now(dt.UTC)
    return moment.astimezone(ZoneInfo(timezone)).date().isoformat()


@dataclass(frozen=True, slots=True)
class BillRow:
    model: str
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    thinking_tokens: int = 0
    cost_usd: float | None = None
    """None when no pool knew the model's price."""

    def as_json(self) -> dict[str, object]:
        return {
            "model": self.model,
            "requests": self.requests,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "thinking_tokens": self.thinking_tokens,
            "cost_usd": self.cost_usd,
        }


def growth(now: TokenCounts, before: TokenCounts | None) -> TokenCounts:
    """What `now` added since `before` (pure)."""
    if before is None:
        return TokenCounts(now.requests, now.input_tokens, now.output_tokens, now.thinking_tokens)
    return TokenCounts(
        now.requests - before.requests,
        now.input_tokens - before.input_tokens,
        now.output_tokens - before.output_tokens,
        now.thinking_tokens - before.thinking_tokens,
    )


def parse_bill(raw: Mapping[bytes | str, bytes | str]) -> list[BillRow]:
    """The hash as rows, one per model, sorted by model (pure)."""
    fields: dict[str, dict[str, str]] = {}
    for key, value in raw.items():
        name = key.decode() if isinstance(key, bytes) else key
        model, _, counter = name.rpartition(":")
        if model:
            fields.setdefault(model, {})[counter] = (
                value.decode() if isinstance(value, bytes) else value
            )
    rows = []
    for model, values in sorted(fields.items()):
        cost = values.get("cost_usd")
        counts = {c: int(values.get(c, "0")) for c in COUNTERS}
        rows.append(BillRow(model, **counts, cost_usd=None if cost is None else float(cost)))
    return rows


class BillPublisher:
    """Adds this pool's Gemini spending to the day's bill in Redis."""

    def __init__(
        self,
        redis: Redis,
        stats: ClientStats,
        *,
        prefix: str,
        timezone: str,
        prices: PriceTable,
    ) -> None:
        self.redis = redis
        self.stats = stats
        self.prefix = prefix
        self.timezone = timezone
        self.prices = prices
        self._flushed: dict[str, TokenCounts] = {}

    async def flush(self) -> None:
        """One round trip with whatever grew since the last flush (nothing if nothing)."""
        key = bill_key(self.prefix, quota_day(self.timezone))
        pipe = self.redis.pipeline(transaction=False)
        pending: dict[str, TokenCounts] = {}
        for model, counts in list(self.stats.tokens_by_model.items()):
            now = TokenCounts(
                counts.requests, counts.input_tokens, counts.output_tokens, counts.thinking_tokens
            )
            delta = growth(now, self._flushed.get(model))
            if not delta.requests and not (delta.input_tokens or delta.output_tokens):
                continue
            for counter in COUNTERS:
                amount = getattr(delta, counter)
                if amount:
                    pipe.hincrby(key, f"{model}:{counter}", amount)
            cost = self.prices.cost(
                model, delta.input_tokens, delta.output_tokens, delta.thinking_tokens
            )
            if cost is not None:
                pipe.hincrbyfloat(key, f"{model}:cost_usd", cost)
            pending[model] = now
        if not pending:
            return
        pipe.expire(key, KEEP_SECONDS)
        await pipe.execute()
        self._flushed.update(pending)

    async def run(self, interval: float = 5.0) -> None:
        """Flush every `interval` seconds; a Redis error is logged once per outage and the
        growth is sent at the next flush that works."""
        failing = False
        while True:
            await anyio.sleep(interval)
            try:
                await self.flush()
            except (RedisError, OSError) as exc:
                if not failing:
                    log.warning("Gemini bill not published (will retry): %s", exc)
                failing = True
            else:
                failing = False


def spent(stats: ClientStats, prices: PriceTable) -> tuple[BillRow, ...]:
    """A client's calls since it started, per model, priced (pure)."""
    return tuple(
        BillRow(
            model,
            c.requests,
            c.input_tokens,
            c.output_tokens,
            c.thinking_tokens,
            prices.cost(model, c.input_tokens, c.output_tokens, c.thinking_tokens),
        )
        for model, c in sorted(stats.tokens_by_model.items())
    )


async def read_bill(redis: Redis, prefix: str, day: str) -> list[BillRow]:
    return parse_bill(await redis.hgetall(bill_key(prefix, day)))
