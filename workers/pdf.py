"""Opening, validating and rendering PDFs with pymupdf.

Every pymupdf call runs in a worker thread (`anyio.to_thread.run_sync`): parsing and
rendering are CPU work and must not stall the event loop. Each public function opens
the document *inside* its thread and closes it before returning, because a pymupdf
`Document` must not be shared between threads. Opening costs a few milliseconds, so
`render_page_png` opens the file once per page: callers render page by page (one PNG
in memory at a time) and can run several renders in parallel, each with its own
`Document`.

What counts as a bad document (`DocumentError`, permanent):

- **not a PDF**: no `%PDF-` marker in the first 1024 bytes (the window the PDF spec
  and readers tolerate for leading junk), or pymupdf does not see a PDF;
- **corrupt**: pymupdf cannot open it (no readable object structure — even its repair
  pass found nothing), a page cannot be loaded, or a page has an empty or non-finite
  size;
- **truncated**: pymupdf had to repair the file *and* it has no `%%EOF` marker in its
  last 1024 bytes. pymupdf's repair pass rebuilds the cross-reference table by scanning
  the objects: a file cut in half still "opens" with every page listed, but the pages
  past the cut render blank. OCR-ing that would silently lose content, so a repaired
  file that also lacks its end marker is rejected. A repaired file that *does* end
  with `%%EOF` is accepted (`PdfInfo.repaired` is true): many scanners write slightly
  wrong xref offsets, and those files are complete;
- **encrypted**: opening needs a password (`needs_pass`). A file with only an owner
  password (empty user password, e.g. "no printing" restrictions) opens and renders
  normally, so it is accepted;
- **no pages** (a damaged file whose repair found no page counts as corrupt), or
  **more pages than `PdfLimits.max_pages`**.

Rendering: grayscale, no alpha, matrix `pymupdf.Matrix(s, s)` with `s = dpi / 72`, or
the largest lower `s` whose pixmap fits `PdfLimits.max_page_pixels` — a page is never
allocated above the budget, whatever its media box. The pixmap's size is
`(page.rect * Matrix(s, s)).irect`: MuPDF rounds the transformed box *outwards*, so a
612 x 792 pt page at 200 DPI is exactly 1700 x 2200 px, and 612.1 pt gives 1701 px
(not `round(1700.28)`). Anyone re-rendering pages to recognise them (the Gemini
simulator) must use the same call: `page.get_pixmap(matrix=pymupdf.Matrix(s, s),
colorspace=pymupdf.csGRAY, alpha=False).tobytes("png")`.

MuPDF prints its warnings about damaged files to stderr; `quiet_mupdf()` turns that
off process-wide (the pool calls it once; the messages never affect the decisions
above).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import anyio.to_thread

from workers.errors import DocumentError

if TYPE_CHECKING:
    import pymupdf

_MAGIC = b"%PDF-"
_EOF_MARKER = b"%%EOF"
_HEAD_WINDOW = 1024  # bytes searched for %PDF- at the start and %%EOF at the end


# What pymupdf raises on damaged input: its own FileDataError (a RuntimeError),
# ValueError, and the MuPDF binding's FzError* classes (plain Exceptions).
def _pymupdf_errors() -> tuple[type[Exception], ...]:
    import pymupdf

    return (RuntimeError, ValueError, pymupdf.mupdf.FzErrorBase)


@dataclass(frozen=True)
class PdfLimits:
    """Caps on what one document may cost.

    `max_page_pixels` bounds each rendered page (width * height): a page that would
    exceed it at `dpi` is rendered at the largest lower resolution that fits.
    """

    max_pages: int = 300
    dpi: int = 200
    max_page_pixels: int = 25_000_000

    def __post_init__(self) -> None:
        if self.max_pages < 1:
            raise ValueError(f"max_pages must be at least 1, not {self.max_pages}")
        if self.dpi < 1:
            raise ValueError(f"dpi must be at least 1, not {self.dpi}")
        if self.max_page_pixels < 1:
            raise ValueError(f"max_page_pixels must be at least 1, not {self.max_page_pixels}")


@dataclass(frozen=True)
class PdfInfo:
    page_count: int
    #: Had an encryption dictionary that opened without a password (owner password
    #: only). Files that need a password are rejected, never described.
    encrypted: bool
    #: At least one page has extractable (non-blank) text.
    has_text_layer: bool
    #: Each page's visible size in points (width, height), rotation applied.
    page_sizes: tuple[tuple[float, float], ...]
    #: pymupdf rebuilt a damaged cross-reference table to open it (see module doc).
    repaired: bool


@dataclass(frozen=True)
class RenderedPage:
    page_index: int
    png: bytes
    width: int
    height: int
    #: The resolution actually used: `PdfLimits.dpi`, or less for a page over the
    #: pixel budget.
    dpi: float


def warm_renderer() -> None:
    """Load pymupdf's renderer once (fonts, code pages) before the first real page."""
    import pymupdf  # here, not at import: a pool claims before it loads (~0.1 s)

    doc = pymupdf.open()
    page = doc.new_page(width=72, height=72)
    page.insert_text((10, 40), "ok")
    page.get_pixmap(matrix=pymupdf.Matrix(0.5, 0.5), colorspace=pymupdf.csGRAY, alpha=False)
    doc.close()


