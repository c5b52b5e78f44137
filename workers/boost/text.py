"""Text folding shared by the boost's recognisers.

Every comparison the boost makes (natures, party names, qualités, remarques) is done on a
*folded* form: lower case, accents removed, typographic apostrophes and ligatures
unified. Values themselves are never rewritten with these helpers; they only build
comparison keys.
"""

from __future__ import annotations

import re
import unicodedata

_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "`": "'", "´": "'"})
_LIGATURES = {"œ": "oe", "æ": "ae", "ß": "ss"}
_NON_WORD = re.compile(r"[^0-9a-z]+")
_DIGIT = re.compile(r"\d")
_INITIALS = re.compile(r"\b[a-z](?:[.\-]+[a-z]\b)+\.?")
_NON_LETTER = re.compile(r"[^a-z]")


def fold(text: str) -> str:
    """Lower case without accents; apostrophes unified, ligatures spelled out."""
    lowered = text.casefold().translate(_APOSTROPHES)
    for ligature, spelled in _LIGATURES.items():
        lowered = lowered.replace(ligature, spelled)
    decomposed = unicodedata.normalize("NFKD", lowered)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def glue_initials(folded: str) -> str:
    """Write dotted or hyphenated initials as one word: "h.-q." → "hq", "c.n.r." → "cnr".

    Only letters joined by "." or "-" are glued, so the "d" of "p.-v. d'abornement" stays
    apart.
    """
    return _INITIALS.sub(lambda m: _NON_LETTER.sub("", m.group()) + " ", folded)


def words(text: str) -> list[str]:
    """The folded words of `text`: alphanumeric runs, initials glued together."""
    return [t for t in _NON_WORD.split(glue_initials(fold(text))) if t]


def word_string(text: str) -> str:
    """`words(text)` joined by single spaces, a form regexes with `\\b` can search."""
    return " ".join(words(text))


def digits_only(text: str) -> str:
    return "".join(_DIGIT.findall(text))


def number_pattern(number_digits: str) -> re.Pattern[str]:
    """A pattern finding `number_digits` written whole, with or without group separators.

    "3826865" matches "3 826 865", "3-826-865" or "T 3826865", but not inside a longer
    number ("13 826 8651") nor as the start of an amount ("3 826 865,00 $").
    """
    separated = r"[\s.\-]?".join(re.escape(d) for d in number_digits)
    return re.compile(rf"(?<!\d)(?<!\d[\s.\-]){separated}(?![\s.\-]?\d)(?!,\d)(?!\s*\$)")
