"""What the pipelines write, as the registre extractor's readers read it, and that nothing
Gemini cut is ever kept: the real google-genai client over HTTP to the simulator, sample
PDFs whose content is known, the limiter on the real Redis."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from gemini_simulator import SimulatorConfig, run_simulator
from pool.cli.samples import acte_document, index_document, index_page_lines, write_pdf
from pool.wiring.configs import limiter_config
from pool.wiring.settings import load_settings
from ratelimit import GeminiLimiter
from workers.errors import GeminiJobError
from workers.gemini import GeminiClient, RetryPolicy
from workers.pdf import PdfLimits, inspect_pdf, text_layer
from workers.pipelines import acte, index
from workers.pipelines.context import Models, PipelineContext
from workers.pipelines.output import OutputRoom
from workers.pipelines.result import PipelineResult

pytestmark = pytest.mark.anyio
INDEX_PAGES, INDEX_ROWS, ACTE_PAGES = 3, 12, 6


# --- the registre extractor's reading rules, written out independently -------------------
# Pages split on "--- Page N ---"; header fields by label anywhere in the page; blocks
# from one "Ligne K:" to the next; each labelled field's first line; "[Vide]" is null.
# Parties: names and qualités in the same order, separated by " ; " (ocr-pool's layout).

_PAGE = re.compile(r"---\s*Page\s+(\d+)\s*---", re.IGNORECASE)
_LIGNE = re.compile(r"Ligne\s+(\d+)\s*:", re.IGNORECASE)
HEADER = {
    "circonscription": r"Circonscription\s+foncière",
    "cadastre": r"Cadastre",
    "lot_number": r"Lot",
}
FIELDS = {
    "acte_publication_date": "Date de présentation d'inscription",
    "acte_publication_number": "Numéro",
    "acte_nature": "Nature de l'acte",
    "qualite": "Qualité",
    "names": "Nom des parties",
    "remarques": "Remarques",
    "radiation_number": "Radiations",
}


def _value(text: str | None) -> str | None:
    if text is None:
        return None
    text = text.strip()
    return None if text in ("", "[Vide]") or text.lower() == "vide" else text


def _field(block: str, label: str) -> str | None:
    match = re.search(rf"{label}\s*:?\s*(.+?)(?:\n|$)", block, re.IGNORECASE)
    return _value(match.group(1)) if match else None


def read_like_the_extractor(text: str) -> list[dict[str, Any]]:
    markers = list(_PAGE.finditer(text))
    pages = []
    for i, marker in enumerate(markers):
        body = text[marker.end() : markers[i + 1].start() if i + 1 < len(markers) else None]
        metadata = {}
        for key, label in HEADER.items():
            found = re.search(rf"{label}\s*:\s*(.+?)(?:\n|$)", body, re.IGNORECASE)
            metadata[key] = found.group(1).strip() if found else None
        blocks = list(_LIGNE.finditer(body))
        inscriptions = []
        for k, block_start in enumerate(blocks):
            end = blocks[k + 1].start() if k + 1 < len(blocks) else None
            block = body[block_start.end() : end]
            values = {key: _field(block, label) for key, label in FIELDS.items()}
            names = (values.pop("names") or "").split(" ; ") if values.get("names") else []
            roles = (values.pop("qualite") or "").split(" ; ")
            values.pop("qualite", None)
            parties = [
                {"name": n, "role": _value(roles[j] if j < len(roles) else None) or ""}
                for j, n in enumerate(names)
            ]
            inscriptions.append({**values, "parties": parties})
        pages.append(
            {"pageNumber": int(marker.group(1)), "metadata": metadata, "inscriptions": inscriptions}
        )
    return pages


def _inscription_dict(inscription: Any) -> dict[str, Any]:
    data: dict[str, Any] = inscription.model_dump()
    return {
        "acte_publication_date": data["acte_publication_date"],
        "acte_publication_number": data["acte_publication_number"],
        "acte_nature": data["acte_nature"],
        "remarques": data["remarques"],
        "radiation_number": data["radiation_number"],
        "parties": data["parties"],
    }


# --- set-up --------------------------------------------------------------------------------


@dataclass
class Samples:
    directory: Path
    index_pdf: Path
    acte_pdf: Path
    index_pages: list[Any]
    acte_pages: list[list[str]]


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Samples:
    directory = tmp_path_factory.mktemp("production-output")
    pages = index_document(4242, INDEX_PAGES, INDEX_ROWS)
    index_pdf = directory / "index.pdf"
    write_pdf(index_pdf, [index_page_lines(p) for p in pages])
    acte_pages = acte_document(777, ACTE_PAGES, 10)
    acte_pdf = directory / "acte.pdf"
    write_pdf(acte_pdf, acte_pages)
    return Samples(directory, index_pdf, acte_pdf, pages, acte_pages)


@asynccontextmanager
async def context(
    samples: Samples, redis_prefix: str, *, sim_cap: int = 0, room: OutputRoom | None = None
) -> AsyncIterator[tuple[PipelineContext, Any]]:
    config = SimulatorConfig(
        port=0, corpus=(samples.directory,), latency_ms=1, seed=3, max_output_tokens=sim_cap
    )
    async with run_simulator(config) as sim:
        settings = load_settings(gemini_base_url=sim.url, gemini_api_key="sim-key")
        redis = Redis.from_url("redis://127.0.0.1:6379/0")
        limiter = GeminiLimiter(redis, limiter_config(settings), prefix=redis_prefix)
        gemini = GeminiClient(
            limiter,
            api_key="sim-key",
            base_url=sim.url,
            timeout_seconds=10,
            retry=RetryPolicy(base_delay=0.01),
        )
        try:
            yield (
                PipelineContext(
                    gemini=gemini,
                    models=Models(
                        index="sim-index", acte_extract="sim-extract", acte_boost="sim-boost"
                    ),
                    pdf_limits=PdfLimits(dpi=100),
                    output=room or OutputRoom(),
                ),
                sim,
            )
        finally:
            await gemini.aclose()
            await redis.aclose()


async def run_index(ctx: PipelineContext, path: Path) -> PipelineResult:
    return await index.run_index(path, await inspect_pdf(path, ctx.pdf_limits), ctx)


async def run_acte(ctx: PipelineContext, path: Path) -> PipelineResult:
    return await acte.run_acte(path, await inspect_pdf(path, ctx.pdf_limits), ctx)


def generate_calls(sim: Any) -> int:
    return sum(1 for r in sim.records() if r.endpoint == "generateContent")


# --- tests ---------------------------------------------------------------------------------


async def test_index_text_reads_back_as_the_structured_result(
    samples: Samples, redis_prefix: str
) -> None:
    async with context(samples, redis_prefix) as (ctx, _):
        result = await run_index(ctx, samples.index_pdf)
    assert result.file_content_json is not None
    structured = result.file_content_json
    assert structured["page_count"] == INDEX_PAGES

    # The raw text is what the pages say, header and qualités included.
    raw = read_like_the_extractor(result.file_content)
    assert [p["pageNumber"] for p in raw] == [1, 2, 3]
    for page, sample in zip(raw, samples.index_pages, strict=True):
        assert page["metadata"] == sample.metadata.model_dump()
        assert page["inscriptions"] == [_inscription_dict(i) for i in sample.inscriptions]

    # The boosted text carries exactly the inscriptions of file_content_json.
    assert result.boosted_file_content is not None
    boosted = read_like_the_extractor(result.boosted_file_content)
    assert boosted == [
        {
            "pageNumber": p["pageNumber"],
            "metadata": p["metadata"],
            "inscriptions": [
                {k: i[k] for k in (*FIELDS.keys() - {"qualite", "names"}, "parties")}
                for i in p["inscriptions"]
            ],
        }
        for p in structured["pages"]
    ]

    # The boost changed natures only, each change noted; the sample's boost rows changed.
    notes = {(n["page"], n["ligne"]): n for n in structured["boost"]}
    for number, (page_raw, page_boosted) in enumerate(zip(raw, boosted, strict=True), start=1):
        for ligne, (before, after) in enumerate(
            zip(page_raw["inscriptions"], page_boosted["inscriptions"], strict=True), start=1
        ):
            assert {k: v for k, v in before.items() if k != "acte_nature"} == {
                k: v for k, v in after.items() if k != "acte_nature"
            }
            if before["acte_nature"] != after["acte_nature"]:
                note = notes[(number, ligne)]
                assert (note["before"], note["after"]) == (
                    before["acte_nature"],
                    after["acte_nature"],
                )
    boost_rows = [
        (n + 1, k) for n, page in enumerate(samples.index_pages) for k in page.boost_lines
    ]
    assert boost_rows, "the samples carry rows the boost corrects"
    for row in boost_rows:
        assert notes[row]["rule"] != "nature", notes[row]
    assert structured["usage"]["gemini_calls"] == INDEX_PAGES == result.usage.gemini_calls


def _page_texts(text: str) -> dict[int, str]:
    markers = list(_PAGE.finditer(text))
    return {
        int(m.group(1)): text[m.end() : markers[i + 1].start() if i + 1 < len(markers) else None]
        for i, m in enumerate(markers)
    }


async def test_cut_answers_are_continued_or_split_never_kept(
    samples: Samples, redis_prefix: str
) -> None:
    """Must show: with the simulator cutting answers at a small cap, the 6-page acte comes
    back whole and no index page is stored half; calls per document with and without."""
    async with context(samples, redis_prefix) as (ctx, sim):
        whole_index = await run_index(ctx, samples.index_pdf)
        index_calls = generate_calls(sim)
        whole_acte = await run_acte(ctx, samples.acte_pdf)
        acte_calls = generate_calls(sim) - index_calls
    assert whole_index.usage.cut_answers == whole_acte.usage.cut_answers == 0

    figures = [f"uncapped: index {index_calls} calls, acte {acte_calls} calls"]
    for cap in (600, 150):
        async with context(samples, redis_prefix, sim_cap=cap) as (ctx, sim):
            capped_index = await run_index(ctx, samples.index_pdf)
            capped_index_calls = generate_calls(sim)
            capped_acte = await run_acte(ctx, samples.acte_pdf)
            capped_acte_calls = generate_calls(sim) - capped_index_calls
            finishes = {r.finish_reason for r in sim.records()}
        assert "MAX_TOKENS" in finishes  # the cap did cut answers
        assert capped_index.usage.cut_answers > 0
        assert capped_acte.usage.cut_answers > 0
        # Same result as without a cap: every page whole, nothing half-stored.
        assert capped_index.file_content == whole_index.file_content
        assert capped_index.file_content_json is not None
        assert whole_index.file_content_json is not None
        assert capped_index.file_content_json["pages"] == whole_index.file_content_json["pages"]
        assert capped_acte.file_content == whole_acte.file_content
        assert capped_acte.boosted_file_content == whole_acte.boosted_file_content
        pages = _page_texts(capped_acte.file_content)
        assert sorted(pages) == list(range(1, ACTE_PAGES + 1))
        layer = await text_layer(samples.acte_pdf)
        for number, lines in enumerate(samples.acte_pages, start=1):
            for line in lines:
                assert line in pages[number], (number, line)
            assert layer[number - 1].split()[:3] == pages[number].split()[:3]
        assert capped_acte.usage.gemini_calls == capped_acte_calls
        figures.append(
            f"simulator cap {cap} tokens: index {capped_index_calls} calls "
            f"({capped_index.usage.cut_answers} cut), acte {capped_acte_calls} calls "
            f"({capped_acte.usage.cut_answers} cut)"
        )
    print("\ncalls per document (3-page index, 6-page acte): " + "; ".join(figures))


async def test_small_room_of_our_own_grows_for_an_index_page(
    samples: Samples, redis_prefix: str
) -> None:
    room = OutputRoom(index=200, acte_extract=400, acte_boost=400)
    async with context(samples, redis_prefix, room=room) as (ctx, sim):
        result = await run_index(ctx, samples.index_pdf)
        cuts = {r.output_tokens for r in sim.records() if r.finish_reason == "MAX_TOKENS"}
    async with context(samples, redis_prefix) as (ctx, _):
        whole = await run_index(ctx, samples.index_pdf)
    assert result.file_content == whole.file_content
    assert result.usage.cut_answers > 0
    # Cut at our room of 200 tokens, each page was asked again with four times more (800,
    # cut again), then 3200, which fits.
    assert cuts == {200, 800}


async def test_an_index_line_that_never_fits_fails_the_page(
    samples: Samples, redis_prefix: str
) -> None:
    async with context(samples, redis_prefix, sim_cap=20) as (ctx, _):
        with pytest.raises(GeminiJobError, match=r"index page \d/3: line 1 alone does not fit"):
            await run_index(ctx, samples.index_pdf)
