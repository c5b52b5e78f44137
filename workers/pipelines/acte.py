"""Acte pipeline: the PDF transcribed page by page (extract), then the transcription
corrected and normalised (boost), both by page ranges (`paged.transcribe`), so an
answer cut at `max_output_tokens` is continued or split, never stored.

Written back: `file_content` the raw transcription, `boosted_file_content` the boosted
one (each page after its `--- Page N ---` line), `file_content_json` an `ActeDocument`
(pages, what the boost flagged as inconsistent, usage).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import anyio

from workers.gemini import Answer, GeminiRequest, Pdf, Text
from workers.pdf import PdfInfo, write_pages
from workers.pipelines.context import Models, PipelineContext
from workers.pipelines.paged import Numbering, transcribe
from workers.pipelines.pages import join_pages, page_marker
from workers.pipelines.prompts import prompt, prompts_digest
from workers.pipelines.result import PipelineResult, Tally
from workers.pipelines.schema import ActeDocument
from workers.tempdirs import scratch_dir

VERSION = 2
"""Bump when the pipeline's logic or output format changes (invalidates cached results).
2: pages marked in both columns, by page ranges, cut answers continued, `file_content_json`."""

EXTRACT_TOKENS_PER_PAGE = 1500
"""Output tokens planned per page of a dense typed deed (a page of ~4,500 characters
is ~1,100 tokens): how many pages one extract request may cover."""
BOOST_GROWTH = 1.25
"""The boosted text is planned a quarter longer than the raw one (dates and amounts
gain their normalised form)."""
CONTINUE_MARKER = "--- DÉJÀ TRANSCRIT ---"
"""First line of the part carrying the text already produced (a continuation)."""
CONTINUE_INSTRUCTION = (
    "\n\nLe message se termine par le texte que tu as déjà produit pour cette page, "
    f"introduit par la ligne « {CONTINUE_MARKER} » : ta réponse précédente a été coupée. "
    "Continue exactement après son dernier caractère, sans rien répéter ni rien ajouter "
    "d'autre."
)
INCONSISTENCY = re.compile(r"\[\s*INCOH[ÉE]RENCE\s*:\s*([^\]]+?)\s*\]", re.IGNORECASE)


def pipeline_key(models: Models) -> str:
    return f"acte:v{VERSION}.{prompts_digest()}:{models.acte_extract}+{models.acte_boost}"


def sends_inline(size: int, inline_max_bytes: int) -> bool:
    return size <= inline_max_bytes


def text_tokens(text: str) -> int:
    """Gemini's rough rate for French text: about four characters per token."""
    return len(text) // 4 + 1


def boost_plan(raw: dict[int, str], room: int) -> dict[int, int]:
    """For each page, the last page a boost request starting there may cover so that the
    planned answer stays within three quarters of `room` (at least one page)."""
    pages = sorted(raw)
    plan: dict[int, int] = {}
    for i, start in enumerate(pages):
        budget = room * 0.75
        end = start
        for page in pages[i:]:
            cost = text_tokens(raw[page]) * BOOST_GROWTH
            if page != start and cost > budget:
                break
            budget -= cost
            end = page
        plan[start] = end
    return plan


def inconsistencies(text: str) -> list[str]:
    return [" ".join(m.group(1).split()) for m in INCONSISTENCY.finditer(text)]


@contextlib.asynccontextmanager
async def _page_range(path: Path, first: int, last: int, pages: int) -> AsyncIterator[Path]:
    """`path` itself for the whole document, else a private temporary PDF of pages
    first..last (1-based), removed on exit; in the pool's temporary directory, which the
    next start sweeps if the process is killed meanwhile."""
    if first == 1 and last == pages:
        yield path
        return
    fd, name = tempfile.mkstemp(prefix="ocr-pool-range-", suffix=".pdf", dir=scratch_dir())
    os.close(fd)
    try:
        await write_pages(path, Path(name), range(first - 1, last), label=str(path))
        os.chmod(name, 0o600)  # pymupdf writes a new file with the umask's mode
        yield Path(name)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


