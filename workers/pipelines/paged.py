"""A transcription by page ranges that never keeps a cut answer (used by both acte steps).

`transcribe` asks for pages `start..end` (as many as the plan allows) and expects one
`--- Page N ---` section per page. When Gemini cuts the answer at `max_output_tokens`:

- the pages finished before the cut are kept, and the next request starts at the page
  that was being written, asking for no more pages than fitted this time;
- when not even the first page was finished, that page is *continued*: asked again with
  the text so far, and the model goes on after its last character, as many times as it
  takes (each continuation must add text).

So every page ends up whole, however small the room, or the document fails with a clear
error; nothing cut is ever returned.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from workers.errors import GeminiJobError
from workers.gemini import Answer, AnswerCut
from workers.pipelines.pages import split_pages, stitch
from workers.pipelines.result import Tally

MAX_CONTINUATIONS = 64
"""Continuations of one page before giving up (each adds at least one character)."""
MAX_REQUESTS_PER_PAGE = 8
"""Requests per page of the document before giving up (continuations apart)."""

Ask = Callable[[int, int, str | None], Awaitable[Answer]]
"""`ask(first, last, partial)`: one request for pages first..last; `partial` is the text
already received for page `first` alone when this is a continuation (then first == last).
Raises `AnswerCut` when Gemini stops at max_output_tokens."""


@dataclass(frozen=True, slots=True)
class Numbering:
    relative: bool
    """True: the answer numbers the pages it was given from 1 (a PDF cut to the range);
    False: it repeats the document's own numbers (a text that carries its markers)."""

    def page(self, written: int, first: int) -> int:
        return first + written - 1 if self.relative else written


def sections(text: str, first: int, last: int, numbering: Numbering) -> list[tuple[int, str]]:
    """The (page, text) sections of an answer for pages first..last, in order, each page
    once (a repeated page keeps its first section). Text before the first marker belongs
    to the first section (a single-page answer without any marker is that page)."""
    split = split_pages(text)
    if not split.pages:
        return [(first, split.preamble)] if split.preamble and first == last else []
    found: list[tuple[int, str]] = []
    seen: set[int] = set()
    for written, body in split.pages:
        page = numbering.page(written, first)
        if first <= page <= last and page not in seen:
            seen.add(page)
            found.append((page, body))
    if split.preamble and found:
        page, body = found[0]
        found[0] = (page, f"{split.preamble}\n{body}")
    return found


async def transcribe(
    first: int,
    last: int,
    ask: Ask,
    *,
    plan: Callable[[int], int],
    numbering: Numbering,
    tally: Tally,
    what: str,
) -> dict[int, str]:
    """Pages first..last, whole. `plan(start)` is the last page the next request may
    cover when nothing has been cut yet."""
    done: dict[int, str] = {}
    fits: int | None = None  # pages that fitted in the last cut answer
    start = first
    requests = 0
    while start <= last:
        requests += 1
        if requests > MAX_REQUESTS_PER_PAGE * (last - first + 1):
            raise GeminiJobError(f"{what}: pages still missing after {requests - 1} requests")
        end = min(last, plan(start))
        if fits is not None:
            end = min(end, start + fits - 1)
        try:
            answer = await ask(start, end, None)
        except AnswerCut as cut:
            tally.cut(cut)
            found = sections(cut.text, start, end, numbering)
            finished = found[:-1]  # the last section is the one being written
            if finished and [p for p, _ in finished] == list(range(start, start + len(finished))):
                done.update(finished)
                fits = len(finished)
                start += len(finished)
                continue
            done[start] = await _continue_page(start, cut.text, ask, numbering, tally, what)
            fits = 1
            start += 1
            continue
        tally.answered(answer)
        found = sections(answer.text, start, end, numbering)
        pages = [p for p, _ in found]
        expected = list(range(start, end + 1))
        if pages == expected:
            done.update(found)
            start = end + 1
            continue
        # A whole answer that skipped or reordered pages: keep the run from `start`,
        # ask again from the first page it lacks.
        run = 0
        while run < len(pages) and pages[run] == start + run:
            run += 1
        if run == 0:
            fits = 1
            continue
        done.update(found[:run])
        start += run
    return done


async def _continue_page(
    page: int, partial: str, ask: Ask, numbering: Numbering, tally: Tally, what: str
) -> str:
    text = partial
    for _ in range(MAX_CONTINUATIONS):
        try:
            answer = await ask(page, page, text)
        except AnswerCut as cut:
            tally.cut(cut)
            if not cut.text:
                raise GeminiJobError(
                    f"{what}: page {page} does not progress (an empty answer cut at "
                    f"{cut.output_tokens} output tokens)"
                ) from None
            text = stitch(text, cut.text)
            continue
        tally.answered(answer)
        text = stitch(text, answer.text)
        found = sections(text, page, page, numbering)
        return found[0][1] if found else text.strip()
    raise GeminiJobError(
        f"{what}: page {page} still unfinished after {MAX_CONTINUATIONS} continuations"
    )
