"""The HTTP side: Gemini's REST routes (as the google-genai SDK calls them) and `/_sim/*`.

Routes, under `v1beta` (also `v1`, `v1alpha`):
  POST /{v}/models/{model}:generateContent     answer (quota, faults, latency; the
                                               continuation and output cap applied)
  POST /{v}/models/{model}:countTokens         {"totalTokens"} (logged, no quota)
  POST /upload/{v}/files                       resumable upload: start, upload, finalize
  GET  /{v}/files, GET/DELETE /{v}/files/{id}  the uploaded files (in memory)
Admin (no key, not logged): GET/POST /_sim/config, GET /_sim/log, POST /_sim/reset,
GET/POST /_sim/corpus, GET /_sim/quota.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from gemini_simulator import answers, output, schema, thinking
from gemini_simulator.config import ConfigError
from gemini_simulator.continuation import remainder
from gemini_simulator.corpus import CorpusError
from gemini_simulator.errors import (
    ApiError,
    invalid_api_key,
    invalid_argument,
    missing_api_key,
    not_found,
    server_error,
)
from gemini_simulator.faults import Fault
from gemini_simulator.media import MediaError
from gemini_simulator.quota import QuotaDecision, format_retry_delay
from gemini_simulator.reqlog import RequestRecord
from gemini_simulator.state import SimulatorState
from gemini_simulator.tokens import TokenCount, count_input_tokens, is_image, output_tokens
from gemini_simulator.wire import (
    BlobPart,
    FileRefPart,
    GenerateRequest,
    answer_body,
    blocked_body,
    count_tokens_body,
    get_field,
    parse_count_tokens_request,
    parse_generate_request,
)

VERSION = "{version:v1beta|v1alpha|v1}"
STATE_KEY: web.AppKey[SimulatorState] = web.AppKey("state", SimulatorState)
MAX_BODY_KEY: web.AppKey[int] = web.AppKey("max_body", int)
CLIENT_CLOSED = 499
log = logging.getLogger("gemini_simulator")

QUOTA_METRICS = {
    "requests": (
        "generativelanguage.googleapis.com/generate_content_free_tier_requests",
        "GenerateRequestsPerMinutePerProjectPerModel",
    ),
    "tokens": (
        "generativelanguage.googleapis.com/generate_content_free_tier_input_token_count",
        "GenerateContentInputTokensPerModelPerMinute-FreeTier",
    ),
}


def quota_error(model: str, decision: QuotaDecision) -> ApiError:
    """HTTP 429 with the body Gemini sends: Help, QuotaFailure, RetryInfo."""
    delay = format_retry_delay(decision.retry_after)
    lines = [
        f"* Quota exceeded for metric: {QUOTA_METRICS[v.kind][0]}, limit: {v.limit}, model: {model}"
        for v in decision.violations
    ]
    message = (
        "You exceeded your current quota, please check your plan and billing details. "
        "For more information on this error, head to: "
        "https://ai.google.dev/gemini-api/docs/rate-limits. To monitor your current usage, "
        "head to: https://ai.dev/usage?tab=rate-limit. \n"
        + "\n".join(lines)
        + f"\nPlease retry in {decision.retry_after:.6f}s."
    )
    details: list[dict[str, Any]] = [
        {
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [
                {
                    "description": "Learn more about Gemini API quotas",
                    "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                }
            ],
        },
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [
                {
                    "quotaMetric": QUOTA_METRICS[v.kind][0],
                    "quotaId": QUOTA_METRICS[v.kind][1],
                    "quotaDimensions": {"location": "global", "model": model},
                    "quotaValue": str(v.limit),
                }
                for v in decision.violations
            ],
        },
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay},
    ]
    return ApiError(429, "RESOURCE_EXHAUSTED", message, details)


def error_response(error: ApiError, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(error.body(), status=error.code, headers=headers)


def api_key_of(request: web.Request) -> str:
    key = request.headers.get("x-goog-api-key") or request.query.get("key") or ""
    if not key:
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            key = auth[7:].strip()
    return key.strip()


INVALID_KEY_PREFIX = "invalid"
"""A key starting with this is refused as Gemini refuses an unknown key (tests of a bad key)."""


def require_key(request: web.Request) -> None:
    key = api_key_of(request)
    if not key:
        raise missing_api_key()
    if key.startswith(INVALID_KEY_PREFIX):
        raise invalid_api_key()


async def read_body(request: web.Request) -> bytes:
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise invalid_argument(
            f"Request payload size exceeds the limit: {request.app[MAX_BODY_KEY]} bytes."
        ) from None


async def read_json(request: web.Request) -> Any:
    raw = await read_body(request)
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        raise invalid_argument("Invalid JSON payload received. Unexpected token.") from None


def base_url(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


@dataclass
class _Record:
    """A request record being filled in while the request is handled."""

    method: str
    path: str
    endpoint: str
    model: str | None = None
    status: int = 200
    arrived: float = field(default_factory=time.time)
    started: float = field(default_factory=time.monotonic)
    extra: dict[str, Any] = field(default_factory=dict)

    def done(self) -> RequestRecord:
        return RequestRecord(
            time=self.arrived,
            method=self.method,
            path=self.path,
            endpoint=self.endpoint,
            model=self.model,
            status=self.status,
            latency_ms=round((time.monotonic() - self.started) * 1000, 3),
            **self.extra,
        )


Handler = Callable[[web.Request, _Record], Awaitable[web.StreamResponse]]


class Routes:
    def __init__(self, state: SimulatorState) -> None:
        self.state = state

    # -- plumbing --------------------------------------------------------------------------
    def logged(
        self, endpoint: str, handler: Handler
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            model = request.match_info.get("model")
            record = _Record(request.method, request.path, endpoint, model)
            headers = {"X-Goog-Upload-Status": "final"} if endpoint.startswith("files.up") else None
            try:
                response = await handler(request, record)
            except ApiError as error:
                response = error_response(error, headers)
            except web.HTTPException:
                raise
            except Exception as exc:  # a simulator bug: still a Google body, and logged
                log.exception("simulator error on %s %s", request.method, request.path)
                bug = ApiError(500, "INTERNAL", f"Simulator error: {type(exc).__name__}: {exc}")
                response = error_response(bug, headers)
            except asyncio.CancelledError:
                record.status = CLIENT_CLOSED
                self.state.log.append(record.done())
                raise
            record.status = response.status
            self.state.log.append(record.done())
            return response

        return handle

    def request_tokens(self, request: GenerateRequest) -> Awaitable[TokenCount]:
        return self.state.in_media_thread(count_input_tokens, request, self.state.inspector)

    def resolve_file(self, ref: FileRefPart) -> BlobPart:
        stored = self.state.files.by_uri(ref.uri)
        return BlobPart(ref.mime_type or stored.mime_type, stored.data, stored.id)

    async def parsed(self, request: web.Request, count_tokens: bool = False) -> GenerateRequest:
        require_key(request)
        body = await read_json(request)
        parsed = parse_count_tokens_request(body) if count_tokens else parse_generate_request(body)
        parsed = parsed.resolved(self.resolve_file)
        raw_schema = parsed.schema_object
        if raw_schema is not None:
            try:
                schema.parse_schema(raw_schema)
            except schema.SchemaError as exc:
                raise invalid_argument(f"Invalid response schema: {exc}") from None
        return parsed

    async def tokens_of(self, parsed: GenerateRequest) -> TokenCount:
        try:
            return await self.request_tokens(parsed)
        except MediaError as exc:
            images = any(
                isinstance(p, BlobPart) and is_image(p.mime_type) for p in parsed.user_parts()
            )
            what = "Unable to process input image." if images else "The document has no pages."
            raise invalid_argument(f"{what} ({exc})") from None

    async def hang(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self.state.stopping.wait(), timeout=seconds)
        except TimeoutError:
            return
        raise ApiError(503, "UNAVAILABLE", "The simulator is shutting down.")

    # -- Gemini ----------------------------------------------------------------------------
    async def generate(self, request: web.Request, record: _Record) -> web.StreamResponse:
        model = request.match_info["model"]
        parsed = await self.parsed(request)
        tokens = await self.tokens_of(parsed)
        record.extra["input_tokens"] = tokens.total
        fault = self.state.faults.decide(wants_json=parsed.wants_json)
        if fault is not None:
            record.extra["fault"] = fault.kind
        if fault is not None and fault.kind == "5xx":
            raise server_error(fault.status)
        if fault is not None and fault.kind == "hang":
            record.extra["delay_ms"] = self.state.config.hang_seconds * 1000
            await self.hang(self.state.config.hang_seconds)
        else:
            decision = self.state.quota.try_admit(model, tokens.total)
            if not decision.admitted:
                error = quota_error(model, decision)
                record.extra["quota"] = "+".join(v.kind for v in decision.violations)
                record.extra["retry_delay"] = format_retry_delay(decision.retry_after)
                raise error
        return await self.answer(model, parsed, tokens, fault, record)

    async def answer(
        self,
        model: str,
        parsed: GenerateRequest,
        tokens: TokenCount,
        fault: Fault | None,
        record: _Record,
    ) -> web.StreamResponse:
        began = time.monotonic()
        delay = (
            0.0
            if fault is not None and fault.kind == "hang"
            else self.state.latency.seconds(tokens.total)
        )
        try:
            derived = await self.state.in_media_thread(answers.derive, parsed, self.state.reader)
        except MediaError as exc:
            raise invalid_argument(f"Unable to process input: {exc}") from None
        record.extra["source"] = derived.source
        if derived.pages:
            record.extra["pages"] = derived.pages
        text = answers.answer_text(parsed, derived)
        partial = answers.continued_from(parsed)
        if partial is not None:
            record.extra["continued"] = True
            text = remainder(text, partial)
        if fault is not None and fault.kind == "bad_json":
            text = answers.spoil_json(text)
        cap = output.effective_cap(parsed.max_output_tokens, self.state.config.max_output_tokens)
        thoughts, room = thinking.split_cap(
            cap,
            thinking.thought_tokens(
                model,
                parsed.thinking_budget,
                parsed.thinking_level,
                output_tokens(text),
                self.state.config.thinking_ratio,
            ),
        )
        sent = output.capped(text, room)
        if fault is None or fault.kind != "hang":
            record.extra["delay_ms"] = round(delay * 1000, 3)
        remaining = delay - (time.monotonic() - began)
        if remaining > 0:
            await asyncio.sleep(remaining)
        if fault is not None and fault.kind == "safety":
            record.extra["output_tokens"] = 0
            return web.json_response(blocked_body(model, tokens.total, tokens.by_modality))
        record.extra["output_tokens"] = sent.tokens
        record.extra["thinking_tokens"] = thoughts
        record.extra["finish_reason"] = sent.finish_reason
        body = answer_body(
            model,
            sent.text,
            tokens.total,
            tokens.by_modality,
            sent.tokens,
            sent.finish_reason,
            thoughts,
        )
        if fault is not None and fault.kind == "malformed":
            dumped = json.dumps(body, ensure_ascii=False)
            return web.Response(
                text=dumped[: len(dumped) // 2], content_type="application/json", charset="utf-8"
            )
        return web.json_response(body, dumps=lambda obj: json.dumps(obj, ensure_ascii=False))

    async def count_tokens(self, request: web.Request, record: _Record) -> web.StreamResponse:
        parsed = await self.parsed(request, count_tokens=True)
        tokens = await self.tokens_of(parsed)
        record.extra["input_tokens"] = tokens.total
        return web.json_response(count_tokens_body(tokens.total, tokens.by_modality))

    # -- Files API -------------------------------------------------------------------------
    async def upload(self, request: web.Request, record: _Record) -> web.StreamResponse:
        commands = {
            c.strip().lower()
            for c in request.headers.get("X-Goog-Upload-Command", "").split(",")
            if c.strip()
        }
        version = request.match_info["version"]
        if "start" in commands:
            record.endpoint = "files.create"
            return await self.upload_start(request, version)
        upload_id = request.query.get("upload_id")
        if not upload_id:
            raise invalid_argument(
                "Only resumable uploads are supported: send X-Goog-Upload-Protocol: resumable"
                " and X-Goog-Upload-Command: start first"
            )
        files = self.state.files
        if "query" in commands:
            return web.Response(
                headers={
                    "X-Goog-Upload-Status": "active",
                    "X-Goog-Upload-Size-Received": str(files.received(upload_id)),
                }
            )
        if "cancel" in commands:
            files.uploads.pop(upload_id, None)
            return web.Response(headers={"X-Goog-Upload-Status": "cancelled"})
        if "upload" not in commands:
            raise invalid_argument(f"Unknown X-Goog-Upload-Command {sorted(commands)}")
        try:
            offset = int(request.headers.get("X-Goog-Upload-Offset", "0"))
        except ValueError:
            raise invalid_argument("X-Goog-Upload-Offset must be an integer") from None
        chunk = await read_body(request)
        stored = files.append(upload_id, offset, chunk, finalize="finalize" in commands)
        if stored is None:
            return web.Response(headers={"X-Goog-Upload-Status": "active"})
        return web.json_response(
            {"file": stored.resource(base_url(request), version)},
            headers={"X-Goog-Upload-Status": "final"},
        )

    async def upload_start(self, request: web.Request, version: str) -> web.StreamResponse:
        require_key(request)
        if request.headers.get("X-Goog-Upload-Protocol", "").lower() != "resumable":
            raise invalid_argument("Only X-Goog-Upload-Protocol: resumable is supported")
        body = await read_json(request)
        meta = get_field(body, "file") if isinstance(body, dict) else None
        meta = meta if isinstance(meta, dict) else {}
        mime = request.headers.get("X-Goog-Upload-Header-Content-Type") or get_field(
            meta, "mimeType"
        )
        if not isinstance(mime, str) or not mime:
            raise invalid_argument("The file's MIME type is required")
        size_text = request.headers.get("X-Goog-Upload-Header-Content-Length") or get_field(
            meta, "sizeBytes"
        )
        try:
            size = None if size_text is None else int(size_text)
        except ValueError:
            raise invalid_argument(
                "X-Goog-Upload-Header-Content-Length must be an integer"
            ) from None
        display = get_field(meta, "displayName")
        name = meta.get("name")
        upload = self.state.files.start(
            mime_type=mime,
            declared_size=size,
            display_name=display if isinstance(display, str) else None,
            name=name if isinstance(name, str) else None,
        )
        url = (
            f"{base_url(request)}/upload/{version}/files"
            f"?upload_id={upload.id}&upload_protocol=resumable"
        )
        return web.Response(
            headers={
                "X-Goog-Upload-URL": url,
                "X-Goog-Upload-Status": "active",
                "X-Goog-Upload-Chunk-Granularity": "8388608",
                "X-GUploader-UploadID": upload.id,
            }
        )

    async def get_file(self, request: web.Request, record: _Record) -> web.StreamResponse:
        require_key(request)
        stored = self.state.files.get(request.match_info["file_id"])
        return web.json_response(stored.resource(base_url(request), request.match_info["version"]))

    async def list_files(self, request: web.Request, record: _Record) -> web.StreamResponse:
        require_key(request)
        version = request.match_info["version"]
        files = [f.resource(base_url(request), version) for f in self.state.files.files.values()]
        return web.json_response({"files": files} if files else {})

    async def delete_file(self, request: web.Request, record: _Record) -> web.StreamResponse:
        require_key(request)
        self.state.files.delete(request.match_info["file_id"])
        return web.json_response({})

    async def unknown(self, request: web.Request, record: _Record) -> web.StreamResponse:
        raise not_found(f"Method not found: {request.method} {request.path}")

    # -- admin -----------------------------------------------------------------------------
    async def get_config(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.state.config.runtime_view())

    async def post_config(self, request: web.Request) -> web.StreamResponse:
        try:
            changes = await read_json(request)
            if not isinstance(changes, dict):
                raise invalid_argument("Expected a JSON object of settings")
            self.state.configure(changes)
        except ConfigError as exc:
            return error_response(invalid_argument(str(exc)))
        except ApiError as error:
            return error_response(error)
        return web.json_response(self.state.config.runtime_view())

    async def get_log(self, request: web.Request) -> web.StreamResponse:
        records = self.state.log.records()
        try:
            since = int(request.query.get("since", "0"))
        except ValueError:
            return error_response(invalid_argument("since must be an integer"))
        return web.json_response([r.as_dict() for r in records[since:]])

    async def post_reset(self, request: web.Request) -> web.StreamResponse:
        self.state.reset()
        return web.json_response({"reset": True})

    async def get_corpus(self, request: web.Request) -> web.StreamResponse:
        pages = [
            {
                "file": str(p.path),
                "page": p.index + 1,
                "label": p.label,
                "width": p.width,
                "height": p.height,
            }
            for p in self.state.corpus.pages
        ]
        return web.json_response({"pages": pages})

    async def post_corpus(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await read_json(request)
            paths = body.get("paths") if isinstance(body, dict) else None
            if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
                raise invalid_argument('Expected {"paths": ["file.pdf" or "dir", ...]}')
            added = await self.state.add_corpus(Path(p) for p in paths)
        except CorpusError as exc:
            return error_response(invalid_argument(str(exc)))
        except ApiError as error:
            return error_response(error)
        return web.json_response({"added": added, "pages": len(self.state.corpus.pages)})

    async def get_quota(self, request: web.Request) -> web.StreamResponse:
        quota = self.state.quota
        models = {}
        for model in sorted(quota.models()):
            usage = quota.usage(model)
            models[model] = {"requests": usage.requests, "tokens": usage.tokens}
        return web.json_response(
            {"rpm": quota.rpm, "tpm": quota.tpm, "window_seconds": quota.window, "models": models}
        )


def build_app(state: SimulatorState) -> web.Application:
    max_body = int(state.config.max_body_mb * 1024 * 1024)
    app = web.Application(client_max_size=max_body)
    app[STATE_KEY] = state
    app[MAX_BODY_KEY] = max_body
    r = Routes(state)
    add = app.router.add_route
    add(
        "POST",
        f"/{VERSION}/models/{{model}}:generateContent",
        r.logged("generateContent", r.generate),
    )
    add("POST", f"/{VERSION}/models/{{model}}:countTokens", r.logged("countTokens", r.count_tokens))
    add("POST", f"/upload/{VERSION}/files", r.logged("files.upload", r.upload))
    add("GET", f"/{VERSION}/files", r.logged("files.list", r.list_files))
    add("GET", f"/{VERSION}/files/{{file_id}}", r.logged("files.get", r.get_file))
    add("DELETE", f"/{VERSION}/files/{{file_id}}", r.logged("files.delete", r.delete_file))
    add("GET", "/_sim/config", r.get_config)
    add("POST", "/_sim/config", r.post_config)
    add("GET", "/_sim/log", r.get_log)
    add("POST", "/_sim/reset", r.post_reset)
    add("GET", "/_sim/corpus", r.get_corpus)
    add("POST", "/_sim/corpus", r.post_corpus)
    add("GET", "/_sim/quota", r.get_quota)
    add("*", "/{tail:.*}", r.logged("unknown", r.unknown))
    return app
