"""The index's production text: written, read back, and the replaced system's text read."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from workers.pipelines.index_text import (
    parse_index_text,
    render_index_page,
    render_index_text,
)
from workers.pipelines.schema import IndexPageResult, Inscription, PageMetadata, Party


def inscription(**changes: object) -> Inscription:
    values: dict[str, object] = {
        "acte_publication_date": "1995-03-02",
        "acte_publication_number": "1 234 567",
        "acte_nature": "Vente",
        "parties": [Party(name="TREMBLAY, Marie", role="Vendeur")],
        "remarques": None,
        "radiation_number": None,
    }
    values.update(changes)
    return Inscription.model_validate(values)


def page(number: int = 1, *inscriptions: Inscription, **metadata: str | None) -> IndexPageResult:
    meta: dict[str, str | None] = {
        "circonscription": "Québec",
        "cadastre": "Cadastre du Québec",
        "lot_number": "2 345",
    }
    meta.update(metadata)
    return IndexPageResult(
        pageNumber=number, metadata=PageMetadata(**meta), inscriptions=list(inscriptions)
    )


def test_layout_of_a_page() -> None:
    text = render_index_text(
        [
            page(
                1,
                inscription(
                    parties=[
                        Party(name="TREMBLAY, Marie", role="Vendeur"),
                        Party(name="GAGNON, Jean", role="Acheteur"),
                    ],
                    remarques="Avis d'adresse\n 12 345",
                ),
            )
        ]
    )
    assert text.splitlines() == [
        "--- Page 1 ---",
        "Métadonnées de l'En-tête :",
        "Circonscription foncière : Québec",
        "Cadastre : Cadastre du Québec",
        "Lot : 2 345",
        "",
        "Données du Tableau :",
        "Ligne 1:",
        "Date de présentation d'inscription: 1995-03-02",
        "Numéro: 1 234 567",
        "Nature de l'acte: Vente",
        "Qualité: Vendeur ; Acheteur",
        "Nom des parties: TREMBLAY, Marie ; GAGNON, Jean",
        "Remarques: Avis d'adresse 12 345",
        "Radiations: [Vide]",
    ]


def test_unknown_header_lines_are_left_out_and_empty_pages_say_why() -> None:
    blank = render_index_page(page(2, lot_number=None, cadastre=None))
    assert "Lot :" not in blank
    assert "Cadastre :" not in blank
    assert blank.endswith("Aucune inscription.")
    assert render_index_page(page(2), illegible=True).endswith("Page illisible.")
    assert parse_index_text(render_index_text([page(2, lot_number=None)]))[0].metadata == (
        PageMetadata(circonscription="Québec", cadastre="Cadastre du Québec", lot_number=None)
    )


def test_missing_qualite_among_known_ones() -> None:
    parties = [Party(name="ROY, Sophie", role=""), Party(name="Banque Nationale", role="Créancier")]
    text = render_index_text([page(1, inscription(parties=parties))])
    assert "Qualité: [Vide] ; Créancier" in text
    assert parse_index_text(text)[0].inscriptions[0].parties == parties


_words = (
    st.text(alphabet=st.sampled_from("abcdéèêàçôABCDÉ0123456789 ,.-'()/"), min_size=1, max_size=20)
    .map(lambda s: " ".join(s.split()))
    .filter(bool)
)
_optional = st.none() | _words
_parties = st.lists(
    st.builds(Party, name=_words, role=st.just("") | _words), min_size=0, max_size=4
)
_inscriptions = st.builds(
    Inscription,
    acte_publication_date=_optional,
    acte_publication_number=_optional,
    acte_nature=_optional,
    parties=_parties,
    remarques=_optional,
    radiation_number=_optional,
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.builds(
                PageMetadata, circonscription=_optional, cadastre=_optional, lot_number=_optional
            ),
            st.lists(_inscriptions, max_size=5),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_render_then_parse_gives_the_same_pages(
    content: list[tuple[PageMetadata, list[Inscription]]],
) -> None:
    pages = [
        IndexPageResult(pageNumber=n, metadata=meta, inscriptions=rows)
        for n, (meta, rows) in enumerate(content, start=1)
    ]
    assert parse_index_text(render_index_text(pages)) == pages


def test_reads_the_replaced_systems_text() -> None:
    """Fields written with options and confidences, several parties as `Nème partie`."""
    text = """--- Page 1 ---
Métadonnées de l'En-tête :
Circonscription foncière : Montréal
Cadastre : Cité de Montréal (quartier Sainte-Marie)
Lot : 1358-176

Données du Tableau :
Ligne 1:
Date de présentation d'inscription: Option 1: 1972-05-04 (Confiance: 90%)
Numéro: Option 1: 2 345 678 (Confiance: 80%) Option 2: 2 345 679 (Confiance: 20%)
Nature de l'acte: Vente
Qualité: 1ere partie 2ième partie
Nom des parties: BEAUREGARD, Adrien LAVOIE, Jeanne
Remarques: [Vide]
Radiations: vide
--- Page 2 ---
Ligne 1:
Date de présentation d'inscription: 1980-01-02
Numéro: 123
Nature de l'acte: Testament
Qualité: Décédé
Nom des parties: BEAUREGARD, Adrien
"""
    pages = parse_index_text(text)
    assert [p.pageNumber for p in pages] == [1, 2]
    assert pages[0].metadata.lot_number == "1358-176"
    assert pages[0].metadata.cadastre == "Cité de Montréal (quartier Sainte-Marie)"
    first = pages[0].inscriptions[0]
    assert first.acte_publication_date == "1972-05-04"
    assert first.acte_publication_number == "2 345 678"
    assert first.remarques is None
    assert first.radiation_number is None
    assert first.parties == [
        Party(name="BEAUREGARD, Adrien", role="1ere partie"),
        Party(name="LAVOIE, Jeanne", role="2ième partie"),
    ]
    assert pages[1].metadata.circonscription is None
    assert pages[1].inscriptions[0].parties == [Party(name="BEAUREGARD, Adrien", role="Décédé")]
    assert pages[1].inscriptions[0].remarques is None


def test_text_without_page_markers_is_one_page() -> None:
    pages = parse_index_text("Ligne 1:\nNuméro: 42\n")
    assert len(pages) == 1
    assert pages[0].inscriptions[0].acte_publication_number == "42"
    assert parse_index_text("   ") == []
