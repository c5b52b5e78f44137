"""Pure policies of the workers: retry classification and delays, token estimates of
requests, pipeline cache keys, and how a task group's failure is reported."""

from __future__ import annotations

import random

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ratelimit.estimate import estimate_input_tokens, image_tokens, text_tokens
from workers.boost import rules_digest
from workers.errors import DocumentError, GeminiJobError, JobError, PermanentJobError
from workers.gemini import (
    Failure,
    GeminiRequest,
    Image,
    Pdf,
    RetryPolicy,
    Text,
    classify_status,
    estimate_tokens,
)
from workers.gemini.request import schema_json
from workers.job_policy import JobRetryPolicy
from workers.pipelines import acte, index
from workers.pipelines.context import Models, first_job_error
from workers.pipelines.prompts import NAMES, prompt, prompts_digest
from workers.pipelines.schema import IndexPage


@pytest.mark.parametrize(
    ("code", "failure"),
    [
        (429, Failure.QUOTA),
        (500, Failure.TRANSIENT),
        (503, Failure.TRANSIENT),
        (504, Failure.TRANSIENT),
        (408, Failure.TRANSIENT),
        (401, Failure.AUTH),
        (403, Failure.REJECTED),
        (400, Failure.REJECTED),
        (404, Failure.REJECTED),
        (413, Failure.REJECTED),
    ],
)
def test_status_classification(code: int, failure: Failure) -> None:
    assert classify_status(code) is failure


KEY_INVALID = {
    "error": {
        "code": 400,
        "message": "API key not valid. Please pass a valid API key.",
        "status": "INVALID_ARGUMENT",
        "details": [
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}
        ],
    }
}


def test_a_refused_key_is_never_the_documents_fault() -> None:
    assert classify_status(400, KEY_INVALID) is Failure.AUTH
    assert classify_status(400, KEY_INVALID["error"]) is Failure.AUTH  # SDK's details
    unregistered = {"error": {"code": 403, "message": "Method doesn't allow unregistered callers"}}
    assert classify_status(403, unregistered) is Failure.AUTH
    disabled = {"error": {"details": [{"reason": "SERVICE_DISABLED"}]}}
    assert classify_status(403, disabled) is Failure.AUTH
    no_file = {"error": {"code": 403, "message": "You do not have permission to access the File"}}
    assert classify_status(403, no_file) is Failure.REJECTED
    bad_request = {"error": {"code": 400, "message": "Request contains an invalid argument."}}
    assert classify_status(400, bad_request) is Failure.REJECTED


@given(st.integers(1, 60), st.integers(0, 2**32))
def test_call_backoff_is_full_jitter_under_an_exponential_cap(failures: int, seed: int) -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=20.0)
    delay = policy.delay(failures, random.Random(seed))
    assert 0.0 <= delay <= min(20.0, 0.5 * 2 ** (failures - 1))


def test_call_backoff_spreads_retries() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=30.0)
    rng = random.Random(7)
    delays = [policy.delay(5, rng) for _ in range(200)]
    # spread over [0, 16], not one instant
    assert max(delays) > 12
    assert min(delays) < 4


def test_retry_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="base_delay"):
        RetryPolicy(base_delay=10, max_delay=1)
    with pytest.raises(ValueError, match="failures"):
        RetryPolicy().delay(0)


def test_job_retry_delay_grows_by_factor_and_caps() -> None:
    policy = JobRetryPolicy(base_seconds=30, max_seconds=1800, factor=4)
    assert [policy.delay(n) for n in (1, 2, 3, 4, 5)] == [30, 120, 480, 1800, 1800]
    assert JobRetryPolicy(0, 0).delay(3) == 0
    with pytest.raises(ValueError, match="attempt"):
        policy.delay(0)
    with pytest.raises(ValueError, match="base_seconds"):
        JobRetryPolicy(base_seconds=10, max_seconds=5)


def test_request_estimate_counts_every_part() -> None:
    png = Image(b"...", 1700, 2200)
    request = GeminiRequest(
        model="m",
        system_instruction="consigne " * 30,
        parts=(Text("Page 1 de 3."), png),
        schema=IndexPage,
    )
    expected = estimate_input_tokens(
        texts=["Page 1 de 3.", "consigne " * 30, schema_json(IndexPage)],
        images=[(1700, 2200)],
    )
    assert estimate_tokens(request) == expected
    assert expected >= image_tokens(1700, 2200) + text_tokens("consigne " * 30)
    pdf = GeminiRequest(model="m", parts=(Pdf(pages=7, file_uri="files/x"),))
    assert estimate_tokens(pdf) == estimate_input_tokens(pdf_pages=7)


def test_pdf_part_needs_exactly_one_source() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Pdf(pages=1)
    with pytest.raises(ValueError, match="exactly one"):
        Pdf(pages=1, data=b"%PDF", file_uri="files/x")


def test_pipeline_keys_name_version_prompts_and_models() -> None:
    models = Models(index="gemini-a", acte_extract="gemini-b", acte_boost="gemini-c")
    assert index.pipeline_key(models) == (
        f"index:v{index.VERSION}.{prompts_digest()}.{rules_digest()}:gemini-a"
    )
    assert acte.pipeline_key(models).endswith(":gemini-b+gemini-c")
    other = Models(index="gemini-z", acte_extract="gemini-b", acte_boost="gemini-y")
    assert index.pipeline_key(other) != index.pipeline_key(models)
    assert acte.pipeline_key(other) != acte.pipeline_key(models)


def test_prompts_are_french_and_versioned() -> None:
    for name in NAMES:
        text = prompt(name)
        assert "[illisible]" in text, name
        assert "Registre foncier du Québec" in text, name
    assert len(prompts_digest()) == 8
    with pytest.raises(KeyError, match="no prompt"):
        prompt("nope")


def test_inline_or_files_api_by_size() -> None:
    assert acte.sends_inline(14 * 2**20, 14 * 2**20)
    assert not acte.sends_inline(14 * 2**20 + 1, 14 * 2**20)


@pytest.mark.anyio
async def test_task_group_failure_surfaces_as_the_document_error() -> None:
    async def bad_page() -> None:
        raise DocumentError("page 2 is unreadable")

    async def slow_page() -> None:
        await anyio.sleep(10)

    async def read_document() -> None:
        with first_job_error():
            async with anyio.create_task_group() as tg:
                tg.start_soon(slow_page)
                tg.start_soon(bad_page)

    with pytest.raises(DocumentError, match="page 2 is unreadable") as raised:
        await read_document()
    assert isinstance(raised.value, PermanentJobError)


@pytest.mark.anyio
async def test_non_job_errors_stay_grouped() -> None:
    async def boom() -> None:
        raise KeyError("bug")

    with pytest.raises(ExceptionGroup), first_job_error():
        async with anyio.create_task_group() as tg:
            tg.start_soon(boom)


def test_job_error_message_is_one_line() -> None:
    error = GeminiJobError("Gemini failed\n  twice:\tHTTP 503")
    assert error.message == "Gemini failed twice: HTTP 503"
    assert not error.permanent
    assert DocumentError("x").permanent
    assert isinstance(error, JobError)
