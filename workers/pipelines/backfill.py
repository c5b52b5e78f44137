"""What a row completed before this release should hold, derived from what it holds,
without calling Gemini (`ocr-pool backfill`). Pure.

- an index done by the replaced system: its text is read back (`parse_index_text`);
  `file_content_json` comes from the boosted text when there is one (as that system's
  own sanitizer did), else from the raw text boosted by the rules, which also gives
  `boosted_file_content`;
- an index done by an earlier ocr-pool (a JSON document in `file_content`): rewritten
  as the production text, then as above;
- an acte: `file_content_json` lists its pages and what its boosted text flags as
  inconsistent; a missing `boosted_file_content` needs Gemini and is left alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from workers.boost import boost_index
from workers.pipelines.acte import inconsistencies
from workers.pipelines.index_text import ILLEGIBLE_LINE, parse_index_text, render_index_text
from workers.pipelines.pages import split_pages
from workers.pipelines.schema import (
    ActeDocument,
    IndexDocument,
    IndexPageResult,
    Inscription,
    PageMetadata,
    Party,
)

PIPELINE = "backfill"


@dataclass(frozen=True, slots=True)
class Derived:
    file_content_json: dict[str, Any]
    boosted_file_content: str | None = None
    """To write only where the column is empty."""
    file_content: str | None = None
    """A replacement text, only for an earlier ocr-pool's JSON (never the production format)."""


def _earlier_ocr_pool_pages(text: str) -> list[IndexPageResult] | None:
    """The pages of an earlier ocr-pool index result (`{"pipeline", "pages": [{"page",
    "lignes": [...]}]}`), or None if `text` is not one."""
    if not text.lstrip().startswith("{"):
        return None
    try:
        document = json.loads(text)
    except ValueError:
        return None
    pages = document.get("pages") if isinstance(document, dict) else None
    if not isinstance(pages, list) or not all(
        isinstance(p, dict) and isinstance(p.get("lignes"), list) for p in pages
    ):
        return None
    result: list[IndexPageResult] = []
    for position, page in enumerate(pages, start=1):
        rows = []
        for line in page["lignes"]:
            names = [n.strip() for n in str(line.get("parties") or "").split(";") if n.strip()]
            rows.append(
                Inscription(
                    acte_publication_date=line.get("date"),
                    acte_publication_number=line.get("numero_publication"),
                    acte_nature=line.get("nature") or None,
                    parties=[Party(name=n, role="") for n in names],
                    remarques=line.get("remarques"),
                    radiation_number=line.get("radiation"),
                )
            )
        result.append(
            IndexPageResult(
                pageNumber=int(page.get("page") or position),
                metadata=PageMetadata(circonscription=None, cadastre=None, lot_number=None),
                inscriptions=rows,
            )
        )
    return result


def _illegible(text: str) -> list[int]:
    return [n for n, body in split_pages(text).pages if ILLEGIBLE_LINE in body]


def _read_anything(pages: list[IndexPageResult]) -> bool:
    return any(
        p.inscriptions or any(v is not None for v in p.metadata.model_dump().values())
        for p in pages
    )


def derive_index(file_content: str, boosted_file_content: str | None) -> Derived | None:
    earlier = _earlier_ocr_pool_pages(file_content)
    rewritten = None
    if earlier is not None:
        raw = earlier
        rewritten = render_index_text(raw)
        boosted_file_content = None  # an earlier ocr-pool never boosted an index
        illegible: list[int] = []
    else:
        raw = parse_index_text(file_content)
        illegible = _illegible(file_content)
        if not _read_anything(raw):
            return None
    if boosted_file_content is not None:
        pages = parse_index_text(boosted_file_content)
        if _read_anything(pages):
            document = IndexDocument(
                pages=pages, page_count=len(pages), illegible_pages=illegible, pipeline=PIPELINE
            )
            return Derived(document.to_json(), file_content=rewritten)
    boosted = boost_index(raw)
    document = IndexDocument(
        pages=boosted.pages,
        page_count=len(raw),
        illegible_pages=illegible,
        boost=boosted.notes,
        pipeline=PIPELINE,
    )
    return Derived(
        document.to_json(),
        boosted_file_content=render_index_text(boosted.pages, illegible),
        file_content=rewritten,
    )


def derive_acte(file_content: str, boosted_file_content: str | None) -> Derived | None:
    if not file_content.strip():
        return None
    numbers = [n for n, _ in split_pages(file_content).pages] or [1]
    document = ActeDocument(
        page_count=len(numbers),
        pages=numbers,
        inconsistencies=inconsistencies(boosted_file_content or ""),
        pipeline=PIPELINE,
    )
    return Derived(document.to_json())


def derive(source: str, file_content: str, boosted_file_content: str | None) -> Derived | None:
    """What to write for a completed row, or None when nothing can be derived."""
    if source == "index":
        return derive_index(file_content, boosted_file_content)
    if source == "acte":
        return derive_acte(file_content, boosted_file_content)
    return None
