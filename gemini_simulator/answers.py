"""What the simulated model answers: derived from what the request carries.

- PDF (inline or uploaded): its text layer, pages separated by a blank line;
- image: the text layer of the corpus page it shows, or `[illisible]`;
- text only: the longest user text part, whitespace-normalised per line;
- with a response schema: a conforming JSON instance filled from those lines
  (`schema.instance`); JSON asked without a schema: the text as a JSON string.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Protocol

from gemini_simulator import schema
from gemini_simulator.tokens import is_image, is_pdf
from gemini_simulator.wire import BlobPart, GenerateRequest, TextPart

ILLEGIBLE_TEXT = "[illisible]"


class ContentReader(Protocol):
    def pdf_text(self, data: bytes) -> str: ...

    def recognise(self, data: bytes) -> tuple[str, str] | None:
        """(page label, page text) of the corpus page an image shows, or None."""
        ...


@dataclass(frozen=True, slots=True)
class Derived:
    text: str
    """The plain answer: every part's text, unknown images as `[illisible]`."""
    content: schema.Content
    """What schema instances are filled from: recognised text only, and whether some
    image was not recognised."""
    source: str
    """pdf, image, text, mixed or none."""
    pages: list[str] = field(default_factory=list)
    """Corpus page labels recognised in images, "?" for each unknown image."""


_SPACES = re.compile(r"[ \t\u00a0]+")


def normalise_text(text: str) -> str:
    """Per line: runs of spaces collapsed, trailing spaces removed; lines kept."""
    return "\n".join(_SPACES.sub(" ", line).rstrip() for line in text.splitlines())


def derive(request: GenerateRequest, reader: ContentReader) -> Derived:
    parts = request.user_parts()
    blobs = [p for p in parts if isinstance(p, BlobPart)]
    readable = [
        b
        for b in blobs
        if is_pdf(b.mime_type) or is_image(b.mime_type) or b.mime_type.startswith("text/")
    ]
    if not readable:
        texts = [p.text for p in parts if isinstance(p, TextPart)]
        longest = max(texts, key=len, default="")
        text = normalise_text(longest)
        return Derived(text, schema.Content(text), "text" if texts else "none")
    shown: list[str] = []
    known: list[str] = []
    kinds: set[str] = set()
    pages: list[str] = []
    illegible = False
    for blob in readable:
        if is_pdf(blob.mime_type):
            kinds.add("pdf")
            text = reader.pdf_text(blob.data)
        elif is_image(blob.mime_type):
            kinds.add("image")
            found = reader.recognise(blob.data)
            if found is None:
                illegible = True
                pages.append("?")
                shown.append(ILLEGIBLE_TEXT)
                continue
            pages.append(found[0])
            text = found[1]
        else:
            kinds.add("text")
            text = normalise_text(blob.data.decode("utf-8", errors="replace"))
        shown.append(text)
        known.append(text)
    source = kinds.pop() if len(kinds) == 1 else "mixed"
    return Derived("\n\n".join(shown), schema.Content("\n\n".join(known), illegible), source, pages)


def answer_text(request: GenerateRequest, derived: Derived) -> str:
    """The model's text: JSON when the request asks for it, else the derived text."""
    raw_schema = request.schema_object
    if raw_schema is not None:
        node = schema.parse_schema(raw_schema)
        return json.dumps(schema.instance(node, derived.content), ensure_ascii=False)
    if request.wants_json:
        return json.dumps(derived.text, ensure_ascii=False)
    return derived.text


def spoil_json(text: str) -> str:
    """The `bad_json` fault: the answer cut in the middle, never valid JSON."""
    return text[: len(text) // 2] + "…"
