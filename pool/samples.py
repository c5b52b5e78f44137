"""Sample land-registry PDFs (French text, several pages) for the demo and tests.

The text layer is real, so OCR results can be checked against what the PDFs contain.
"""

from __future__ import annotations

import random
from pathlib import Path

import pymupdf

_PARTIES = [
    "Tremblay, Marie",
    "Gagnon, Jean",
    "Roy, Sophie",
    "Côté, Louis",
    "Bouchard, Anne",
    "Gauthier, Pierre",
    "Caisse Desjardins de Lévis",
    "Banque Nationale du Canada",
]
_NATURES = ["Vente", "Hypothèque", "Quittance", "Servitude", "Déclaration de transmission"]
_PAGE_WIDTH, _PAGE_HEIGHT = 612, 792  # US Letter, points


def _fr(number: int) -> str:
    """1234567 → '1 234 567' (French thousands separator)."""
    return f"{number:,}".replace(",", " ")


INDEX_COLUMNS = ("date", "parties", "nature", "numero_publication", "radiation", "remarques")
"""The cells of a sample index line, in order, separated by " | " (empty cell: nothing)."""


def index_lines(seed: int, count: int) -> list[str]:
    """Lines of an index des immeubles page: date | parties | nature | publication
    number | radiation | remarks; about one in five lines carries a radiation."""
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
                    rng.choice(_PARTIES),
                    rng.choice(_NATURES),
                    _fr(rng.randint(1_000_000, 9_999_999)),
                    radiation,
                    f"lot {rng.randint(1000, 9999)}-{n}",
                )
            )
        )
    return lines


def acte_paragraphs(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    seller, buyer = rng.sample(_PARTIES, 2)
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


def write_pdf(path: Path, pages: list[list[str]]) -> None:
    """A PDF with one page per item of `pages`, each line of text on its own line."""
    doc = pymupdf.open()
    for lines in pages:
        page = doc.new_page(width=_PAGE_WIDTH, height=_PAGE_HEIGHT)
        y = 72.0
        for line in lines:
            page.insert_text((54, y), line, fontsize=9)
            y += 14
    doc.save(path)
    doc.close()


def write_samples(
    directory: Path, index_count: int, acte_count: int, seed: int = 0
) -> tuple[list[Path], list[Path]]:
    """Write `index-NN.pdf` (3 pages of tabular lines) and `acte-NN.pdf` (2 pages of deed
    text); another `seed` gives other contents (so the result cache does not answer)."""
    base = seed * 100_000
    directory.mkdir(parents=True, exist_ok=True)
    index_files, acte_files = [], []
    for n in range(index_count):
        path = directory / f"index-{n:02d}.pdf"
        write_pdf(path, [index_lines(base + n * 10 + page, 30) for page in range(3)])
        index_files.append(path)
    for n in range(acte_count):
        path = directory / f"acte-{n:02d}.pdf"
        write_pdf(path, [acte_paragraphs(base + n * 10 + page, 12) for page in range(2)])
        acte_files.append(path)
    return index_files, acte_files
