"""The Gemini client: google-genai (async) with every call through the shared limiter.

One `generate` = as many HTTP calls as it takes, each one granted by the limiter first
and reconciled with the API's `usage_metadata` after. A 429 is reported to the limiter
(fleet cooldown, adaptive ceiling) and retried without counting as a failure; 5xx,
timeouts, broken or non-conforming answers are retried with jittered backoff; a safety
block or a rejected request is final. What cannot be fixed by retrying surfaces as a
`JobError` whose message is fit for `ocr_error`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import anyio
import httpx
from google import genai
from google.genai import errors as genai_errors
from google.genai import types
from pydantic import BaseModel, ValidationError

from ratelimit import GeminiLimiter, RequestTooLarge, Reservation, parse_quota_error
from ratelimit.estimate import GEMINI_2, TokenRates
from workers.errors import GeminiBlocked, GeminiJobError, PermanentJobError, ServiceUnavailable
from workers.gemini.request import GeminiRequest, Pdf, estimate_tokens, to_sdk_config, to_sdk_parts
from workers.gemini.retry import Failure, RetryPolicy, classify_status

log = logging.getLogger("workers.gemini")

BLOCKING_FINISH = frozenset(
    {"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "IMAGE_SAFETY", "RECITATION"}
)
NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    TimeoutError,
    aiohttp.ClientError,
    httpx.HTTPError,
    genai_errors.UnknownApiResponseError,
    ValueError,  # the SDK raises bare ValueErrors on some unreadable answers
)
NOT_SENT_ERRORS: tuple[type[BaseException], ...] = (
    aiohttp.ClientConnectorError,
    httpx.ConnectError,
)
"""The request certainly never reached Gemini: its grant is refunded."""
CLEANUP_ERRORS: tuple[type[BaseException], ...] = (genai_errors.APIError, *NETWORK_ERRORS)


class GeminiRejected(PermanentJobError):
    """Gemini answered 4xx (not 429) to this document's request: resending cannot help."""


class GeminiKeyRefused(ServiceUnavailable):
    """GEMINI_API_KEY is wrong, or the API is disabled for it: no document is at fault."""


class _BadAnswer(Exception):
    """A 200 whose content is unusable (empty, not JSON, not the schema): retried."""


class _Cut(Exception):
    """A 200 whose answer Gemini stopped at max_output_tokens (finish reason MAX_TOKENS)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class AnswerCut(GeminiJobError):
    """Gemini stopped the answer at `max_output_tokens` (finish reason MAX_TOKENS).

    Never a success: the caller continues it, splits the request, or asks again with more
    room. `text` is what came before the cut (thinking excluded); the counts say what the
    request cost so far. Left uncaught, it fails the attempt (retryable) with a message
    naming the cut, so a cut answer can never be stored by accident."""

    def __init__(
        self,
        what: str,
        text: str,
        *,
        max_output_tokens: int | None,
        output_tokens: int,
        input_tokens: int,
        calls: int,
        thinking_tokens: int = 0,
        model: str = "",
    ) -> None:
        room = f"max_output_tokens={max_output_tokens}" if max_output_tokens else "its limit"
        super().__init__(
            f"Gemini cut its answer to {what} at {room} ({output_tokens} output tokens)"
        )
        self.text = text
        self.max_output_tokens = max_output_tokens
        self.output_tokens = output_tokens
        self.input_tokens = input_tokens
        self.calls = calls
        self.thinking_tokens = thinking_tokens
        self.model = model


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    parsed: BaseModel | None
    input_tokens: int
    """As counted by the API (the estimate when the answer had no usage metadata), for
    every answer this request got (a broken answer that was asked again is billed too)."""
    output_tokens: int
    calls: int
    """HTTP calls this answer took (retries included)."""
    quota_errors: int
    thinking_tokens: int = 0
    """Billed as output; counted apart (`usage_metadata.thoughts_token_count`)."""
    model: str = ""


@dataclass(slots=True)
class TokenCounts:
    """What one model's answers cost so far (answered and cut calls)."""

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    thinking_tokens: int = 0

    def add(self, input_tokens: int, output_tokens: int, thinking_tokens: int) -> None:
        self.requests += 1
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens
        self.thinking_tokens += thinking_tokens


