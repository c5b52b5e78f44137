"""What the simulator reads in blobs, with pymupdf: PDF pages and text, image pixels.

Not thread-safe (pymupdf is not): the server runs all of it on one worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pymupdf

from gemini_simulator.tokens import header_image_size


class MediaError(ValueError):
    """The bytes are not a readable PDF or image."""


@dataclass(frozen=True, slots=True)
class GrayImage:
    width: int
    height: int
    samples: bytes
    """One byte per pixel, rows top to bottom."""


def open_pdf(data: bytes) -> Any:
    try:
        doc = pymupdf.open(stream=data, filetype="pdf")
    except Exception as exc:
        raise MediaError(f"not a readable PDF: {exc}") from exc
    if doc.page_count == 0:
        doc.close()
        raise MediaError("the PDF has no pages")
    return doc


def page_lines(page: Any) -> list[str]:
    """A page's text layer: lines kept, trailing spaces and trailing blank lines dropped."""
    lines = [line.rstrip() for line in str(page.get_text()).split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    return lines


def pdf_page_count(data: bytes) -> int:
    doc = open_pdf(data)
    try:
        return int(doc.page_count)
    finally:
        doc.close()


def pdf_pages(data: bytes) -> list[str]:
    """The text layer of each page (its lines joined by newlines), in page order."""
    doc = open_pdf(data)
    try:
        return ["\n".join(page_lines(page)) for page in doc]
    finally:
        doc.close()


def _pixmap(data: bytes) -> Any:
    try:
        return pymupdf.Pixmap(data)
    except Exception as exc:
        raise MediaError(f"not a readable image: {exc}") from exc


def to_gray(pix: Any) -> Any:
    if pix.alpha:
        pix = pymupdf.Pixmap(pix, 0)
    if pix.n != 1:
        pix = pymupdf.Pixmap(pymupdf.csGRAY, pix)
    return pix


def decode_gray(data: bytes) -> GrayImage:
    pix = to_gray(_pixmap(data))
    return GrayImage(int(pix.width), int(pix.height), bytes(pix.samples))


def image_size(data: bytes) -> tuple[int, int]:
    size = header_image_size(data)
    if size is not None:
        return size
    pix = _pixmap(data)
    return int(pix.width), int(pix.height)


def render_gray(page: Any, scale: float) -> Any:
    """The pipeline's renderer: grayscale, no alpha, uniform scale."""
    return page.get_pixmap(
        matrix=pymupdf.Matrix(scale, scale), colorspace=pymupdf.csGRAY, alpha=False
    )


def scaled_samples(pix: Any, width: int, height: int) -> bytes:
    """`pix` resampled to width × height, gray samples."""
    if (pix.width, pix.height) == (width, height):
        return bytes(pix.samples)
    return bytes(to_gray(pymupdf.Pixmap(pix, width, height, None)).samples)


def gray_pixmap(image: GrayImage) -> Any:
    return pymupdf.Pixmap(pymupdf.csGRAY, image.width, image.height, image.samples, 0)


class PymupdfInspector:
    """`tokens.MediaInspector` on pymupdf."""

    def pdf_page_count(self, data: bytes) -> int:
        return pdf_page_count(data)

    def image_size(self, data: bytes) -> tuple[int, int]:
        return image_size(data)
