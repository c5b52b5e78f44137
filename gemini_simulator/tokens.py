"""The simulator's own input-token count (deliberately not the client's estimator).

text: ceil(chars / 4) per text part (system instruction and the response schema's
compact JSON included); image: 258 if both sides ≤ 384 px, else 258 per 768×768 tile;
PDF: 258 per page; any other blob: 258. Output: ceil(answer chars / 4).
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field
from typing import Protocol

from gemini_simulator.wire import BlobPart, GenerateRequest, TextPart

TOKENS_PER_TILE = 258
SMALL_IMAGE_SIDE = 384
TILE_SIDE = 768


def text_tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def image_tokens(width: int, height: int) -> int:
    if width <= SMALL_IMAGE_SIDE and height <= SMALL_IMAGE_SIDE:
        return TOKENS_PER_TILE
    return TOKENS_PER_TILE * math.ceil(width / TILE_SIDE) * math.ceil(height / TILE_SIDE)


def pdf_tokens(pages: int) -> int:
    return TOKENS_PER_TILE * pages


def output_tokens(answer: str) -> int:
    return text_tokens(answer)


def schema_json(schema: object) -> str:
    """The schema as counted: compact JSON, keys in the order received."""
    return json.dumps(schema, separators=(",", ":"), ensure_ascii=False)


def header_image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG, JPEG or GIF header; None if not recognised."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24 and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return int(width), int(height)
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    return None


# Start-of-frame markers carry the size (not DHT C4, JPG C8, DAC CC).
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if marker in _SOF:
            if i + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return int(width), int(height)
        i += 2 + length
    return None


class MediaInspector(Protocol):
    """What token counting needs to know about blobs (pymupdf in the server)."""

    def pdf_page_count(self, data: bytes) -> int: ...

    def image_size(self, data: bytes) -> tuple[int, int]: ...


@dataclass(frozen=True, slots=True)
class TokenCount:
    total: int
    by_modality: dict[str, int] = field(default_factory=dict)
    """TEXT, IMAGE, DOCUMENT (as Gemini's promptTokensDetails)."""


def is_image(mime_type: str) -> bool:
    return mime_type.startswith("image/")


def is_pdf(mime_type: str) -> bool:
    return mime_type == "application/pdf"


def blob_tokens(part: BlobPart, media: MediaInspector) -> tuple[str, int]:
    """(modality, tokens) of one inline or uploaded blob."""
    if is_pdf(part.mime_type):
        return "DOCUMENT", pdf_tokens(media.pdf_page_count(part.data))
    if is_image(part.mime_type):
        width, height = media.image_size(part.data)
        return "IMAGE", image_tokens(width, height)
    if part.mime_type.startswith("text/"):
        return "TEXT", text_tokens(part.data.decode("utf-8", errors="replace"))
    return "DOCUMENT", TOKENS_PER_TILE


def count_input_tokens(request: GenerateRequest, media: MediaInspector) -> TokenCount:
    by_modality: dict[str, int] = {}

    def add(modality: str, tokens: int) -> None:
        by_modality[modality] = by_modality.get(modality, 0) + tokens

    for text in request.system_texts:
        add("TEXT", text_tokens(text))
    schema = request.schema_object
    if schema is not None:
        add("TEXT", text_tokens(schema_json(schema)))
    for content in request.contents:
        for part in content.parts:
            if isinstance(part, TextPart):
                add("TEXT", text_tokens(part.text))
            elif isinstance(part, BlobPart):
                add(*blob_tokens(part, media))
    return TokenCount(sum(by_modality.values()), by_modality)
