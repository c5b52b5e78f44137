"""The whole Gemini bill: thinking asked for (none by default), thinking and output tokens
counted per request, document and model, priced, published to Redis for `ocr-pool
gemini`, and exposed in /metrics. Against the simulator over real HTTP, on the real Redis."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from redis.asyncio import Redis

from gemini_simulator import SimulatorConfig, run_simulator
from gemini_simulator.server import Simulator
from pool.bill import BillPublisher, BillRow, growth, parse_bill, quota_day, read_bill
from pool.wiring.configs import limiter_config
from pool.wiring.settings import load_settings
from ratelimit import GeminiLimiter
from tests.integration.test_gemini_cli import ocr_pool
from workers.gemini import AnswerCut, GeminiClient, GeminiRequest, RetryPolicy, Text
from workers.gemini.client import TokenCounts
from workers.gemini.thinking import Thinking, thinking_for
from workers.pipelines.result import Tally
from workers.pricing import DEFAULT_PRICES, Price, PriceError, PriceTable, parse_prices

pytestmark = pytest.mark.anyio
FLASH = "gemini-2.5-flash"
LONG_TEXT = "Le vendeur déclare que l'immeuble est libre de toute charge. " * 20


# --- pure policy ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "budget", "expected"),
    [
        ("gemini-2.5-flash", None, Thinking(budget=0)),
        ("models/gemini-2.5-flash-lite", None, Thinking(budget=0)),
        ("gemini-2.5-pro", None, Thinking(budget=128)),
        ("gemini-3.5-flash", None, Thinking(level="MINIMAL")),
        ("gemini-3.1-pro-preview", None, Thinking(level="LOW")),
        ("gemini-2.0-flash", None, None),
        ("gemini-1.5-pro", 512, None),
        ("sim-index", None, Thinking(budget=0)),
        ("gemini-2.5-pro", -1, Thinking(budget=-1)),
        ("gemini-3.5-flash", 2048, Thinking(budget=2048)),
    ],
)
def test_the_least_thinking_each_model_allows(
    model: str, budget: int | None, expected: Thinking | None
) -> None:
    assert thinking_for(model, budget) == expected


def test_a_budget_below_dynamic_is_refused() -> None:
    with pytest.raises(ValueError, match="-1"):
        thinking_for(FLASH, -2)


def test_prices_by_longest_family_and_unknown_models_have_none() -> None:
    table = PriceTable.from_setting("gemini-2.5-flash=1:2, my-proxy-model=0.5:1:3")
    assert table.price("gemini-2.5-flash-preview-09-2025") == Price(1, 2, 2)
    assert table.price("gemini-2.5-flash-lite") == DEFAULT_PRICES["gemini-2.5-flash-lite"]
    assert table.price("my-proxy-model") == Price(0.5, 1, 3)
    assert table.cost("sim-index", 1000, 1000, 1000) is None
    assert table.cost("gemini-2.5-flash", 1_000_000, 500_000, 250_000) == 1 + 1 + 0.5
    for bad in ("gemini-2.5-flash", "x=1", "x=1:two", "x=1:-2", "=1:2"):
        with pytest.raises(PriceError):
            parse_prices(bad)


def test_settings_refuse_a_bad_price_in_one_line() -> None:
    with pytest.raises(Exception, match="GEMINI_PRICES") as raised:
        load_settings(gemini_prices="gemini-2.5-flash=cheap:2")
    assert "\n" not in str(raised.value)


def test_a_documents_bill_per_model_and_in_all() -> None:
    tally = Tally(PriceTable.from_setting())
    tally.models[FLASH] = TokenCounts(2, 1_000_000, 100_000, 40_000)
    tally.models["gemini-2.5-pro"] = TokenCounts(1, 100_000, 10_000, 0)
    usage = tally.usage()
    assert usage.gemini_calls == 3
    assert usage.thinking_tokens == 40_000
    assert usage.by_model[FLASH].cost_usd == pytest.approx(0.30 + 0.25 + 0.1)
    assert usage.by_model["gemini-2.5-pro"].cost_usd == pytest.approx(0.125 + 0.1)
    assert usage.cost_usd == pytest.approx(0.65 + 0.225)
    tally.models["sim-unknown"] = TokenCounts(1, 10, 10, 0)
    assert tally.usage().cost_usd is None  # a model without a price: the total is unknown


def test_bill_growth_and_parsing() -> None:
    assert growth(TokenCounts(5, 50, 20, 10), TokenCounts(2, 20, 5, 0)) == TokenCounts(
        3, 30, 15, 10
    )
    rows = parse_bill(
        {
            b"gemini-2.5-flash:requests": b"3",
            b"gemini-2.5-flash:input_tokens": b"30",
            b"gemini-2.5-flash:cost_usd": b"0.25",
            b"sim:requests": b"1",
        }
    )
    assert rows == [
        BillRow("gemini-2.5-flash", 3, 30, 0, 0, 0.25),
        BillRow("sim", 1, 0, 0, 0, None),
    ]


# --- against the simulator -----------------------------------------------------------------


@asynccontextmanager
async def client_for(sim: Simulator, prefix: str) -> AsyncIterator[GeminiClient]:
    redis = Redis.from_url("redis://127.0.0.1:6379/0")
    settings = load_settings(gemini_base_url=sim.url, gemini_api_key="k")
    limiter = GeminiLimiter(redis, limiter_config(settings), prefix=prefix)
    client = GeminiClient(
        limiter, api_key="k", base_url=sim.url, retry=RetryPolicy(base_delay=0.01)
    )
    try:
        yield client
    finally:
        await client.aclose()
        await redis.aclose()


async def test_thinking_is_off_unless_asked_and_counted_when_on(redis_prefix: str) -> None:
    async with (
        run_simulator(SimulatorConfig(port=0, latency_ms=1)) as sim,
        client_for(sim, redis_prefix) as client,
    ):
        quiet = await client.generate(GeminiRequest(model=FLASH, parts=(Text(LONG_TEXT),)))
        thinking = await client.generate(
            GeminiRequest(model=FLASH, parts=(Text(LONG_TEXT),), thinking_budget=-1)
        )
        records = [r for r in sim.records() if r.endpoint == "generateContent"]
        with pytest.raises(AnswerCut) as cut:
            # Thoughts come first within max_output_tokens: they can eat the whole room.
            await client.generate(
                GeminiRequest(
                    model=FLASH, parts=(Text(LONG_TEXT),), thinking_budget=-1, max_output_tokens=200
                )
            )
    assert quiet.thinking_tokens == records[0].thinking_tokens == 0
    assert thinking.thinking_tokens == records[1].thinking_tokens > 0
    assert thinking.output_tokens == quiet.output_tokens  # the same answer
    assert cut.value.thinking_tokens == 200
    assert cut.value.text == ""
    counts = client.stats.tokens_by_model[FLASH]
    assert counts.requests == 3
    assert counts.thinking_tokens == thinking.thinking_tokens + 200
    assert counts.output_tokens == quiet.output_tokens + thinking.output_tokens


async def test_the_fleets_bill_in_redis_and_in_ocr_pool_gemini(
    redis_prefix: str, tmp_path: Path
) -> None:
    async with (
        run_simulator(SimulatorConfig(port=0, latency_ms=1)) as sim,
        client_for(sim, redis_prefix) as client,
    ):
        redis = Redis.from_url("redis://127.0.0.1:6379/0")
        try:
            prices = PriceTable.from_setting()
            publisher = BillPublisher(
                redis,
                client.stats,
                prefix=redis_prefix,
                timezone="America/Los_Angeles",
                prices=prices,
            )
            for budget in (None, -1, -1):
                await client.generate(
                    GeminiRequest(model=FLASH, parts=(Text(LONG_TEXT),), thinking_budget=budget)
                )
                await publisher.flush()
            await publisher.flush()  # nothing new: nothing added twice
            # A second pool (another client) adds to the same day's bill.
            async with client_for(sim, redis_prefix) as other:
                await other.generate(GeminiRequest(model=FLASH, parts=(Text("Bonjour."),)))
                second = BillPublisher(
                    redis,
                    other.stats,
                    prefix=redis_prefix,
                    timezone="America/Los_Angeles",
                    prices=prices,
                )
                await second.flush()
            day = quota_day("America/Los_Angeles")
            (row,) = await read_bill(redis, redis_prefix, day)
        finally:
            await redis.aclose()
        mine, theirs = client.stats.tokens_by_model[FLASH], other.stats.tokens_by_model[FLASH]
        billed = [r for r in sim.records() if r.endpoint == "generateContent"]
    assert row.requests == len(billed) == 4
    assert row.input_tokens == sum(r.input_tokens or 0 for r in billed)
    assert row.output_tokens == sum(r.output_tokens or 0 for r in billed)
    assert row.thinking_tokens == sum(r.thinking_tokens for r in billed)
    assert row.thinking_tokens == mine.thinking_tokens + theirs.thinking_tokens > 0
    expected_cost = DEFAULT_PRICES[FLASH].cost(
        row.input_tokens, row.output_tokens, row.thinking_tokens
    )
    assert row.cost_usd == pytest.approx(expected_cost)

    result = ocr_pool(
        "gemini",
        "--json",
        env={"REDIS_URL": "redis://127.0.0.1:6379/0", "OCR_REDIS_PREFIX": redis_prefix},
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    bill = json.loads(result.stdout)["bill"]
    assert bill["day"] == day
    assert bill["models"] == [row.as_json()]
    table = ocr_pool(
        "gemini",
        env={"REDIS_URL": "redis://127.0.0.1:6379/0", "OCR_REDIS_PREFIX": redis_prefix},
        cwd=tmp_path,
    )
    assert f"Gemini bill, quota day {day}" in table.stdout
    assert f"{row.thinking_tokens:,}" in table.stdout
