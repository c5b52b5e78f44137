"""The rules that decide an inscription's nature from its own line (parties, qualités,
remarques). The cross-line rule (radiation references) is in `radiation`.

Each family returns a `Proposal` or nothing. The conditions, exactly:

utility (Servitude) — a party is a network company (Hydro-Québec and aliases, a municipal
  electricity service, an old power company, Énergir/Gaz Métro and gas networks, Bell,
  Vidéotron and other telecoms), no party has a Vendeur/Acheteur qualité, and either
  - the nature is open (missing, generic, garbled), or
  - the nature reads « Vente », the remarques give no amount, and the remarques carry
    network or servitude words (poteau, hauban, ligne other than a lot line, électricité,
    câble, conduite, serv., servitude…), or the parties are cédant / cessionnaire (a
    right ceded, not a thing sold), or the OCR marked its doubt on the nature.
  Explicit Vendeur/Acheteur qualités or an amount (a price) are the "private person on
  the other side of a sale": with them, the page itself says Vente and nothing changes.
public_body (Servitude) — the nature is open, no party has a Vendeur/Acheteur qualité, and
  - a party is the Ministère des Transports or a railway (CN, CP, chemin de fer) and the
    remarques do not mention an expropriation, or
  - a party is a nature conservation body, or
  - a party is a municipality and the remarques mention aqueduc, égout, puisard,
    drainage or a servitude, or
  - a party is another public body (school board, the Crown) and the remarques mention
    an emprise, passage, voie, accès or a servitude.
  A « Vente » to the MTQ or a railway is never contradicted: they buy strips of land in
  full ownership for their rights of way as often as they take servitudes.
bank (Hypothèque, or Cession de rang) — a party is a bank, credit union or lender, no party
  has a Vendeur/Acheteur qualité, the remarques do not speak of a discharge (quittance,
  mainlevée, radiation, remis, payé), and either
  - the nature is open and the remarques mention a cession de rang → Cession de rang;
  - the nature is open and one more sign of a loan is there: a Créancier/Débiteur
    qualité, an amount or the word hypothèque in the remarques, or a natural person as
    the other party → Hypothèque;
  - the nature reads « Vente » and a party has a Créancier/Débiteur qualité (qualités a
    sale never carries) → Hypothèque;
  - the nature reads « Vente », no party has any qualité (an old page), the remarques give
    an amount that is not called a « prix », and a natural person is a party → Hypothèque.
qualite — the nature is open and
  - a Créancier/Débiteur qualité, no Vendeur/Acheteur one, no discharge words → Hypothèque;
  - Vendeur and Acheteur qualités, every party a natural person, no network or servitude
    words → Vente;
  - an Héritier/Légataire qualité (and no loan or sale qualité) → Déclaration de
    transmission; only Décédé qualités → Testament;
  or a syndicat de copropriété is a party, the nature is open or reads just
  « Déclaration », and the nature or the remarques speak of a déclaration, règlement or
  copropriété → Déclaration de copropriété (Déclaration modificative when the remarques
  say modification).

When two families propose different natures for one line, the line keeps its reading.
"""

from __future__ import annotations

from collections.abc import Callable

from workers.boost.entities import EntityKind
from workers.boost.evidence import (
    GRANT_ROLES,
    LOAN_ROLES,
    SALE_ROLES,
    LineEvidence,
    Role,
    Signal,
)
from workers.boost.natures import (
    CESSION_DE_RANG,
    DECLARATION_COPROPRIETE,
    DECLARATION_MODIFICATIVE,
    DECLARATION_TRANSMISSION,
    HYPOTHEQUE,
    SERVITUDE,
    TESTAMENT,
    VENTE,
    NatureReading,
    describe,
)
from workers.boost.proposal import Proposal, sentence

Rule = Callable[[NatureReading, LineEvidence], Proposal | None]


def utility_rule(reading: NatureReading, ev: LineEvidence) -> Proposal | None:
    names = ev.names_of(EntityKind.UTILITY)
    if not names or ev.roles & SALE_ROLES:
        return None
    who = f"{names}, entreprise de réseau (électricité, gaz ou télécommunications), est partie"
    if reading.is_open:
        return Proposal(
            SERVITUDE,
            "utility",
            sentence(
                describe(reading),
                who,
                "une telle inscription est la servitude qui porte ses installations",
            ),
        )
    if not reading.names(VENTE) or ev.remarks.amount:
        return None
    if ev.remarks.any_of(Signal.NETWORK, Signal.SERVITUDE):
        evidence = "les remarques parlent de son réseau (poteau, ligne, servitude…)"
    elif ev.roles & GRANT_ROLES:
        evidence = (
            "les qualités de cédant et de cessionnaire sont celles d'un droit cédé, "
            "non d'un bien vendu"
        )
    elif reading.uncertain:
        evidence = "l'OCR a marqué son doute sur la nature"
    else:
        return None
    return Proposal(
        SERVITUDE,
        "utility",
        sentence(
            describe(reading),
            who,
            evidence,
            "aucun montant ni qualité de vendeur ou d'acheteur n'appuie une vente",
        ),
    )


