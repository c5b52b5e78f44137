"""Who a party is: the organisations the boost's rules key on, and natural persons.

Each recogniser is a pattern over the party's folded words (`text.word_string`: lower
case, no accents, punctuation gone, dotted initials glued: "H.-Q." → "hq"), so "HYDRO-
QUÉBEC", "Hydro Qc" and "H.Q." are one entity. A party name is never changed; the
recognised entity only serves as evidence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from workers.boost.text import word_string


class EntityKind(Enum):
    UTILITY = "utility"
    """Electricity, gas and telecom networks (their lines cross private lots)."""
    TRANSPORT = "transport"
    """Ministère des Transports, railways, public transit."""
    MUNICIPALITY = "municipality"
    CONSERVATION = "conservation"
    """Nature conservation bodies (they take conservation servitudes)."""
    PUBLIC_BODY = "public_body"
    """Other public or para-public bodies: the Crown, school boards, water authorities."""
    BANK = "bank"
    """Banks, credit unions, trust and mortgage-loan companies."""
    SYNDICATE = "syndicate"
    """Syndicat de copropriété."""


@dataclass(frozen=True, slots=True)
class Entity:
    kind: EntityKind
    name: str
    """The entity's usual name for a note's reason ("Hydro-Québec"); the party's name as
    written when the pattern is generic ("Ville de Magog", "Banque XYZ")."""
    key: str
    """Its identity: two parties with the same key are the same creditor."""


@dataclass(frozen=True, slots=True)
class _Recogniser:
    kind: EntityKind
    name: str
    pattern: re.Pattern[str]
    keyed_by_party: bool = False
    """Generic patterns ("Banque …", "Ville de …"): the party's own words are the key."""


def _r(
    kind: EntityKind, name: str, *alternatives: str, keyed_by_party: bool = False
) -> _Recogniser:
    pattern = re.compile("|".join(rf"(?:{a})" for a in alternatives))
    return _Recogniser(kind, name, pattern, keyed_by_party)


U, T, M, C, P, B, S = (
    EntityKind.UTILITY,
    EntityKind.TRANSPORT,
    EntityKind.MUNICIPALITY,
    EntityKind.CONSERVATION,
    EntityKind.PUBLIC_BODY,
    EntityKind.BANK,
    EntityKind.SYNDICATE,
)

