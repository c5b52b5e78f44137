"""The JSON the google-genai SDK sends, read into plain objects, and the answers it reads.

Gemini's JSON parser takes both spellings of a field (protobuf JSON): the SDK itself sends
`inlineData` with `mime_type`, `fileData` with `file_uri`, `responseSchema` with
`property_ordering`. Every lookup here accepts camelCase and snake_case.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from gemini_simulator.errors import invalid_argument


@dataclass(frozen=True, slots=True)
class TextPart:
    text: str


@dataclass(frozen=True, slots=True)
class BlobPart:
    """Bytes sent inline (`inlineData`) or an uploaded file resolved (`fileData`)."""

    mime_type: str
    data: bytes
    file_id: str | None = None


@dataclass(frozen=True, slots=True)
class FileRefPart:
    """`fileData` before the simulator looked the file up."""

    uri: str
    mime_type: str | None


Part = TextPart | BlobPart | FileRefPart


@dataclass(frozen=True, slots=True)
class Content:
    role: str
    parts: tuple[Part, ...]


@dataclass(frozen=True, slots=True)
class GenerateRequest:
    contents: tuple[Content, ...]
    system_texts: tuple[str, ...] = ()
    response_mime_type: str | None = None
    response_schema: Mapping[str, Any] | None = None
    """Gemini's OpenAPI-subset form (what the SDK sends for a pydantic model)."""
    response_json_schema: Mapping[str, Any] | None = None
    """Plain JSON Schema (`response_json_schema=` in the SDK)."""
    max_output_tokens: int | None = None
    """`generationConfig.maxOutputTokens` (None when absent or 0)."""
    thinking_budget: int | None = None
    """`generationConfig.thinkingConfig.thinkingBudget` (None when absent)."""
    thinking_level: str | None = None
    """`generationConfig.thinkingConfig.thinkingLevel` (None when absent)."""

    @property
    def schema_object(self) -> Mapping[str, Any] | None:
        return (
            self.response_schema if self.response_schema is not None else self.response_json_schema
        )

    @property
    def wants_json(self) -> bool:
        return self.schema_object is not None or self.response_mime_type == "application/json"

    def user_parts(self) -> list[Part]:
        return [p for c in self.contents if c.role != "model" for p in c.parts]

    def resolved(self, lookup: Callable[[FileRefPart], BlobPart]) -> GenerateRequest:
        """The same request with every `fileData` replaced by the file's bytes."""
        contents = tuple(
            Content(
                c.role,
                tuple(lookup(p) if isinstance(p, FileRefPart) else p for p in c.parts),
            )
            for c in self.contents
        )
        return replace(self, contents=contents)


def get_field(obj: Mapping[str, Any], camel: str) -> Any:
    """`obj[camel]`, or its snake_case spelling."""
    if camel in obj:
        return obj[camel]
    return obj.get(_snake(camel))


def _snake(camel: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", camel).lower()


def _as_list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, Mapping):
        return [value]
    if isinstance(value, list):
        return value
    raise invalid_argument(f"Invalid value at '{where}': expected a list")