def quiet_mupdf() -> None:
    """Stop MuPDF printing warnings about damaged files on stderr (process-wide)."""
    import pymupdf

    pymupdf.TOOLS.mupdf_display_errors(False)
    pymupdf.TOOLS.mupdf_display_warnings(False)


# `label` names the document in error messages (the queue row's location, say,
# rather than the temporary file it was fetched to); default: the path.


async def inspect_pdf(path: Path, limits: PdfLimits, *, label: str | None = None) -> PdfInfo:
    """Check that `path` is a usable PDF and describe it; `DocumentError` if not."""
    return await anyio.to_thread.run_sync(_inspect, Path(path), limits, label or str(path))


async def render_page_png(
    path: Path, page_index: int, limits: PdfLimits, *, label: str | None = None
) -> RenderedPage:
    """Render page `page_index` (0-based) to a grayscale PNG within the pixel budget.

    `DocumentError` for a document `inspect_pdf` would reject at open time or a page
    MuPDF cannot render; `IndexError` for a page index outside the document.
    """
    return await anyio.to_thread.run_sync(
        _render, Path(path), page_index, limits, label or str(path)
    )


async def text_layer(path: Path, *, label: str | None = None) -> list[str]:
    """Each page's embedded text (for tests and diagnostics; scans usually have none)."""
    return await anyio.to_thread.run_sync(_text_layer, Path(path), label or str(path))


async def write_pages(
    source: Path, destination: Path, page_indexes: Sequence[int], *, label: str | None = None
) -> None:
    """Write the given pages (0-based, in that order) of `source` to a new PDF."""
    await anyio.to_thread.run_sync(
        _write_pages, Path(source), Path(destination), list(page_indexes), label or str(source)
    )


def render_scale(page_rect: pymupdf.Rect, dpi: float, max_pixels: int) -> float:
    """The zoom factor for rendering `page_rect` at `dpi` within `max_pixels`.

    `dpi / 72` when the pixmap fits; otherwise the largest lower factor whose pixmap
    (`(page_rect * Matrix(s, s)).irect`, the box MuPDF allocates) fits the budget.
    """
    scale = dpi / 72
    for _ in range(64):
        width, height = _pixmap_size(page_rect, scale)
        if width * height <= max_pixels:
            return scale
        # Area grows with scale squared; aim just under the budget, then let
        # MuPDF's outward rounding be checked again on the next turn.
        scale *= min(math.sqrt(max_pixels / (width * height)), 0.999)
    raise DocumentError(  # unreachable for any finite page size
        f"page of {page_rect.width:g} x {page_rect.height:g} pt cannot fit {max_pixels} pixels"
    )


def expected_pixmap_size(page_rect: pymupdf.Rect, scale: float) -> tuple[int, int]:
    """The pixmap MuPDF allocates for `page_rect` at zoom `scale` (width, height)."""
    return _pixmap_size(page_rect, scale)


def _pixmap_size(page_rect: pymupdf.Rect, scale: float) -> tuple[int, int]:
    import pymupdf

    box = (page_rect * pymupdf.Matrix(scale, scale)).irect
    return max(int(box.width), 1), max(int(box.height), 1)


def _read_edges(path: Path, name: str) -> tuple[int, bytes, bytes]:
    """File size, its first and its last `_HEAD_WINDOW` bytes."""
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            head = handle.read(_HEAD_WINDOW)
            handle.seek(max(size - _HEAD_WINDOW, 0))
            tail = handle.read(_HEAD_WINDOW)
    except FileNotFoundError:
        raise DocumentError(f"document {name} does not exist") from None
    except IsADirectoryError:
        raise DocumentError(f"document {name} is a directory, not a PDF") from None
    except OSError as exc:
        raise DocumentError(f"document {name} cannot be read: {exc.strerror}") from None
    return size, head, tail


