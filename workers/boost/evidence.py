"""What one inscription says besides its nature: who the parties are, their qualités, and
the tell-tale words of its remarques. Only read, never written back."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from workers.boost.entities import Entity, EntityKind, is_natural_person, recognise
from workers.boost.text import fold, word_string
from workers.pipelines.schema import Inscription


class Role(Enum):
    CREDITOR = "créancier"
    DEBTOR = "débiteur"
    SELLER = "vendeur"
    BUYER = "acheteur"
    HEIR = "héritier ou légataire"
    DECEASED = "décédé"
    GRANTOR = "cédant"
    GRANTEE = "cessionnaire"


_ROLE_PATTERNS: dict[Role, re.Pattern[str]] = {
    Role.CREDITOR: re.compile(r"\b(?:creanc\w*|cr|creditor|mortgagee|preteur|preteuse)\b"),
    Role.DEBTOR: re.compile(r"\b(?:debit\w*|deb|debtor|mortgagor|emprunteu\w*)\b"),
    Role.SELLER: re.compile(r"\b(?:vend\w*|seller)\b"),
    Role.BUYER: re.compile(r"\b(?:achet\w*|acque\w*|acquisit\w*|purchaser|buyer)\b"),
    Role.HEIR: re.compile(r"\b(?:legataires?|heritiers?|heritieres?|ayants? droits?)\b"),
    Role.DECEASED: re.compile(r"\b(?:decedee?s?|defunte?s?|testat\w*)\b"),
    Role.GRANTOR: re.compile(r"\b(?:cedante?s?|grantor)\b"),
    Role.GRANTEE: re.compile(r"\b(?:cessionnaires?|grantee)\b"),
}

SALE_ROLES = frozenset({Role.SELLER, Role.BUYER})
LOAN_ROLES = frozenset({Role.CREDITOR, Role.DEBTOR})
GRANT_ROLES = frozenset({Role.GRANTOR, Role.GRANTEE})
"""Cédant / cessionnaire: a right ceded (a servitude to a network), not a thing sold."""


def roles_of(role: str) -> frozenset[Role]:
    """The qualités a party's role names ("Créancier", "Débitrice", "Acquéreur", …)."""
    words = word_string(role)
    return frozenset(r for r, pattern in _ROLE_PATTERNS.items() if pattern.search(words))


class Signal(Enum):
    """A kind of tell-tale word in the remarques."""

    NETWORK = "réseau"
    """Poles, lines, cables, electricity, gas, telecom."""
    SERVITUDE = "servitude"
    RIGHT_OF_WAY = "emprise"
    """Emprise, passage, voie, rail, bretelle, élargissement."""
    MUNICIPAL_WORKS = "travaux municipaux"
    """Aqueduc, égout, puisard, drainage."""
    HYPOTHEQUE = "hypothèque"
    DISCHARGE = "quittance"
    """Quittance, mainlevée, radiation, remis, payé."""
    COPROPRIETE = "copropriété"
    """Déclaration, règlement, copropriété."""
    MODIFICATION = "modification"
    CESSION_DE_RANG = "cession de rang"
    EXPROPRIATION = "expropriation"
    PRICE = "prix"


_SIGNAL_PATTERNS: dict[Signal, re.Pattern[str]] = {
    Signal.NETWORK: re.compile(
        r"\b(?:poteaux?|pylones?|haubans?|ancrages?|cables?|electri\w*|hydro\w*|mesurage"
        r"|equipements?|telecom\w*|telephon\w*|gaz|gazoduc|conduites?|reseaux?"
        # a "ligne" that is not a boundary line
        r"|lignes?(?! (?:de lot|de lots|separatives?|de division|mitoyennes?|de propriete"
        r"|laterales?|arriere|avant|de terrain)\b))\b"
    ),
    Signal.SERVITUDE: re.compile(r"\b(?:serv|servit|servitudes?)\b"),
    Signal.RIGHT_OF_WAY: re.compile(
        r"\b(?:emprises?|passages?|voies?|rails?|ferroviaires?|chemin de fer|bretelles?"
        r"|echangeurs?|refection|elargissement|corridors?|acces)\b"
    ),
    Signal.MUNICIPAL_WORKS: re.compile(
        r"\b(?:aqueducs?|egouts?|puisards?|drainage|pluvial\w*|bornes? fontaines?"
        r"|conduites? d eau)\b"
    ),
    Signal.HYPOTHEQUE: re.compile(r"\bhyp\w*"),
    Signal.DISCHARGE: re.compile(
        r"\b(?:quittance|quitt|mainlevee|mainl|radiation|radiee?s?|remise?|payee?s?"
        r"|acquittee?s?|discharged?)\b"
    ),
    Signal.COPROPRIETE: re.compile(r"\b(?:declarations?|decl|reglements?|copro\w*)\b"),
    Signal.MODIFICATION: re.compile(r"\bmodif\w*"),
    Signal.CESSION_DE_RANG: re.compile(r"\bc(?:ess(?:ion)?)? (?:de )?(?:priorite de )?rang\b"),
    Signal.EXPROPRIATION: re.compile(r"\bexpro\w*"),
    Signal.PRICE: re.compile(r"\bprix\b"),
}

_AMOUNT = re.compile(
    r"\$\s*\d|\d[\d\s.,]*\$|\b\d[\d\s.,]*(?:dollars|piastres)\b|\bmontant\b\D{0,5}\d"
)
"""An amount of money: "75 000,00 $", "$75,000", "1 200 piastres", "montant : 5000"."""


@dataclass(frozen=True, slots=True)
class RemarkSignals:
    """Tell-tale words of the remarques (folded, so "Égout" and "EGOUTS" count)."""

    found: frozenset[Signal]
    amount: bool

    def __contains__(self, signal: Signal) -> bool:
        return signal in self.found

    def any_of(self, *signals: Signal) -> bool:
        return any(s in self.found for s in signals)


def remark_signals(remarques: str | None) -> RemarkSignals:
    if not remarques:
        return RemarkSignals(frozenset(), amount=False)
    words = word_string(remarques)
    found = frozenset(s for s, pattern in _SIGNAL_PATTERNS.items() if pattern.search(words))
    return RemarkSignals(found, amount=bool(_AMOUNT.search(fold(remarques))))


@dataclass(frozen=True, slots=True)
class LineEvidence:
    entities: tuple[Entity, ...]
    """The recognised organisations among the parties, in party order."""
    roles: frozenset[Role]
    any_role: bool
    """At least one party has a non-empty qualité."""
    natural_persons: int
    all_natural: bool
    """Every party (there is at least one) reads as a natural person."""
    remarks: RemarkSignals

    def of_kind(self, kind: EntityKind) -> tuple[Entity, ...]:
        return tuple(e for e in self.entities if e.kind is kind)

    def names_of(self, kind: EntityKind) -> str:
        """The entities of `kind`, for a note's reason: « Hydro-Québec », « RBC »."""
        names = dict.fromkeys(e.name for e in self.of_kind(kind))
        return ", ".join(f"« {name} »" for name in names)


def gather_evidence(inscription: Inscription) -> LineEvidence:
    parties = inscription.parties
    entities = tuple(e for e in (recognise(p.name) for p in parties) if e is not None)
    roles = frozenset(r for p in parties for r in roles_of(p.role))
    persons = sum(1 for p in parties if is_natural_person(p.name))
    return LineEvidence(
        entities=entities,
        roles=roles,
        any_role=any(p.role.strip() for p in parties),
        natural_persons=persons,
        all_natural=bool(parties) and persons == len(parties),
        remarks=remark_signals(inscription.remarques),
    )
