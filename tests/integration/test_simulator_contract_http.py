"""The simulator's answer contract over real HTTP, driven by the real google-genai client:
answers cut at the output cap (MAX_TOKENS), PDF page markers, continuation requests, and
the index page schema filled from sample pages (header, parties, line windows)."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import typer
from google import genai
from google.genai import types
from typer.testing import CliRunner

import gemini_simulator.cli
import gemini_simulator.server
from gemini_simulator import Simulator, SimulatorConfig, run_simulator
from gemini_simulator.continuation import MARKER
from gemini_simulator.media import open_pdf, render_gray
from pool.cli.samples import (
    acte_document,
    document_seed,
    index_document,
    index_page_lines,
    write_samples,
)
from workers.pipelines.schema import IndexPage

pytestmark = pytest.mark.anyio

MODEL = "gemini-2.0-flash"  # a model that does not think: these tests are about the cap
SEED = 11
INDEX_PAGES, ACTE_PAGES = 2, 3


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("contract")
    (index,), (acte,) = write_samples(
        root / "corpus", 1, 1, SEED, index_pages=INDEX_PAGES, acte_pages=ACTE_PAGES
    )
    return {"corpus": root / "corpus", "index": index, "acte": acte}


@pytest.fixture
async def sim(samples: dict[str, Path]) -> AsyncIterator[Simulator]:
    config = SimulatorConfig(
        port=0,
        latency_ms=0,
        latency_per_1k_tokens_ms=0,
        latency_sigma=0,
        corpus=(samples["corpus"],),
    )
    async with run_simulator(config) as simulator:
        yield simulator


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[genai.client.AsyncClient]:
    sdk = genai.Client(
        api_key="test", http_options=types.HttpOptions(base_url=sim.url, api_version="v1beta")
    )
    yield sdk.aio
    await sdk.aio.aclose()


def pdf_part(path: Path) -> types.Part:
    return types.Part.from_bytes(data=path.read_bytes(), mime_type="application/pdf")


def png_of(path: Path, page: int) -> types.Part:
    """The page as the pipeline renders it (200 DPI, grayscale)."""
    doc = open_pdf(path.read_bytes())
    try:
        data = bytes(render_gray(doc[page], 200 / 72).tobytes("png"))
    finally:
        doc.close()
    return types.Part.from_bytes(data=data, mime_type="image/png")


def marked(pages: list[list[str]]) -> str:
    return "\n\n".join(
        "\n".join([f"--- Page {n} ---", *lines]) for n, lines in enumerate(pages, start=1)
    )


def acte_text() -> str:
    return marked(acte_document(document_seed(SEED, 0) + 500, ACTE_PAGES, 12))


def index_pages() -> list[Any]:
    return index_document(document_seed(SEED, 0), INDEX_PAGES, 30)


def finish(response: types.GenerateContentResponse) -> types.FinishReason | None:
    return (response.candidates or [])[0].finish_reason


INDEX_JSON = types.GenerateContentConfig(
    response_mime_type="application/json", response_schema=IndexPage
)


async def admin(sim: Simulator, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, sim.url + path, json=body) as response,
    ):
        return response.status, await response.json()


# --- page markers and the output cap -------------------------------------------------------
async def test_pdf_answer_has_page_markers_and_stops_under_the_cap(
    sim: Simulator, client: genai.client.AsyncClient, samples: dict[str, Path]
) -> None:
    index = await client.models.generate_content(
        model=MODEL, contents=[pdf_part(samples["index"]), "Transcris."]
    )
    assert index.text == marked([index_page_lines(page) for page in index_pages()])
    full = acte_text()
    roomy = types.GenerateContentConfig(max_output_tokens=math.ceil(len(full) / 4))
    acte = await client.models.generate_content(
        model=MODEL, contents=[pdf_part(samples["acte"]), "Transcris."], config=roomy
    )
    assert acte.text == full
    assert finish(acte) == types.FinishReason.STOP
    assert [(r.finish_reason, r.continued) for r in sim.records()] == [("STOP", False)] * 2


async def test_an_answer_over_max_output_tokens_is_cut_with_max_tokens(
    sim: Simulator, client: genai.client.AsyncClient, samples: dict[str, Path]
) -> None:
    full = acte_text()
    cap = math.ceil(len(full) / 4) - 1
    cut = await client.models.generate_content(
        model=MODEL,
        contents=[pdf_part(samples["acte"]), "Transcris."],
        config=types.GenerateContentConfig(max_output_tokens=cap),
    )
    assert cut.text == full[: cap * 4]
    assert finish(cut) == types.FinishReason.MAX_TOKENS
    usage = cut.usage_metadata
    assert usage is not None
    assert usage.candidates_token_count == cap
    assert usage.total_token_count == (usage.prompt_token_count or 0) + cap
    (record,) = sim.records()
    assert (record.finish_reason, record.output_tokens, record.status) == ("MAX_TOKENS", cap, 200)


async def test_the_simulators_own_limit_and_the_smaller_of_the_two(
    sim: Simulator, client: genai.client.AsyncClient
) -> None:
    text = "mot " * 50  # 200 characters: 50 tokens
    status, config = await admin(sim, "POST", "/_sim/config", {"max_output_tokens": 20})
    assert (status, config["max_output_tokens"]) == (200, 20)
    own = await client.models.generate_content(model=MODEL, contents=[text])
    assert (own.text, finish(own)) == (text.strip()[:80], types.FinishReason.MAX_TOKENS)
    smaller = await client.models.generate_content(
        model=MODEL, contents=[text], config=types.GenerateContentConfig(max_output_tokens=5)
    )
    assert smaller.text == text[:20]
    larger = await client.models.generate_content(
        model=MODEL, contents=[text], config=types.GenerateContentConfig(max_output_tokens=45)
    )
    assert larger.text == text[:80]
    status, _ = await admin(sim, "POST", "/_sim/config", {"max_output_tokens": 0})
    assert status == 200
    whole = await client.models.generate_content(model=MODEL, contents=[text])
    assert (whole.text, finish(whole)) == (text.strip(), types.FinishReason.STOP)
    for bad in (-1, 2.5, "x"):
        status, error = await admin(sim, "POST", "/_sim/config", {"max_output_tokens": bad})
        assert status == 400
        assert "max_output_tokens" in error["error"]["message"]
    _, config = await admin(sim, "GET", "/_sim/config")
    assert config["max_output_tokens"] == 0
    assert [r.finish_reason for r in sim.records()] == ["MAX_TOKENS"] * 3 + ["STOP"]


async def test_a_structured_answer_cut_is_not_json(
    sim: Simulator, client: genai.client.AsyncClient, samples: dict[str, Path]
) -> None:
    page = png_of(samples["index"], 1)
    whole = await client.models.generate_content(model=MODEL, contents=[page], config=INDEX_JSON)
    assert whole.parsed == index_pages()[1].as_index_page()
    cut = await client.models.generate_content(
        model=MODEL,
        contents=[page],
        config=INDEX_JSON.model_copy(update={"max_output_tokens": 100}),
    )
    assert finish(cut) == types.FinishReason.MAX_TOKENS
    assert cut.parsed is None
    assert cut.text == (whole.text or "")[:400]
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut.text or "")


# --- continuation --------------------------------------------------------------------------
async def continue_until_stop(
    client: genai.client.AsyncClient,
    contents: list[Any],
    config: types.GenerateContentConfig,
) -> tuple[str, int]:
    """What a client does with a cut answer: send it back after the marker and ask for
    the rest, until the answer stops by itself. (whole text, calls)."""
    text, calls = "", 0
    while True:
        extra = [f"{MARKER}\n{text}", "Continue exactement où tu t'es arrêté."] if text else []
        response = await client.models.generate_content(
            model=MODEL, contents=[*contents, *extra], config=config
        )
        calls += 1
        text += response.text or ""
        if finish(response) != types.FinishReason.MAX_TOKENS:
            return text, calls
        assert calls < 50


async def test_a_cut_transcription_is_continued_to_the_whole(
    sim: Simulator, client: genai.client.AsyncClient, samples: dict[str, Path]
) -> None:
    full = acte_text()
    cap = 150
    text, calls = await continue_until_stop(
        client,
        [pdf_part(samples["acte"]), "Transcris."],
        types.GenerateContentConfig(max_output_tokens=cap),
    )
    assert text == full
    assert calls == math.ceil(len(full) / (cap * 4))
    records = sim.records()
    assert [r.continued for r in records] == [False] + [True] * (calls - 1)
    assert [r.finish_reason for r in records] == ["MAX_TOKENS"] * (calls - 1) + ["STOP"]
    assert [r.output_tokens for r in records[:-1]] == [cap] * (calls - 1)


async def test_a_cut_json_answer_is_continued_to_valid_json(
    client: genai.client.AsyncClient, samples: dict[str, Path]
) -> None:
    text, calls = await continue_until_stop(
        client,
        [png_of(samples["index"], 0), "Les inscriptions de la page."],
        INDEX_JSON.model_copy(update={"max_output_tokens": 300}),
    )
    assert calls > 2
    assert IndexPage.model_validate_json(text) == index_pages()[0].as_index_page()


async def test_a_retouched_partial_is_placed_by_its_end(
    client: genai.client.AsyncClient, samples: dict[str, Path]
) -> None:
    full = acte_text()
    retouched = "  " + full[:700].replace("--- Page 1 ---", "Page 1")
    response = await client.models.generate_content(
        model=MODEL,
        contents=[pdf_part(samples["acte"]), "Transcris.", f"{MARKER}\n{retouched}"],
    )
    assert response.text == full[700:]


# --- the index page schema -----------------------------------------------------------------
async def test_index_page_image_fills_header_parties_and_windows(
    sim: Simulator, client: genai.client.AsyncClient, samples: dict[str, Path]
) -> None:
    expected = index_pages()[1]
    page = png_of(samples["index"], 1)
    whole = await client.models.generate_content(
        model=MODEL, contents=[page, "Transcris la page 2."], config=INDEX_JSON
    )
    assert whole.parsed == expected.as_index_page()
    windowed = await client.models.generate_content(
        model=MODEL, contents=[page, "Transcris les lignes 11 à 20 de la page."], config=INDEX_JSON
    )
    assert isinstance(windowed.parsed, IndexPage)
    assert windowed.parsed.metadata == expected.metadata
    assert windowed.parsed.inscriptions == expected.inscriptions[10:20]
    tail = await client.models.generate_content(
        model=MODEL,
        contents=[page, "Lignes 25 à 40."],
        config=types.GenerateContentConfig(
            response_mime_type="application/json",
            response_json_schema=IndexPage.model_json_schema(),
        ),
    )
    assert IndexPage.model_validate_json(tail.text or "").inscriptions == expected.inscriptions[24:]
    assert [r.pages for r in sim.records()] == [["index-00.pdf#2"]] * 3


# --- the command ---------------------------------------------------------------------------
def test_max_output_tokens_option_reaches_the_simulator(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[SimulatorConfig] = []
    monkeypatch.setattr(
        gemini_simulator.server, "serve_forever", lambda config, _: started.append(config)
    )
    app = typer.Typer()
    gemini_simulator.cli.register(app)

    @app.command("other")
    def other() -> None:  # a second command so that `simulator` is a sub-command
        """Unused."""

    result = CliRunner().invoke(app, ["simulator", "--port", "0", "--max-output-tokens", "512"])
    assert result.exit_code == 0, result.output
    assert [c.max_output_tokens for c in started] == [512]
    refused = CliRunner().invoke(app, ["simulator", "--max-output-tokens", "-1"])
    assert refused.exit_code == 2
    assert "max_output_tokens must be ≥ 0" in refused.output
