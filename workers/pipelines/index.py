"""Index pipeline: each page rendered to an image and read by Gemini as structured lines,
pages in parallel (bounded); the document becomes one JSON in `file_content`."""

from __future__ import annotations

from pathlib import Path

import anyio

from workers.gemini import GeminiRequest, Image, Text
from workers.pdf import PdfInfo, render_page_png
from workers.pipelines.context import Models, PipelineContext, first_job_error
from workers.pipelines.prompts import prompt, prompts_digest
from workers.pipelines.result import PipelineResult
from workers.pipelines.schema import IndexDocument, IndexPage, IndexPageResult

VERSION = 1
"""Bump when the pipeline's logic or output format changes (invalidates cached results)."""


def pipeline_key(models: Models) -> str:
    return f"index:v{VERSION}.{prompts_digest()}:{models.index}"


async def run_index(
    path: Path,
    info: PdfInfo,
    ctx: PipelineContext,
    *,
    worker: str = "",
    label: str | None = None,
) -> PipelineResult:
    pages: list[IndexPageResult | None] = [None] * info.page_count
    calls = tokens = 0
    limit = anyio.CapacityLimiter(ctx.page_concurrency)
    total = info.page_count

    async def read_page(number: int) -> None:
        nonlocal calls, tokens
        async with limit:
            rendered = await render_page_png(path, number, ctx.pdf_limits, label=label)
            answer = await ctx.gemini.generate(
                GeminiRequest(
                    model=ctx.models.index,
                    system_instruction=prompt("index_page"),
                    parts=(
                        Text(f"Page {number + 1} de {total} de l'index des immeubles."),
                        Image(rendered.png, rendered.width, rendered.height),
                    ),
                    schema=IndexPage,
                    what=f"index page {number + 1}/{total}",
                ),
                worker=worker,
            )
        assert isinstance(answer.parsed, IndexPage)
        calls += answer.calls
        tokens += answer.input_tokens
        pages[number] = IndexPageResult(
            page=number + 1,
            lignes=answer.parsed.lignes,
            page_illisible=answer.parsed.page_illisible,
        )

    with first_job_error():
        async with anyio.create_task_group() as tg:
            for number in range(total):
                tg.start_soon(read_page, number)
    document = IndexDocument(
        pipeline=pipeline_key(ctx.models),
        model=ctx.models.index,
        page_count=total,
        pages=[p for p in pages if p is not None],
    )
    return PipelineResult(
        file_content=document.model_dump_json(),
        gemini_calls=calls,
        input_tokens=tokens,
    )
