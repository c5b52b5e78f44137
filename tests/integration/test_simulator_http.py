"""The Gemini simulator over real HTTP, driven by the real google-genai async client."""

from __future__ import annotations

import asyncio
import io
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pymupdf
import pytest
import typer
from google import genai
from google.genai import errors as genai_errors
from google.genai import types
from pydantic import BaseModel
from typer.testing import CliRunner

from gemini_simulator import Simulator, SimulatorConfig, run_simulator
from gemini_simulator.cli import register
from gemini_simulator.tokens import image_tokens, text_tokens
from ratelimit.quota_error import parse_quota_error

pytestmark = pytest.mark.anyio

MODEL = "gemini-2.5-flash"
ROOT = Path(__file__).resolve().parents[2]


class Ligne(BaseModel):
    date: str | None
    parties: str
    nature: str
    numero_publication: str | None
    radiation: str | None
    remarques: str | None


class Page(BaseModel):
    lignes: list[Ligne]
    page_illisible: bool


def _rows(seed: int) -> list[str]:
    return [
        f"20{seed:02d}-0{n % 9 + 1}-1{n % 10} | Partie {seed}-{n}, Marie | Vente | "
        f"{seed * 100_000 + n} |  | lot {n}"
        for n in range(12 + seed)
    ]


def write_pdf(path: Path, pages: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = pymupdf.open()
    for lines in pages:
        page = doc.new_page(width=612, height=792)
        for n, line in enumerate(lines):
            page.insert_text((54, 72 + 14 * n), line, fontsize=9)
    doc.save(path)
    doc.close()
    return path


def render_png(path: Path, page: int, dpi: int = 200) -> bytes:
    """As the pipeline renders pages."""
    with pymupdf.open(path) as doc:
        scale = dpi / 72
        pix = doc[page].get_pixmap(
            matrix=pymupdf.Matrix(scale, scale), colorspace=pymupdf.csGRAY, alpha=False
        )
        return bytes(pix.tobytes("png"))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("simulator")
    corpus = root / "corpus"
    return {
        "corpus": corpus,
        "registre": write_pdf(corpus / "registre.pdf", [_rows(1), _rows(2)]),
        "acte": write_pdf(
            root / "acte.pdf",
            [["PAR-DEVANT Me Lavoie, notaire.", "", "PRIX : 100 000 $   "], ["Clause 1 : fin."]],
        ),
        "stranger": write_pdf(
            root / "stranger.pdf", [["Une page que le simulateur ne connaît pas."]]
        ),
    }


# Each page headed by its marker, pages separated by a blank line; the empty line inside
# page 1 has no text, so the text layer has no line for it.
ACTE_TEXT = (
    "--- Page 1 ---\nPAR-DEVANT Me Lavoie, notaire.\nPRIX : 100 000 $\n\n"
    "--- Page 2 ---\nClause 1 : fin."
)


@pytest.fixture
async def sim(files: dict[str, Path], tmp_path: Path) -> AsyncIterator[Simulator]:
    config = SimulatorConfig(
        port=0,
        latency_ms=0,
        latency_per_1k_tokens_ms=0,
        latency_sigma=0,
        corpus=(files["corpus"],),
        log_path=tmp_path / "requests.jsonl",
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


async def admin(sim: Simulator, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, sim.url + path, json=body) as response,
    ):
        return response.status, await response.json()


def pdf_part(path: Path) -> types.Part:
    return types.Part.from_bytes(data=path.read_bytes(), mime_type="application/pdf")


def png_part(data: bytes) -> types.Part:
    return types.Part.from_bytes(data=data, mime_type="image/png")


def expected_page(seed: int) -> list[dict[str, Any]]:
    rows = []
    for line in _rows(seed):
        date, parties, nature, numero, _, remarques = line.split(" | ")
        rows.append(
            {
                "date": date,
                "parties": parties,
                "nature": nature,
                "numero_publication": numero,
                "radiation": None,
                "remarques": remarques,
            }
        )
    return rows


# --- answers -------------------------------------------------------------------------------
async def test_inline_pdf_answer_is_its_text_layer_with_usage(
    sim: Simulator, client: genai.client.AsyncClient, files: dict[str, Path]
) -> None:
    prompt = "Transcris ce document."
    response = await client.models.generate_content(
        model=MODEL, contents=[pdf_part(files["acte"]), prompt]
    )
    assert response.text == ACTE_TEXT
    candidate = (response.candidates or [])[0]
    assert candidate.finish_reason == types.FinishReason.STOP
    assert candidate.content is not None
    assert candidate.content.role == "model"
    usage = response.usage_metadata
    assert usage is not None
    assert usage.prompt_token_count == 2 * 258 + text_tokens(prompt)
    assert usage.candidates_token_count == math.ceil(len(ACTE_TEXT) / 4)
    # gemini-2.5-flash asked nothing about thinking thinks (the simulator's minimum, 64
    # tokens, for a short answer), billed as output, as Gemini does.
    assert usage.thoughts_token_count == 64
    assert usage.total_token_count == (
        usage.prompt_token_count + usage.candidates_token_count + usage.thoughts_token_count
    )
    (record,) = sim.records()
    assert (record.endpoint, record.model, record.status, record.source) == (
        "generateContent",
        MODEL,
        200,
        "pdf",
    )
    assert record.input_tokens == usage.prompt_token_count
    assert record.output_tokens == usage.candidates_token_count


async def test_png_of_a_corpus_page_answers_that_page_into_a_pydantic_schema(
    sim: Simulator, client: genai.client.AsyncClient, files: dict[str, Path]
) -> None:
    png = render_png(files["registre"], 1)  # 1700 x 2200 at 200 DPI: 3 x 3 tiles
    config = types.GenerateContentConfig(
        system_instruction="Lis la page d'index.",
        response_mime_type="application/json",
        response_schema=Page,
        temperature=0,
    )
    response = await client.models.generate_content(
        model=MODEL, contents=[png_part(png), "Les lignes de la page."], config=config
    )
    assert isinstance(response.parsed, Page)
    assert [line.model_dump() for line in response.parsed.lignes] == expected_page(2)
    assert response.parsed.page_illisible is False
    (record,) = sim.records()
    assert record.pages == ["registre.pdf#2"]
    assert record.source == "image"
    usage = response.usage_metadata
    assert usage is not None
    fixed = image_tokens(1700, 2200) + text_tokens("Lis la page d'index.")
    fixed += text_tokens("Les lignes de la page.")
    assert usage.prompt_token_count is not None
    assert usage.prompt_token_count > fixed  # + the response schema's JSON
    assert record.input_tokens == usage.prompt_token_count
    # Without a schema: the page's lines as text; a JPEG of it is recognised too.
    plain = await client.models.generate_content(model=MODEL, contents=[png_part(png)])
    assert plain.text == "\n".join(_rows(2))
    with pymupdf.open(files["registre"]) as doc:
        jpeg = doc[0].get_pixmap(matrix=pymupdf.Matrix(2, 2), colorspace=pymupdf.csGRAY)
        jpeg_bytes = jpeg.tobytes("jpg", jpg_quality=75)
    from_jpeg = await client.models.generate_content(
        model=MODEL,
        contents=[types.Part.from_bytes(data=jpeg_bytes, mime_type="image/jpeg")],
        config=config,
    )
    assert isinstance(from_jpeg.parsed, Page)
    assert [line.model_dump() for line in from_jpeg.parsed.lignes] == expected_page(1)


async def test_unknown_image_is_illegible_until_added_to_the_corpus(
    sim: Simulator, client: genai.client.AsyncClient, files: dict[str, Path]
) -> None:
    png = render_png(files["stranger"], 0, dpi=150)
    plain = await client.models.generate_content(model=MODEL, contents=[png_part(png)])
    assert plain.text == "[illisible]"
    config = types.GenerateContentConfig(
        response_mime_type="application/json", response_schema=Page
    )
    structured = await client.models.generate_content(
        model=MODEL, contents=[png_part(png)], config=config
    )
    assert structured.parsed == Page(lignes=[], page_illisible=True)
    status, added = await admin(sim, "POST", "/_sim/corpus", {"paths": [str(files["stranger"])]})
    assert (status, added["added"]) == (200, 1)
    known = await client.models.generate_content(model=MODEL, contents=[png_part(png)])
    assert known.text == "Une page que le simulateur ne connaît pas."
    assert [r.pages for r in sim.records()] == [["?"], ["?"], ["stranger.pdf#1"]]
    status, error = await admin(sim, "POST", "/_sim/corpus", {"paths": ["/no/such/dir"]})
    assert status == 400
    assert "not found" in error["error"]["message"]


async def test_text_only_answer_is_the_longest_part_normalised(
    client: genai.client.AsyncClient,
) -> None:
    response = await client.models.generate_content(
        model=MODEL,
        contents=["Corrige la transcription :", "Ligne   un  \n\nLigne\tdeux   "],
    )
    assert response.text == "Ligne un\n\nLigne deux"


async def test_json_schema_form_is_answered_too(client: genai.client.AsyncClient) -> None:
    text = "2001-01-01 | Roy | Vente | 7 | | x\n | Côté | Quittance"
    response = await client.models.generate_content(
        model=MODEL,
        contents=[text],
        config=types.GenerateContentConfig(
            response_mime_type="application/json", response_json_schema=Page.model_json_schema()
        ),
    )
    page = Page.model_validate_json(response.text or "")
    assert [(line.date, line.parties, line.remarques) for line in page.lignes] == [
        ("2001-01-01", "Roy", "x"),
        (None, "Côté", None),
    ]


async def test_count_tokens_matches_generate_and_takes_no_quota(
    sim: Simulator, client: genai.client.AsyncClient, files: dict[str, Path]
) -> None:
    contents: list[Any] = [
        pdf_part(files["acte"]),
        png_part(render_png(files["registre"], 0)),
        "Lis.",
    ]
    counted = await client.models.count_tokens(model=MODEL, contents=contents)
    assert counted.total_tokens == 2 * 258 + image_tokens(1700, 2200) + text_tokens("Lis.")
    _, quota = await admin(sim, "GET", "/_sim/quota")
    assert quota["models"] == {}
    response = await client.models.generate_content(model=MODEL, contents=contents)
    assert response.usage_metadata is not None
    assert response.usage_metadata.prompt_token_count == counted.total_tokens
    assert [(r.endpoint, r.input_tokens) for r in sim.records()] == [
        ("countTokens", counted.total_tokens),
        ("generateContent", counted.total_tokens),
    ]


# --- Files API -----------------------------------------------------------------------------
async def test_upload_generate_with_the_file_then_delete(
    sim: Simulator, client: genai.client.AsyncClient, files: dict[str, Path]
) -> None:
    uploaded = await client.files.upload(
        file=io.BytesIO(files["acte"].read_bytes()),
        config=types.UploadFileConfig(mime_type="application/pdf", display_name="acte 1"),
    )
    assert uploaded.state == types.FileState.ACTIVE
    assert uploaded.name is not None
    assert uploaded.name.startswith("files/")
    assert uploaded.uri == f"{sim.url}/v1beta/files/{uploaded.name.removeprefix('files/')}"
    assert (uploaded.display_name, uploaded.size_bytes) == ("acte 1", files["acte"].stat().st_size)
    response = await client.models.generate_content(model=MODEL, contents=[uploaded, "Transcris."])
    assert response.text == ACTE_TEXT
    assert response.usage_metadata is not None
    assert response.usage_metadata.prompt_token_count == 2 * 258 + text_tokens("Transcris.")
    fetched = await client.files.get(name=uploaded.name)
    assert (fetched.name, fetched.state) == (uploaded.name, types.FileState.ACTIVE)
    by_path = await client.files.upload(file=files["registre"])  # MIME type from the name
    assert by_path.mime_type == "application/pdf"
    await client.files.delete(name=uploaded.name)
    with pytest.raises(genai_errors.ClientError) as gone:
        await client.files.get(name=uploaded.name)
    assert (gone.value.code, gone.value.status) == (403, "PERMISSION_DENIED")
    with pytest.raises(genai_errors.ClientError) as stale:
        await client.models.generate_content(model=MODEL, contents=[uploaded, "Transcris."])
    assert stale.value.code == 403
    assert [r.endpoint for r in sim.records()] == [
        "files.create",
        "files.upload",
        "generateContent",
        "files.get",
        "files.create",
        "files.upload",
        "files.delete",
        "files.get",
        "generateContent",
    ]


async def test_a_file_larger_than_one_chunk_arrives_whole(
    sim: Simulator, client: genai.client.AsyncClient
) -> None:
    data = bytes(range(256)) * (9 * 1024 * 1024 // 256 + 7)  # > the SDK's 8 MB chunk
    uploaded = await client.files.upload(
        file=io.BytesIO(data), config=types.UploadFileConfig(mime_type="application/octet-stream")
    )
    assert uploaded.size_bytes == len(data)
    assert uploaded.name is not None
    stored = sim.state.files.get(uploaded.name.removeprefix("files/"))
    assert stored.data == data
    assert [r.endpoint for r in sim.records()] == ["files.create", "files.upload", "files.upload"]


# --- quota ---------------------------------------------------------------------------------
async def test_requests_over_rpm_get_googles_429_body(
    sim: Simulator, client: genai.client.AsyncClient
) -> None:
    sim.configure(rpm=2, window_seconds=1.0)
    for _ in range(2):
        await client.models.generate_content(model=MODEL, contents=["a"])
    with pytest.raises(genai_errors.ClientError) as refused:
        await client.models.generate_content(model=MODEL, contents=["a"])
    error = refused.value
    assert (error.code, error.status) == (429, "RESOURCE_EXHAUSTED")
    assert error.message is not None
    assert error.message.startswith("You exceeded your current quota")
    signal_ = parse_quota_error(error.details)
    assert signal_.quota_ids == ("GenerateRequestsPerMinutePerProjectPerModel",)
    assert not signal_.per_day
    assert signal_.retry_delay is not None
    assert 0 < signal_.retry_delay <= 1.0
    (failure,) = [
        d for d in error.details["error"]["details"] if d["@type"].endswith("QuotaFailure")
    ]
    assert failure["violations"][0]["quotaMetric"] == (
        "generativelanguage.googleapis.com/generate_content_free_tier_requests"
    )
    _, quota = await admin(sim, "GET", "/_sim/quota")
    assert quota["models"][MODEL]["requests"] == 2  # the 429 was not counted
    # another model has its own window
    await client.models.generate_content(model="gemini-2.5-pro", contents=["a"])
    await asyncio.sleep(signal_.retry_delay)
    await client.models.generate_content(model=MODEL, contents=["a"])
    records = sim.records()
    assert [r.status for r in records] == [200, 200, 429, 200, 200]
    assert (records[2].quota, records[2].retry_delay) == ("requests", f"{signal_.retry_delay:g}s")


async def test_input_tokens_over_tpm_get_the_token_quota_id(
    sim: Simulator, client: genai.client.AsyncClient
) -> None:
    sim.configure(tpm=100, window_seconds=2.0)
    await client.models.generate_content(model=MODEL, contents=["x" * 240])  # 60 tokens
    with pytest.raises(genai_errors.ClientError) as refused:
        await client.models.generate_content(model=MODEL, contents=["x" * 200])  # 50 more
    signal_ = parse_quota_error(refused.value.details)
    assert signal_.quota_ids == ("GenerateContentInputTokensPerModelPerMinute-FreeTier",)
    assert signal_.retry_delay is not None
    assert 0 < signal_.retry_delay <= 2.0
    await client.models.generate_content(model=MODEL, contents=["x" * 160])  # 40: fits
    assert [r.status for r in sim.records()] == [200, 429, 200]


# --- faults --------------------------------------------------------------------------------
async def test_5xx_faults_alternate_500_and_503_and_skip_the_quota(
    sim: Simulator, client: genai.client.AsyncClient
) -> None:
    status, config = await admin(sim, "POST", "/_sim/config", {"fault_5xx": 1.0, "rpm": 1})
    assert (status, config["fault_5xx"], config["rpm"]) == (200, 1.0, 1)
    seen = []
    for _ in range(3):
        with pytest.raises(genai_errors.ServerError) as failed:
            await client.models.generate_content(model=MODEL, contents=["a"])
        seen.append((failed.value.code, failed.value.status))
    assert seen == [(500, "INTERNAL"), (503, "UNAVAILABLE"), (500, "INTERNAL")]
    assert [(r.status, r.fault) for r in sim.records()] == [
        (500, "5xx"),
        (503, "5xx"),
        (500, "5xx"),
    ]
    _, quota = await admin(sim, "GET", "/_sim/quota")
    assert quota["models"] == {}


async def test_faults_are_seeded(sim: Simulator, client: genai.client.AsyncClient) -> None:
    sim.configure(fault_5xx=0.5, seed=42)

    async def outcomes() -> list[int]:
        codes = []
        for _ in range(16):
            try:
                await client.models.generate_content(model=MODEL, contents=["a"])
                codes.append(200)
            except genai_errors.APIError as exc:
                codes.append(exc.code)
        return codes

    first = await outcomes()
    status, _ = await admin(sim, "POST", "/_sim/reset")
    assert status == 200
    assert await outcomes() == first
    assert 200 in first
    assert {500, 503} <= set(first)


async def test_malformed_safety_and_bad_json_faults(
    sim: Simulator, client: genai.client.AsyncClient
) -> None:
    schema_config = types.GenerateContentConfig(
        response_mime_type="application/json", response_schema=Page
    )
    sim.configure(fault_malformed=1.0)
    # The SDK's non-streaming path json.loads the body itself: a bare JSONDecodeError.
    with pytest.raises(json.JSONDecodeError):
        await client.models.generate_content(model=MODEL, contents=["a"])
    sim.configure(fault_malformed=0.0, fault_safety=1.0)
    blocked = await client.models.generate_content(model=MODEL, contents=["a"])
    assert blocked.candidates is None
    assert blocked.text is None
    assert blocked.prompt_feedback is not None
    assert blocked.prompt_feedback.block_reason == types.BlockedReason.SAFETY
    sim.configure(fault_safety=0.0, fault_bad_json=1.0)
    spoiled = await client.models.generate_content(
        model=MODEL, contents=["1 | a | b"], config=schema_config
    )
    assert spoiled.parsed is None
    with pytest.raises(json.JSONDecodeError):
        json.loads(spoiled.text or "")
    plain = await client.models.generate_content(model=MODEL, contents=["a"])  # no JSON asked
    assert plain.text == "a"
    assert [(r.status, r.fault) for r in sim.records()] == [
        (200, "malformed"),
        (200, "safety"),
        (200, "bad_json"),
        (200, None),
    ]


async def test_hang_outlasts_the_client_timeout(sim: Simulator) -> None:
    sim.configure(fault_hang=1.0, hang_seconds=600)
    sdk = genai.Client(
        api_key="test",
        http_options=types.HttpOptions(base_url=sim.url, api_version="v1beta", timeout=300),
    )
    started = time.monotonic()
    try:
        with pytest.raises(TimeoutError):
            await sdk.aio.models.generate_content(model=MODEL, contents=["a"])
    finally:
        await sdk.aio.aclose()
    assert time.monotonic() - started < 5
    for _ in range(100):  # the server notices the client went away
        if sim.records():
            break
        await asyncio.sleep(0.02)
    (record,) = sim.records()
    assert (record.status, record.fault, record.delay_ms) == (499, "hang", 600_000)


async def test_short_hang_then_answer(sim: Simulator, client: genai.client.AsyncClient) -> None:
    sim.configure(fault_hang=1.0, hang_seconds=0.3)
    started = time.monotonic()
    response = await client.models.generate_content(model=MODEL, contents=["a"])
    assert response.text == "a"
    assert time.monotonic() - started >= 0.3


# --- latency, keys, routes -----------------------------------------------------------------
async def test_latency_is_applied_concurrently(
    sim: Simulator, client: genai.client.AsyncClient
) -> None:
    sim.configure(latency_ms=300, latency_per_1k_tokens_ms=1000, latency_sigma=0)
    started = time.monotonic()
    await asyncio.gather(
        *(client.models.generate_content(model=MODEL, contents=["x" * 400]) for _ in range(6))
    )
    elapsed = time.monotonic() - started
    assert 0.4 <= elapsed < 1.2  # 6 x 400 ms served side by side, not one after another
    assert [r.delay_ms for r in sim.records()] == [400.0] * 6  # 300 + 1000 x 100 / 1000


async def test_api_key_versions_and_camel_case(sim: Simulator) -> None:
    body = {
        "contents": [{"parts": [{"inlineData": {"mimeType": "text/plain", "data": "aMOp"}}]}],
    }
    async with aiohttp.ClientSession() as session:
        url = f"{sim.url}/v1/models/{MODEL}:generateContent"
        async with session.post(url, json=body) as response:
            assert response.status == 403
            error = await response.json()
        assert error["error"]["status"] == "PERMISSION_DENIED"
        async with session.post(url, params={"key": "k"}, json=body) as response:
            assert response.status == 200
            answer = await response.json()
        assert answer["candidates"][0]["content"]["parts"][0]["text"] == "hé"
        alpha = f"{sim.url}/v1alpha/models/{MODEL}:countTokens"
        async with session.post(alpha, headers={"x-goog-api-key": "k"}, json=body) as response:
            assert (await response.json())["totalTokens"] == 1
        async with session.post(f"{sim.url}/v2/models/{MODEL}:generateContent") as response:
            assert response.status == 404
            assert (await response.json())["error"]["status"] == "NOT_FOUND"
        async with session.post(
            url,
            params={"key": "k"},
            data=b"{not json",
            headers={"Content-Type": "application/json"},
        ) as response:
            assert response.status == 400
            assert (await response.json())["error"]["status"] == "INVALID_ARGUMENT"
    assert [r.status for r in sim.records()] == [403, 200, 200, 404, 400]


# --- admin endpoints and the request log ---------------------------------------------------
async def test_log_config_and_reset_endpoints(
    sim: Simulator, client: genai.client.AsyncClient, tmp_path: Path
) -> None:
    await client.models.generate_content(model=MODEL, contents=["un"])
    uploaded = await client.files.upload(
        file=io.BytesIO(b"%PDF-1.4"), config=types.UploadFileConfig(mime_type="application/pdf")
    )
    status, log = await admin(sim, "GET", "/_sim/log")
    assert status == 200
    assert log == [r.as_dict() for r in sim.records()]
    assert [(r["endpoint"], r["status"]) for r in log] == [
        ("generateContent", 200),
        ("files.create", 200),
        ("files.upload", 200),
    ]
    assert log[0]["input_tokens"] == 1
    assert log[0]["output_tokens"] == 1
    assert set(log[0]) >= {"time", "model", "endpoint", "status", "fault", "latency_ms"}
    _, tail = await admin(sim, "GET", "/_sim/log?since=2")
    assert tail == log[2:]
    status, bad = await admin(sim, "POST", "/_sim/config", {"fault_5xx": 2})
    assert status == 400
    assert "fault_5xx" in bad["error"]["message"]
    status, bad = await admin(sim, "POST", "/_sim/config", {"port": 1})
    assert status == 400
    _, config = await admin(sim, "GET", "/_sim/config")
    assert (config["fault_5xx"], config["rpm"]) == (0.0, SimulatorConfig().rpm)
    status, _ = await admin(sim, "POST", "/_sim/reset")
    assert status == 200
    _, after = await admin(sim, "GET", "/_sim/log")
    assert after == []
    _, quota = await admin(sim, "GET", "/_sim/quota")
    assert quota["models"] == {}
    assert uploaded.name is not None
    with pytest.raises(genai_errors.ClientError):
        await client.files.get(name=uploaded.name)
    # The JSONL file keeps everything, one record per line.
    lines = (tmp_path / "requests.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines][:3] == log
    assert json.loads(lines[-1])["endpoint"] == "files.get"


# --- the command ---------------------------------------------------------------------------
def test_command_rejects_bad_options() -> None:
    app = typer.Typer()
    register(app)

    @app.command("other")
    def other() -> None:  # a second command so that `simulator` is a sub-command
        """Unused."""

    result = CliRunner().invoke(app, ["simulator", "--fault-5xx", "2"])
    assert result.exit_code == 2
    assert "fault_5xx is a probability" in result.output
    missing = CliRunner().invoke(app, ["simulator", "--port", "0", "--corpus", "/no/such.pdf"])
    assert missing.exit_code == 2
    assert "corpus path not found" in missing.output


def test_python_m_gemini_simulator_serves_until_sigterm(tmp_path: Path) -> None:
    log = tmp_path / "sim.jsonl"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gemini_simulator",
            "--port",
            "0",
            "--rpm",
            "1",
            "--latency-ms",
            "0",
            "--log",
            str(log),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        match = re.fullmatch(r"gemini-simulator listening on (http://127\.0\.0\.1:(\d+))\n", first)
        assert match, first
        url = match.group(1)
        assert int(match.group(2)) > 0

        async def two_calls() -> list[int]:
            sdk = genai.Client(
                api_key="k", http_options=types.HttpOptions(base_url=url, api_version="v1beta")
            )
            codes = []
            try:
                for _ in range(2):
                    try:
                        await sdk.aio.models.generate_content(model=MODEL, contents=["a"])
                        codes.append(200)
                    except genai_errors.APIError as exc:
                        codes.append(exc.code)
            finally:
                await sdk.aio.aclose()
            return codes

        assert asyncio.run(two_calls()) == [200, 429]  # --rpm reached the server
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert out == ""  # the one line was all
    assert [json.loads(line)["status"] for line in log.read_text().splitlines()] == [200, 429]
