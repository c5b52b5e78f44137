"""What a page costs in Gemini calls, tokens and money, before and after the thinking
budget, on the simulator (prints figures; asserts nothing).

A 10-page index document and a 10-page acte go through the real pipelines and the real
google-genai client, against the Gemini simulator under the name `gemini-2.5-flash`
(which, like Gemini, thinks unless told otherwise: the simulator's rule is in
`gemini_simulator/thinking.py`). "Before": no thinking budget sent (`-1`, dynamic, what
every call did before `GEMINI_THINKING_BUDGET`); "after": the default, the least the model
allows (0). Money at the price table's rates for gemini-2.5-flash.

    .venv/bin/python -m benchmarks.gemini_bill [--pages 10]
"""

from __future__ import annotations

import argparse
import tempfile
import uuid
from pathlib import Path

import anyio
from redis.asyncio import Redis

from benchmarks.support import REDIS_URL, drop_prefix
from gemini_simulator import SimulatorConfig, run_simulator
from pool.cli.samples import acte_document, index_document, index_page_lines, write_pdf
from pool.wiring.configs import limiter_config, price_table
from pool.wiring.settings import load_settings
from ratelimit import GeminiLimiter
from workers.gemini import GeminiClient, RetryPolicy
from workers.pdf import PdfLimits, inspect_pdf
from workers.pipelines import acte, index
from workers.pipelines.context import Models, PipelineContext
from workers.pipelines.output import ThinkingBudgets
from workers.pipelines.schema import Usage
from workers.pricing import DEFAULT_PRICES, PRICES_AS_OF

MODEL = "gemini-2.5-flash"
ORIGINAL_INDEX_PER_PAGE = (2, 16_100)
"""The replaced system's own estimate: 20 calls and ~161k tokens per 10-page index."""


async def measure(
    directory: Path, index_pdf: Path, acte_pdf: Path, thinking: ThinkingBudgets
) -> tuple[Usage, Usage]:
    prefix = f"bench:bill:{uuid.uuid4().hex[:8]}:"
    config = SimulatorConfig(port=0, corpus=(directory,), latency_ms=1, seed=1)
    async with run_simulator(config) as sim:
        settings = load_settings(gemini_base_url=sim.url, gemini_api_key="sim-key")
        redis = Redis.from_url(REDIS_URL)
        limiter = GeminiLimiter(redis, limiter_config(settings), prefix=prefix)
        client = GeminiClient(
            limiter, api_key="sim-key", base_url=sim.url, retry=RetryPolicy(base_delay=0.01)
        )
        ctx = PipelineContext(
            gemini=client,
            models=Models(index=MODEL, acte_extract=MODEL, acte_boost=MODEL),
            pdf_limits=PdfLimits(dpi=100),
            thinking=thinking,
            prices=price_table(settings),
        )
        try:
            info = await inspect_pdf(index_pdf, ctx.pdf_limits)
            index_usage = (await index.run_index(index_pdf, info, ctx)).usage
            info = await inspect_pdf(acte_pdf, ctx.pdf_limits)
            acte_usage = (await acte.run_acte(acte_pdf, info, ctx)).usage
        finally:
            await client.aclose()
            await redis.aclose()
            await drop_prefix(prefix)
    return index_usage, acte_usage


def row(label: str, usage: Usage, pages: int) -> str:
    cost = "?" if usage.cost_usd is None else f"{usage.cost_usd / pages * 1000:.3f}"
    return (
        f"| {label} | {usage.gemini_calls / pages:.1f} | {usage.input_tokens / pages:,.0f} "
        f"| {usage.output_tokens / pages:,.0f} | {usage.thinking_tokens / pages:,.0f} "
        f"| {cost} |"
    )


async def main(pages: int) -> None:
    with tempfile.TemporaryDirectory(prefix="ocr-bench-bill-") as tmp:
        directory = Path(tmp)
        index_pdf, acte_pdf = directory / "index.pdf", directory / "acte.pdf"
        write_pdf(index_pdf, [index_page_lines(p) for p in index_document(2027, pages, 14)])
        write_pdf(acte_pdf, acte_document(2028, pages, 12))
        before = await measure(directory, index_pdf, acte_pdf, ThinkingBudgets(-1, -1, -1))
        after = await measure(directory, index_pdf, acte_pdf, ThinkingBudgets())
    calls, tokens = ORIGINAL_INDEX_PER_PAGE
    price = DEFAULT_PRICES[MODEL]
    low, high = (tokens * rate / 1_000_000 * 1000 for rate in (price.input, price.output))
    print(f"per page, {pages}-page documents, {MODEL} on the simulator, prices of {PRICES_AS_OF}")
    print("| document, thinking | calls | input | output | thinking | USD per 1,000 pages |")
    print("|---|---|---|---|---|---|")
    print(
        f"| index, replaced system (its estimate) | {calls} | ~{tokens:,} in and out together "
        f"| | | {low:.2f} (all input) to {high:.2f} (all output) |"
    )
    print(row("index, no budget (before)", before[0], pages))
    print(row("index, budget 0 (after)", after[0], pages))
    print(row("acte, no budget (before)", before[1], pages))
    print(row("acte, budget 0 (after)", after[1], pages))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=10)
    anyio.run(main, parser.parse_args().pages)
