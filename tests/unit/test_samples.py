"""pool.cli.samples: realistic index pages (header, inscriptions with parties and qualités) and
deeds, deterministic per seed, whose lines are exactly the PDFs' text layer."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from gemini_simulator.media import open_pdf
from pool.cli.samples import (
    INDEX_CELLS,
    acte_document,
    document_seed,
    index_document,
    index_page_lines,
    inscription_line,
    sample_index_page,
    write_pdf,
    write_samples,
)
from workers.pipelines.schema import Inscription, Party

PUBLICATION_NUMBER = re.compile(r"\d{1,3}( \d{3})+")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
UTILITIES = {"Hydro-Québec", "Bell Canada"}
ROLES = {
    "Vente": {"Vendeur", "Acheteur"},
    "Hypothèque": {"Créancier", "Débiteur"},
    "Quittance": {"Créancier", "Débiteur"},
    "Servitude": {"Cédant", "Cessionnaire"},
    "Déclaration de transmission": {"Défunt", "Héritier"},
    "Préavis d'exercice": {"Créancier", "Débiteur"},
    "Avis d'adresse": {""},
}


def text_layer(path: Path) -> list[list[str]]:
    """Each page's text lines as pymupdf reads them (trailing spaces dropped)."""
    doc = open_pdf(path.read_bytes())
    try:
        return [
            [line.rstrip() for line in str(page.get_text()).splitlines() if line.strip()]
            for page in doc
        ]
    finally:
        doc.close()


def test_cells_are_the_inscription_fields_in_order() -> None:
    assert tuple(Inscription.model_fields) == INDEX_CELLS
    line = inscription_line(
        Inscription(
            acte_publication_date="2001-05-04",
            acte_publication_number="1 234 567",
            acte_nature=None,
            parties=[Party(name="ROY, Sophie", role="Vendeur"), Party(name="X", role="")],
            remarques=None,
            radiation_number=None,
        )
    )
    assert line == "2001-05-04 | 1 234 567 |  | ROY, Sophie / Vendeur ; X |  |"


def test_a_page_is_deterministic_per_seed_and_differs_between_seeds() -> None:
    assert sample_index_page(4, 20) == sample_index_page(4, 20)
    assert index_page_lines(sample_index_page(4, 20)) != index_page_lines(sample_index_page(5, 20))
    page = sample_index_page(4, 20)
    assert index_page_lines(page)[:3] == [
        f"Circonscription foncière : {page.metadata.circonscription}",
        "Cadastre : Cadastre du Québec",
        f"Lot : {page.metadata.lot_number}",
    ]
    assert index_page_lines(page)[3:] == [inscription_line(i) for i in page.inscriptions]
    assert PUBLICATION_NUMBER.fullmatch(page.metadata.lot_number or "")


def test_inscriptions_are_realistic_and_some_need_the_boost() -> None:
    pages = [sample_index_page(seed, 30) for seed in range(20)]
    natures: Counter[str | None] = Counter()
    radiated = without_remarques = 0
    for page in pages:
        assert page.boost_lines, "every page of 6 rows or more has a row to boost"
        dates = [i.acte_publication_date or "" for i in page.inscriptions]
        assert dates == sorted(dates)
        for n, inscription in enumerate(page.inscriptions, start=1):
            assert DATE.fullmatch(inscription.acte_publication_date or "")
            assert PUBLICATION_NUMBER.fullmatch(inscription.acte_publication_number or "")
            assert inscription.parties
            roles = {party.role for party in inscription.parties}
            names = {party.name for party in inscription.parties}
            natures[inscription.acte_nature] += 1
            if inscription.radiation_number is not None:
                radiated += 1
                assert PUBLICATION_NUMBER.fullmatch(inscription.radiation_number)
            without_remarques += inscription.remarques is None
            if n in page.boost_lines:
                utility_sold = inscription.acte_nature == "Vente" and names & UTILITIES
                bank_unnamed = inscription.acte_nature in (None, "Hyp.") and "Créancier" in roles
                assert utility_sold or bank_unnamed, inscription
            else:
                assert inscription.acte_nature is not None
                assert roles <= ROLES[inscription.acte_nature], inscription
                if inscription.acte_nature == "Servitude":
                    assert names & UTILITIES
    assert set(ROLES) <= set(natures)
    assert 0 < radiated < sum(natures.values()) / 2
    assert without_remarques > sum(natures.values()) / 3


def test_a_document_has_one_header_on_every_page() -> None:
    pages = index_document(70, 3, 12)
    assert [p.metadata for p in pages] == [pages[0].metadata] * 3
    assert pages[0] == sample_index_page(70, 12)
    assert pages[1].inscriptions == sample_index_page(71, 12).inscriptions
    assert len({inscription_line(p.inscriptions[0]) for p in pages}) == 3


def test_write_samples_text_layer_is_exactly_the_lines(tmp_path: Path) -> None:
    index_files, acte_files = write_samples(tmp_path, 2, 2, seed=3, index_pages=4, acte_pages=3)
    assert [p.name for p in index_files] == ["index-00.pdf", "index-01.pdf"]
    for n, path in enumerate(index_files):
        expected = index_document(document_seed(3, n), 4, 30)
        assert text_layer(path) == [index_page_lines(page) for page in expected]
    for n, path in enumerate(acte_files):
        pages = text_layer(path)
        assert pages == acte_document(document_seed(3, n) + 500, 3, 12)
        assert pages[0][0].startswith("PAR-DEVANT Me ")
        assert pages[-1][-1].startswith("LECTURE FAITE")
        clauses = [
            int(line.split()[1]) for page in pages for line in page if line.startswith("Clause")
        ]
        assert clauses == list(range(1, len(clauses) + 1))  # numbered on across pages
    again = write_samples(tmp_path / "again", 2, 2, seed=3, index_pages=4, acte_pages=3)
    assert text_layer(again[0][1]) == text_layer(index_files[1])
    other = write_samples(tmp_path / "other", 1, 0, seed=4)
    assert text_layer(other[0][0]) != text_layer(index_files[0])[:3]
    assert len(text_layer(other[0][0])) == 3  # the defaults: 3 index pages


@pytest.mark.parametrize("rows", [1, 30, 45])
def test_long_and_many_lines_still_fit_the_page(tmp_path: Path, rows: int) -> None:
    pages = [index_page_lines(sample_index_page(seed, rows)) for seed in range(8)]
    path = tmp_path / "dense.pdf"
    write_pdf(path, pages)
    assert text_layer(path) == pages


def test_a_line_too_long_for_any_font_size_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="do not fit"):
        write_pdf(tmp_path / "x.pdf", [["x" * 1000]])