def public_body_rule(reading: NatureReading, ev: LineEvidence) -> Proposal | None:
    if not reading.is_open or ev.roles & SALE_ROLES:
        return None
    remarks = ev.remarks
    why: str | None = None
    if ev.of_kind(EntityKind.TRANSPORT) and Signal.EXPROPRIATION not in remarks:
        why = (
            f"{ev.names_of(EntityKind.TRANSPORT)} (transport routier ou ferroviaire) est "
            "partie : une inscription sans autre nature lisible est une servitude d'emprise"
        )
    elif ev.of_kind(EntityKind.CONSERVATION):
        why = (
            f"{ev.names_of(EntityKind.CONSERVATION)}, organisme de conservation, est partie :"
            " il acquiert des servitudes de conservation"
        )
    elif ev.of_kind(EntityKind.MUNICIPALITY) and remarks.any_of(
        Signal.MUNICIPAL_WORKS, Signal.SERVITUDE
    ):
        why = (
            f"la municipalité {ev.names_of(EntityKind.MUNICIPALITY)} est partie et les "
            "remarques parlent d'aqueduc, d'égout, de puisard ou de servitude"
        )
    elif ev.of_kind(EntityKind.PUBLIC_BODY) and remarks.any_of(
        Signal.RIGHT_OF_WAY, Signal.SERVITUDE
    ):
        why = (
            f"l'organisme public {ev.names_of(EntityKind.PUBLIC_BODY)} est partie et les "
            "remarques parlent d'emprise, de passage ou de servitude"
        )
    if why is None:
        return None
    return Proposal(SERVITUDE, "public_body", sentence(describe(reading), why))


def bank_rule(reading: NatureReading, ev: LineEvidence) -> Proposal | None:
    names = ev.names_of(EntityKind.BANK)
    remarks = ev.remarks
    if not names or ev.roles & SALE_ROLES or Signal.DISCHARGE in remarks:
        return None
    lender = f"{names} (établissement financier) est partie"
    if reading.is_open:
        if Signal.CESSION_DE_RANG in remarks:
            return Proposal(
                CESSION_DE_RANG,
                "bank",
                sentence(describe(reading), lender, "les remarques disent « cession de rang »"),
            )
        signs = _loan_signs(ev)
        if not signs:
            return None
        return Proposal(HYPOTHEQUE, "bank", sentence(describe(reading), lender, signs))
    if not reading.names(VENTE):
        return None
    if ev.roles & LOAN_ROLES:
        return Proposal(
            HYPOTHEQUE,
            "bank",
            sentence(
                describe(reading),
                lender,
                "les qualités créancier/débiteur sont celles d'un prêt, jamais d'une vente",
            ),
        )
    if (
        not ev.any_role
        and remarks.amount
        and Signal.PRICE not in remarks
        and ev.natural_persons > 0
    ):
        return Proposal(
            HYPOTHEQUE,
            "bank",
            sentence(
                describe(reading),
                lender,
                "face à une personne physique, avec un montant en remarques qui n'est pas "
                "appelé prix : c'est un prêt hypothécaire",
            ),
        )
    return None


def _loan_signs(ev: LineEvidence) -> str:
    signs: list[str] = []
    if ev.roles & LOAN_ROLES:
        signs.append("qualités créancier/débiteur")
    if ev.remarks.amount:
        signs.append("montant en remarques")
    if Signal.HYPOTHEQUE in ev.remarks:
        signs.append("mot « hypothèque » en remarques")
    if ev.natural_persons:
        signs.append("une personne physique en face")
    return "signes d'un prêt : " + ", ".join(signs) if signs else ""


def qualite_rule(reading: NatureReading, ev: LineEvidence) -> Proposal | None:
    syndicate = _syndicate(reading, ev)
    if syndicate is not None or not reading.is_open:
        return syndicate
    roles = ev.roles
    remarks = ev.remarks
    loan, sale = roles & LOAN_ROLES, roles & SALE_ROLES
    if loan and not sale and Signal.DISCHARGE not in remarks:
        return Proposal(
            HYPOTHEQUE,
            "qualite",
            sentence(describe(reading), "les qualités créancier/débiteur sont celles d'un prêt"),
        )
    if (
        sale == SALE_ROLES
        and not loan
        and ev.all_natural
        and not remarks.any_of(Signal.NETWORK, Signal.SERVITUDE)
    ):
        return Proposal(
            VENTE,
            "qualite",
            sentence(describe(reading), "un vendeur et un acheteur, tous des personnes physiques"),
        )
    if loan or sale:
        return None
    if Role.HEIR in roles:
        return Proposal(
            DECLARATION_TRANSMISSION,
            "qualite",
            sentence(
                describe(reading),
                "la qualité d'héritier ou de légataire est celle d'une déclaration de transmission",
            ),
        )
    if roles == {Role.DECEASED}:
        return Proposal(
            TESTAMENT,
            "qualite",
            sentence(describe(reading), "la seule qualité est celle d'un défunt : un testament"),
        )
    return None


def _syndicate(reading: NatureReading, ev: LineEvidence) -> Proposal | None:
    names = ev.names_of(EntityKind.SYNDICATE)
    bare_declaration = reading.key == "declaration"
    if not names or not (reading.is_open or bare_declaration):
        return None
    if not (bare_declaration or Signal.COPROPRIETE in ev.remarks):
        return None
    modifies = Signal.MODIFICATION in ev.remarks
    return Proposal(
        DECLARATION_MODIFICATIVE if modifies else DECLARATION_COPROPRIETE,
        "qualite",
        sentence(
            describe(reading),
            f"{names} est partie et l'inscription parle d'une déclaration ou d'un règlement"
            + (" qu'elle modifie" if modifies else ""),
        ),
    )


LOCAL_RULES: tuple[Rule, ...] = (utility_rule, public_body_rule, bank_rule, qualite_rule)
"""In order of precedence for the note when several agree."""


def decide_locally(reading: NatureReading, ev: LineEvidence) -> Proposal | None:
    """The line's nature by its own evidence; nothing when the families disagree."""
    proposals = [p for p in (rule(reading, ev) for rule in LOCAL_RULES) if p is not None]
    if len({p.nature for p in proposals}) != 1:
        return None
    return proposals[0]
