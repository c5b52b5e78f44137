"""google-genai behind one small object, the `Transport`: the SDK client, the request
conversions and the exceptions the client tells apart.

Importing this module loads google-genai (with httpx and aiohttp), about 0.3 s of CPU
on a small machine. `GeminiClient` imports it on first use, in a thread, so a pool
claims its first jobs while the SDK loads (`GeminiClient.prepare`)."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import anyio
import httpx
from google import genai
from google.genai import errors, types

from workers.gemini.request import GeminiRequest, Image, Text
from workers.gemini.thinking import thinking_for

APIError = errors.APIError
"""What the API answered with an HTTP error (4xx, 5xx); `.code`, `.status`, `.details`."""
NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    TimeoutError,
    aiohttp.ClientError,
    httpx.HTTPError,
    errors.UnknownApiResponseError,
    ValueError,  # the SDK raises bare ValueErrors on some unreadable answers
)
NOT_SENT_ERRORS: tuple[type[BaseException], ...] = (
    aiohttp.ClientConnectorError,
    httpx.ConnectError,
)
"""The request certainly never reached Gemini: its grant is refunded."""
CLEANUP_ERRORS: tuple[type[BaseException], ...] = (APIError, *NETWORK_ERRORS)

Response = types.GenerateContentResponse
File = types.File


class Transport:
    """One google-genai client (its connection pool), the calls the pool makes, and the
    exceptions the client tells apart (as attributes, so the caller needs no import)."""

    APIError = APIError
    NETWORK_ERRORS = NETWORK_ERRORS
    NOT_SENT_ERRORS = NOT_SENT_ERRORS
    CLEANUP_ERRORS = CLEANUP_ERRORS

    def __init__(self, *, api_key: str, base_url: str | None, timeout_ms: int) -> None:
        options = types.HttpOptions(timeout=timeout_ms)
        if base_url:
            options.base_url = base_url
        self.client = genai.Client(api_key=api_key, http_options=options)

    async def aclose(self) -> None:
        await self.client.aio.aclose()

    def request_body(
        self, request: GeminiRequest, timeout_ms: int
    ) -> tuple[list[types.Content], types.GenerateContentConfig]:
        """The SDK's contents and config for `request` (built before the slot is stamped)."""
        return [types.Content(role="user", parts=to_sdk_parts(request))], to_sdk_config(
            request, timeout_ms
        )

    async def generate(
        self, model: str, contents: list[types.Content], config: types.GenerateContentConfig
    ) -> Response:
        return await self.client.aio.models.generate_content(
            model=model, contents=contents, config=config
        )

    async def upload_pdf(self, path: Path) -> File:
        """Upload `path` and wait until Gemini has processed it (state ACTIVE or FAILED)."""
        files = self.client.aio.files
        uploaded = await files.upload(
            file=str(path), config=types.UploadFileConfig(mime_type="application/pdf")
        )
        while uploaded.state == types.FileState.PROCESSING and uploaded.name:
            await anyio.sleep(1.0)
            uploaded = await files.get(name=uploaded.name)
        return uploaded

    @staticmethod
    def failed(uploaded: File) -> bool:
        return uploaded.state == types.FileState.FAILED

    async def delete(self, name: str) -> None:
        await self.client.aio.files.delete(name=name)


def to_sdk_parts(request: GeminiRequest) -> list[types.Part]:
    parts: list[types.Part] = []
    for part in request.parts:
        if isinstance(part, Text):
            parts.append(types.Part.from_text(text=part.text))
        elif isinstance(part, Image):
            parts.append(types.Part.from_bytes(data=part.data, mime_type=part.mime_type))
        elif part.data is not None:
            parts.append(types.Part.from_bytes(data=part.data, mime_type="application/pdf"))
        else:
            assert part.file_uri is not None
            parts.append(types.Part.from_uri(file_uri=part.file_uri, mime_type="application/pdf"))
    return parts


def to_sdk_config(request: GeminiRequest, timeout_ms: int) -> types.GenerateContentConfig:
    config = types.GenerateContentConfig(
        temperature=request.temperature,
        http_options=types.HttpOptions(timeout=timeout_ms),
    )
    if request.max_output_tokens is not None:
        config.max_output_tokens = request.max_output_tokens
    thinking = thinking_for(request.model, request.thinking_budget)
    if thinking is not None:
        config.thinking_config = types.ThinkingConfig(
            thinking_budget=thinking.budget,
            thinking_level=None if thinking.level is None else types.ThinkingLevel(thinking.level),
        )
    if request.system_instruction:
        config.system_instruction = request.system_instruction
    if request.schema is not None:
        config.response_mime_type = "application/json"
        config.response_schema = request.schema
    return config