_RECOGNISERS: tuple[_Recogniser, ...] = (
    # --- utilities ----------------------------------------------------------------------
    _r(
        U,
        "Hydro-Québec",
        r"\bhydro ?(?:quebec|qc|que|q)\b",
        r"\bh quebec\b",
        r"\bhq\b",
        r"\bcommission hydroelectrique (?:de |du )?quebec\b",
    ),
    _r(
        U,
        "service municipal d'électricité",
        r"\bservices? (?:municipal )?(?:d )?electricite\b",
        r"\bhydro (?!quebec\b|qc\b|que\b|q\b)[a-z]+",  # Hydro-Sherbrooke, Hydro-Magog, …
    ),
    _r(
        U,
        "ancienne compagnie d'électricité",
        r"\bshawinigan water\b",
        r"\bsouthern canada power\b",
        r"\bgatineau power\b",
        r"\bquebec power\b",
        r"\bpower (?:co|company|corporation)\b",
        r"\bcompagnie (?:d )?electricite\b",
    ),
    _r(U, "Énergir (Gaz Métro)", r"\benergir\b", r"\bgaz metro", r"\bgaz metropolitain\b"),
    _r(
        U,
        "réseau de gaz",
        r"\bgazifere\b",
        r"\bgazoduc",
        r"\btrans quebec (?:et |and )?maritimes\b",
        r"\btranscanada\b",
        r"\bpipe ?lines?\b",
        r"\bgaz naturel\b",
    ),
    _r(
        U,
        "Bell Canada",
        r"\bbell (?:canada|telephone)\b",
        r"\btelephone bell\b",
    ),
    _r(
        U,
        "réseau de télécommunications",
        r"\bvideotron\b",
        r"\btelebec\b",
        r"\btelus\b",
        r"\bcogeco\b",
        r"\brogers (?:communications|cable|cablesystems)\b",
        r"\bquebec telephone\b",
        r"\b(?:compagnie|cie) (?:de )?telephone\b",
    ),
    # --- transport and rail ---------------------------------------------------------------
    _r(
        T,
        "Ministère des Transports",
        r"\bmtq\b",
        r"\bministere des transports\b",
        r"\bministre des transports\b",
        r"\bmin (?:des )?transp",
        r"\btransports (?:quebec|canada)\b",
        r"\bministere de la voirie\b",
        r"\bministre de la voirie\b",
    ),
    _r(
        T,
        "Canadien National",
        r"\bcn\b",
        r"\bcnr\b",
        r"\bcn rail\b",
        r"\bcanadien national\b",
        r"\bcanadian national\b",
        r"\bchemins de fer nationaux\b",
    ),
    _r(
        T,
        "Canadien Pacifique",
        r"^cp$",
        r"\bcp (?:rail|ltee|limitee|limited)\b",
        r"\bcanadien pacifique\b",
        r"\bcanadian pacific\b",
        r"\bpacifique canadien\b",
    ),
    _r(
        T,
        "chemin de fer",
        r"\bchemins? de fer\b",
        r"\brailway\b",
        r"\bvia rail\b",
        r"\bagence metropolitaine de transport\b",
        r"\breseau de transport metropolitain\b",
    ),
    # --- public bodies ------------------------------------------------------------------
    _r(
        C,
        "organisme de conservation",
        r"\bconservation\b",
        r"\bnature conservancy\b",
        r"\bcanards illimites\b",
        r"\bducks unlimited\b",
        r"\bfondation de la faune\b",
    ),
    _r(
        P,
        "organisme public",
        r"\bcommission scolaire\b",
        r"\bcentre de services scolaire\b",
        r"\bgouvernement du (?:quebec|canada)\b",
        r"\bprocureur general\b",
        r"\bsa majeste\b",
        r"\bhis majesty\b|\bher majesty\b",
        r"\bsociete quebecoise d assainissement\b",
        r"\bregie intermunicipale\b",
    ),
    _r(
        M,
        "municipalité",
        r"^(?:la |le |the )?(?:corp(?:oration)? (?:municipale )?(?:de |du )?(?:la |le )?)?"
        r"(?:ville|municipalite|mun|cite|village|paroisse|canton|township|town|city|mrc)\b"
        r"(?!.*\bfabrique\b)",
        r"\bcorporation municipale\b",
        r"\bcorp mun\b",
        r"\bmunicipalite regionale de comte\b",
        keyed_by_party=True,
    ),
    # --- banks and lenders ----------------------------------------------------------------
    _r(B, "Banque Royale du Canada", r"\bbanque royale\b", r"\broyal bank\b", r"\brbc\b"),
    _r(
        B,
        "Banque Toronto-Dominion",
        r"\btoronto dominion\b",
        r"\btd\b",
        r"\bcanada trust\b",
    ),
    _r(B, "Banque de Montréal", r"\bbanque de montreal\b", r"\bbank of montreal\b", r"\bbmo\b"),
    _r(
        B,
        "CIBC",
        r"\bcibc\b",
        r"\bbanque canadienne imperiale\b",
        r"\bcanadian imperial bank\b",
    ),
    _r(
        B,
        "Banque Nationale",
        r"\bbanque nationale\b",
        r"\bnational bank\b",
        r"\bbnc\b",
        r"\bbanque canadienne nationale\b",
    ),
    _r(
        B,
        "Desjardins",
        # "Desjardins" alone is also a common surname.
        r"\bcaisses?\b.*\bdesjardins\b",
        r"\b(?:mouvement|fiducie|groupe) desjardins\b",
        r"\bdesjardins (?:securite|credit|financier|financiere|trust)\b",
        r"\bcaisses? (?:pop|populaires?|d economie|d epargne|de credit)\b",
        r"\bcs?se pop\b",
        r"^(?:la )?caisse\b",
        r"\bfederation des caisses\b",
    ),
    _r(B, "Banque Laurentienne", r"\bbanque laurentienne\b", r"\blaurentian bank\b"),
    _r(
        B,
        "Banque Scotia",
        r"\bscotia\b",
        r"\bnouvelle ecosse\b",
        r"\bbank of nova scotia\b",
    ),
    _r(B, "HSBC", r"\bhsbc\b"),
    _r(B, "Crédit foncier franco-canadien", r"\bcredit foncier\b"),
    _r(
        B,
        "Société canadienne d'hypothèques et de logement",
        r"\bschl\b",
        r"\bcmhc\b",
        r"\bsociete canadienne d hypotheques\b",
    ),
    _r(
        B,
        "établissement financier",
        r"\bbanque\b",
        r"\bbank\b",
        r"\btrust\b",
        r"\bcompagnie (?:de pret|hypothecaire)",
        r"\bmortgage\b",
        keyed_by_party=True,
    ),
    # --- co-ownership -----------------------------------------------------------------------
    _r(S, "syndicat de copropriété", r"\bsynd(?:icat)?\b.*\bcopro", keyed_by_party=True),
)

_CORPORATE_WORDS = frozenset(
    {"inc", "incorporee", "ltee", "limitee", "ltd", "limited", "corp", "corporation", "cie"}
    | {"compagnie", "company", "societe", "senc", "sec", "enr", "enrg", "gestion", "groupe"}
    | {"holding", "holdings", "immeubles", "immobilier", "immobiliere", "constructions"}
    | {"entreprises", "investissements", "placements", "developpement", "fiducie", "trust"}
    | {"fabrique", "association", "club", "cooperative", "coop", "syndicat", "federation"}
    | {"commission", "regie", "conseil", "ministre", "ministere", "gouvernement", "caisse"}
    | {"banque", "bank", "succursale", "fondation", "institut", "universite", "eglise"}
)
"""Words that make a name an organisation's."""

_NOT_A_NAME = frozenset({"illisible", "vide", "inconnu", "inconnue", "na", "nd"})


def recognise(name: str) -> Entity | None:
    """The organisation a party name designates, if it is one the rules know."""
    words = word_string(name)
    if not words:
        return None
    for recogniser in _RECOGNISERS:
        if recogniser.pattern.search(words):
            if recogniser.keyed_by_party:
                return Entity(recogniser.kind, name.strip(), words)
            return Entity(recogniser.kind, recogniser.name, recogniser.name)
    return None


def is_natural_person(name: str) -> bool:
    """A name that reads as a person's: two words or more, no digits, no word of an
    organisation, no recognised entity ("TREMBLAY, JEAN", "Succession Marie Roy")."""
    words = word_string(name).split()
    if len([w for w in words if w.isalpha()]) < 2 or any(not w.isalpha() for w in words):
        return False
    if _CORPORATE_WORDS.intersection(words) or _NOT_A_NAME.intersection(words):
        return False
    return recognise(name) is None
