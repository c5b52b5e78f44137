"""Acte pipeline: the whole PDF transcribed (extract), then the transcription corrected
and normalised (boost). Raw text in `file_content`, boosted in `boosted_file_content`."""

from __future__ import annotations

from pathlib import Path

import anyio

from workers.gemini import Answer, GeminiRequest, Pdf, Text
from workers.pdf import PdfInfo
from workers.pipelines.context import Models, PipelineContext
from workers.pipelines.prompts import prompt, prompts_digest
from workers.pipelines.result import PipelineResult

VERSION = 1
"""Bump when the pipeline's logic or output format changes (invalidates cached results)."""


def pipeline_key(models: Models) -> str:
    return f"acte:v{VERSION}.{prompts_digest()}:{models.acte_extract}+{models.acte_boost}"


def sends_inline(size: int, inline_max_bytes: int) -> bool:
    return size <= inline_max_bytes


async def run_acte(
    path: Path, info: PdfInfo, size: int, ctx: PipelineContext, *, worker: str = ""
) -> PipelineResult:
    pages = info.page_count
    if sends_inline(size, ctx.inline_max_bytes):
        data = await anyio.Path(path).read_bytes()
        raw = await _extract(ctx, Pdf(pages=pages, data=data), pages, worker)
    else:
        async with ctx.gemini.uploaded_pdf(path, pages) as uploaded:
            raw = await _extract(ctx, uploaded, pages, worker)
    boosted = await ctx.gemini.generate(
        GeminiRequest(
            model=ctx.models.acte_boost,
            system_instruction=prompt("acte_boost"),
            parts=(Text("Transcription brute à réviser :"), Text(raw.text)),
            what="acte boost",
        ),
        worker=worker,
    )
    return PipelineResult(
        file_content=raw.text,
        boosted_file_content=boosted.text,
        gemini_calls=raw.calls + boosted.calls,
        input_tokens=raw.input_tokens + boosted.input_tokens,
    )


async def _extract(ctx: PipelineContext, document: Pdf, pages: int, worker: str) -> Answer:
    return await ctx.gemini.generate(
        GeminiRequest(
            model=ctx.models.acte_extract,
            system_instruction=prompt("acte_extract"),
            parts=(Text(f"Document de {pages} page(s) à transcrire."), document),
            what="acte extract",
        ),
        worker=worker,
    )