def _open(path: Path, name: str) -> tuple[pymupdf.Document, bytes]:
    """Open a PDF after the cheap checks; the caller closes it. Returns (doc, tail)."""
    import pymupdf

    size, head, tail = _read_edges(path, name)
    if size == 0:
        raise DocumentError(f"document {name} is an empty file (0 bytes)")
    if _MAGIC not in head:
        raise DocumentError(
            f"document {name} is not a PDF (no %PDF- header in its first {_HEAD_WINDOW} bytes)"
        )
    try:
        doc = pymupdf.open(path, filetype="pdf")
    except pymupdf.EmptyFileError:
        raise DocumentError(f"document {name} is an empty file (0 bytes)") from None
    except _pymupdf_errors() as exc:
        raise DocumentError(
            f"document {name} is a corrupt PDF (pymupdf cannot open it{_detail(exc, path)})"
        ) from None
    if not doc.is_pdf:
        doc.close()
        raise DocumentError(f"document {name} is not a PDF (pymupdf reads it as another format)")
    if doc.needs_pass:
        doc.close()
        raise DocumentError(f"document {name} is an encrypted PDF (it needs a password to open)")
    return doc, tail


def _inspect(path: Path, limits: PdfLimits, name: str) -> PdfInfo:
    doc, tail = _open(path, name)
    try:
        count = doc.page_count
        repaired = bool(doc.is_repaired)
        if count == 0 and repaired:
            raise DocumentError(
                f"document {name} is a corrupt PDF (damaged beyond repair: no page survives)"
            )
        if count == 0:
            raise DocumentError(f"document {name} is a PDF with no pages")
        if count > limits.max_pages:
            raise DocumentError(
                f"document {name} has {count} pages, over the {limits.max_pages}-page cap"
            )
        if repaired and _EOF_MARKER not in tail:
            raise DocumentError(
                f"document {name} is a truncated PDF (damaged, and no %%EOF marker at its "
                "end: pages past the cut would be lost)"
            )
        sizes: list[tuple[float, float]] = []
        has_text = False
        for index in range(count):
            try:
                page = doc.load_page(index)
                rect = page.rect
                text = page.get_text("text") if not has_text else ""
            except _pymupdf_errors() as exc:
                raise DocumentError(
                    f"document {name} is a corrupt PDF (page {index + 1} cannot be loaded: "
                    f"{_one_line(exc)})"
                ) from None
            width, height = float(rect.width), float(rect.height)
            if not (math.isfinite(width) and math.isfinite(height)) or width <= 0 or height <= 0:
                raise DocumentError(
                    f"document {name} is a corrupt PDF (page {index + 1} has an empty "
                    f"or invalid size: {width:g} x {height:g} pt)"
                )
            sizes.append((width, height))
            has_text = has_text or bool(str(text).strip())
        encrypted = bool(doc.metadata and doc.metadata.get("encryption"))
        return PdfInfo(
            page_count=count,
            encrypted=encrypted,
            has_text_layer=has_text,
            page_sizes=tuple(sizes),
            repaired=repaired,
        )
    finally:
        doc.close()


def _render(path: Path, page_index: int, limits: PdfLimits, name: str) -> RenderedPage:
    import pymupdf

    doc, _ = _open(path, name)
    try:
        if not 0 <= page_index < doc.page_count:
            raise IndexError(
                f"page index {page_index} out of range: {name} has {doc.page_count} pages"
            )
        try:
            page = doc.load_page(page_index)
            scale = render_scale(page.rect, limits.dpi, limits.max_page_pixels)
            pix = page.get_pixmap(
                matrix=pymupdf.Matrix(scale, scale), colorspace=pymupdf.csGRAY, alpha=False
            )
            png = pix.tobytes("png")
        except _pymupdf_errors() as exc:
            raise DocumentError(
                f"document {name} is a corrupt PDF (page {page_index + 1} cannot be "
                f"rendered: {_one_line(exc)})"
            ) from None
        return RenderedPage(
            page_index=page_index,
            png=bytes(png),
            width=int(pix.width),
            height=int(pix.height),
            dpi=scale * 72,
        )
    finally:
        doc.close()


def _text_layer(path: Path, name: str) -> list[str]:
    doc, _ = _open(path, name)
    try:
        return [str(doc.load_page(i).get_text("text")) for i in range(doc.page_count)]
    finally:
        doc.close()


def _write_pages(source: Path, destination: Path, page_indexes: list[int], name: str) -> None:
    import pymupdf

    doc, _ = _open(source, name)
    try:
        for index in page_indexes:
            if not 0 <= index < doc.page_count:
                raise IndexError(
                    f"page index {index} out of range: {name} has {doc.page_count} pages"
                )
        out = pymupdf.open()
        try:
            for index in page_indexes:
                out.insert_pdf(doc, from_page=index, to_page=index)
            out.save(destination, garbage=3, deflate=True)
        finally:
            out.close()
    finally:
        doc.close()


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _detail(exc: BaseException, path: Path) -> str:
    """MuPDF's own words, unless they only repeat the (temporary) file name."""
    import pymupdf

    if isinstance(exc, pymupdf.FileDataError):
        return ""
    return ": " + _one_line(exc).replace(str(path), "<file>")
