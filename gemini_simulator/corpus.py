"""The PDFs the simulator "knows", and which of their pages an image shows.

A simulator cannot read an image; instead, for an image of W × H pixels it renders each
corpus page of the same aspect ratio the way the pipeline does (grayscale, no alpha,
scale W / page width; for the nearest candidates also H / page height and the nearest
whole DPI) and looks for a render whose pixels equal the image's. Without an exact
match, the candidates are ranked by an ink-normalised difference of 64-pixel-wide
thumbnails, and the nearest few are compared again at 256 pixels wide: the closest is
taken if it is within `MATCH_THRESHOLD` (a re-encoded JPEG or a slightly rescaled render
of the page), else the image is unknown. Differences of a few gray levels (JPEG noise,
resampling) are ignored. Pages that differ only in a few characters are
indistinguishable at that size: an image meant to be unknown must show a page whose
layout differs.

Renders are cached as (digest, thumbnail) by (file, page, W, H, scale), answers by
image digest. Not thread-safe (pymupdf): the server calls it from its one media thread.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymupdf

from gemini_simulator.media import (
    GrayImage,
    decode_gray,
    gray_pixmap,
    page_lines,
    render_gray,
    scaled_samples,
)

THUMB_WIDTH = 64
FINE_WIDTH = 256
MATCH_THRESHOLD = 0.02
"""Largest 256-px distance still taken as the page (0 = same ink, 1 = no common ink)."""
NOISE_LEVELS = 12
"""Per-pixel differences up to this many gray levels are ignored."""
ASPECT_TOLERANCE = 0.03
NEAREST_TRIES = 3
"""Nearest candidates (by thumbnail) tried at the other scales and compared at 256 px."""


class CorpusError(ValueError):
    """A corpus path is missing or not a readable PDF."""


@dataclass(frozen=True, slots=True)
class CorpusPage:
    path: Path
    index: int
    """0-based."""
    width: float
    height: float
    """Points."""
    text: str
    """Text-layer lines (trailing spaces dropped), joined by newlines."""

    @property
    def label(self) -> str:
        return f"{self.path.name}#{self.index + 1}"


@dataclass(frozen=True, slots=True)
class PageMatch:
    page: CorpusPage
    exact: bool
    distance: float


@dataclass(frozen=True, slots=True)
class _Render:
    digest: bytes | None
    """sha256 of the samples when the render is exactly W × H."""
    thumb: bytes


def ink_distance(a: bytes, b: bytes, noise: int = NOISE_LEVELS) -> float:
    """Σ (|a − b| − noise)⁺ / Σ (ink − noise)⁺, ink = 255 − the darker of the two pixels:
    0 for the same ink (up to noise), 1 for ink in disjoint places."""
    if len(a) != len(b):
        raise ValueError(f"samples differ in size: {len(a)} and {len(b)} (one is shorter)")
    diff = ink = 0
    for x, y in zip(a, b, strict=True):
        if x < y:
            d, k = y - x, 255 - x
        else:
            d, k = x - y, 255 - y
        if d > noise:
            diff += d - noise
        if k > noise:
            ink += k - noise
    if ink == 0:
        return 0.0 if diff == 0 else 1.0
    return diff / ink


def _pdf_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.suffix.lower() == ".pdf" and p.is_file())
    if path.is_file():
        return [path]
    raise CorpusError(f"corpus path not found: {path}")


class Corpus:
    def __init__(self, max_renders: int = 2048, max_answers: int = 4096) -> None:
        self._pages: list[CorpusPage] = []
        self._known: set[tuple[Path, int]] = set()
        self._docs: dict[Path, Any] = {}
        self._renders: OrderedDict[tuple[Path, int, int, int, float], _Render] = OrderedDict()
        self._answers: OrderedDict[bytes, PageMatch | None] = OrderedDict()
        self._fine_thumbs: OrderedDict[tuple[Path, int, int, int], bytes] = OrderedDict()
        self.max_renders = max_renders
        self.max_answers = max_answers

    @property
    def pages(self) -> tuple[CorpusPage, ...]:
        return tuple(self._pages)

    def add(self, paths: Iterable[Path]) -> int:
        """Add PDF files and every PDF under directories; pages already known are skipped.
        Returns how many pages were added. Nothing is added if any path is bad."""
        files = [f.resolve() for p in paths for f in _pdf_files(Path(p))]
        new: list[CorpusPage] = []
        for file in files:
            try:
                doc: Any = pymupdf.open(file)
            except Exception as exc:
                raise CorpusError(f"corpus file {file} is not a readable PDF: {exc}") from exc
            try:
                for page in doc:
                    if (file, page.number) in self._known:
                        continue
                    rect = page.rect
                    new.append(
                        CorpusPage(
                            file,
                            int(page.number),
                            float(rect.width),
                            float(rect.height),
                            "\n".join(page_lines(page)),
                        )
                    )
            finally:
                doc.close()
        for page in new:
            if (page.path, page.index) not in self._known:
                self._known.add((page.path, page.index))
                self._pages.append(page)
        self._answers.clear()  # an unknown image may be known now
        return len(new)

    def close(self) -> None:
        for doc in self._docs.values():
            doc.close()
        self._docs.clear()

    def _doc(self, path: Path) -> Any:
        doc = self._docs.get(path)
        if doc is None:
            doc = self._docs[path] = pymupdf.open(path)
        return doc

    def _render(self, page: CorpusPage, scale: float, width: int, height: int) -> _Render:
        key = (page.path, page.index, width, height, round(scale, 9))
        cached = self._renders.get(key)
        if cached is not None:
            self._renders.move_to_end(key)
            return cached
        pix = render_gray(self._doc(page.path)[page.index], scale)
        exact = (pix.width, pix.height) == (width, height)
        thumb_w, thumb_h = _thumb_size(THUMB_WIDTH, width, height)
        render = _Render(
            hashlib.sha256(pix.samples).digest() if exact else None,
            scaled_samples(pix, thumb_w, thumb_h),
        )
        self._renders[key] = render
        if len(self._renders) > self.max_renders:
            self._renders.popitem(last=False)
        return render

    def _fine(self, page: CorpusPage, width: int, height: int) -> bytes:
        """The page at scale W / page width, resampled FINE_WIDTH px wide (small LRU)."""
        key = (page.path, page.index, width, height)
        cached = self._fine_thumbs.get(key)
        if cached is not None:
            self._fine_thumbs.move_to_end(key)
            return cached
        pix = render_gray(self._doc(page.path)[page.index], width / page.width)
        fine = scaled_samples(pix, *_thumb_size(FINE_WIDTH, width, height))
        self._fine_thumbs[key] = fine
        if len(self._fine_thumbs) > 64:
            self._fine_thumbs.popitem(last=False)
        return fine

    def recognise(self, data: bytes) -> PageMatch | None:
        """The corpus page `data` (a PNG/JPEG…) shows, or None. MediaError if unreadable."""
        key = hashlib.sha256(data).digest()
        if key in self._answers:
            self._answers.move_to_end(key)
            return self._answers[key]
        match = self.match(decode_gray(data))
        self._answers[key] = match
        if len(self._answers) > self.max_answers:
            self._answers.popitem(last=False)
        return match

    def match(self, image: GrayImage) -> PageMatch | None:
        width, height = image.width, image.height
        digest = hashlib.sha256(image.samples).digest()
        pix = gray_pixmap(image)
        thumb = scaled_samples(pix, *_thumb_size(THUMB_WIDTH, width, height))
        ranked: list[tuple[float, int, CorpusPage]] = []
        for n, page in enumerate(self._pages):
            expected_height = page.height * width / page.width
            if abs(expected_height - height) > max(2.0, ASPECT_TOLERANCE * height):
                continue
            render = self._render(page, width / page.width, width, height)
            if render.digest == digest:
                return PageMatch(page, exact=True, distance=0.0)
            ranked.append((ink_distance(thumb, render.thumb), n, page))
        ranked.sort(key=lambda item: (item[0], item[1]))
        nearest = [page for _, _, page in ranked[:NEAREST_TRIES]]
        for page in nearest:
            for scale in _other_scales(page, width, height):
                if self._render(page, scale, width, height).digest == digest:
                    return PageMatch(page, exact=True, distance=0.0)
        if not nearest:
            return None
        fine = scaled_samples(pix, *_thumb_size(FINE_WIDTH, width, height))
        distance, page = min(
            ((ink_distance(fine, self._fine(p, width, height)), p) for p in nearest),
            key=lambda item: item[0],
        )
        return (
            PageMatch(page, exact=False, distance=distance) if distance <= MATCH_THRESHOLD else None
        )


def _thumb_size(thumb_width: int, width: int, height: int) -> tuple[int, int]:
    thumb_w = min(thumb_width, width)
    return thumb_w, max(1, round(thumb_w * height / width))


def _other_scales(page: CorpusPage, width: int, height: int) -> list[float]:
    """Besides W / page width: H / page height and the nearest whole DPI."""
    first = width / page.width
    scales: list[float] = []
    for scale in (height / page.height, round(72 * first) / 72):
        if scale > 0 and all(abs(scale - s) > 1e-9 for s in (first, *scales)):
            scales.append(scale)
    return scales
