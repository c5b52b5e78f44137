"""The closed list of deed natures, and how a nature read by OCR is matched to it.

A reading is classified (see `NatureStatus`):

- CLOSED: it names a nature of the list, written any way an index page or an OCR
  writes it: accents, case, punctuation, spacing, doubt markers ("[?]"), common
  abbreviations ("Hyp.", "Quitt.", "Décl. de copropriété", "Vte"), a few old or English
  names, digits read for letters ("Serv1tude"), or a near miss found by fuzzy matching.
- MISSING: nothing readable (null, blank, "[illisible]", "?").
- GENERIC: a word that names no particular deed ("Acte", "Mutation", "Divers").
- OTHER: not in the list, but it contains a deed word ("Modification de servitude",
  "Rectification", "Cession de créance"): a real nature the list lacks. Kept as read,
  and the rules do not overwrite it either.
- UNREADABLE: not in the list and no deed word in it: a garbled reading.

The rules of `index_rules` may replace a MISSING, GENERIC or UNREADABLE nature (the
*open* ones); a CLOSED one only through the few contradictions they document.

Fuzzy matching (difflib's ratio, stdlib) only applies to readings of at least
`FUZZY_MIN_LENGTH` characters, must reach `FUZZY_THRESHOLD` and beat the runner-up by
`FUZZY_MARGIN`. The threshold admits one wrong or missing letter in an 8-letter word
(ratio 2·7/15 = 0.93 for a dropped letter, 2·7/16 = 0.875 for a substituted one) and two
in the longer natures, but not two in a short word (2·7/18 = 0.78 for "Servitude" with two
letters wrong). The length floor keeps short real words away from list entries one letter
apart ("Passage" / "Partage", "Rente" / "Vente"); `NOT_FUZZED` lists real natures outside the
list that sit within the threshold of one inside it ("Rectification" / "Ratification").
The margin leaves alone a reading that sits between two entries: « Déclaration de
copropriété di » scores 0.94 against the plain declaration and 0.93 against « … divise ».
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from enum import Enum

from workers.boost.text import fold, glue_initials

ORIGINAL_NATURES: tuple[str, ...] = (
    "Acte d’acquiescement / indivision temporaire",
    "Avis cadastral",
    "Avis de clôture de compte de liquidation successorale",
    "Avis de conservation d’une hypothèque légale de la construction",
    "Avis de contamination / restriction d’usage",
    "Avis de contamination / restriction d’utilisation / décontamination",
    "Avis de faillite",
    "Avis d’adresse",
    "Avis d’expropriation / réserve pour fins publiques",
    "Bail",
    "Billet de location (ancien droit)",
    "Certificat de localisation",
    "Certificat de propriété / recherche",
    "Confirmation",
    "Continuation de communauté",
    "Correction",
    "Dation en paiement",
    "Donation",
    "Douaire",
    "Déclaration de copropriété",
    "Déclaration de copropriété divise",
    "Déclaration de résidence familiale",
    "Déclaration modificative",
    "Emphytéose",
    "Expropriation",
    "Fiducie",
    "Hypothèque",
    "Jugement d’attribution",
    "Jugement en passation de titre",
    "Jugement en reconnaissance du droit de propriété (prescription acquisitive)",
    "Lettres patentes",
    "Loi sur la mainmorte",
    "Mainlevée",
    "Mandat",
    "Pacte de préférence / droit de préemption",
    "Partage",
    "Priorité",
    "Prise de possession à fins d’administration",
    "Prise en paiement",
    "Privilège (ancien droit)",
    "Procuration",
    "Procès-verbal d’abornement",
    "Promesse de vente",
    "Propriété superficiaire",
    "Préavis d’exercice d’un droit hypothécaire",
    "Quittance",
    "Ratification",
    "Renonciation",
    "Résiliation",
    "Résolution / Règlement",
    "Rétrocession",
    "Servitude",
    "Servitude d’environnement",
    "Sommaire",
    "Substitution",
    "Usufruit",
    "Vente",
    "Vente par le syndic",
    "Échange",
    "État certifié",
)
"""The registre extractor's closed list, spelled as it spelled it."""

