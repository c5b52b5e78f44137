"""The Gemini client (real google-genai over HTTP) against the simulator, with the real
limiter on the real Redis: answers, reconciliation, retries, blocks and 429s."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pymupdf
import pytest
from google.genai import errors as genai_errors
from redis.asyncio import Redis

from gemini_simulator import SimulatorConfig, run_simulator
from gemini_simulator.server import Simulator
from pool.cli.samples import (
    SampleIndexPage,
    index_lines,
    index_page_lines,
    sample_index_page,
    write_pdf,
)
from ratelimit import GeminiLimiter, LimiterConfig, Quota
from workers.errors import GeminiBlocked, GeminiJobError, ServiceUnavailable
from workers.gemini import (
    AnswerCut,
    GeminiClient,
    GeminiRejected,
    GeminiRequest,
    Image,
    Pdf,
    RetryPolicy,
    Text,
)
from workers.pipelines.schema import IndexPage

pytestmark = pytest.mark.anyio
MODEL = "sim-model"
FAST_RETRY = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05)


@asynccontextmanager
async def client_for(
    sim: Simulator,
    redis_prefix: str,
    *,
    call_timeout: float = 5.0,
    retry: RetryPolicy = FAST_RETRY,
    quota: Quota | None = None,
) -> AsyncIterator[GeminiClient]:
    redis = Redis.from_url("redis://127.0.0.1:6379/0")
    config = LimiterConfig(quota or Quota(10_000, 10_000_000), window_seconds=2)
    limiter = GeminiLimiter(redis, config, prefix=redis_prefix)
    client = GeminiClient(
        limiter, api_key="k", base_url=sim.url, timeout_seconds=call_timeout, retry=retry
    )
    try:
        yield client
    finally:
        await client.aclose()
        await redis.aclose()


def text_request(text: str = "Bonjour, monde.") -> GeminiRequest:
    return GeminiRequest(model=MODEL, parts=(Text(text),), what="test request")


@pytest.fixture
def pdf_path(tmp_path: Path) -> Path:
    path = tmp_path / "doc.pdf"
    write_pdf(path, [index_lines(1, 8), index_lines(2, 8)])
    return path


@pytest.fixture
def index_pdf(tmp_path: Path) -> tuple[Path, SampleIndexPage]:
    path = tmp_path / "index.pdf"
    page = sample_index_page(11, 8)
    write_pdf(path, [index_page_lines(page)])
    return path, page


@pytest.fixture
def pdf_bytes(pdf_path: Path) -> bytes:
    return pdf_path.read_bytes()


async def test_inline_pdf_answer_and_reconciliation(pdf_bytes: bytes, redis_prefix: str) -> None:
    async with (
        run_simulator(SimulatorConfig(port=0, latency_ms=1)) as sim,
        client_for(sim, redis_prefix) as client,
    ):
        request = GeminiRequest(
            model=MODEL,
            parts=(Text("Transcris."), Pdf(pages=2, data=pdf_bytes)),
            system_instruction="Tu es un transcripteur.",
        )
        answer = await client.generate(request)
        record = sim.records()[-1]
        stats = client.limiter._metrics(MODEL).estimates
    assert index_lines(1, 8)[0] in answer.text
    assert index_lines(2, 8)[-1] in answer.text
    assert answer.calls == 1
    assert record.input_tokens is not None
    assert answer.input_tokens == record.input_tokens  # the API's count, not the estimate
    assert stats.calls == 1
    assert stats.actual == record.input_tokens


def page_image(path: Path) -> Image:
    doc = pymupdf.open(path)
    pix = doc[0].get_pixmap(matrix=pymupdf.Matrix(1, 1), colorspace=pymupdf.csGRAY, alpha=False)
    png, width, height = pix.tobytes("png"), pix.width, pix.height
    doc.close()
    return Image(png, width, height)


async def test_schema_answer_is_validated(
    index_pdf: tuple[Path, SampleIndexPage], redis_prefix: str
) -> None:
    path, page = index_pdf
    config = SimulatorConfig(port=0, latency_ms=1, corpus=(path,))
    async with run_simulator(config) as sim, client_for(sim, redis_prefix) as client:
        answer = await client.generate(
            GeminiRequest(model=MODEL, parts=(Text("Page 1."), page_image(path)), schema=IndexPage)
        )
    assert answer.parsed == page.as_index_page()


async def test_a_cut_answer_is_never_returned(
    index_pdf: tuple[Path, SampleIndexPage], redis_prefix: str
) -> None:
    """MAX_TOKENS is never an answer, even when the cut text happens to be valid: the client
    raises AnswerCut carrying the text so far and what the request cost, once, no retry."""
    path, page = index_pdf
    config = SimulatorConfig(port=0, latency_ms=1, corpus=(path,))
    whole = page.as_index_page().model_dump_json()
    async with run_simulator(config) as sim, client_for(sim, redis_prefix) as client:
        request = GeminiRequest(
            model=MODEL,
            parts=(Text("Page 1."), page_image(path)),
            schema=IndexPage,
            max_output_tokens=60,
            what="index page 1/1",
        )
        with pytest.raises(AnswerCut, match="cut its answer to index page 1/1 at max_output_t"):
            await client.generate(request)
        text = GeminiRequest(
            model=MODEL, parts=(Text("Le vendeur déclare " * 40),), max_output_tokens=10
        )
        with pytest.raises(AnswerCut) as cut:
            await client.generate(text)
        calls = [r for r in sim.records() if r.endpoint == "generateContent"]
    assert [r.finish_reason for r in calls] == ["MAX_TOKENS", "MAX_TOKENS"]
    assert cut.value.text == ("Le vendeur déclare " * 40)[:40]
    assert (cut.value.calls, cut.value.output_tokens, cut.value.max_output_tokens) == (1, 10, 10)
    assert cut.value.input_tokens == calls[-1].input_tokens
    assert not cut.value.permanent  # left uncaught, the attempt is retried later
    assert client.stats.cut_answers == 2
    assert len(whole) > 60 * 4  # the page really did not fit


@pytest.mark.parametrize("fault", ["fault_5xx", "fault_malformed", "fault_bad_json"])
async def test_transient_faults_are_retried_then_reported(fault: str, redis_prefix: str) -> None:
    config = SimulatorConfig(port=0, latency_ms=1, **{fault: 1.0})  # type: ignore[arg-type]
    async with run_simulator(config) as sim, client_for(sim, redis_prefix) as client:
        request = GeminiRequest(model=MODEL, parts=(Text("x"),), schema=IndexPage, what="p 1")
        with pytest.raises(GeminiJobError, match="Gemini failed on p 1 3 times") as raised:
            await client.generate(request)
        calls = [r for r in sim.records() if r.endpoint == "generateContent"]
    assert not raised.value.permanent
    assert len(calls) == 3


async def test_some_failures_then_success(redis_prefix: str) -> None:
    config = SimulatorConfig(port=0, latency_ms=1, fault_5xx=0.5, seed=3)
    retry = RetryPolicy(max_attempts=20, base_delay=0.01, max_delay=0.02)
    async with (
        run_simulator(config) as sim,
        client_for(sim, redis_prefix, retry=retry) as client,
    ):
        answers = [await client.generate(text_request(f"ligne {n}")) for n in range(10)]
        failures = [r for r in sim.records() if r.status >= 500]
    assert [a.text.strip() for a in answers] == [f"ligne {n}" for n in range(10)]
    assert failures  # some calls did fail, and were retried
    assert sum(a.calls for a in answers) == 10 + len(failures)


async def test_hang_is_cut_by_the_timeout(redis_prefix: str) -> None:
    config = SimulatorConfig(port=0, latency_ms=1, fault_hang=1.0, hang_seconds=60)
    async with (
        run_simulator(config) as sim,
        client_for(sim, redis_prefix, call_timeout=0.5) as client,
    ):
        with pytest.raises(GeminiJobError, match="3 times") as raised:
            await client.generate(text_request())
    assert "timed out" in str(raised.value) or "Timeout" in str(raised.value)


async def test_safety_block_is_permanent_and_not_retried(redis_prefix: str) -> None:
    config = SimulatorConfig(port=0, latency_ms=1, fault_safety=1.0)
    async with run_simulator(config) as sim, client_for(sim, redis_prefix) as client:
        with pytest.raises(GeminiBlocked, match="blocked test request: SAFETY") as raised:
            await client.generate(text_request())
        calls = [r for r in sim.records() if r.endpoint == "generateContent"]
    assert raised.value.permanent
    assert len(calls) == 1


async def test_429_sets_the_fleet_cooldown_and_does_not_count_as_failure(
    redis_prefix: str,
) -> None:
    # The simulator allows 2 requests per 2 s; the limiter believes in 100.
    config = SimulatorConfig(port=0, latency_ms=1, rpm=2, window_seconds=2)
    retry = RetryPolicy(max_attempts=1, base_delay=0.01, max_delay=0.02)
    async with (
        run_simulator(config) as sim,
        client_for(sim, redis_prefix, retry=retry, quota=Quota(100, 10_000_000)) as client,
    ):
        answers = [await client.generate(text_request(f"n{n}")) for n in range(4)]
        statuses = [r.status for r in sim.records() if r.endpoint == "generateContent"]
        metrics = client.limiter._metrics(MODEL)
    assert [a.text.strip() for a in answers] == ["n0", "n1", "n2", "n3"]
    assert 429 in statuses
    assert sum(a.quota_errors for a in answers) == statuses.count(429)
    assert metrics.quota_errors == statuses.count(429)


async def test_rejected_request_is_permanent(redis_prefix: str) -> None:
    async with (
        run_simulator(SimulatorConfig(port=0, latency_ms=1)) as sim,
        client_for(sim, redis_prefix, quota=Quota(100, 50)) as client,
    ):
        # Over the model's whole token window: can never be sent.
        with pytest.raises(GeminiRejected, match="too large"):
            await client.generate(text_request("mot " * 200))
        assert sim.records() == []


async def test_a_refused_key_is_refunded_and_raised_as_service_unavailable(
    redis_prefix: str,
) -> None:
    async with run_simulator(SimulatorConfig(port=0, latency_ms=1)) as sim:
        redis = Redis.from_url("redis://127.0.0.1:6379/0")
        limiter = GeminiLimiter(redis, LimiterConfig(Quota(100, 100_000)), prefix=redis_prefix)
        client = GeminiClient(limiter, api_key="invalid-key", base_url=sim.url, retry=FAST_RETRY)
        try:
            with pytest.raises(ServiceUnavailable, match="refused the API key: HTTP 400"):
                await client.generate(text_request())
            usage = await limiter.publish()
        finally:
            await client.aclose()
            await redis.aclose()
        calls = [r for r in sim.records() if r.endpoint == "generateContent"]
    assert len(calls) == 1  # not retried: a key does not fix itself
    assert limiter._metrics(MODEL).refunds == 1
    assert usage.rpm == 0  # the refused call was taken off the window


def _error(code: int, status: str) -> genai_errors.APIError:
    body = {"error": {"code": code, "message": f"{status} (test)", "status": status}}
    kind = genai_errors.ServerError if code >= 500 else genai_errors.ClientError
    return kind(code, body)


async def test_an_upload_goes_through_the_clients_one_retry_loop(
    pdf_path: Path, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Uploads are retried as calls are: 5xx after a back-off until `max_attempts`, a
    rejected request at once, never through the limiter (the Files API is not in its quota)."""
    async with (
        run_simulator(SimulatorConfig(port=0, latency_ms=1)) as sim,
        client_for(sim, redis_prefix) as client,
    ):
        files = (await client.prepare()).client.aio.files
        upload = files.upload
        tries: list[int] = []

        def failing(errors: list[genai_errors.APIError]) -> Any:
            async def attempt(**kwargs: Any) -> Any:
                tries.append(1)
                if len(tries) <= len(errors):
                    raise errors[len(tries) - 1]
                return await upload(**kwargs)

            return attempt

        monkeypatch.setattr(files, "upload", failing([_error(503, "UNAVAILABLE")] * 2))
        async with client.uploaded_pdf(pdf_path, 2) as pdf:
            assert pdf.file_uri
        assert len(tries) == 3  # two 503s, then the upload

        tries.clear()
        monkeypatch.setattr(files, "upload", failing([_error(400, "INVALID_ARGUMENT")]))
        with pytest.raises(GeminiRejected, match=r"upload of doc\.pdf: HTTP 400"):
            async with client.uploaded_pdf(pdf_path, 2):
                pass
        assert len(tries) == 1

        tries.clear()
        monkeypatch.setattr(files, "upload", failing([_error(503, "UNAVAILABLE")] * 9))
        with pytest.raises(GeminiJobError, match=r"upload of doc\.pdf 3 times; last: HTTP 503"):
            async with client.uploaded_pdf(pdf_path, 2):
                pass
        assert len(tries) == FAST_RETRY.max_attempts
        assert client.stats.calls == 0  # no generateContent, no grant
