"""An index as the production text columns hold it, and back.

`render_index_text` writes what the registre extractor's readers expect in
`file_content` / `boosted_file_content`:

    --- Page 1 ---
    Métadonnées de l'En-tête :
    Circonscription foncière : Québec
    Cadastre : Cadastre du Québec
    Lot : 1 234 567

    Données du Tableau :
    Ligne 1:
    Date de présentation d'inscription: 1995-03-02
    Numéro: 1 234 567
    Nature de l'acte: Vente
    Qualité: Vendeur ; Acheteur
    Nom des parties: TREMBLAY, Marie ; GAGNON, Jean
    Remarques: [Vide]
    Radiations: [Vide]

A header value that is unknown is left out; an empty field is `[Vide]`; a value is one
line (inner line breaks become spaces). Parties: names, and their qualités in the same
order, separated by " ; " (an unknown qualité among known ones is `[Vide]`).

`parse_index_text` reads that layout back, and also the older text of the replaced
system (fields written `Option 1: VALUE (Confiance: NN%)`, several parties' qualités
given as `1ere partie 2ième partie` with their names run together), so rows it
completed can be back-filled into `file_content_json` without calling Gemini.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

from workers.pipelines.pages import join_pages, split_pages
from workers.pipelines.schema import IndexPageResult, Inscription, PageMetadata, Party

EMPTY = "[Vide]"
PARTY_SEPARATOR = " ; "
HEADER_TITLE = "Métadonnées de l'En-tête :"
TABLE_TITLE = "Données du Tableau :"
ILLEGIBLE_LINE = "Page illisible."
NO_LINE = "Aucune inscription."

HEADER_LABELS = (
    ("circonscription", "Circonscription foncière"),
    ("cadastre", "Cadastre"),
    ("lot_number", "Lot"),
)
FIELD_LABELS = (
    ("acte_publication_date", "Date de présentation d'inscription"),
    ("acte_publication_number", "Numéro"),
    ("acte_nature", "Nature de l'acte"),
    ("qualite", "Qualité"),
    ("parties", "Nom des parties"),
    ("remarques", "Remarques"),
    ("radiation_number", "Radiations"),
)


def _one_line(value: str) -> str:
    return " ".join(value.split())


def _shown(value: str | None) -> str:
    text = _one_line(value or "")
    return text or EMPTY


def render_inscription(number: int, inscription: Inscription) -> list[str]:
    names = PARTY_SEPARATOR.join(_shown(p.name) for p in inscription.parties) or EMPTY
    roles = [_one_line(p.role) for p in inscription.parties]
    qualite = PARTY_SEPARATOR.join(r or EMPTY for r in roles) if any(roles) else EMPTY
    values = {
        "acte_publication_date": _shown(inscription.acte_publication_date),
        "acte_publication_number": _shown(inscription.acte_publication_number),
        "acte_nature": _shown(inscription.acte_nature),
        "qualite": qualite,
        "parties": names,
        "remarques": _shown(inscription.remarques),
        "radiation_number": _shown(inscription.radiation_number),
    }
    return [f"Ligne {number}:", *(f"{label}: {values[key]}" for key, label in FIELD_LABELS)]


def render_index_page(page: IndexPageResult, illegible: bool = False) -> str:
    lines = [HEADER_TITLE]
    for key, label in HEADER_LABELS:
        value = _one_line(getattr(page.metadata, key) or "")
        if value:
            lines.append(f"{label} : {value}")
    lines += ["", TABLE_TITLE]
    if not page.inscriptions:
        lines.append(ILLEGIBLE_LINE if illegible else NO_LINE)
    for number, inscription in enumerate(page.inscriptions, start=1):
        if number > 1:
            lines.append("")
        lines += render_inscription(number, inscription)
    return "\n".join(lines)


def render_index_text(pages: Sequence[IndexPageResult], illegible: Collection[int] = ()) -> str:
    """The whole document; `illegible` holds the numbers of pages Gemini could not read."""
    return join_pages(
        {p.pageNumber: render_index_page(p, p.pageNumber in illegible) for p in pages}
    )


# --- reading back ---------------------------------------------------------------------

_LIGNE = re.compile(r"^[ \t]*Ligne[ \t]+(\d+)[ \t]*:", re.IGNORECASE | re.MULTILINE)
_OPTION = re.compile(r"^Option\s+1\s*:\s*(.+?)\s*\(Confiance", re.IGNORECASE | re.DOTALL)
_NTH_PARTY = re.compile(r"\d+\s*(?:ere|ère|re|ieme|ième|e)\s+partie", re.IGNORECASE)
_SURNAME_FIRST = re.compile(
    r"([A-ZÀÂÄÇÉÈÊËÏÎÔÙÛÜ][A-ZÀÂÄÇÉÈÊËÏÎÔÙÛÜ\s'-]+,\s*[^,]+?)(?=\s+[A-ZÀÂÄÇÉÈÊËÏÎÔÙÛÜ]{2,}|$)"
)


def _label_pattern(label: str) -> re.Pattern[str]:
    return re.compile(rf"^[ \t]*{re.escape(label)}[ \t]*:[ \t]*(.*)$", re.IGNORECASE | re.MULTILINE)


_HEADER_PATTERNS = [(key, _label_pattern(label)) for key, label in HEADER_LABELS]
_FIELD_PATTERNS = [(key, _label_pattern(label)) for key, label in FIELD_LABELS]


def _value(raw: str | None) -> str | None:
    if raw is None:
        return None
    text = raw.strip()
    option = _OPTION.match(text)
    if option:
        text = option.group(1).strip()
    if not text or text == EMPTY or text.lower() == "vide":
        return None
    return text


def _parties(names: str | None, qualite: str | None) -> list[Party]:
    if names is None:
        return []
    name_list = [n.strip() for n in names.split(PARTY_SEPARATOR.strip())]
    role_list = [r.strip() for r in (qualite or "").split(PARTY_SEPARATOR.strip())]
    if len(name_list) > 1 and (qualite is None or len(role_list) == len(name_list)):
        roles = role_list if qualite is not None else [""] * len(name_list)
        return [
            Party(name=n, role="" if r in ("", EMPTY) else r)
            for n, r in zip(name_list, roles, strict=True)
        ]
    if qualite is None:
        return [Party(name=names.strip(), role="")]
    # The replaced system's layout: "1ere partie 2ième partie" and the names run together.
    nth = _NTH_PARTY.findall(qualite)
    if len(nth) > 1:
        split = [m.strip() for m in _SURNAME_FIRST.findall(names)] or [names.strip()]
        return [
            Party(name=n, role=nth[i].strip() if i < len(nth) else "") for i, n in enumerate(split)
        ]
    return [Party(name=names.strip(), role=qualite.strip())]


def parse_inscription(block: str) -> Inscription:
    found: dict[str, str | None] = {}
    for key, pattern in _FIELD_PATTERNS:
        match = pattern.search(block)
        found[key] = _value(match.group(1)) if match else None
    return Inscription(
        acte_publication_date=found["acte_publication_date"],
        acte_publication_number=found["acte_publication_number"],
        acte_nature=found["acte_nature"],
        parties=_parties(found["parties"], found["qualite"]),
        remarques=found["remarques"],
        radiation_number=found["radiation_number"],
    )


def parse_index_page(number: int, text: str) -> IndexPageResult:
    blocks = list(_LIGNE.finditer(text))
    head = text[: blocks[0].start()] if blocks else text
    metadata: dict[str, str | None] = {}
    for key, pattern in _HEADER_PATTERNS:
        match = pattern.search(head)
        metadata[key] = _value(match.group(1)) if match else None
    inscriptions = [
        parse_inscription(text[m.end() : blocks[i + 1].start() if i + 1 < len(blocks) else None])
        for i, m in enumerate(blocks)
    ]
    return IndexPageResult(
        pageNumber=number, metadata=PageMetadata(**metadata), inscriptions=inscriptions
    )


def parse_index_text(text: str) -> list[IndexPageResult]:
    """Pages, their header and their `Ligne K:` blocks; a text without page markers is
    one page."""
    split = split_pages(text)
    if not split.pages:
        return [parse_index_page(1, split.preamble)] if split.preamble else []
    return [parse_index_page(number, body) for number, body in split.pages]