ADDED_NATURES: tuple[str, ...] = (
    # After a death, the heirs' title is published by a declaration of transmission; it
    # is one of the most frequent lines of an index (qualité « Légataire », « Héritier »).
    "Déclaration de transmission",
    # The will itself is published against the lot before the transmission (qualité
    # « Décédé »); the original's own test data carries such lines.
    "Testament",
    # A creditor ceding its rank to a newer hypothèque (refinancing): banks on both
    # sides, frequent on modern pages.
    "Cession de rang",
    # Cession of a right or a claim (cession de créance, de bail, de droits), when the
    # page gives no more than « Cession ».
    "Cession",
    # Construction and co-ownership legal hypothecs are published as such; without this
    # entry they would be read as the conventional « Hypothèque », which they are not.
    "Hypothèque légale",
)
"""Natures Quebec index pages really carry that the original list lacks."""

CLOSED_NATURES: tuple[str, ...] = ORIGINAL_NATURES + ADDED_NATURES

VENTE = "Vente"
HYPOTHEQUE = "Hypothèque"
HYPOTHEQUE_LEGALE = "Hypothèque légale"
QUITTANCE = "Quittance"
MAINLEVEE = "Mainlevée"
SERVITUDE = "Servitude"
CESSION_DE_RANG = "Cession de rang"
DECLARATION_COPROPRIETE = "Déclaration de copropriété"
DECLARATION_MODIFICATIVE = "Déclaration modificative"
DECLARATION_TRANSMISSION = "Déclaration de transmission"
TESTAMENT = "Testament"

FUZZY_THRESHOLD = 0.85
FUZZY_MARGIN = 0.03
FUZZY_MIN_LENGTH = 8


class NatureStatus(Enum):
    CLOSED = "closed"
    MISSING = "missing"
    GENERIC = "generic"
    OTHER = "other"
    UNREADABLE = "unreadable"


class Match(Enum):
    """How a CLOSED reading was matched."""

    EXACT = "exact"
    ALIAS = "alias"
    FUZZY = "fuzzy"


@dataclass(frozen=True, slots=True)
class NatureReading:
    raw: str | None
    status: NatureStatus
    key: str
    """The comparison key (folded, abbreviations expanded, small words dropped)."""
    canonical: str | None = None
    """The closed-list spelling, when CLOSED."""
    match: Match | None = None
    similarity: float = 1.0
    alias_note: str | None = None
    uncertain: bool = False
    """The OCR marked its doubt ("[?]", "?", "[illisible]") in the value."""

    @property
    def is_open(self) -> bool:
        """Nothing a rule would contradict: missing, generic or garbled."""
        return self.status in (NatureStatus.MISSING, NatureStatus.GENERIC, NatureStatus.UNREADABLE)

    def names(self, nature: str) -> bool:
        """The reading is `nature` of the closed list."""
        return self.status is NatureStatus.CLOSED and self.canonical == nature


# --- comparison keys -------------------------------------------------------------------

_MARKER = re.compile(r"\[[^\]]*\]|\?")
_NON_WORD = re.compile(r"[^0-9a-z|]+")
_LOOKALIKE_DIGITS = str.maketrans({"0": "o", "1": "l", "5": "s", "|": "l"})

_SMALL_WORDS = frozenset(
    {"a", "au", "aux", "d", "de", "des", "du", "en", "et", "l", "la", "le", "les", "par"}
    | {"pour", "sur", "un", "une", "of", "the"}
)

_ABBREVIATIONS: dict[str, str] = {
    "hyp": "hypotheque",
    "hypo": "hypotheque",
    "hypot": "hypotheque",
    "hypoth": "hypotheque",
    "hypothec": "hypotheque",
    "hypothecaire": "hypotheque",  # "droit hypothécaire" and "hypothèque" share a key
    "hypotheques": "hypotheque",
    "leg": "legale",
    "serv": "servitude",
    "servit": "servitude",
    "servitudes": "servitude",
    "quit": "quittance",
    "quitt": "quittance",
    "qce": "quittance",
    "mainl": "mainlevee",
    "mainlev": "mainlevee",
    "decl": "declaration",
    "dec": "declaration",
    "decla": "declaration",
    "declar": "declaration",
    "copr": "copropriete",
    "copro": "copropriete",
    "coprop": "copropriete",
    "copropr": "copropriete",
    "trans": "transmission",
    "transm": "transmission",
    "modif": "modificative",
    "fam": "familiale",
    "vte": "vente",
    "ventes": "vente",
    "don": "donation",
    "cess": "cession",
    "emph": "emphyteose",
    "emphyt": "emphyteose",
    "usuf": "usufruit",
    "usufr": "usufruit",
    "ratif": "ratification",
    "renonc": "renonciation",
    "resil": "resiliation",
    "retroc": "retrocession",
    "subst": "substitution",
    "substit": "substitution",
    "ech": "echange",
    "procur": "procuration",
    "prom": "promesse",
    "pmt": "paiement",
    "paiemt": "paiement",
    "cert": "certificat",
    "loc": "localisation",
    "av": "avis",
    "adr": "adresse",
    "ex": "exercice",
    "verb": "verbal",
    "exprop": "expropriation",
    "expropr": "expropriation",
    "testam": "testament",
}
"""Single-word abbreviations of index pages (folded, without their dot)."""