def _decode_base64(text: Any, where: str) -> bytes:
    if not isinstance(text, str):
        raise invalid_argument(f"Invalid value at '{where}' (TYPE_BYTES): expected a string")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        try:
            padded = text + "=" * (-len(text) % 4)
            return base64.b64decode(padded, altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            raise invalid_argument(
                f"Invalid value at '{where}' (TYPE_BYTES), Base64 decoding failed"
            ) from None


def _part(raw: Any, where: str) -> Part | None:
    if not isinstance(raw, Mapping):
        raise invalid_argument(f"Invalid value at '{where}': expected an object")
    text = raw.get("text")
    if isinstance(text, str):
        return TextPart(text)
    inline = get_field(raw, "inlineData")
    if isinstance(inline, Mapping):
        mime = get_field(inline, "mimeType")
        if not isinstance(mime, str) or not mime:
            raise invalid_argument(f"Invalid value at '{where}.inline_data': mime_type is required")
        return BlobPart(mime, _decode_base64(inline.get("data"), f"{where}.inline_data.data"))
    file_data = get_field(raw, "fileData")
    if isinstance(file_data, Mapping):
        uri = get_field(file_data, "fileUri")
        if not isinstance(uri, str) or not uri:
            raise invalid_argument(f"Invalid value at '{where}.file_data': file_uri is required")
        mime = get_field(file_data, "mimeType")
        return FileRefPart(uri, mime if isinstance(mime, str) and mime else None)
    return None  # function calls, thoughts…: not part of what the simulator reads


def _content(raw: Any, where: str) -> Content:
    if not isinstance(raw, Mapping):
        raise invalid_argument(f"Invalid value at '{where}': expected an object")
    role = raw.get("role") or "user"
    parts = []
    for i, raw_part in enumerate(_as_list(raw.get("parts"), f"{where}.parts")):
        part = _part(raw_part, f"{where}.parts[{i}]")
        if part is not None:
            parts.append(part)
    return Content(str(role), tuple(parts))


def parse_generate_request(body: Any) -> GenerateRequest:
    """A generateContent body (also the `generateContentRequest` of countTokens)."""
    if not isinstance(body, Mapping):
        raise invalid_argument("Invalid JSON payload received. Expected an object.")
    contents = tuple(
        _content(raw, f"contents[{i}]")
        for i, raw in enumerate(_as_list(body.get("contents"), "contents"))
    )
    if not contents:
        raise invalid_argument("* GenerateContentRequest.contents: contents is not specified")
    system_texts: tuple[str, ...] = ()
    system = get_field(body, "systemInstruction")
    if isinstance(system, Mapping):
        system_content = _content(system, "system_instruction")
        system_texts = tuple(p.text for p in system_content.parts if isinstance(p, TextPart))
    config = get_field(body, "generationConfig") or {}
    if not isinstance(config, Mapping):
        raise invalid_argument("Invalid value at 'generation_config': expected an object")
    mime = get_field(config, "responseMimeType")
    schema = get_field(config, "responseSchema")
    json_schema = get_field(config, "responseJsonSchema")
    for name, value in (("response_schema", schema), ("response_json_schema", json_schema)):
        if value is not None and not isinstance(value, Mapping):
            raise invalid_argument(f"Invalid value at 'generation_config.{name}'")
    if schema is not None and json_schema is not None:
        raise invalid_argument(
            "response_schema and response_json_schema cannot be set at the same time"
        )
    if (schema is not None or json_schema is not None) and mime != "application/json":
        raise invalid_argument(
            "* GenerateContentRequest.generation_config.response_mime_type: "
            "response_mime_type must be application/json when a response schema is set"
        )
    return GenerateRequest(
        contents=contents,
        system_texts=system_texts,
        response_mime_type=mime if isinstance(mime, str) else None,
        response_schema=schema,
        response_json_schema=json_schema,
        max_output_tokens=_max_output_tokens(get_field(config, "maxOutputTokens")),
        **_thinking(get_field(config, "thinkingConfig")),
    )


def _thinking(raw: Any) -> dict[str, Any]:
    """`thinkingConfig` → thinking_budget / thinking_level; both at once is a 400, as Gemini
    answers it."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise invalid_argument("Invalid value at 'generation_config.thinking_config'")
    budget, level = get_field(raw, "thinkingBudget"), get_field(raw, "thinkingLevel")
    if budget is not None and level is not None:
        raise invalid_argument("Thinking budget and thinking level cannot be set at the same time.")
    if budget is not None:
        if isinstance(budget, str) and _INT.fullmatch(budget.strip()):
            budget = int(budget)
        if not isinstance(budget, int) or isinstance(budget, bool) or budget < -1:
            raise invalid_argument(
                f"Invalid value at 'generation_config.thinking_config.thinking_budget', {budget!r}"
            )
    if level is not None and not isinstance(level, str):
        raise invalid_argument(
            "Invalid value at 'generation_config.thinking_config.thinking_level'"
        )
    return {"thinking_budget": budget, "thinking_level": level}


_INT = re.compile(r"[+-]?\d+")


def _max_output_tokens(raw: Any) -> int | None:
    """An int32 (protobuf JSON also writes it as a string); 0 = unset; negative: 400."""
    if raw is None:
        return None
    if isinstance(raw, str) and _INT.fullmatch(raw.strip()):
        raw = int(raw)
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    if not isinstance(raw, int) or isinstance(raw, bool):
        raise invalid_argument(
            f"Invalid value at 'generation_config.max_output_tokens' (TYPE_INT32), {raw!r}"
        )
    if raw < 0:
        raise invalid_argument(
            "* GenerateContentRequest.generation_config.max_output_tokens: "
            "max_output_tokens must be positive."
        )
    return raw or None


def parse_count_tokens_request(body: Any) -> GenerateRequest:
    if isinstance(body, Mapping):
        inner = get_field(body, "generateContentRequest")
        if isinstance(inner, Mapping):
            return parse_generate_request(inner)
    return parse_generate_request(body)


# -- answers -------------------------------------------------------------------------------


def _usage(
    prompt_tokens: int,
    by_modality: Mapping[str, int],
    answer_tokens: int | None,
    thought_tokens: int = 0,
) -> dict[str, Any]:
    usage: dict[str, Any] = {"promptTokenCount": prompt_tokens}
    if answer_tokens is not None:
        usage["candidatesTokenCount"] = answer_tokens
    if thought_tokens:
        usage["thoughtsTokenCount"] = thought_tokens
    usage["totalTokenCount"] = prompt_tokens + (answer_tokens or 0) + thought_tokens
    usage["promptTokensDetails"] = [
        {"modality": modality, "tokenCount": count} for modality, count in by_modality.items()
    ]
    return usage


def answer_body(
    model: str,
    text: str,
    prompt_tokens: int,
    by_modality: Mapping[str, int],
    answer_tokens: int,
    finish_reason: str = "STOP",
    thought_tokens: int = 0,
) -> dict[str, Any]:
    """A 200 answer; `finish_reason` STOP, or MAX_TOKENS for an answer cut at the cap;
    `thought_tokens` is the thinking that preceded it (billed as output)."""
    return {
        "candidates": [
            {
                "content": {"parts": [{"text": text}], "role": "model"},
                "finishReason": finish_reason,
                "index": 0,
            }
        ],
        "usageMetadata": _usage(prompt_tokens, by_modality, answer_tokens, thought_tokens),
        "modelVersion": model,
        "responseId": uuid.uuid4().hex[:22],
    }


def blocked_body(model: str, prompt_tokens: int, by_modality: Mapping[str, int]) -> dict[str, Any]:
    """A prompt refused for safety: no candidates, `promptFeedback.blockReason`."""
    return {
        "promptFeedback": {
            "blockReason": "SAFETY",
            "safetyRatings": [
                {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "NEGLIGIBLE"},
                {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
                {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
                {
                    "category": "HARM_CATEGORY_DANGEROUS_CONTENT",
                    "probability": "HIGH",
                    "blocked": True,
                },
            ],
        },
        "usageMetadata": _usage(prompt_tokens, by_modality, None),
        "modelVersion": model,
        "responseId": uuid.uuid4().hex[:22],
    }


def count_tokens_body(total: int, by_modality: Mapping[str, int]) -> dict[str, Any]:
    return {
        "totalTokens": total,
        "promptTokensDetails": [
            {"modality": modality, "tokenCount": count} for modality, count in by_modality.items()
        ],
    }
