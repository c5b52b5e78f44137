"""The index boost: correct and normalise the nature of every inscription of an index
document with domain rules, deterministically, without calling a model.

Policy. The nature read by OCR is the primary evidence. The boost changes `acte_nature`
only when

(a) the reading is a closed-list nature written another way: it becomes the list's
    spelling (`natures`: accents, case, punctuation, abbreviations, OCR confusions,
    near misses);
(b) the reading is open (missing, generic such as « Mutation », or garbled) and a rule
    gives a clear answer from the rest of the line (`index_rules`) or from the rest of
    the document (`radiation`);
(c) a quasi-certain pattern of several signals contradicts it: a network company, network
    words and no amount against « Vente »; a bank with créancier/débiteur qualités (or,
    on a page without qualités, an amount and a natural person) against « Vente »; a
    radiation reference to an earlier hypothèque of the same creditor.

A nature the list lacks but that names a real deed ("Modification de servitude",
"Rectification") is kept as read, and so is any nature when two rules disagree.
Party names, qualités, dates, publication and radiation numbers, remarques and page
metadata are kept exactly: only `acte_nature` may change, and every change produces
exactly one `BoostNote` whose French `reason` says why.

Precedence on one line: the radiation rule, then the line rules, then plain
normalisation. The boost is pure (no I/O, input not mutated) and idempotent: boosting
its own output changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from workers.boost.evidence import gather_evidence
from workers.boost.index_rules import decide_locally
from workers.boost.natures import Match, NatureReading, NatureStatus, read_nature
from workers.boost.proposal import Proposal, sentence
from workers.boost.radiation import Line, radiation_proposals
from workers.boost.text import fold
from workers.pipelines.schema import BoostNote, IndexPageResult

FIELD = "acte_nature"


@dataclass(frozen=True, slots=True)
class BoostResult:
    pages: list[IndexPageResult]
    """Copies of the input pages, natures corrected."""
    notes: list[BoostNote]
    """One per changed value, in document order."""


def boost_index(pages: Sequence[IndexPageResult]) -> BoostResult:
    """Boost the pages of one index document (see the module docstring)."""
    lines: list[Line] = []
    for page in pages:
        for position, inscription in enumerate(page.inscriptions):
            reading = read_nature(inscription.acte_nature)
            evidence = gather_evidence(inscription)
            local = decide_locally(reading, evidence)
            normal = _normalisation(reading) if local is None else None
            if normal is not None:
                # decided on the listed spelling, as a second pass would (idempotence)
                local = decide_locally(read_nature(normal.nature), evidence)
            lines.append(Line(page.pageNumber, position + 1, inscription, reading, evidence, local))
    by_radiation = radiation_proposals(lines)

    boosted = [page.model_copy(deep=True) for page in pages]
    notes: list[BoostNote] = []
    index = 0
    for page in boosted:
        for inscription in page.inscriptions:
            line = lines[index]
            proposal = by_radiation.get(index) or line.local or _normalisation(line.reading)
            index += 1
            if proposal is None or proposal.nature == inscription.acte_nature:
                continue
            notes.append(
                BoostNote(
                    page=line.page,
                    ligne=line.ligne,
                    field=FIELD,
                    before=inscription.acte_nature,
                    after=proposal.nature,
                    rule=proposal.rule,
                    reason=proposal.reason,
                )
            )
            inscription.acte_nature = proposal.nature
    return BoostResult(pages=boosted, notes=notes)


def _normalisation(reading: NatureReading) -> Proposal | None:
    """The closed-list spelling of a reading that names a listed nature another way."""
    if reading.status is not NatureStatus.CLOSED or reading.canonical is None:
        return None
    raw, canonical = reading.raw or "", reading.canonical
    if raw == canonical:
        return None
    if reading.match is Match.FUZZY:
        similarity = f"{reading.similarity:.2f}".replace(".", ",")
        why = (
            f"« {raw} » n'est pas dans la liste fermée des natures mais ressemble de très près "
            f"à « {canonical} » (similarité {similarity}, aucune autre nature aussi proche) : "
            "erreur de lecture probable"
        )
        return Proposal(canonical, "nature", sentence(why))
    if reading.match is Match.ALIAS and reading.alias_note:
        why = f"« {raw} » désigne « {canonical} » : {reading.alias_note}"
    elif reading.match is Match.ALIAS or not _same_letters(raw, canonical):
        why = f"« {raw} » est une abréviation ou une autre écriture de « {canonical} »"
    elif reading.uncertain:
        why = (
            f"« {raw} » est « {canonical} » accompagné d'une marque de doute de l'OCR ; "
            "la nature elle-même est lisible"
        )
    else:
        why = (
            f"« {raw} » est « {canonical} » écrit autrement (accents, majuscules, apostrophes, "
            "ponctuation ou espaces)"
        )
    return Proposal(
        canonical, "nature", sentence(why, "on retient l'orthographe de la liste fermée")
    )


def _same_letters(raw: str, canonical: str) -> bool:
    """Equal up to accents, case and everything that is not a letter or a digit,
    doubt markers excluded."""

    def letters(text: str) -> str:
        return "".join(c for c in fold(text.replace("[?]", "")) if c.isalnum())

    return letters(raw) == letters(canonical)
