"""Answers cut at max_output_tokens: what is kept, what is asked next (pure policy).

`transcribe` is driven by a stand-in model that transcribes page texts faithfully but
stops at a character budget, as Gemini stops at max_output_tokens."""

from __future__ import annotations

import json

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workers.errors import GeminiJobError
from workers.gemini import Answer, AnswerCut
from workers.pipelines.output import next_room
from workers.pipelines.paged import Numbering, sections, transcribe
from workers.pipelines.pages import join_pages, split_pages, stitch
from workers.pipelines.result import Tally
from workers.pipelines.salvage import salvage_page
from workers.pipelines.schema import IndexPage, Inscription, PageMetadata, Party

CONTINUE = "--- DÉJÀ TRANSCRIT ---"


class CuttingModel:
    """Answers `ask(first, last, partial)` with the pages' text (markers numbered from 1
    when `relative`), cut after `budget` characters."""

    def __init__(self, pages: dict[int, str], budget: int, *, relative: bool = True) -> None:
        self.pages = pages
        self.budget = budget
        self.relative = relative
        self.requests: list[tuple[int, int, bool]] = []

    def full(self, first: int, last: int) -> str:
        return join_pages(
            {(p - first + 1 if self.relative else p): self.pages[p] for p in range(first, last + 1)}
        )

    async def __call__(self, first: int, last: int, partial: str | None) -> Answer:
        self.requests.append((first, last, partial is not None))
        text = self.full(first, last)
        if partial is not None:
            assert text.startswith(partial), "a continuation is asked with what was given"
            text = text[len(partial) :]
        if len(text) > self.budget:
            raise AnswerCut(
                "test",
                text[: self.budget],
                max_output_tokens=self.budget,
                output_tokens=self.budget,
                input_tokens=10,
                calls=1,
            )
        return Answer(text, None, input_tokens=10, output_tokens=len(text), calls=1, quota_errors=0)


def deed(pages: int, length: int) -> dict[int, str]:
    return {
        p: "\n".join(f"Page {p}, ligne {k} : clause {'x' * (k % 7)}." for k in range(length))
        for p in range(1, pages + 1)
    }


def run(model: CuttingModel, last: int, per_request: int, tally: Tally) -> dict[int, str]:
    async def go() -> dict[int, str]:
        return await transcribe(
            1,
            last,
            model,
            plan=lambda start: start + per_request - 1,
            numbering=Numbering(relative=model.relative),
            tally=tally,
            what="test",
        )

    return anyio.run(go)


@pytest.mark.parametrize("relative", [True, False])
@pytest.mark.parametrize("budget", [40, 97, 300, 1000, 100_000])
def test_every_page_whole_whatever_the_room(budget: int, relative: bool) -> None:
    pages = deed(6, 25)
    model = CuttingModel(pages, budget, relative=relative)
    tally = Tally()
    assert run(model, 6, 6, tally) == pages
    assert tally.calls == len(model.requests)
    if budget >= len(model.full(1, 6)):
        assert model.requests == [(1, 6, False)]
        assert tally.cut_answers == 0
    else:
        assert tally.cut_answers > 0
        assert len(model.requests) > 1


def test_after_a_cut_pages_that_fitted_are_kept_and_the_next_request_is_smaller() -> None:
    pages = deed(6, 10)
    one_page = len(join_pages({1: pages[1]}))
    model = CuttingModel(pages, budget=2 * one_page + 30)
    run(model, 6, 6, Tally())
    # 1-6 cut in page 3 → pages 1-2 kept; then two pages at a time.
    assert model.requests == [(1, 6, False), (3, 4, False), (5, 6, False)]


def test_a_page_longer_than_the_room_is_continued() -> None:
    pages = deed(2, 40)
    model = CuttingModel(pages, budget=150)
    tally = Tally()
    assert run(model, 2, 2, tally) == pages
    continuations = [r for r in model.requests if r[2]]
    assert continuations
    assert all(first == last for first, last, _ in continuations)


def test_no_progress_fails_instead_of_looping() -> None:
    model = CuttingModel(deed(1, 10), budget=0)
    with pytest.raises(GeminiJobError, match="does not progress"):
        run(model, 1, 1, Tally())


def test_sections_numbering_and_preamble() -> None:
    text = "Voici :\n--- Page 1 ---\nA\n--- Page 2 ---\nB\n--- Page 2 ---\nB bis"
    assert sections(text, 4, 5, Numbering(relative=True)) == [(4, "Voici :\nA"), (5, "B")]
    assert sections("--- Page 5 ---\nE", 4, 5, Numbering(relative=False)) == [(5, "E")]
    assert sections("texte sans marque", 3, 3, Numbering(relative=True)) == [
        (3, "texte sans marque")
    ]
    assert sections("texte sans marque", 3, 4, Numbering(relative=True)) == []


def test_split_pages_keeps_markers_out_of_the_text() -> None:
    split = split_pages("--- Page 1 ---\nun\n\n---  page 2 ---\ndeux\n")
    assert split.pages == [(1, "un"), (2, "deux")]


def test_stitch_drops_a_repeated_tail_only() -> None:
    assert stitch("Le vendeur déclare que l'immeu", "ble est libre") == (
        "Le vendeur déclare que l'immeuble est libre"
    )
    partial = "Le vendeur déclare que l'immeuble est libre de toute"
    assert stitch(partial, "que l'immeuble est libre de toute charge.") == (
        "Le vendeur déclare que l'immeuble est libre de toute charge."
    )
    assert stitch("de la de la", " de la") == "de la de la de la"  # short repeats are text


def test_next_room_grows_to_the_ceiling_and_stops_when_room_does_not_help() -> None:
    assert next_room(8192, 65536, 8192, None) == 32768
    assert next_room(32768, 65536, 32768, 8192) == 65536
    assert next_room(65536, 65536, 65536, 32768) is None
    assert next_room(8192, 65536, 300, 300) is None  # a cap other than ours


def _page(count: int) -> str:
    rows = [
        Inscription(
            acte_publication_date=f"1990-01-{n + 1:02d}",
            acte_publication_number=str(1_000_000 + n),
            acte_nature="Vente",
            parties=[Party(name=f"NOM{n}, Prénom", role="Vendeur")],
            remarques=None if n % 2 else "lot 12",
            radiation_number=None,
        )
        for n in range(count)
    ]
    meta = PageMetadata(circonscription="Québec", cadastre="Cadastre du Québec", lot_number="1")
    return IndexPage(metadata=meta, inscriptions=rows, page_illisible=False).model_dump_json()


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=0, max_value=6), st.data())
def test_salvage_keeps_exactly_the_inscriptions_closed_before_the_cut(
    count: int, data: st.DataObject
) -> None:
    whole = _page(count)
    cut_at = data.draw(st.integers(min_value=0, max_value=len(whole) - 1))
    salvaged = salvage_page(whole[:cut_at])
    full = IndexPage.model_validate_json(whole)
    assert salvaged.inscriptions == full.inscriptions[: len(salvaged.inscriptions)]
    # Every inscription whose closing brace lies before the cut is kept.
    closed = 0
    decoder = json.JSONDecoder()
    start = whole.index("[", whole.index('"inscriptions"')) + 1
    at = start
    for _ in range(count):
        while whole[at] in ", ":
            at += 1
        _, at = decoder.raw_decode(whole, at)
        if at <= cut_at:
            closed += 1
    assert len(salvaged.inscriptions) == closed
    if salvaged.metadata is not None:
        assert salvaged.metadata == full.metadata
