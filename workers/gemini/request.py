"""One Gemini request as plain data: what is sent, and what it should cost."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache

from pydantic import BaseModel

from ratelimit.estimate import GEMINI_2, TokenRates, estimate_input_tokens


@dataclass(frozen=True, slots=True)
class Text:
    text: str


@dataclass(frozen=True, slots=True)
class Image:
    data: bytes
    width: int
    height: int
    mime_type: str = "image/png"


@dataclass(frozen=True, slots=True)
class Pdf:
    """A PDF sent inline (`data`) or uploaded beforehand through the Files API (`file_uri`)."""

    pages: int
    data: bytes | None = None
    file_uri: str | None = None

    def __post_init__(self) -> None:
        if (self.data is None) == (self.file_uri is None):
            raise ValueError("a Pdf part needs exactly one of data or file_uri")


Part = Text | Image | Pdf


@dataclass(frozen=True, slots=True)
class GeminiRequest:
    model: str
    parts: tuple[Part, ...]
    system_instruction: str = ""
    schema: type[BaseModel] | None = None
    """Structured output: the answer must be JSON that validates against this model."""
    temperature: float = 0.0
    max_output_tokens: int | None = None
    """Room for the answer (thinking included); Gemini cuts it there (finish reason
    MAX_TOKENS), and the client then raises `AnswerCut` instead of returning half an
    answer."""
    thinking_budget: int | None = None
    """Tokens the model may think first (-1: as it likes); None: the least the model
    allows (`thinking.thinking_for`)."""
    what: str = field(default="", compare=False)
    """Names the request in logs and errors, e.g. "index page 3"."""

    def __post_init__(self) -> None:
        if self.max_output_tokens is not None and self.max_output_tokens < 1:
            raise ValueError(f"max_output_tokens must be >= 1 (got {self.max_output_tokens})")


@cache
def schema_json(schema: type[BaseModel]) -> str:
    return json.dumps(schema.model_json_schema(), ensure_ascii=False, separators=(",", ":"))


def estimate_tokens(request: GeminiRequest, rates: TokenRates = GEMINI_2) -> int:
    """Input tokens to reserve with the limiter before sending `request`."""
    texts = [p.text for p in request.parts if isinstance(p, Text)]
    if request.system_instruction:
        texts.append(request.system_instruction)
    if request.schema is not None:
        texts.append(schema_json(request.schema))
    return estimate_input_tokens(
        texts=texts,
        images=[(p.width, p.height) for p in request.parts if isinstance(p, Image)],
        pdf_pages=sum(p.pages for p in request.parts if isinstance(p, Pdf)),
        rates=rates,
    )
