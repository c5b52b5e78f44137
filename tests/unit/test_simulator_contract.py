"""Pure parts of the simulator's answer contract: the output cap, page markers,
continuation requests, header lines, nested rows and line windows in schema instances."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from gemini_simulator import answers, lines, output, schema
from gemini_simulator.config import ConfigError, SimulatorConfig
from gemini_simulator.continuation import MARKER, partial_of, remainder
from gemini_simulator.errors import ApiError
from gemini_simulator.wire import parse_generate_request
from pool.cli.samples import (
    index_page_lines,
    inscription_line,
    sample_index_page,
)
from workers.pipelines.schema import IndexPage, Inscription, PageMetadata, Party


# --- output cap ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("requested", "model_limit", "cap"),
    [(None, 0, None), (100, 0, 100), (None, 50, 50), (100, 50, 50), (30, 50, 30), (0, 0, None)],
)
def test_the_cap_is_the_smaller_positive_limit(
    requested: int | None, model_limit: int, cap: int | None
) -> None:
    assert output.effective_cap(requested, model_limit) == cap


def test_an_answer_over_the_cap_is_cut_to_cap_times_four_characters() -> None:
    text = "x" * 41  # 11 tokens
    cut = output.capped(text, 10)
    assert (cut.text, cut.finish_reason, cut.tokens) == ("x" * 40, "MAX_TOKENS", 10)
    assert output.capped(text, 11) == output.Output(text, "STOP", 11)
    assert output.capped(text, None) == output.Output(text, "STOP", 11)
    structured = output.capped('{"a": "bcdefgh"}', 2)
    assert (structured.text, structured.finish_reason) == ('{"a": "b', "MAX_TOKENS")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300), st.integers(1, 100))
def test_cut_text_is_a_prefix_within_the_cap(text: str, cap: int) -> None:
    sent = output.capped(text, cap)
    assert text.startswith(sent.text)
    assert sent.tokens == math.ceil(len(sent.text) / 4) <= cap
    assert (sent.finish_reason == "MAX_TOKENS") == (math.ceil(len(text) / 4) > cap)
    assert (sent.text == text) == (sent.finish_reason == "STOP")


def _body(generation_config: dict[str, Any]) -> dict[str, Any]:
    return {"contents": [{"parts": [{"text": "x"}]}], "generationConfig": generation_config}


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, None),
        ({"maxOutputTokens": 64}, 64),
        ({"max_output_tokens": 64}, 64),
        ({"maxOutputTokens": "64"}, 64),  # int32 as protobuf JSON may write it
        ({"maxOutputTokens": 0}, None),
    ],
)
def test_max_output_tokens_is_read(config: dict[str, Any], expected: int | None) -> None:
    assert parse_generate_request(_body(config)).max_output_tokens == expected


@pytest.mark.parametrize("bad", [-1, "many", 1.5, True])
def test_a_wrong_max_output_tokens_is_a_400(bad: Any) -> None:
    with pytest.raises(ApiError) as refused:
        parse_generate_request(_body({"maxOutputTokens": bad}))
    assert (refused.value.code, refused.value.status) == (400, "INVALID_ARGUMENT")
    assert "max_output_tokens" in refused.value.message


def test_max_output_tokens_setting_is_a_runtime_integer() -> None:
    config = SimulatorConfig()
    assert config.max_output_tokens == 0
    assert config.updated({"max_output_tokens": 300}).max_output_tokens == 300
    assert config.runtime_view()["max_output_tokens"] == 0
    with pytest.raises(ConfigError, match="max_output_tokens"):
        config.updated({"max_output_tokens": -5})
    with pytest.raises(ConfigError, match="integer"):
        config.updated({"max_output_tokens": 2.5})


# --- page markers --------------------------------------------------------------------------
class PagesReader:
    def __init__(self, pages: list[str]) -> None:
        self.pages = pages

    def pdf_pages(self, data: bytes) -> list[str]:
        return self.pages

    def recognise(self, data: bytes) -> tuple[str, str] | None:
        return None


def _request(*parts: dict[str, Any], config: dict[str, Any] | None = None) -> Any:
    body: dict[str, Any] = {"contents": [{"role": "user", "parts": list(parts)}]}
    if config is not None:
        body["generationConfig"] = config
    return parse_generate_request(body)


PDF = {"inlineData": {"mimeType": "application/pdf", "data": "JVBERg=="}}


def test_pdf_pages_are_marked_and_separated_by_a_blank_line() -> None:
    assert answers.mark_pages(["a\nb", "", "c"]) == (
        "--- Page 1 ---\na\nb\n\n--- Page 2 ---\n\n--- Page 3 ---\nc"
    )
    derived = answers.derive(_request({"text": "Transcris."}, PDF), PagesReader(["un", "deux"]))
    assert derived.text == "--- Page 1 ---\nun\n\n--- Page 2 ---\ndeux"
    assert derived.content.text == "un\n\ndeux"  # schema instances see no marker
    # Each PDF is numbered from 1.
    two = answers.derive(_request(PDF, PDF), PagesReader(["p"]))
    assert two.text == "--- Page 1 ---\np\n\n--- Page 1 ---\np"


# --- continuation --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "partial"),
    [
        (f"{MARKER}\nDébut de la réponse", "Début de la réponse"),
        (f"{MARKER}\r\nabc\ndef", "abc\ndef"),
        (f"{MARKER}\n", ""),
        (MARKER, ""),
        (f"{MARKER} \nabc", None),  # not exactly the marker line
        (f"Suite :\n{MARKER}\nabc", None),  # not the first line
        ("--- DEJA TRANSCRIT ---\nabc", None),
    ],
)
def test_a_continuation_part_is_recognised_by_its_first_line(
    text: str, partial: str | None
) -> None:
    assert partial_of(text) == partial


def test_remainder_after_a_prefix_a_retouched_partial_or_a_stranger() -> None:
    full = "Ligne un\n" + "".join(f"Ligne {n} : texte de la ligne.\n" for n in range(2, 20))
    assert remainder(full, "") == full
    assert remainder(full, full[:13]) == full[13:]
    assert remainder(full, full) == ""
    # The client changed the beginning: the partial's last 200 characters place it.
    assert remainder(full, "LIGNE UN\n" + full[9:300]) == full[300:]
    assert remainder(full, "ligne un\n" + full[9:150]) == full  # tail = all of it: unknown
    assert remainder(full, "rien de tout cela") == full


def test_remainder_takes_the_occurrence_nearest_to_where_the_partial_ends() -> None:
    clause = "Clause : libre de toute charge.\n"  # 32 characters
    full = "PAR-DEVANT Me Roy.\n" + clause * 10 + "FIN"
    # The partial differs at its start, so only its tail can place it; the tail occurs
    # after every clause from the 7th on: the one where the partial ends is taken, not
    # the first or the last occurrence.
    partial = "PAR-DEVANT Me R0y.\n" + clause * 7
    assert remainder(full, partial) == clause * 3 + "FIN"
    shorter = "PAR-DEVANT\n" + clause * 7  # 8 characters shorter: still the 7th
    assert remainder(full, shorter) == clause * 3 + "FIN"


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="ab \n|", max_size=400), st.data())
def test_partial_then_remainder_is_the_whole_answer(full: str, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(full)))
    assert full[:cut] + remainder(full, full[:cut]) == full


def test_a_continuation_part_is_not_content() -> None:
    long_partial = "x" * 500
    request = _request(
        {"text": "Corrige :"},
        {"text": "ligne  un\nligne deux"},
        {"text": f"{MARKER}\n{long_partial}"},
    )
    derived = answers.derive(request, PagesReader([]))
    assert derived.text == "ligne un\nligne deux"  # not the longer continuation part
    assert answers.continued_from(request) == long_partial
    assert answers.continued_from(_request({"text": "x"})) is None
    last = _request({"text": f"{MARKER}\nfirst"}, {"text": f"{MARKER}\nsecond"})
    assert answers.continued_from(last) == "second"
    # Blobs plus a continuation part: the PDF is the content, as in the first request.
    with_pdf = _request({"text": "Transcris."}, PDF, {"text": f"{MARKER}\n--- Page 1 ---"})
    assert answers.derive(with_pdf, PagesReader(["p"])).text == "--- Page 1 ---\np"


# --- the index page schema -----------------------------------------------------------------
# What google-genai 3.4 sends as `responseSchema` for workers.pipelines.schema.IndexPage
# (captured; descriptions and titles left out).
INDEX_OPENAPI: dict[str, Any] = {
    "properties": {
        "metadata": {
            "properties": {
                "circonscription": {"nullable": True, "type": "STRING"},
                "cadastre": {"nullable": True, "type": "STRING"},
                "lot_number": {"nullable": True, "type": "STRING"},
            },
            "property_ordering": ["circonscription", "cadastre", "lot_number"],
            "required": ["circonscription", "cadastre", "lot_number"],
            "type": "OBJECT",
        },
        "inscriptions": {
            "items": {
                "properties": {
                    "acte_publication_date": {"nullable": True, "type": "STRING"},
                    "acte_publication_number": {"nullable": True, "type": "STRING"},
                    "acte_nature": {"nullable": True, "type": "STRING"},
                    "parties": {
                        "items": {
                            "properties": {
                                "name": {"type": "STRING"},
                                "role": {"type": "STRING"},
                            },
                            "property_ordering": ["name", "role"],
                            "required": ["name", "role"],
                            "type": "OBJECT",
                        },
                        "type": "ARRAY",
                    },
                    "remarques": {"nullable": True, "type": "STRING"},
                    "radiation_number": {"nullable": True, "type": "STRING"},
                },
                "property_ordering": [
                    "acte_publication_date",
                    "acte_publication_number",
                    "acte_nature",
                    "parties",
                    "remarques",
                    "radiation_number",
                ],
                "required": [
                    "acte_publication_date",
                    "acte_publication_number",
                    "acte_nature",
                    "parties",
                    "remarques",
                    "radiation_number",
                ],
                "type": "OBJECT",
            },
            "type": "ARRAY",
        },
        "page_illisible": {"type": "BOOLEAN"},
    },
    "property_ordering": ["metadata", "inscriptions", "page_illisible"],
    "required": ["metadata", "inscriptions", "page_illisible"],
    "type": "OBJECT",
}
SCHEMAS = pytest.mark.parametrize(
    "raw",
    [INDEX_OPENAPI, IndexPage.model_json_schema()],
    ids=["responseSchema", "responseJsonSchema"],
)

PAGE_TEXT = """\
Circonscription foncière : Trois-Rivières
Cadastre : Cadastre du Québec
Lot : 1 234 567
2001-05-04 | 11 234 567 | Vente | ROY, Sophie / Vendeur ; CÔTÉ, Louis / Acheteur |  |
2002-01-09 | 11 902 113 |  | Banque de Montréal / Créancier ; CÔTÉ, Louis |  | 12 020 551
2003-02-10 | 12 101 000 | Avis d'adresse | LAVOIE, Marc | Avis no 4 | x | y
"""


def _index_page(raw: dict[str, Any], content: schema.Content) -> IndexPage:
    node = schema.parse_schema(raw)
    value = schema.instance(node, content)
    assert schema.conforms(node, value)
    return IndexPage.model_validate(value)


@SCHEMAS
def test_index_page_header_rows_and_parties(raw: dict[str, Any]) -> None:
    page = _index_page(raw, schema.Content(PAGE_TEXT))
    assert page.metadata == PageMetadata(
        circonscription="Trois-Rivières", cadastre="Cadastre du Québec", lot_number="1 234 567"
    )
    assert page.page_illisible is False
    assert page.inscriptions == [
        Inscription(
            acte_publication_date="2001-05-04",
            acte_publication_number="11 234 567",
            acte_nature="Vente",
            parties=[
                Party(name="ROY, Sophie", role="Vendeur"),
                Party(name="CÔTÉ, Louis", role="Acheteur"),
            ],
            remarques=None,
            radiation_number=None,
        ),
        Inscription(
            acte_publication_date="2002-01-09",
            acte_publication_number="11 902 113",
            acte_nature=None,
            parties=[
                Party(name="Banque de Montréal", role="Créancier"),
                Party(name="CÔTÉ, Louis", role=""),  # no qualité: "" (not nullable)
            ],
            remarques=None,
            radiation_number="12 020 551",
        ),
        Inscription(
            acte_publication_date="2003-02-10",
            acte_publication_number="12 101 000",
            acte_nature="Avis d'adresse",
            parties=[Party(name="LAVOIE, Marc", role="")],
            remarques="Avis no 4",
            radiation_number="x | y",  # surplus cells join the last scalar
        ),
    ]


@SCHEMAS
def test_line_window_keeps_rows_x_to_y_and_the_header(raw: dict[str, Any]) -> None:
    whole = _index_page(raw, schema.Content(PAGE_TEXT))
    for window, rows in [((2, 3), slice(1, 3)), ((3, 9), slice(2, 3)), ((5, 9), slice(0, 0))]:
        page = _index_page(raw, schema.Content(PAGE_TEXT, window=window))
        assert page.metadata == whole.metadata
        assert page.inscriptions == whole.inscriptions[rows]


@SCHEMAS
def test_no_header_no_rows_and_illegible(raw: dict[str, Any]) -> None:
    only_rows = _index_page(raw, schema.Content("2001 | 1 | Vente | A / B"))
    assert only_rows.metadata == PageMetadata(circonscription=None, cadastre=None, lot_number=None)
    assert only_rows.inscriptions[0].parties == [Party(name="A", role="B")]
    assert _index_page(raw, schema.Content("", illegible=True)) == IndexPage(
        metadata=PageMetadata(circonscription=None, cadastre=None, lot_number=None),
        inscriptions=[],
        page_illisible=True,
    )


def test_header_keys_fold_case_accents_and_tokens() -> None:
    assert lines.header_of("Circonscription foncière : Québec") == lines.Header(
        "circonscription", "Québec"
    )
    assert lines.header_of("ÉTAT : à jour") == lines.Header("etat", "à jour")
    assert lines.header_of("a | b : c") is None  # a row, not a header
    assert lines.header_of("Lot: 12") is None  # " : " only
    assert lines.property_key("lot_number") == "lot"
    assert lines.property_key("État_civil") == "etat"
    raw = {
        "type": "object",
        "properties": {
            "entete": {
                "type": "object",
                "properties": {
                    "etat": {"type": "string"},  # not nullable: "" when missing
                    "lot_number": {"type": "string"},
                    "pages": {"type": "integer"},
                    "absent": {"type": "string"},
                },
            },
            "texte": {"type": "string"},
        },
    }
    text = "Lot : 9\nÉtat : neuf\nLot : 10\nPages : 3 pages"
    assert schema.instance(schema.parse_schema(raw), schema.Content(text)) == {
        "entete": {"etat": "neuf", "lot_number": "9", "pages": 3, "absent": ""},
        "texte": text,  # a top-level string is still the whole content
    }


def test_rows_are_the_table_lines_when_there_are_some() -> None:
    content = schema.Content("Titre : x\nune ligne\na | b\n\nc |\n")
    assert content.rows == ["a | b", "c |"]
    assert schema.Content("Titre : x\nune ligne\n\n").rows == ["Titre : x", "une ligne"]
    assert schema.Content("a | b\nc | d\ne | f", window=(2, 2)).rows == ["c | d"]
    assert schema.Content("a | b\nc | d", window=(0, 1)).rows == ["a | b"]
    assert schema.Content("a | b\nc | d", window=(2, 1)).rows == []


def test_cells_of_arrays_items_and_surplus() -> None:
    class Item(BaseModel):
        name: str
        role: str | None
        flag: bool

    class Row(BaseModel):
        tags: list[str]
        first: str
        items: list[Item]
        n: int | None
        last: str

    class Doc(BaseModel):
        rows: list[Row]

    node = schema.parse_schema(Doc.model_json_schema())
    text = "a ; b ;  ; c | un | X / r / s ; Y | 7 | fin | encore\n | deux |  | | \n"
    assert Doc.model_validate(schema.instance(node, schema.Content(text))) == Doc(
        rows=[
            Row(
                tags=["a", "b", "c"],
                first="un",
                items=[
                    Item(name="X", role="r / s", flag=False),
                    Item(name="Y", role=None, flag=False),
                ],
                n=7,
                last="fin | encore",
            ),
            Row(tags=[], first="deux", items=[], n=None, last=""),
        ]
    )


def test_surplus_joins_the_last_scalar_even_before_an_array() -> None:
    raw = {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {
                "a": {"type": "string"},
                "b": {"type": "string"},
                "list": {"type": "array", "items": {"type": "string"}},
            },
        },
    }
    value = schema.instance(schema.parse_schema(raw), schema.Content("1 | 2 | 3 | x ; y"))
    assert value == [{"a": "1", "b": "2 | 3", "list": ["x", "y"]}]


@pytest.mark.parametrize(
    ("prompt", "window"),
    [
        ("Transcris les lignes 3 à 5 de la page.", (3, 5)),
        ("LIGNES 10\n À  12", (10, 12)),
        ("les lignes 3 et 5", None),
        ("lignes 3 a 5", None),
    ],
)
def test_line_window_from_the_prompt(prompt: str, window: tuple[int, int] | None) -> None:
    assert answers.line_window([prompt]) == window
    derived = answers.derive(_request({"text": prompt}, PDF), PagesReader(["a | b"]))
    assert derived.content.window == window


def test_the_content_itself_sets_no_window() -> None:
    text_only = _request({"text": "Corrige."}, {"text": "a | b\nvoir les lignes 1 à 1 | c"})
    assert answers.derive(text_only, PagesReader([])).content.window is None
    windowed = _request({"text": "lignes 2 à 2"}, {"text": "a | b\nc | d\ne | f"})
    derived = answers.derive(windowed, PagesReader([]))
    assert derived.content.rows == ["c | d"]
    continuation = _request(PDF, {"text": f"{MARKER}\nlignes 1 à 1"})
    assert answers.derive(continuation, PagesReader(["a | b"])).content.window is None


# --- the samples read back -----------------------------------------------------------------
@SCHEMAS
@pytest.mark.parametrize("seed", [0, 1, 7, 123])
def test_a_sample_index_page_reads_back_as_its_structured_view(
    raw: dict[str, Any], seed: int
) -> None:
    page = sample_index_page(seed, 30)
    content = schema.Content("\n".join(index_page_lines(page)))
    assert _index_page(raw, content) == page.as_index_page()
    windowed = _index_page(raw, schema.Content(content.text, window=(11, 20)))
    assert windowed.inscriptions == page.inscriptions[10:20]
    assert windowed.metadata == page.metadata


_WORD = st.text(alphabet="abcdéÉ,.'-0123456789", min_size=1, max_size=8)
_VALUE = st.lists(_WORD, min_size=1, max_size=3).map(" ".join)
_OPTIONAL = st.one_of(st.none(), _VALUE)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.builds(
            Inscription,
            acte_publication_date=_OPTIONAL,
            acte_publication_number=_OPTIONAL,
            acte_nature=_OPTIONAL,
            parties=st.lists(st.builds(Party, name=_VALUE, role=st.one_of(st.just(""), _VALUE))),
            remarques=_OPTIONAL,
            radiation_number=_OPTIONAL,
        ),
        min_size=1,
        max_size=6,
    )
)
def test_any_inscription_line_reads_back(inscriptions: list[Inscription]) -> None:
    text = "\n".join(inscription_line(i) for i in inscriptions)
    page = _index_page(INDEX_OPENAPI, schema.Content(text))
    assert page.inscriptions == inscriptions
