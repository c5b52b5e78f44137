"""Input tokens of a Gemini request, estimated before it is sent, from what is sent.

Deterministic and a little generous (the window is charged with the estimate until
`reconcile` replaces it by the count the API returns). Rates follow Gemini 2.x's
documented accounting: an image with both sides <= 384 px is 258 tokens, a larger one
is cut into 768 x 768 tiles of 258 tokens each; a PDF page is 258 tokens; text is
about 4 characters a token (3 here: French has accents and short words).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TokenRates:
    small_image_side: int = 384
    tile_side: int = 768
    tokens_per_tile: int = 258
    tokens_per_pdf_page: int = 258
    chars_per_token: float = 3.0
    overhead: int = 8
    """Per request: role markers and the like."""


GEMINI_2 = TokenRates()


def image_tokens(width: int, height: int, rates: TokenRates = GEMINI_2) -> int:
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive (got {width} x {height})")
    if width <= rates.small_image_side and height <= rates.small_image_side:
        return rates.tokens_per_tile
    tiles = math.ceil(width / rates.tile_side) * math.ceil(height / rates.tile_side)
    return tiles * rates.tokens_per_tile


def text_tokens(text: str, rates: TokenRates = GEMINI_2) -> int:
    return math.ceil(len(text) / rates.chars_per_token)


def estimate_input_tokens(
    *,
    texts: Iterable[str] = (),
    images: Iterable[tuple[int, int]] = (),
    pdf_pages: int = 0,
    rates: TokenRates = GEMINI_2,
) -> int:
    """Tokens of one request made of prompt texts (system instruction, prompt, the JSON
    of a response schema), images given as (width, height) in pixels, and PDF pages."""
    if pdf_pages < 0:
        raise ValueError(f"pdf pages must not be negative (got {pdf_pages})")
    return (
        rates.overhead
        + sum(text_tokens(t, rates) for t in texts)
        + sum(image_tokens(w, h, rates) for w, h in images)
        + pdf_pages * rates.tokens_per_pdf_page
    )


@dataclass(slots=True)
class EstimateStats:
    """How far estimates were from the API's counts, over reconciled calls."""

    calls: int = 0
    estimated: int = 0
    actual: int = 0
    abs_error: int = 0

    def add(self, estimated: int, actual: int) -> None:
        self.calls += 1
        self.estimated += estimated
        self.actual += actual
        self.abs_error += abs(actual - estimated)

    @property
    def mean_abs_error_ratio(self) -> float:
        """Sum of |actual - estimate| over the sum of actual tokens (0.05 = 5 %)."""
        return self.abs_error / self.actual if self.actual else 0.0

    @property
    def bias_ratio(self) -> float:
        """(estimated - actual) / actual: positive when estimates run high."""
        return (self.estimated - self.actual) / self.actual if self.actual else 0.0
