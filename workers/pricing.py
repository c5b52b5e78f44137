"""What a Gemini request costs, from its token counts and a price table. Pure.

Prices are USD per million tokens: input (prompt), output (the answer) and thinking
(billed as output by Google; a separate column so a table can say otherwise). The
defaults are Google's published paid-tier prices for prompts up to 200k tokens (text,
image and PDF input), as listed on the Gemini API pricing page on `PRICES_AS_OF`;
`GEMINI_PRICES` overrides or adds models (`model=input:output[:thinking],...`).

A model is priced by the longest table entry its name starts with, so dated or preview
names (`gemini-2.5-flash-preview-09-2025`) take their family's price and
`gemini-2.5-flash-lite` never takes `gemini-2.5-flash`'s. A model the table does not
know has no price: its cost is unknown (None), never silently zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

PRICES_AS_OF = "2026-10-07"
MILLION = 1_000_000


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float
    thinking: float

    def cost(self, input_tokens: int, output_tokens: int, thinking_tokens: int) -> float:
        return (
            input_tokens * self.input
            + output_tokens * self.output
            + thinking_tokens * self.thinking
        ) / MILLION


def _price(input: float, output: float) -> Price:
    return Price(input, output, output)


DEFAULT_PRICES: Mapping[str, Price] = MappingProxyType(
    {
        "gemini-2.0-flash": _price(0.10, 0.40),
        "gemini-2.0-flash-lite": _price(0.075, 0.30),
        "gemini-2.5-flash": _price(0.30, 2.50),
        "gemini-2.5-flash-lite": _price(0.10, 0.40),
        "gemini-2.5-pro": _price(1.25, 10.00),
        "gemini-3.1-pro-preview": _price(2.00, 12.00),
        "gemini-3.5-flash": _price(1.50, 9.00),
        "gemini-3.5-flash-lite": _price(0.30, 2.50),
        "gemini-3.8-flash": _price(0.75, 3.75),
    }
)


class PriceError(ValueError):
    """A `GEMINI_PRICES` item is malformed (the message names it)."""


def parse_prices(text: str) -> dict[str, Price]:
    """`model=input:output[:thinking],...` → prices (thinking defaults to output)."""
    prices: dict[str, Price] = {}
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        model, sep, values = item.partition("=")
        model = model.strip().removeprefix("models/").lower()
        parts = values.split(":")
        if not sep or not model or len(parts) not in (2, 3):
            raise PriceError(
                f"price item {item!r} must look like model=input:output[:thinking] "
                "(USD per million tokens)"
            )
        try:
            numbers = [float(p) for p in parts]
        except ValueError:
            raise PriceError(f"price item {item!r} has a value that is not a number") from None
        if any(n < 0 or n != n for n in numbers):
            raise PriceError(f"price item {item!r} has a negative or NaN price")
        prices[model] = Price(numbers[0], numbers[1], numbers[2 if len(numbers) == 3 else 1])
    return prices


@dataclass(frozen=True, slots=True)
class PriceTable:
    prices: Mapping[str, Price]

    @classmethod
    def from_setting(cls, text: str = "") -> PriceTable:
        return cls(MappingProxyType({**DEFAULT_PRICES, **parse_prices(text)}))

    def price(self, model: str) -> Price | None:
        name = model.removeprefix("models/").lower()
        known = [key for key in self.prices if name.startswith(key)]
        return self.prices[max(known, key=len)] if known else None

    def cost(
        self, model: str, input_tokens: int, output_tokens: int, thinking_tokens: int
    ) -> float | None:
        price = self.price(model)
        if price is None:
            return None
        return price.cost(input_tokens, output_tokens, thinking_tokens)
