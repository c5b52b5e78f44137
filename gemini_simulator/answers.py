"""What the simulated model answers: derived from what the request carries.

- PDF (inline or uploaded): its text layer, each page headed by a line `--- Page N ---`
  (N 1-based within that PDF), pages separated by a blank line;
- image: the text layer of the corpus page it shows, or `[illisible]`;
- text only: the longest user text part, whitespace-normalised per line;
- with a response schema: a conforming JSON instance filled from those lines
  (`schema.instance`; no page markers there); JSON asked without a schema: the text as
  a JSON string.

A continuation part (`continuation.MARKER`) is not content: it is set aside here, and
the server answers only what follows the partial text it carries. A user text part
(other than the content itself) saying `lignes X à Y` limits a schema instance's rows
to X..Y.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from gemini_simulator import schema
from gemini_simulator.continuation import partial_of
from gemini_simulator.tokens import is_image, is_pdf
from gemini_simulator.wire import BlobPart, GenerateRequest, Part, TextPart

ILLEGIBLE_TEXT = "[illisible]"
_WINDOW = re.compile(r"lignes\s+(\d+)\s+à\s+(\d+)", re.IGNORECASE)


class ContentReader(Protocol):
    def pdf_pages(self, data: bytes) -> list[str]:
        """Each page's text-layer lines joined by newlines."""
        ...

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


def page_marker(number: int) -> str:
    return f"--- Page {number} ---"


def mark_pages(pages: list[str]) -> str:
    """Each page headed by `--- Page N ---` (1-based), pages separated by a blank line."""
    return "\n\n".join(
        f"{page_marker(n)}\n{text}" if text else page_marker(n)
        for n, text in enumerate(pages, start=1)
    )


def line_window(texts: Iterable[str]) -> tuple[int, int] | None:
    """(X, Y) of the first `lignes X à Y` in `texts` (case-insensitive); else None."""
    for text in texts:
        found = _WINDOW.search(text)
        if found is not None:
            return int(found.group(1)), int(found.group(2))
    return None


def _is_continuation(part: Part) -> bool:
    return isinstance(part, TextPart) and partial_of(part.text) is not None


def continued_from(request: GenerateRequest) -> str | None:
    """The partial answer of the request's last continuation part; None if it has none."""
    partials = [partial_of(p.text) for p in request.user_parts() if isinstance(p, TextPart)]
    found = [partial for partial in partials if partial is not None]
    return found[-1] if found else None


def derive(request: GenerateRequest, reader: ContentReader) -> Derived:
    parts = [p for p in request.user_parts() if not _is_continuation(p)]
    texts = [p.text for p in parts if isinstance(p, TextPart)]
    blobs = [p for p in parts if isinstance(p, BlobPart)]
    readable = [
        b
        for b in blobs
        if is_pdf(b.mime_type) or is_image(b.mime_type) or b.mime_type.startswith("text/")
    ]
    if not readable:
        if not texts:
            return Derived("", schema.Content(""), "none")
        chosen = max(range(len(texts)), key=lambda i: len(texts[i]))
        text = normalise_text(texts[chosen])
        window = line_window(texts[:chosen] + texts[chosen + 1 :])
        return Derived(text, schema.Content(text, window=window), "text")
    shown: list[str] = []
    known: list[str] = []
    kinds: set[str] = set()
    pages: list[str] = []
    illegible = False
    for blob in readable:
        if is_pdf(blob.mime_type):
            kinds.add("pdf")
            pdf_pages = reader.pdf_pages(blob.data)
            shown.append(mark_pages(pdf_pages))
            known.append("\n\n".join(pdf_pages))
            continue
        if is_image(blob.mime_type):
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
    content = schema.Content("\n\n".join(known), illegible, line_window(texts))
    return Derived("\n\n".join(shown), content, source, pages)


def answer_text(request: GenerateRequest, derived: Derived) -> str:
    """The model's whole text: JSON when the request asks for it, else the derived text
    (before any continuation or output cap)."""
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
