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
from typing import TYPE_CHECKING, TypeVar

import anyio
from pydantic import BaseModel, ValidationError

from ratelimit import GeminiLimiter, RequestTooLarge, Reservation, parse_quota_error
from ratelimit.estimate import GEMINI_2, TokenRates
from workers.errors import GeminiBlocked, GeminiJobError, PermanentJobError, ServiceUnavailable
from workers.gemini.request import GeminiRequest, Pdf, estimate_tokens
from workers.gemini.retry import Failure, RetryPolicy, classify_status

if TYPE_CHECKING:  # loaded on first use, off the event loop (`GeminiClient.prepare`)
    from google.genai.errors import APIError

    from workers.gemini.sdk import File, Response, Transport

log = logging.getLogger("workers.gemini")
T = TypeVar("T")

BLOCKING_FINISH = frozenset(
    {"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "IMAGE_SAFETY", "RECITATION"}
)


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


class _Again(Exception):
    """An attempt ended in a way another attempt may mend. `problem` says how (logged;
    the job's error once attempts run out). `quota`: a 429 already reported to the limiter,
    counted apart and retried at once, the fleet cooldown being the wait."""

    def __init__(self, problem: str, *, quota: bool = False) -> None:
        super().__init__(problem)
        self.problem = problem
        self.quota = quota


@dataclass(slots=True)
class _Tries:
    """What the retry loop counted so far for one request."""

    failures: int = 0
    quota_errors: int = 0


def _api_failure(exc: APIError, what: str) -> Exception:
    """What an HTTP error from Gemini becomes: the key refused or the request rejected
    end the job; anything else (a 429, a 5xx) is worth another attempt."""
    failure = classify_status(exc.code, exc.details)
    if failure is Failure.AUTH:
        return GeminiKeyRefused(f"Gemini refused the API key: {_describe_api_error(exc)}")
    if failure is Failure.REJECTED:
        return GeminiRejected(f"Gemini rejected {what}: {_describe_api_error(exc)}")
    return _Again(_describe_api_error(exc), quota=failure is Failure.QUOTA)


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


def _describe_api_error(exc: APIError) -> str:
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
        self._api_key = api_key
        self._base_url = base_url
        self._transport: Transport | None = None
        self._loading = anyio.Lock()

    @property
    def _timeout_ms(self) -> int:
        return max(1, round(self.timeout_seconds * 1000))

    async def prepare(self) -> Transport:
        """The SDK client, made on first use: google-genai is imported in a thread, so
        the event loop (claims, heartbeats) keeps running while it loads. The pool calls
        this once its workers are claiming; a call made earlier waits for the same load."""
        if self._transport is None:
            async with self._loading:
                if self._transport is None:
                    self._transport = await anyio.to_thread.run_sync(self._new_transport)
        return self._transport

    def _new_transport(self) -> Transport:
        from workers.gemini.sdk import Transport

        return Transport(
            api_key=self._api_key, base_url=self._base_url, timeout_ms=self._timeout_ms
        )

    async def aclose(self) -> None:
        if self._transport is not None:
            await self._transport.aclose()

    # -- generate --------------------------------------------------------------------
    async def generate(self, request: GeminiRequest, *, worker: str = "") -> Answer:
        """Send `request` until it yields a usable answer, or raise a `JobError`."""
        estimate = estimate_tokens(request, self.rates)
        what = request.what or request.model
        calls = 0
        spent = TokenCounts()  # every answer of this request, usable or not, is billed

        async def attempt(tries: _Tries) -> Answer:
            nonlocal calls
            sdk = await self.prepare()
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
                response = await self._send(sdk, request, reservation, worker)
            except sdk.APIError as exc:
                failure = _api_failure(exc, what)
                if isinstance(failure, _Again) and failure.quota:
                    self.stats.quota_errors += 1
                    await self.limiter.report_quota_error(
                        request.model,
                        parse_quota_error(exc.details),
                        reservation=reservation,
                        worker=worker,
                    )
                elif isinstance(failure, GeminiKeyRefused):
                    await self.limiter.refund(reservation, worker=worker)
                else:
                    await self.limiter.release(reservation, worker=worker)
                    if isinstance(failure, _Again):
                        self.stats.transient_errors += 1
                raise failure from None
            except sdk.NETWORK_ERRORS as exc:
                if isinstance(exc, sdk.NOT_SENT_ERRORS):
                    await self.limiter.refund(reservation, worker=worker)
                else:
                    await self.limiter.release(reservation, worker=worker)
                self.stats.transient_errors += 1
                raise _Again(_describe(exc)) from None
            actual = await self._reconcile(reservation, response, worker)
            out_tokens = _usage(response, "candidates_token_count")
            thought = _usage(response, "thoughts_token_count")
            spent.add(actual, out_tokens, thought)
            self.stats.billed(request.model, actual, out_tokens, thought)
            try:
                text, parsed = self._read(request, response, what)
            except _BadAnswer as exc:
                self.stats.transient_errors += 1
                raise _Again(str(exc)) from None
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
            self.stats.answers += 1
            return Answer(
                text=text,
                parsed=parsed,
                input_tokens=spent.input_tokens,
                output_tokens=spent.output_tokens,
                calls=calls,
                quota_errors=tries.quota_errors,
                thinking_tokens=spent.thinking_tokens,
                model=request.model,
            )

        return await self._retrying(what, attempt, model=request.model)

    async def _retrying(
        self, what: str, attempt: Callable[[_Tries], Awaitable[T]], *, model: str = ""
    ) -> T:
        """The client's one retry loop: `attempt` until it returns or raises something
        other than `_Again`. A 429 (already reported to the limiter, which makes the next
        acquire wait out the fleet cooldown) is retried at once, up to `max_quota_retries`;
        any other `_Again` after a jittered back-off, up to `max_attempts` attempts."""
        tries = _Tries()
        while True:
            try:
                return await attempt(tries)
            except _Again as again:
                if again.quota:
                    tries.quota_errors += 1
                    if tries.quota_errors > self.retry.max_quota_retries:
                        raise GeminiJobError(
                            f"Gemini {model} kept answering 429 for {what} "
                            f"({tries.quota_errors} times); will retry later"
                        ) from None
                    continue
                tries.failures += 1
                if tries.failures >= self.retry.max_attempts:
                    raise GeminiJobError(
                        f"Gemini failed on {what} {tries.failures} times; last: {again.problem}"
                    ) from None
                pause = self.retry.delay(tries.failures)
                log.info(
                    "Gemini %s: %s; retry %d in %.1f s", what, again.problem, tries.failures, pause
                )
                await anyio.sleep(pause)

    async def _send(
        self, sdk: Transport, request: GeminiRequest, reservation: Reservation, worker: str
    ) -> Response:
        contents, config = sdk.request_body(request, self._timeout_ms)
        body = sum(len(getattr(p, "data", None) or b"") for p in request.parts) * 4 // 3
        try:
            # The SDK's own timeout covers the HTTP exchange; this one also bounds anything
            # around it (DNS, a stuck connection pool) so a worker can never hang on a call.
            with anyio.fail_after(self.timeout_seconds + 5):
                # the grant's slot counts from here (plus the wire margin for the body)
                await self.limiter.wire(reservation, body_bytes=body)
                return await sdk.generate(request.model, contents, config)
        except sdk.CLEANUP_ERRORS:
            raise  # generate settles these
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.limiter.release(reservation, worker=worker)
            raise

    async def _reconcile(self, reservation: Reservation, response: Response, worker: str) -> int:
        counted = _usage(response, "prompt_token_count")
        actual = counted if counted > 0 else reservation.tokens
        await self.limiter.reconcile(reservation, actual, worker=worker)
        return actual

    def _read(
        self, request: GeminiRequest, response: Response, what: str
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
        sdk = await self.prepare()
        uploaded = await self._retrying(f"upload of {path.name}", lambda _: self._upload(sdk, path))
        try:
            if not uploaded.uri:
                raise GeminiJobError(f"Gemini's upload of {path.name} returned no URI")
            yield Pdf(pages=pages, file_uri=uploaded.uri)
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(10):
                try:
                    if uploaded.name:
                        await sdk.delete(uploaded.name)
                except sdk.CLEANUP_ERRORS as exc:
                    log.warning("could not delete uploaded file %s: %s", uploaded.name, exc)

    async def _upload(self, sdk: Transport, path: Path) -> File:
        """One attempt at an upload (no limiter: the Files API has its own quota; a 429
        from it is retried as any transient failure)."""
        try:
            with anyio.fail_after(self.timeout_seconds + 5):
                uploaded = await sdk.upload_pdf(path)
        except sdk.APIError as exc:
            failure = _api_failure(exc, f"upload of {path.name}")
            if isinstance(failure, _Again):
                failure.quota = False
            raise failure from None
        except sdk.NETWORK_ERRORS as exc:
            raise _Again(_describe(exc)) from None
        if sdk.failed(uploaded):
            raise GeminiRejected(f"Gemini could not process the upload of {path.name}")
        return uploaded


def _usage(response: Response, name: str) -> int:
    usage = response.usage_metadata
    value = getattr(usage, name, None) if usage is not None else None
    return int(value) if isinstance(value, int) else 0


def _enum_name(value: object) -> str:
    name = getattr(value, "name", None)
    return str(name if name is not None else value)
