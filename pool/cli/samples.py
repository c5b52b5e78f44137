"""Sample land-registry PDFs (French text, several pages) for the demo, tests and benchmarks.

The text layer is real, so OCR results can be checked against what the PDFs contain.
Everything is deterministic per seed.

**Index pages** look like modern pages of the index des immeubles: three header lines

    Circonscription foncière : Québec
    Cadastre : Cadastre du Québec
    Lot : 1 234 567

then one row per inscription, its cells in `Inscription`'s field order (`INDEX_CELLS`)
separated by " | ":

    2004-03-17 | 11 234 567 | Vente | ROY, Sophie / Vendeur ; CÔTÉ, Louis / Acheteur |
    2005-01-09 | 11 802 113 | Hypothèque | Banque de Montréal / Créancier |  | 14 020 551
    2006-06-02 | 12 040 967 | Avis d'adresse | LAVOIE, Marc | Avis d'adresse no 482 114

date | publication number | nature | parties (`NAME, Prénom / Qualité`, separated by
" ; "; a party without a qualité is its name alone) | remarques | radiation number; an
absent value is an empty cell (trailing spaces dropped, as the text layer drops them).
A few rows per page are what a domain boost corrects (Hydro-Québec or Bell Canada
ceding a servitude under the nature "Vente", a bank as créancier with the nature
missing or abbreviated "Hyp."): `SampleIndexPage.boost_lines` lists them.

`sample_index_page(seed, rows)` is the structured view of a page (what a perfect reading
returns: `IndexPage(metadata, inscriptions, page_illisible=False)`), and
`index_page_lines(page)` its text lines, exactly as they are in the PDF's text layer.
`index_document(seed, pages, rows)` gives the pages of one document (one lot: the same
header on every page); `write_samples` writes those and deed texts (`acte_document`).

`index_lines` / `INDEX_COLUMNS` are the former flat rows, kept unchanged for tests that
only need French text on a page.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pymupdf

from workers.pipelines.schema import IndexPage, Inscription, PageMetadata, Party

INDEX_CELLS = tuple(Inscription.model_fields)
"""The cells of an index row, in order (`Inscription`'s fields)."""

_PAGE_WIDTH, _PAGE_HEIGHT = 612, 792  # US Letter, points
_LEFT, _TOP, _RIGHT_MARGIN, _BOTTOM_MARGIN = 54.0, 72.0, 36.0, 36.0
_FONT = "helv"
_MAX_FONT_SIZE, _MIN_FONT_SIZE = 9.0, 4.0
_LINE_SPACING = 14 / 9
"""Baseline to baseline, per point of font size (14 pt at 9 pt)."""

_PEOPLE = [
    ("TREMBLAY", "Marie"),
    ("GAGNON", "Jean"),
    ("ROY", "Sophie"),
    ("CÔTÉ", "Louis"),
    ("BOUCHARD", "Anne"),
    ("GAUTHIER", "Pierre"),
    ("MORIN", "Julie"),
    ("LAVOIE", "Marc"),
    ("FORTIN", "Isabelle"),
    ("GAGNÉ", "François"),
    ("OUELLET", "Hélène"),
    ("PELLETIER", "André"),
    ("BÉLANGER", "Chantal"),
    ("LÉVESQUE", "Étienne"),
    ("BERGERON", "Nathalie"),
    ("LEBLANC", "Denis"),
]
_BANKS = [
    "Caisse Desjardins de Lévis",
    "Banque Nationale du Canada",
    "Banque Royale du Canada",
    "La Banque Toronto-Dominion",
    "Banque de Montréal",
    "Caisse Desjardins de Québec",
]
_UTILITIES = ["Hydro-Québec", "Bell Canada"]
_CIRCONSCRIPTIONS = [
    "Québec",
    "Montréal",
    "Lévis",
    "Laval",
    "Sherbrooke",
    "Chicoutimi",
    "Trois-Rivières",
    "Rimouski",
    "Terrebonne",
    "Saint-Hyacinthe",
    "Beauce",
    "Drummond",
    "Portneuf",
    "Montmagny",
]
_DEED_PARTIES = [
    "Tremblay, Marie",
    "Gagnon, Jean",
    "Roy, Sophie",
    "Côté, Louis",
    "Bouchard, Anne",
    "Gauthier, Pierre",
    "Caisse Desjardins de Lévis",
    "Banque Nationale du Canada",
]


def _fr(number: int) -> str:
    """1234567 → '1 234 567' (French thousands separator)."""
    return f"{number:,}".replace(",", " ")


# --- index pages -----------------------------------------------------------------------


@dataclass(frozen=True)
class SampleIndexPage:
    """One sample index page: its header and its inscriptions, as a perfect reading
    returns them."""

    metadata: PageMetadata
    inscriptions: list[Inscription]
    boost_lines: tuple[int, ...] = ()
    """1-based rows a domain boost corrects (utility under "Vente", bank without nature)."""

    def as_index_page(self) -> IndexPage:
        """What the simulator answers for this page with the `IndexPage` schema."""
        return IndexPage(
            metadata=self.metadata, inscriptions=self.inscriptions, page_illisible=False
        )


def index_metadata(seed: int) -> PageMetadata:
    """The header of a sample index (one lot of the Cadastre du Québec)."""
    rng = random.Random(f"metadata:{seed}")
    return PageMetadata(
        circonscription=rng.choice(_CIRCONSCRIPTIONS),
        cadastre="Cadastre du Québec",
        lot_number=_fr(rng.randint(1_000_000, 6_999_999)),
    )


def _person(rng: random.Random) -> str:
    last, first = rng.choice(_PEOPLE)
    return f"{last}, {first}"


def _people(rng: random.Random, count: int) -> list[str]:
    return [f"{last}, {first}" for last, first in rng.sample(_PEOPLE, count)]


@dataclass(frozen=True)
class _Row:
    nature: str | None
    parties: list[Party]
    remarques: str | None = None
    radiated: bool = False
    boost: bool = False


def _vente(rng: random.Random) -> _Row:
    people = _people(rng, rng.choice([2, 2, 3]))
    split = rng.randint(1, len(people) - 1)
    parties = [Party(name=n, role="Vendeur") for n in people[:split]]
    parties += [Party(name=n, role="Acheteur") for n in people[split:]]
    remarques = rng.choice([None, None, None, "Droit de premier refus", "Partie du lot"])
    return _Row("Vente", parties, remarques)


def _hypotheque(rng: random.Random) -> _Row:
    parties = [Party(name=rng.choice(_BANKS), role="Créancier")]
    parties += [Party(name=n, role="Débiteur") for n in _people(rng, rng.randint(1, 2))]
    remarques = rng.choice([None, None, f"Montant : {_fr(rng.randint(50, 600) * 1000)} $"])
    return _Row("Hypothèque", parties, remarques, radiated=rng.random() < 0.5)


def _quittance(rng: random.Random) -> _Row:
    parties = [
        Party(name=rng.choice(_BANKS), role="Créancier"),
        Party(name=_person(rng), role="Débiteur"),
    ]
    return _Row("Quittance", parties, rng.choice([None, "Quittance totale"]))


def _servitude(rng: random.Random) -> _Row:
    parties = [
        Party(name=_person(rng), role="Cédant"),
        Party(name=rng.choice(_UTILITIES), role="Cessionnaire"),
    ]
    remarques = rng.choice([None, "Ligne de distribution", "Servitude de passage"])
    return _Row("Servitude", parties, remarques, radiated=rng.random() < 0.15)


def _transmission(rng: random.Random) -> _Row:
    (last, first), (_, heir) = rng.sample(_PEOPLE, 2)
    parties = [
        Party(name=f"{last}, {first}", role="Défunt"),
        Party(name=f"{last}, {heir}", role="Héritier"),
    ]
    return _Row("Déclaration de transmission", parties)


def _preavis(rng: random.Random) -> _Row:
    parties = [
        Party(name=rng.choice(_BANKS), role="Créancier"),
        Party(name=_person(rng), role="Débiteur"),
    ]
    return _Row("Préavis d'exercice", parties, radiated=rng.random() < 0.3)


def _avis_adresse(rng: random.Random) -> _Row:
    remarques = f"Avis d'adresse no {_fr(rng.randint(100_000, 999_999))}"
    return _Row("Avis d'adresse", [Party(name=_person(rng), role="")], remarques)


def _utility_sold(rng: random.Random) -> _Row:
    """A servitude to a utility written under the nature "Vente" (the boost fixes it)."""
    parties = [
        Party(name=_person(rng), role="Cédant"),
        Party(name=rng.choice(_UTILITIES), role="Cessionnaire"),
    ]
    return _Row("Vente", parties, None, boost=True)


def _bank_no_nature(rng: random.Random) -> _Row:
    """A hypothèque whose nature is missing or abbreviated (the boost fixes it)."""
    parties = [
        Party(name=rng.choice(_BANKS), role="Créancier"),
        Party(name=_person(rng), role="Débiteur"),
    ]
    return _Row(rng.choice([None, "Hyp."]), parties, None, boost=True)


_KINDS = [
    (_vente, 28),
    (_hypotheque, 22),
    (_quittance, 12),
    (_servitude, 8),
    (_transmission, 6),
    (_preavis, 4),
    (_avis_adresse, 6),
    (_utility_sold, 3),
    (_bank_no_nature, 3),
]
_BOOST_KINDS = [_utility_sold, _bank_no_nature]
_ALWAYS_BOOST_FROM = 6
"""Pages of at least this many rows have at least one boost row."""


def sample_index_page(
    seed: int, count: int, metadata: PageMetadata | None = None
) -> SampleIndexPage:
    """`count` inscriptions in date order under `metadata` (default: `index_metadata(seed)`)."""
    rng = random.Random(f"index:{seed}")
    kinds = rng.choices([kind for kind, _ in _KINDS], [w for _, w in _KINDS], k=count)
    if count >= _ALWAYS_BOOST_FROM and not any(kind in _BOOST_KINDS for kind in kinds):
        kinds[rng.randrange(count)] = rng.choice(_BOOST_KINDS)
    day = date(1985 + rng.randint(0, 20), 1, 1) + timedelta(days=rng.randint(0, 364))
    number = rng.randint(1_000_000, 3_000_000)
    inscriptions: list[Inscription] = []
    boost: list[int] = []
    for n, kind in enumerate(kinds, start=1):
        row = kind(rng)
        day += timedelta(days=rng.randint(5, 150))
        number += rng.randint(5_000, 900_000)
        radiation = _fr(number + rng.randint(10_000, 5_000_000)) if row.radiated else None
        inscriptions.append(
            Inscription(
                acte_publication_date=day.isoformat(),
                acte_publication_number=_fr(number),
                acte_nature=row.nature,
                parties=row.parties,
                remarques=row.remarques,
                radiation_number=radiation,
            )
        )
        if row.boost:
            boost.append(n)
    return SampleIndexPage(metadata or index_metadata(seed), inscriptions, tuple(boost))


def index_document(seed: int, pages: int, count: int) -> list[SampleIndexPage]:
    """The pages of one index document: the same header (lot) on every page, page p
    (0-based) being `sample_index_page(seed + p, count, index_metadata(seed))`."""
    metadata = index_metadata(seed)
    return [sample_index_page(seed + p, count, metadata) for p in range(pages)]


def header_lines(metadata: PageMetadata) -> list[str]:
    return [
        f"Circonscription foncière : {metadata.circonscription or ''}".rstrip(),
        f"Cadastre : {metadata.cadastre or ''}".rstrip(),
        f"Lot : {metadata.lot_number or ''}".rstrip(),
    ]


def _party(party: Party) -> str:
    return f"{party.name} / {party.role}" if party.role else party.name


def inscription_line(inscription: Inscription) -> str:
    """The row as printed: cells in `INDEX_CELLS` order, trailing spaces dropped."""
    cells: list[str] = []
    for name in INDEX_CELLS:
        value = getattr(inscription, name)
        if isinstance(value, list):
            cells.append(" ; ".join(_party(p) for p in value))
        else:
            cells.append("" if value is None else str(value))
    return " | ".join(cells).rstrip()


def index_page_lines(page: SampleIndexPage) -> list[str]:
    """The page's text lines: header, then one row per inscription."""
    return header_lines(page.metadata) + [inscription_line(i) for i in page.inscriptions]


# --- the former flat rows ----------------------------------------------------------------

INDEX_COLUMNS = ("date", "parties", "nature", "numero_publication", "radiation", "remarques")
"""The cells of an `index_lines` line, in order (the former flat format)."""
_NATURES = ["Vente", "Hypothèque", "Quittance", "Servitude", "Déclaration de transmission"]


def index_lines(seed: int, count: int) -> list[str]:
    """The former flat sample rows, unchanged (date | parties | nature | publication
    number | radiation | remarks; short enough for 9 pt): French text for tests of PDFs
    and of the pool that do not read index structure. Index pages are
    `sample_index_page` / `index_page_lines`."""
    rng = random.Random(seed)
    lines = []
    for n in range(count):
        day = rng.randint(1, 28)
        year = 1990 + rng.randint(0, 30)
        radiation = ""
        if rng.random() < 0.2:
            radiation = f"Radiée le {year + 3}-{rng.randint(1, 12):02d}-01"
        lines.append(
            " | ".join(
                (
                    f"{year}-{rng.randint(1, 12):02d}-{day:02d}",
                    rng.choice(_DEED_PARTIES),
                    rng.choice(_NATURES),
                    _fr(rng.randint(1_000_000, 9_999_999)),
                    radiation,
                    f"lot {rng.randint(1000, 9999)}-{n}",
                )
            )
        )
    return lines


# --- actes -----------------------------------------------------------------------------


def acte_paragraphs(seed: int, count: int) -> list[str]:
    """One page of deed text: the opening of a deed of sale, then numbered clauses."""
    rng = random.Random(seed)
    seller, buyer = rng.sample(_DEED_PARTIES, 2)
    price = rng.randint(80, 900) * 1000
    lot = rng.randint(1_000_000, 6_999_999)
    base = [
        f"PAR-DEVANT Me {rng.choice(['Lavoie', 'Fortin', 'Morin'])}, notaire à Québec.",
        f"COMPARAISSENT : {seller}, ci-après le vendeur, et {buyer}, ci-après l'acheteur.",
        f"OBJET : le lot {_fr(lot)} du cadastre du Québec, circonscription foncière de Québec.",
        f"PRIX : {_fr(price)} $ payé comptant.",
    ]
    while len(base) < count:
        base.append(
            f"Clause {len(base) - 3} : le vendeur déclare que l'immeuble est libre de "
            "toute charge, sauf les servitudes apparentes."
        )
    return base


_CLAUSES = [
    "le vendeur déclare que l'immeuble est libre de toute charge, sauf les servitudes apparentes.",
    "l'acheteur prend l'immeuble dans l'état où il se trouve, déclarant l'avoir vu et examiné.",
    "les taxes foncières sont réparties entre les parties à la date des présentes.",
    "le vendeur remet à l'acheteur les titres et le certificat de localisation.",
    "l'acheteur paie les frais et honoraires du présent acte et de sa publication.",
    "les parties font élection de domicile à leur adresse respective indiquée ci-dessus.",
]


def acte_document(seed: int, pages: int, paragraphs: int) -> list[list[str]]:
    """A deed of sale over `pages` pages of `paragraphs` lines each: the opening on
    page 1, clauses numbered on across pages, the closing on the last page."""
    rng = random.Random(f"acte:{seed}")
    opening = acte_paragraphs(seed, 4)
    closing = [
        f"DONT ACTE à Québec, sous le numéro {rng.randint(1000, 29_999)} des minutes du notaire.",
        "LECTURE FAITE, les parties signent avec et en présence du notaire.",
    ]
    clauses = rng.sample(_CLAUSES, len(_CLAUSES))
    body = [*opening]
    while len(body) < pages * paragraphs - len(closing):
        number = len(body) - len(opening) + 1
        body.append(f"Clause {number} : {clauses[(number - 1) % len(clauses)]}")
    body += closing
    pages_text = [body[p * paragraphs : (p + 1) * paragraphs] for p in range(pages - 1)]
    return [*pages_text, body[(pages - 1) * paragraphs :]]


# --- PDFs ------------------------------------------------------------------------------


def font_size(
    lines: Iterable[str], width: float = _PAGE_WIDTH, height: float = _PAGE_HEIGHT
) -> float:
    """The size (≤ 9 pt, a multiple of 0.25) at which every line fits on the page."""
    lines = list(lines)
    room = width - _LEFT - _RIGHT_MARGIN
    widest = max((pymupdf.get_text_length(line, _FONT, 1.0) for line in lines), default=0.0)
    size = _MAX_FONT_SIZE if widest == 0 else min(_MAX_FONT_SIZE, room / widest)
    if len(lines) > 1:
        size = min(size, (height - _TOP - _BOTTOM_MARGIN) / ((len(lines) - 1) * _LINE_SPACING))
    size = int(size * 4) / 4
    if size < _MIN_FONT_SIZE:
        raise ValueError(f"{len(lines)} lines this long do not fit on a page")
    return size


def write_pdf(path: Path, pages: list[list[str]]) -> None:
    """A PDF with one page per item of `pages`, each line of text on its own line (9 pt,
    or smaller when a page's lines would not fit: its text layer is those lines)."""
    doc = pymupdf.open()
    for lines in pages:
        page = doc.new_page(width=_PAGE_WIDTH, height=_PAGE_HEIGHT)
        size = font_size(lines)
        y = _TOP
        for line in lines:
            page.insert_text((_LEFT, y), line, fontsize=size, fontname=_FONT)
            y += size * _LINE_SPACING
    doc.save(path)
    doc.close()


def document_seed(seed: int, n: int) -> int:
    """The seed of the `n`-th document `write_samples(..., seed)` writes: index document
    n is `index_document(document_seed(seed, n), …)`, acte document n is
    `acte_document(document_seed(seed, n) + 500, …)`."""
    return seed * 10_000_000 + n * 1000


def write_samples(
    directory: Path,
    index_count: int,
    acte_count: int,
    seed: int = 0,
    *,
    index_pages: int = 3,
    acte_pages: int = 2,
    index_rows: int = 30,
    acte_paragraphs_per_page: int = 12,
) -> tuple[list[Path], list[Path]]:
    """Write `index-NN.pdf` (`index_pages` pages of `index_rows` inscriptions under one
    header) and `acte-NN.pdf` (`acte_pages` pages of deed text); another `seed` gives
    other contents (so the result cache does not answer). See `document_seed`."""
    if not 0 < index_pages <= 500 or not 0 < acte_pages <= 500:
        raise ValueError("a sample document has 1 to 500 pages")
    directory.mkdir(parents=True, exist_ok=True)
    index_files, acte_files = [], []
    for n in range(index_count):
        path = directory / f"index-{n:02d}.pdf"
        pages = index_document(document_seed(seed, n), index_pages, index_rows)
        write_pdf(path, [index_page_lines(page) for page in pages])
        index_files.append(path)
    for n in range(acte_count):
        path = directory / f"acte-{n:02d}.pdf"
        write_pdf(
            path,
            acte_document(document_seed(seed, n) + 500, acte_pages, acte_paragraphs_per_page),
        )
        acte_files.append(path)
    return index_files, acte_files
