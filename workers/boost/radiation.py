"""The cross-line rule: a line that cancels an hypothèque of the same document is a
Quittance.

Line L becomes « Quittance » when all of these hold:

1. L is eligible: its nature is open (missing, generic, garbled), or it reads « Vente »
   with no Vendeur/Acheteur qualité and the link below is in L's own radiation column.
   A line read « Hypothèque » (or anything else) is never eligible.
2. Another line H of the document (any page) is an hypothèque: its nature, after the
   line rules, is « Hypothèque » or « Hypothèque légale », and its publication number
   has at least `MIN_DIGITS` digits.
3. L and H are linked, comparing digits only (spaces, dots and dashes ignored, never part
   of a longer number nor followed by "$"): H's publication number is written in L's
   radiation column or in L's remarques, or L's publication number is written in H's
   radiation column (on modern pages the hypothèque's line carries the number of the
   deed that cancelled it).
4. L is later than H: by date when both are complete (AAAA-MM-JJ) and differ, otherwise
   by publication number. This is what keeps the hypothèque itself from being taken
   for the quittance when its radiation column holds the quittance's number: the link
   is symmetric, the chronology is not.
5. The same creditor is on both lines: the same bank (Desjardins caisses count as one),
   or a party of L named exactly (folded) as a Créancier of H.

The first H in document order that satisfies 2–5 is the one cited in the note.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from workers.boost.entities import EntityKind
from workers.boost.evidence import SALE_ROLES, LineEvidence, Role, roles_of
from workers.boost.natures import (
    HYPOTHEQUE,
    HYPOTHEQUE_LEGALE,
    QUITTANCE,
    VENTE,
    NatureReading,
    describe,
)
from workers.boost.proposal import Proposal, sentence
from workers.boost.text import digits_only, number_pattern, word_string
from workers.pipelines.schema import Inscription

MIN_DIGITS = 4
"""Shorter numbers (lot numbers, volumes) would link lines by chance."""

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_HYPOTHEQUES = frozenset({HYPOTHEQUE, HYPOTHEQUE_LEGALE})


@dataclass(frozen=True, slots=True)
class Line:
    """One inscription of the document, with what the line rules made of it."""

    page: int
    ligne: int
    inscription: Inscription
    reading: NatureReading
    evidence: LineEvidence
    local: Proposal | None

    @property
    def nature_after_line_rules(self) -> str | None:
        if self.local is not None:
            return self.local.nature
        return self.reading.canonical

    @property
    def where(self) -> str:
        number = self.inscription.acte_publication_number
        return f"« {number} » (page {self.page}, ligne {self.ligne})"


def radiation_proposals(lines: Sequence[Line]) -> dict[int, Proposal]:
    """Index in `lines` → Quittance proposal, for the lines that cancel an hypothèque."""
    hypotheques = [
        h
        for h in lines
        if h.nature_after_line_rules in _HYPOTHEQUES
        and len(digits_only(h.inscription.acte_publication_number or "")) >= MIN_DIGITS
    ]
    proposals: dict[int, Proposal] = {}
    for index, line in enumerate(lines):
        for h in hypotheques:
            if h is line:
                continue
            proposal = _quittance(line, h)
            if proposal is not None:
                proposals[index] = proposal
                break
    return proposals


def _quittance(line: Line, h: Line) -> Proposal | None:
    reading = line.reading
    vente = reading.names(VENTE) and not (line.evidence.roles & SALE_ROLES)
    if not (reading.is_open or vente):
        return None
    link = _link(line.inscription, h.inscription)
    if link is None or (vente and link != _IN_RADIATION_COLUMN):
        return None
    if not _is_later(line.inscription, h.inscription):
        return None
    creditor = _same_creditor(line, h)
    if creditor is None:
        return None
    return Proposal(
        QUITTANCE,
        "radiation",
        sentence(
            describe(reading),
            link.format(h=h.where),
            f"{creditor} est aussi sur cette hypothèque, qui est antérieure : l'inscription "
            "est la quittance qui la radie",
        ),
    )


_IN_RADIATION_COLUMN = "sa colonne des radiations renvoie à l'hypothèque {h}"
_IN_REMARKS = "ses remarques renvoient à l'hypothèque {h}"
_FROM_HYPOTHEQUE = "la colonne des radiations de l'hypothèque {h} renvoie à cette inscription"


def _link(line: Inscription, h: Inscription) -> str | None:
    h_number = digits_only(h.acte_publication_number or "")
    line_number = digits_only(line.acte_publication_number or "")
    if h_number == line_number:
        return None
    h_pattern = number_pattern(h_number)
    if line.radiation_number and h_pattern.search(line.radiation_number):
        return _IN_RADIATION_COLUMN
    if line.remarques and h_pattern.search(line.remarques):
        return _IN_REMARKS
    if (
        len(line_number) >= MIN_DIGITS
        and h.radiation_number
        and number_pattern(line_number).search(h.radiation_number)
    ):
        return _FROM_HYPOTHEQUE
    return None


def _is_later(line: Inscription, h: Inscription) -> bool:
    line_date, h_date = _iso(line.acte_publication_date), _iso(h.acte_publication_date)
    if line_date and h_date and line_date != h_date:
        return line_date > h_date
    line_number = digits_only(line.acte_publication_number or "")
    h_number = digits_only(h.acte_publication_number or "")
    if line_number and h_number:
        return int(line_number) > int(h_number)
    return False


def _iso(date: str | None) -> str | None:
    if date is None:
        return None
    stripped = date.strip()
    return stripped if _ISO_DATE.fullmatch(stripped) else None


def _same_creditor(line: Line, h: Line) -> str | None:
    """The creditor both lines name, as a person reads it, or None."""
    h_banks = {e.key: e.name for e in h.evidence.of_kind(EntityKind.BANK)}
    for bank in line.evidence.of_kind(EntityKind.BANK):
        if bank.key in h_banks:
            return f"« {bank.name} »"
    h_creditors = {
        word_string(p.name)
        for p in h.inscription.parties
        if Role.CREDITOR in roles_of(p.role) and word_string(p.name)
    }
    for party in line.inscription.parties:
        if word_string(party.name) in h_creditors:
            return f"le créancier « {party.name} »"
    return None
