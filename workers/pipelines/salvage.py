"""What can be trusted in an index page's JSON that Gemini cut short: the objects that
were closed before the cut. Pure.

Structured output follows the schema's property order, so a cut answer is a prefix of
`{"metadata": {...}, "inscriptions": [{...}, {...}, {…` — the metadata object and every
inscription closed before the cut are whole and valid; the one being written is not.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from pydantic import ValidationError

from workers.pipelines.schema import Inscription, PageMetadata

_DECODER = json.JSONDecoder()
_KEY = r'"{name}"\s*:\s*'


@dataclass(frozen=True, slots=True)
class Salvaged:
    metadata: PageMetadata | None
    inscriptions: list[Inscription]


def _after_key(text: str, name: str) -> int | None:
    match = re.search(_KEY.format(name=re.escape(name)), text)
    return match.end() if match else None


def _skip_space(text: str, at: int) -> int:
    while at < len(text) and text[at] in " \t\r\n":
        at += 1
    return at


def salvage_page(text: str) -> Salvaged:
    metadata: PageMetadata | None = None
    at = _after_key(text, "metadata")
    if at is not None:
        try:
            value, _ = _DECODER.raw_decode(text, _skip_space(text, at))
            metadata = PageMetadata.model_validate(value)
        except (ValueError, ValidationError):
            metadata = None
    inscriptions: list[Inscription] = []
    at = _after_key(text, "inscriptions")
    if at is None:
        return Salvaged(metadata, inscriptions)
    at = _skip_space(text, at)
    if at >= len(text) or text[at] != "[":
        return Salvaged(metadata, inscriptions)
    at += 1
    while True:
        at = _skip_space(text, at)
        if at < len(text) and text[at] == ",":
            at = _skip_space(text, at + 1)
        if at >= len(text) or text[at] == "]":
            break
        try:
            value, at = _DECODER.raw_decode(text, at)
            inscriptions.append(Inscription.model_validate(value))
        except (ValueError, ValidationError):
            break  # the object being written when the answer stopped
    return Salvaged(metadata, inscriptions)