class ActeReader:
    def __init__(
        self, path: Path, info: PdfInfo, ctx: PipelineContext, tally: Tally, worker: str
    ) -> None:
        self.path = path
        self.pages = info.page_count
        self.ctx = ctx
        self.tally = tally
        self.worker = worker

    def _system(self, name: str, partial: str | None) -> str:
        return prompt(name) + (CONTINUE_INSTRUCTION if partial is not None else "")

    async def extract_range(self, first: int, last: int, partial: str | None) -> Answer:
        count = last - first + 1
        about = Text(
            f"Ce fichier contient {count} page(s) de l'acte (pages {first} à {last} sur "
            f"{self.pages}) ; numérote-les de « {page_marker(1)} » à « {page_marker(count)} »."
        )
        tail = () if partial is None else (Text(f"{CONTINUE_MARKER}\n{partial}"),)
        what = f"acte extract of pages {first}-{last}/{self.pages}"
        async with _page_range(self.path, first, last, self.pages) as part:
            size = (await anyio.Path(part).stat()).st_size
            if sends_inline(size, self.ctx.inline_max_bytes):
                document = Pdf(pages=count, data=await anyio.Path(part).read_bytes())
                return await self._extract(about, document, tail, partial, what)
            async with self.ctx.gemini.uploaded_pdf(part, count) as uploaded:
                return await self._extract(about, uploaded, tail, partial, what)

    async def _extract(
        self, about: Text, document: Pdf, tail: tuple[Text, ...], partial: str | None, what: str
    ) -> Answer:
        return await self.ctx.gemini.generate(
            GeminiRequest(
                model=self.ctx.models.acte_extract,
                system_instruction=self._system("acte_extract", partial),
                parts=(about, document, *tail),
                max_output_tokens=self.ctx.output.acte_extract,
                thinking_budget=self.ctx.thinking.acte_extract,
                what=what,
            ),
            worker=self.worker,
        )

    async def extract(self) -> dict[int, str]:
        per_request = max(1, self.ctx.output.acte_extract // EXTRACT_TOKENS_PER_PAGE)
        return await transcribe(
            1,
            self.pages,
            self.extract_range,
            plan=lambda start: start + per_request - 1,
            numbering=Numbering(relative=True),
            tally=self.tally,
            what="acte extract",
        )

    async def boost(self, raw: dict[int, str]) -> dict[int, str]:
        plan = boost_plan(raw, self.ctx.output.acte_boost)

        async def boost_range(first: int, last: int, partial: str | None) -> Answer:
            chunk = join_pages({p: raw[p] for p in range(first, last + 1)})
            tail = () if partial is None else (Text(f"{CONTINUE_MARKER}\n{partial}"),)
            return await self.ctx.gemini.generate(
                GeminiRequest(
                    model=self.ctx.models.acte_boost,
                    system_instruction=self._system("acte_boost", partial)
                    + f"\n\nTu reçois les pages {first} à {last} sur {self.pages}.",
                    parts=(Text(chunk), *tail),
                    max_output_tokens=self.ctx.output.acte_boost,
                    thinking_budget=self.ctx.thinking.acte_boost,
                    what=f"acte boost of pages {first}-{last}/{self.pages}",
                ),
                worker=self.worker,
            )

        return await transcribe(
            1,
            self.pages,
            boost_range,
            plan=lambda start: plan[start],
            numbering=Numbering(relative=False),
            tally=self.tally,
            what="acte boost",
        )


async def run_acte(
    path: Path, info: PdfInfo, ctx: PipelineContext, *, worker: str = ""
) -> PipelineResult:
    tally = Tally(ctx.prices)
    reader = ActeReader(path, info, ctx, tally, worker)
    raw = await reader.extract()
    boosted = await reader.boost(raw)
    boosted_text = join_pages(boosted)
    usage = tally.usage()
    document = ActeDocument(
        page_count=info.page_count,
        pages=sorted(raw),
        inconsistencies=inconsistencies(boosted_text),
        pipeline=pipeline_key(ctx.models),
        models={"extract": ctx.models.acte_extract, "boost": ctx.models.acte_boost},
        usage=usage,
    )
    return PipelineResult(
        file_content=join_pages(raw),
        boosted_file_content=boosted_text,
        file_content_json=document.to_json(),
        usage=usage,
    )