@dataclass(slots=True)
class ClientStats:
    calls: int = 0
    answers: int = 0
    quota_errors: int = 0
    transient_errors: int = 0
    blocked: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    thinking_tokens: int = 0
    cut_answers: int = 0
    by_model: dict[str, int] = field(default_factory=dict)
    tokens_by_model: dict[str, TokenCounts] = field(default_factory=dict)
    """Answered and cut calls' tokens per model (the bill; errors carry no usage)."""

    def billed(self, model: str, input_tokens: int, output_tokens: int, thinking: int) -> None:
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens
        self.thinking_tokens += thinking
        self.tokens_by_model.setdefault(model, TokenCounts()).add(
            input_tokens, output_tokens, thinking
        )


def _describe_api_error(exc: genai_errors.APIError) -> str:
    message = " ".join(str(exc.message or "").split())[:200]
    status = f" {exc.status}" if exc.status else ""
    return f"HTTP {exc.code}{status}" + (f": {message}" if message else "")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    name = type(exc).__name__
    text = " ".join(str(exc).split())[:200]
    return f"{name}: {text}" if text else name


class GeminiClient:
    """Shared by every worker of a pool (one connection pool, one limiter)."""

    def __init__(
        self,
        limiter: GeminiLimiter,
        *,
        api_key: str,
        base_url: str | None = None,
        timeout_seconds: float = 120.0,
        retry: RetryPolicy | None = None,
        rates: TokenRates = GEMINI_2,
    ) -> None:
        if timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds must be positive (got {timeout_seconds})")
        self.limiter = limiter
        self.timeout_seconds = timeout_seconds
        self.retry = retry or RetryPolicy()
        self.rates = rates
        self.stats = ClientStats()
        options = types.HttpOptions(timeout=self._timeout_ms)
        if base_url:
            options.base_url = base_url
        self._sdk = genai.Client(api_key=api_key, http_options=options)

    @property
    def _timeout_ms(self) -> int:
        return max(1, round(self.timeout_seconds * 1000))

    async def aclose(self) -> None:
        await self._sdk.aio.aclose()

    # -- generate --------------------------------------------------------------------
    async def generate(self, request: GeminiRequest, *, worker: str = "") -> Answer:
        """Send `request` until it yields a usable answer, or raise a `JobError`."""
        estimate = estimate_tokens(request, self.rates)
        what = request.what or request.model
        failures = quota_errors = calls = 0
        spent = TokenCounts()  # every answer of this request, usable or not, is billed
        while True:
            try:
                reservation = await self.limiter.acquire(
                    request.model,
                    estimate,
                    worker=worker,
                    early=True,  # _send waits for the slot at the wire
                    flight_seconds=self.timeout_seconds + 10,
                )
            except RequestTooLarge as exc:
                raise GeminiRejected(f"{what} is too large for Gemini's quota: {exc}") from None
            calls += 1
            self.stats.calls += 1
            self.stats.by_model[request.model] = self.stats.by_model.get(request.model, 0) + 1
            try:
                response = await self._send(request, reservation, worker)
            except genai_errors.APIError as exc:
                failure = classify_status(exc.code, exc.details)
                if failure is Failure.AUTH:
                    await self.limiter.refund(reservation, worker=worker)
                    raise GeminiKeyRefused(
                        f"Gemini refused the API key: {_describe_api_error(exc)}"
                    ) from None
                if failure is Failure.QUOTA:
                    quota_errors += 1
                    self.stats.quota_errors += 1
                    signal = parse_quota_error(exc.details)
                    await self.limiter.report_quota_error(
                        request.model, signal, reservation=reservation, worker=worker
                    )
                    if quota_errors > self.retry.max_quota_retries:
                        raise GeminiJobError(
                            f"Gemini {request.model} kept answering 429 for {what} "
                            f"({quota_errors} times); will retry later"
                        ) from None
                    continue
                if failure is Failure.REJECTED:
                    await self.limiter.release(reservation, worker=worker)
                    raise GeminiRejected(
                        f"Gemini rejected {what}: {_describe_api_error(exc)}"
                    ) from None
                problem = _describe_api_error(exc)
            except NETWORK_ERRORS as exc:
                if isinstance(exc, NOT_SENT_ERRORS):
                    await self.limiter.refund(reservation, worker=worker)
                problem = _describe(exc)
            else:
                actual = await self._reconcile(reservation, response, worker)
                out_tokens = _usage(response, "candidates_token_count")
                thought = _usage(response, "thoughts_token_count")
                spent.add(actual, out_tokens, thought)
                self.stats.billed(request.model, actual, out_tokens, thought)
                try:
                    answer = self._read(request, response, what)
                except _BadAnswer as exc:
                    problem = str(exc)
                except _Cut as cut:
                    self.stats.cut_answers += 1
                    raise AnswerCut(
                        what,
                        cut.text,
                        max_output_tokens=request.max_output_tokens,
                        output_tokens=spent.output_tokens,
                        input_tokens=spent.input_tokens,
                        calls=calls,
                        thinking_tokens=spent.thinking_tokens,
                        model=request.model,
                    ) from None
                else:
                    self.stats.answers += 1
                    return Answer(
                        text=answer[0],
                        parsed=answer[1],
                        input_tokens=spent.input_tokens,
                        output_tokens=spent.output_tokens,
                        calls=calls,
                        quota_errors=quota_errors,
                        thinking_tokens=spent.thinking_tokens,
                        model=request.model,
                    )
            await self.limiter.release(reservation, worker=worker)  # if nothing settled it
            failures += 1
            self.stats.transient_errors += 1
            if failures >= self.retry.max_attempts:
                raise GeminiJobError(
                    f"Gemini failed on {what} {failures} times; last: {problem}"
                ) from None
            pause = self.retry.delay(failures)
            log.info("Gemini %s: %s; retry %d in %.1f s", what, problem, failures, pause)
            await anyio.sleep(pause)

    async def _send(
        self, request: GeminiRequest, reservation: Reservation, worker: str
    ) -> types.GenerateContentResponse:
        contents = [types.Content(role="user", parts=to_sdk_parts(request))]
        config = to_sdk_config(request, self._timeout_ms)
        body = sum(len(getattr(p, "data", None) or b"") for p in request.parts) * 4 // 3
        try:
            # The SDK's own timeout covers the HTTP exchange; this one also bounds anything
            # around it (DNS, a stuck connection pool) so a worker can never hang on a call.
            with anyio.fail_after(self.timeout_seconds + 5):
                # the grant's slot counts from here (plus the wire margin for the body)
                await self.limiter.wire(reservation, body_bytes=body)
                return await self._sdk.aio.models.generate_content(
                    model=request.model, contents=contents, config=config
                )
        except CLEANUP_ERRORS:
            raise  # generate settles these
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.limiter.release(reservation, worker=worker)
            raise

    async def _reconcile(
        self, reservation: Reservation, response: types.GenerateContentResponse, worker: str
    ) -> int:
        counted = _usage(response, "prompt_token_count")
        actual = counted if counted > 0 else reservation.tokens
        await self.limiter.reconcile(reservation, actual, worker=worker)
        return actual

    def _read(
        self, request: GeminiRequest, response: types.GenerateContentResponse, what: str
    ) -> tuple[str, BaseModel | None]:
        feedback = response.prompt_feedback
        if feedback is not None and feedback.block_reason is not None:
            self.stats.blocked += 1
            raise GeminiBlocked(f"Gemini blocked {what}: {_enum_name(feedback.block_reason)}")
        if not response.candidates:
            raise _BadAnswer("Gemini gave no candidate")
        candidate = response.candidates[0]
        finish = _enum_name(candidate.finish_reason) if candidate.finish_reason else ""
        if finish in BLOCKING_FINISH:
            self.stats.blocked += 1
            raise GeminiBlocked(f"Gemini blocked {what}: finish reason {finish}")
        parts = candidate.content.parts if candidate.content and candidate.content.parts else []
        text = "".join(p.text for p in parts if p.text and not p.thought)
        if finish == "MAX_TOKENS":
            # Checked before anything else: half an answer may still parse (a cut JSON
            # array can close early) or look complete; it is never a success.
            raise _Cut(text)
        if not text.strip():
            raise _BadAnswer(f"Gemini gave an empty answer (finish reason {finish or 'none'})")
        if request.schema is None:
            return text, None
        try:
            return text, request.schema.model_validate_json(text)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(x) for x in first.get("loc", ())) or "answer"
            raise _BadAnswer(
                f"Gemini's answer does not fit the schema ({where}: {first.get('msg')})"
            ) from None

    # -- Files API ---------------------------------------------------------------------
    @asynccontextmanager
    async def uploaded_pdf(self, path: Path, pages: int) -> AsyncIterator[Pdf]:
        """Upload a PDF through the Files API for the body of the `async with`, then delete it
        (best effort: Gemini also deletes uploads after 48 h)."""
        uploaded = await self._with_retries(f"upload of {path.name}", lambda: self._upload(path))
        try:
            if not uploaded.uri:
                raise GeminiJobError(f"Gemini's upload of {path.name} returned no URI")
            yield Pdf(pages=pages, file_uri=uploaded.uri)
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(10):
                try:
                    if uploaded.name:
                        await self._sdk.aio.files.delete(name=uploaded.name)
                except CLEANUP_ERRORS as exc:
                    log.warning("could not delete uploaded file %s: %s", uploaded.name, exc)

    async def _upload(self, path: Path) -> types.File:
        with anyio.fail_after(self.timeout_seconds + 5):
            uploaded = await self._sdk.aio.files.upload(
                file=str(path),
                config=types.UploadFileConfig(mime_type="application/pdf"),
            )
            while uploaded.state == types.FileState.PROCESSING and uploaded.name:
                await anyio.sleep(1.0)
                uploaded = await self._sdk.aio.files.get(name=uploaded.name)
        if uploaded.state == types.FileState.FAILED:
            raise GeminiRejected(f"Gemini could not process the upload of {path.name}")
        return uploaded

    async def _with_retries(
        self, what: str, call: Callable[[], Awaitable[types.File]]
    ) -> types.File:
        failures = 0
        while True:
            try:
                result: types.File = await call()
                return result
            except genai_errors.APIError as exc:
                failure = classify_status(exc.code, exc.details)
                if failure is Failure.AUTH:
                    raise GeminiKeyRefused(
                        f"Gemini refused the API key: {_describe_api_error(exc)}"
                    ) from None
                if failure is Failure.REJECTED:
                    raise GeminiRejected(
                        f"Gemini rejected {what}: {_describe_api_error(exc)}"
                    ) from None
                problem = _describe_api_error(exc)
            except NETWORK_ERRORS as exc:
                problem = _describe(exc)
            failures += 1
            if failures >= self.retry.max_attempts:
                raise GeminiJobError(f"Gemini failed on {what} {failures} times; last: {problem}")
            await anyio.sleep(self.retry.delay(failures))


def _usage(response: types.GenerateContentResponse, name: str) -> int:
    usage = response.usage_metadata
    value = getattr(usage, name, None) if usage is not None else None
    return int(value) if isinstance(value, int) else 0


def _enum_name(value: object) -> str:
    name = getattr(value, "name", None)
    return str(name if name is not None else value)