_ALIASES: dict[str, tuple[str, str | None]] = {
    # Short forms of long names.
    "preavis": ("Préavis d’exercice d’un droit hypothécaire", None),
    "preavis exercice": ("Préavis d’exercice d’un droit hypothécaire", None),
    "preavis hypotheque": ("Préavis d’exercice d’un droit hypothécaire", None),
    "proc verbal abornement": ("Procès-verbal d’abornement", None),
    "pv abornement": ("Procès-verbal d’abornement", None),
    "declaration res familiale": ("Déclaration de résidence familiale", None),
    "residence familiale": ("Déclaration de résidence familiale", None),
    "avis expropriation": ("Avis d’expropriation / réserve pour fins publiques", None),
    "reserve fins publiques": ("Avis d’expropriation / réserve pour fins publiques", None),
    "quittance mainlevee": ("Quittance", None),
    "hypotheque conventionnelle": (
        HYPOTHEQUE,
        "l'hypothèque conventionnelle est l'hypothèque ordinaire de la liste",
    ),
    "c rang": (CESSION_DE_RANG, None),
    "cession priorite rang": (CESSION_DE_RANG, None),
    "certificat propriete": ("Certificat de propriété / recherche", None),
    "certificat recherche": ("Certificat de propriété / recherche", None),
    "pacte preference": ("Pacte de préférence / droit de préemption", None),
    "droit preemption": ("Pacte de préférence / droit de préemption", None),
    "privilege": ("Privilège (ancien droit)", None),
    "billet location": ("Billet de location (ancien droit)", None),
    "resolution": ("Résolution / Règlement", None),
    "reglement": ("Résolution / Règlement", None),
    # Old and English names of the same deeds (pre-1994 and English pre-printed forms).
    "obligation": (
        HYPOTHEQUE,
        "avant 1994, un prêt garanti sur l'immeuble était publié sous le nom « Obligation »"
        " (obligation hypothécaire)",
    ),
    "obligation hypotheque": (HYPOTHEQUE, None),
    "mortgage": (HYPOTHEQUE, "traduction du formulaire anglais"),
    "discharge": (QUITTANCE, "traduction du formulaire anglais"),
    "sale": (VENTE, "traduction du formulaire anglais"),
    "deed sale": (VENTE, "traduction du formulaire anglais"),
    "easement": (SERVITUDE, "traduction du formulaire anglais"),
    "right way": (SERVITUDE, "traduction du formulaire anglais"),
    "lease": ("Bail", "traduction du formulaire anglais"),
    "gift": ("Donation", "traduction du formulaire anglais"),
    "exchange": ("Échange", "traduction du formulaire anglais"),
    "will": (TESTAMENT, "traduction du formulaire anglais"),
    "last will": (TESTAMENT, "traduction du formulaire anglais"),
}
"""Whole readings (as keys) that name a listed nature another way; value: the nature and,
when the link is not a plain abbreviation, why."""

_MISSING_KEYS = frozenset({"", "illisible", "vide", "na", "nd", "inconnu", "inconnue", "aucun"})

_GENERIC_KEYS = frozenset(
    {"acte", "actes", "mutation", "mutations", "autre", "autres", "divers", "inscription"}
    | {"enregistrement", "document", "documents", "contrat", "convention", "transaction"}
    | {"titre", "droit", "droits", "transfert", "acte notarie", "acte sous seing prive"}
)
"""Readings that name no particular deed."""

NOT_FUZZED = frozenset({"rectification", "certification"})
"""Real natures outside the list, each within the fuzzy threshold of a listed one."""

_EXTRA_DEED_WORDS = frozenset(
    {"modification", "rectification", "radiation", "subrogation", "creance", "transport"}
    | {"jugement", "prorogation", "renouvellement", "consentement", "depot", "plan"}
    | {"bornage", "intervention", "reserve", "rente", "legs", "succession", "acquisition"}
    | {"entente", "revocation", "delegation", "avis", "hypotheque", "servitude", "vente"}
    | {"location", "assurance", "saisie", "vendeur", "garantie", "cautionnement"}
    | {"passage", "reservation", "designation", "revente", "mariage", "annulation"}
    | {"abandon", "offre", "achat", "delaissement", "fusion", "amalgamation"}
    | {"changement", "decret", "arrete", "ordonnance", "retrait", "dissolution"}
)
"""Words of real natures the list lacks: a reading holding one is OTHER, not UNREADABLE."""


