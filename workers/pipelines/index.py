"""Index pipeline: each page rendered to an image and read by Gemini as structured data
(the page's header and its inscriptions, parties with their qualité), pages in parallel
(bounded); then the domain boost (pure rules, no Gemini call).

Written back: `file_content` the raw reading as production text, `boosted_file_content`
the boosted one, `file_content_json` the boosted structure (`IndexDocument`).

A page's JSON is never stored half: when Gemini cuts it at `max_output_tokens`, the page
is asked again with more room (up to the model's limit); when more room gives no more
(the model's or a proxy's own cap), the page is read in ranges of lines, keeping every
inscription that was complete before each cut (`read_in_ranges`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import anyio

from workers.boost import boost_index, rules_digest
from workers.errors import GeminiJobError
from workers.gemini import AnswerCut, GeminiRequest, Image, Text
from workers.pdf import PdfInfo, RenderedPage, render_page_png
from workers.pipelines.context import Models, PipelineContext, first_job_error
from workers.pipelines.index_text import render_index_text
from workers.pipelines.output import model_output_limit, next_room
from workers.pipelines.prompts import prompt, prompts_digest
from workers.pipelines.result import PipelineResult, Tally
from workers.pipelines.salvage import salvage_page
from workers.pipelines.schema import (
    IndexDocument,
    IndexPage,
    IndexPageResult,
    Inscription,
    PageMetadata,
)

VERSION = 2
"""Bump when the pipeline's logic or output format changes (invalidates cached results).
2: production text columns, header and qualités, boost, `file_content_json`."""

MAX_RANGES_PER_PAGE = 500
"""A safety stop: no page of an index has that many lines."""


def pipeline_key(models: Models) -> str:
    return f"index:v{VERSION}.{prompts_digest()}.{rules_digest()}:{models.index}"


@dataclass(frozen=True, slots=True)
class PageReading:
    page: IndexPageResult
    illegible: bool


def empty_metadata() -> PageMetadata:
    return PageMetadata(circonscription=None, cadastre=None, lot_number=None)


class PageReader:
    """Reads one rendered page; every request it makes is counted in `tally`."""

    def __init__(
        self,
        ctx: PipelineContext,
        rendered: RenderedPage,
        number: int,
        total: int,
        tally: Tally,
        worker: str,
    ) -> None:
        self.ctx = ctx
        self.rendered = rendered
        self.number = number
        self.total = total
        self.tally = tally
        self.worker = worker
        self.room = ctx.output.index
        self.ceiling = max(self.room, model_output_limit(ctx.models.index))

    def request(self, lines: tuple[int, int] | None) -> GeminiRequest:
        where = f"Page {self.number} de {self.total} de l'index des immeubles."
        what = f"index page {self.number}/{self.total}"
        parts: tuple[Text | Image, ...] = (
            Text(where),
            Image(self.rendered.png, self.rendered.width, self.rendered.height),
        )
        if lines is not None:
            first, last = lines
            parts += (
                Text(
                    f"Ne transcris que les lignes {first} à {last} du tableau de cette page "
                    "(la première inscription en haut du tableau est la ligne 1) ; s'il y en a "
                    "moins, arrête-toi à la dernière. Donne l'en-tête comme d'habitude."
                ),
            )
            what += f" lines {first}-{last}"
        return GeminiRequest(
            model=self.ctx.models.index,
            system_instruction=prompt("index_page"),
            parts=parts,
            schema=IndexPage,
            max_output_tokens=self.room,
            thinking_budget=self.ctx.thinking.index,
            what=what,
        )

    async def ask(self, lines: tuple[int, int] | None = None) -> IndexPage:
        answer = await self.ctx.gemini.generate(self.request(lines), worker=self.worker)
        self.tally.answered(answer)
        assert isinstance(answer.parsed, IndexPage)
        return answer.parsed

    async def read(self) -> PageReading:
        previous: int | None = None
        while True:
            try:
                page = await self.ask()
            except AnswerCut as cut:
                self.tally.cut(cut)
                grown = next_room(self.room, self.ceiling, cut.output_tokens, previous)
                if grown is None:
                    return await self.read_in_ranges(cut.text)
                previous, self.room = cut.output_tokens, grown
                continue
            result = IndexPageResult(
                pageNumber=self.number, metadata=page.metadata, inscriptions=page.inscriptions
            )
            return PageReading(result, page.page_illisible and not page.inscriptions)

    async def read_in_ranges(self, cut_text: str) -> PageReading:
        """The page in ranges of lines, each as wide as what fitted in the last answer."""
        salvaged = salvage_page(cut_text)
        metadata = salvaged.metadata
        rows: list[Inscription] = list(salvaged.inscriptions)
        width = max(1, len(rows))
        for _ in range(MAX_RANGES_PER_PAGE):
            first = len(rows) + 1
            try:
                page = await self.ask((first, first + width - 1))
            except AnswerCut as cut:
                self.tally.cut(cut)
                part = salvage_page(cut.text)
                metadata = metadata or part.metadata
                if part.inscriptions:
                    rows += part.inscriptions
                    width = len(part.inscriptions)
                elif width > 1:
                    width //= 2
                else:
                    raise GeminiJobError(
                        f"index page {self.number}/{self.total}: line {first} alone does not "
                        f"fit in one Gemini answer ({cut.output_tokens} output tokens)"
                    ) from None
                continue
            metadata = metadata or page.metadata
            got = page.inscriptions[:width]
            rows += got
            if len(got) < width:
                break
        else:
            raise GeminiJobError(
                f"index page {self.number}/{self.total}: still not read after "
                f"{MAX_RANGES_PER_PAGE} ranges of lines"
            )
        result = IndexPageResult(
            pageNumber=self.number, metadata=metadata or empty_metadata(), inscriptions=rows
        )
        return PageReading(result, illegible=False)


async def run_index(
    path: Path,
    info: PdfInfo,
    ctx: PipelineContext,
    *,
    worker: str = "",
    label: str | None = None,
) -> PipelineResult:
    total = info.page_count
    readings: list[PageReading | None] = [None] * total
    tally = Tally(ctx.prices)
    limit = anyio.CapacityLimiter(ctx.page_concurrency)

    async def read_page(index: int) -> None:
        async with limit:
            rendered = await render_page_png(path, index, ctx.pdf_limits, label=label)
            reader = PageReader(ctx, rendered, index + 1, total, tally, worker)
            readings[index] = await reader.read()

    with first_job_error():
        async with anyio.create_task_group() as tg:
            for index in range(total):
                tg.start_soon(read_page, index)
    done = [r for r in readings if r is not None]
    raw = [r.page for r in done]
    illegible = [r.page.pageNumber for r in done if r.illegible]
    boosted = boost_index(raw)
    usage = tally.usage()
    document = IndexDocument(
        pages=boosted.pages,
        page_count=total,
        illegible_pages=illegible,
        boost=boosted.notes,
        pipeline=pipeline_key(ctx.models),
        model=ctx.models.index,
        usage=usage,
    )
    return PipelineResult(
        file_content=render_index_text(raw, illegible),
        boosted_file_content=render_index_text(boosted.pages, illegible),
        file_content_json=document.to_json(),
        usage=usage,
    )