def _lookalike(token: str) -> str:
    """Digits (and "|") read for letters, inside a word that has letters: "Serv1tude"."""
    if any(c.isalpha() for c in token) and any(not c.isalpha() for c in token):
        return token.translate(_LOOKALIKE_DIGITS)
    return token


def nature_key(text: str) -> str:
    """The comparison key of a nature: folded, doubt markers removed, look-alike digits
    read as letters, abbreviations expanded, small words dropped."""
    cleaned = glue_initials(_MARKER.sub(" ", fold(text)))
    tokens = [_lookalike(t).replace("|", "l") for t in _NON_WORD.split(cleaned) if t]
    expanded = [_ABBREVIATIONS.get(t, t) for t in tokens]
    return " ".join(t for t in expanded if t not in _SMALL_WORDS)


_EXACT: dict[str, str] = {nature_key(n): n for n in CLOSED_NATURES}
_DEED_WORDS = (
    frozenset({w for key in _EXACT for w in key.split() if len(w) >= 4} - _GENERIC_KEYS)
    | _EXTRA_DEED_WORDS
)


def _check_tables() -> None:
    if len(_EXACT) != len(CLOSED_NATURES):
        raise AssertionError("two closed-list natures share a comparison key")
    for key, (nature, _) in _ALIASES.items():
        if nature not in CLOSED_NATURES or key in _EXACT:
            raise AssertionError(f"alias {key!r} is wrong")


_check_tables()


def _fuzzy(key: str) -> tuple[str, float] | None:
    if len(key) < FUZZY_MIN_LENGTH or key in NOT_FUZZED:
        return None
    scores = sorted(
        (
            (difflib.SequenceMatcher(None, key, candidate, autojunk=False).ratio(), nature)
            for candidate, nature in _EXACT.items()
        ),
        reverse=True,
    )
    (best, nature), (runner_up, _) = scores[0], scores[1]
    if best >= FUZZY_THRESHOLD and best - runner_up >= FUZZY_MARGIN:
        return nature, best
    return None


def read_nature(raw: str | None) -> NatureReading:
    """Classify a nature as read by OCR (see the module docstring)."""
    if raw is None:
        return NatureReading(raw, NatureStatus.MISSING, "")
    key = nature_key(raw)
    uncertain = bool(_MARKER.search(raw))
    if key in _MISSING_KEYS:
        return NatureReading(raw, NatureStatus.MISSING, key, uncertain=True)
    if key in _EXACT:
        return NatureReading(
            raw, NatureStatus.CLOSED, key, _EXACT[key], Match.EXACT, uncertain=uncertain
        )
    if key in _ALIASES:
        nature, note = _ALIASES[key]
        return NatureReading(
            raw, NatureStatus.CLOSED, key, nature, Match.ALIAS, alias_note=note, uncertain=uncertain
        )
    if key in _GENERIC_KEYS:
        return NatureReading(raw, NatureStatus.GENERIC, key, uncertain=uncertain)
    fuzzy = _fuzzy(key)
    if fuzzy is not None:
        nature, similarity = fuzzy
        return NatureReading(
            raw,
            NatureStatus.CLOSED,
            key,
            nature,
            Match.FUZZY,
            similarity=similarity,
            uncertain=uncertain,
        )
    if any(word in _DEED_WORDS for word in key.split()):
        return NatureReading(raw, NatureStatus.OTHER, key, uncertain=uncertain)
    return NatureReading(raw, NatureStatus.UNREADABLE, key, uncertain=uncertain)


def describe(reading: NatureReading) -> str:
    """How the reading reads to a person, for a note's reason."""
    if reading.status is NatureStatus.MISSING:
        return "nature absente ou illisible" + (
            f" (« {reading.raw} »)" if reading.raw and reading.raw.strip() else ""
        )
    if reading.status is NatureStatus.GENERIC:
        return f"nature générique « {reading.raw} »"
    if reading.status is NatureStatus.UNREADABLE:
        return f"nature lue « {reading.raw} », qui ne correspond à aucune nature connue"
    if reading.status is NatureStatus.OTHER:
        return f"nature lue « {reading.raw} »"
    if reading.raw == reading.canonical:
        return f"nature lue « {reading.raw} »"
    return f"nature lue « {reading.raw} » (soit « {reading.canonical} »)"
