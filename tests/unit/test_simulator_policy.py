"""Pure parts of the Gemini simulator: quota window, token counting, response schemas and
their instances, fault and latency draws, request parsing, answers, corpus page lookup."""

from __future__ import annotations

import json
import math
import re
import struct
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import pymupdf
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from gemini_simulator import answers, schema
from gemini_simulator.config import ConfigError, SimulatorConfig
from gemini_simulator.corpus import Corpus, CorpusError, ink_distance
from gemini_simulator.errors import ApiError
from gemini_simulator.faults import FaultPlan, pick_kind
from gemini_simulator.latency import LatencyModel
from gemini_simulator.quota import SlidingWindowQuota, format_retry_delay
from gemini_simulator.tokens import (
    count_input_tokens,
    header_image_size,
    image_tokens,
    text_tokens,
)
from gemini_simulator.wire import (
    FileRefPart,
    GenerateRequest,
    TextPart,
    parse_count_tokens_request,
    parse_generate_request,
)
from ratelimit.quota_error import parse_duration


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- quota window --------------------------------------------------------------------------
def test_requests_over_the_window_are_refused_until_the_oldest_leaves() -> None:
    clock = Clock()
    quota = SlidingWindowQuota(rpm=3, tpm=0, window_seconds=60, clock=clock)
    for step in range(3):
        assert quota.try_admit("m", 10).admitted
        clock.now += 5 * (step + 1)  # arrivals at 1000, 1005, 1015
    clock.now = 1030.0
    refused = quota.try_admit("m", 10)
    assert not refused.admitted
    assert [v.kind for v in refused.violations] == ["requests"]
    assert refused.retry_after == pytest.approx(30.0)  # 1000 + 60 - 1030
    assert quota.usage("m").requests == 3  # the refusal was not recorded
    clock.now = 1060.0 - 1e-6
    assert not quota.try_admit("m", 10).admitted
    clock.now = 1060.0
    assert quota.try_admit("m", 10).admitted
    assert quota.usage("m").requests == 3


def test_token_refusal_waits_for_enough_tokens_to_leave() -> None:
    clock = Clock()
    quota = SlidingWindowQuota(rpm=0, tpm=1000, window_seconds=10, clock=clock)
    for tokens in (300, 300, 300):  # at 1000, 1001, 1002
        assert quota.try_admit("m", tokens).admitted
        clock.now += 1
    decision = quota.try_admit("m", 500)  # needs 400 freed: the first two must leave
    assert [v.kind for v in decision.violations] == ["tokens"]
    assert decision.violations[0].used == 900
    assert decision.retry_after == pytest.approx(1001 + 10 - 1003)
    assert quota.try_admit("m", 100).admitted  # fits now: 1000 exactly


def test_a_request_larger_than_the_token_limit_waits_a_whole_window() -> None:
    quota = SlidingWindowQuota(rpm=0, tpm=100, window_seconds=7, clock=Clock())
    decision = quota.try_admit("m", 101)
    assert not decision.admitted
    assert decision.retry_after == 7


def test_both_limits_reported_and_models_are_separate() -> None:
    clock = Clock()
    quota = SlidingWindowQuota(rpm=1, tpm=100, window_seconds=60, clock=clock)
    assert quota.try_admit("a", 80).admitted
    both = quota.try_admit("a", 80)
    assert sorted(v.kind for v in both.violations) == ["requests", "tokens"]
    assert quota.try_admit("b", 80).admitted
    assert sorted(quota.models()) == ["a", "b"]
    quota.reset()
    assert quota.usage("a").requests == 0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 3), st.integers(1, 400)),
        min_size=1,
        max_size=60,
    ),
    st.integers(1, 6),
    st.integers(400, 1500),
)
def test_window_never_over_limits_and_retry_after_is_exact(
    arrivals: list[tuple[float, int]], rpm: int, tpm: int
) -> None:
    clock = Clock()
    window = 5.0
    quota = SlidingWindowQuota(rpm=rpm, tpm=tpm, window_seconds=window, clock=clock)
    admitted: list[tuple[float, int]] = []
    for gap, tokens in arrivals:
        clock.now += gap
        decision = quota.try_admit("m", tokens)
        # An event leaves at arrival + window, to within float rounding (as the quota
        # says: a caller back exactly `retry_after` later must be admitted).
        live = [(t, n) for t, n in admitted if t + window > clock.now + 1e-9]
        fits = len(live) + 1 <= rpm and sum(n for _, n in live) + tokens <= tpm
        assert decision.admitted == fits
        if decision.admitted:
            admitted.append((clock.now, tokens))
            continue
        # Just before retry_after it is still refused; at retry_after it fits.
        wait = decision.retry_after
        assert 0 < wait <= window + 1e-9
        saved = clock.now
        clock.now = saved + wait - 1e-6
        assert not quota.try_admit("m", tokens).admitted
        clock.now = saved + wait
        assert quota.try_admit("m", tokens).admitted
        admitted.append((clock.now, tokens))
        usage = quota.usage("m")
        assert usage.requests <= rpm
        assert usage.tokens <= tpm


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(13.0, "13s"), (1.45, "1.5s"), (1.5, "1.5s"), (0.01, "0.1s"), (0.0, "0.1s"), (59.96, "60s")],
)
def test_retry_delay_is_rounded_up_like_a_duration(seconds: float, text: str) -> None:
    assert format_retry_delay(seconds) == text
    parsed = parse_duration(text)  # what the limiter reads back
    assert parsed is not None
    assert parsed >= seconds


# --- token counting ------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "tokens"), [("", 0), ("abcd", 1), ("abcde", 2), ("é" * 9, 3)])
def test_text_tokens(text: str, tokens: int) -> None:
    assert text_tokens(text) == tokens


@pytest.mark.parametrize(
    ("width", "height", "tokens"),
    [
        (384, 384, 258),
        (385, 10, 258),
        (768, 768, 258),
        (769, 768, 516),
        (1700, 2200, 258 * 3 * 3),
        (1275, 1650, 258 * 2 * 3),
    ],
)
def test_image_tokens_by_tiles(width: int, height: int, tokens: int) -> None:
    assert image_tokens(width, height) == tokens


def _gray_pixmap(width: int, height: int) -> Any:
    pix = pymupdf.Pixmap(pymupdf.csGRAY, pymupdf.IRect(0, 0, width, height), False)
    pix.clear_with(200)
    return pix


def test_image_size_read_from_png_jpeg_and_gif_headers() -> None:
    pix = _gray_pixmap(321, 123)
    assert header_image_size(pix.tobytes("png")) == (321, 123)
    assert header_image_size(pix.tobytes("jpg")) == (321, 123)
    gif = b"GIF89a" + struct.pack("<HH", 17, 9) + b"\x00" * 10
    assert header_image_size(gif) == (17, 9)
    assert header_image_size(b"not an image") is None


class FakeMedia:
    def pdf_page_count(self, data: bytes) -> int:
        return int(data.decode())

    def image_size(self, data: bytes) -> tuple[int, int]:
        width, height = data.decode().split("x")
        return int(width), int(height)


def test_request_tokens_count_every_part_system_and_schema() -> None:
    response_schema = {"type": "OBJECT", "properties": {"a": {"type": "STRING"}}}
    request = GenerateRequest(
        contents=(
            parse_generate_request(
                {
                    "contents": [
                        {
                            "role": "user",
                            "parts": [
                                {"text": "x" * 10},
                                {"inlineData": {"mimeType": "application/pdf", "data": "Mw=="}},
                                {"inline_data": {"mime_type": "image/png", "data": "ODAweDkwMA=="}},
                            ],
                        }
                    ]
                }
            ).contents
        ),
        system_texts=("s" * 7,),
        response_mime_type="application/json",
        response_schema=response_schema,
    )
    count = count_input_tokens(request, FakeMedia())
    schema_tokens = math.ceil(len(json.dumps(response_schema, separators=(",", ":"))) / 4)
    # text 10 → 3, system 7 → 2, PDF "3" pages → 774, image 800x900 → 2x2 tiles
    assert count.by_modality == {"TEXT": 2 + schema_tokens + 3, "DOCUMENT": 774, "IMAGE": 1032}
    assert count.total == 2 + schema_tokens + 3 + 774 + 1032


# --- request parsing -----------------------------------------------------------------------
def test_parsing_takes_both_spellings_and_rejects_bad_requests() -> None:
    body = {
        "contents": [
            {
                "parts": [
                    {"fileData": {"file_uri": "http://h/v1beta/files/abc", "mime_type": "a/b"}},
                    {"text": "hi"},
                ]
            }
        ],
        "system_instruction": {"parts": [{"text": "sys"}]},
        "generation_config": {
            "response_mime_type": "application/json",
            "response_json_schema": {"type": "string"},
        },
    }
    request = parse_generate_request(body)
    assert request.contents[0].role == "user"
    assert request.contents[0].parts == (
        FileRefPart("http://h/v1beta/files/abc", "a/b"),
        TextPart("hi"),
    )
    assert request.system_texts == ("sys",)
    assert request.response_json_schema == {"type": "string"}
    assert request.wants_json
    wrapped = parse_count_tokens_request({"generateContentRequest": body})
    assert wrapped == request
    with pytest.raises(ApiError) as no_contents:
        parse_generate_request({"contents": []})
    assert no_contents.value.code == 400
    with pytest.raises(ApiError, match="Base64"):
        parse_generate_request(
            {"contents": [{"parts": [{"inlineData": {"mimeType": "image/png", "data": "@@@"}}]}]}
        )
    with pytest.raises(ApiError, match="response_mime_type"):
        parse_generate_request(
            {
                "contents": [{"parts": [{"text": "x"}]}],
                "generationConfig": {"responseSchema": {"type": "STRING"}},
            }
        )


# --- schemas and instances -----------------------------------------------------------------
class Ligne(BaseModel):
    date: str | None
    parties: str
    nature: str
    numero_publication: str | None
    radiation: str | None
    remarques: str | None


class Page(BaseModel):
    lignes: list[Ligne]
    page_illisible: bool


# What google-genai 3.4 sends as `responseSchema` for `response_schema=Page` (captured).
PAGE_OPENAPI: dict[str, Any] = {
    "properties": {
        "lignes": {
            "items": {
                "properties": {
                    "date": {"nullable": True, "title": "Date", "type": "STRING"},
                    "parties": {"title": "Parties", "type": "STRING"},
                    "nature": {"title": "Nature", "type": "STRING"},
                    "numero_publication": {"nullable": True, "type": "STRING"},
                    "radiation": {"nullable": True, "type": "STRING"},
                    "remarques": {"nullable": True, "type": "STRING"},
                },
                "property_ordering": [
                    "date",
                    "parties",
                    "nature",
                    "numero_publication",
                    "radiation",
                    "remarques",
                ],
                "required": ["date", "parties", "nature"],
                "type": "OBJECT",
            },
            "type": "ARRAY",
        },
        "page_illisible": {"type": "BOOLEAN"},
    },
    "property_ordering": ["lignes", "page_illisible"],
    "required": ["lignes", "page_illisible"],
    "type": "OBJECT",
}

LINES = (
    "2001-05-04 | Tremblay, Marie | Vente | 1 234 567 |  | lot 12\n"
    "\n"
    " | Gagnon, Jean | Hypothèque\n"
    "1999-01-02 | Roy | Quittance | 42 | radiée | a | b"
)


@pytest.mark.parametrize(
    "raw", [PAGE_OPENAPI, Page.model_json_schema()], ids=["responseSchema", "responseJsonSchema"]
)
def test_rows_fill_properties_in_order(raw: dict[str, Any]) -> None:
    node = schema.parse_schema(raw)
    value = schema.instance(node, schema.Content(LINES))
    page = Page.model_validate(value)  # conforms to the pydantic model
    assert schema.conforms(node, value)
    assert not page.page_illisible
    assert [line.model_dump() for line in page.lignes] == [
        {
            "date": "2001-05-04",
            "parties": "Tremblay, Marie",
            "nature": "Vente",
            "numero_publication": "1 234 567",
            "radiation": None,  # empty cell, nullable
            "remarques": "lot 12",
        },
        {
            "date": None,
            "parties": "Gagnon, Jean",
            "nature": "Hypothèque",
            "numero_publication": None,  # missing cells
            "radiation": None,
            "remarques": None,
        },
        {
            "date": "1999-01-02",
            "parties": "Roy",
            "nature": "Quittance",
            "numero_publication": "42",
            "radiation": "radiée",
            "remarques": "a | b",  # surplus cells join the last property
        },
    ]


def test_illegible_content_gives_no_rows_and_sets_the_illegible_flag() -> None:
    node = schema.parse_schema(PAGE_OPENAPI)
    assert schema.instance(node, schema.Content("", illegible=True)) == {
        "lignes": [],
        "page_illisible": True,
    }
    # An unrelated boolean stays false.
    other = schema.parse_schema(
        {"type": "OBJECT", "properties": {"ok": {"type": "BOOLEAN"}}, "required": ["ok"]}
    )
    assert schema.instance(other, schema.Content("", illegible=True)) == {"ok": False}


@pytest.mark.parametrize(
    ("line", "cells"),
    [
        ("a | b | | c |", ["a", "b", "", "c", ""]),
        ("| x", ["", "x"]),
        ("a|b", ["a|b"]),
        ("  a  |  b  ", ["a", "b"]),
        ("", [""]),
    ],
)
def test_cells(line: str, cells: list[str]) -> None:
    assert schema.split_cells(line) == cells


def test_property_ordering_wins_over_declaration_order() -> None:
    node = schema.parse_schema(
        {
            "type": "ARRAY",
            "items": {
                "type": "OBJECT",
                "properties": {"b": {"type": "STRING"}, "a": {"type": "STRING"}},
                "propertyOrdering": ["a", "b"],
            },
        }
    )
    assert schema.instance(node, schema.Content("1 | 2")) == [{"a": "1", "b": "2"}]


def test_scalars_enums_numbers_and_top_level_strings() -> None:
    raw = {
        "type": "object",
        "properties": {
            "texte": {"type": "string"},
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "kind": {"enum": ["vente", "hypotheque"], "type": "string"},
                        "n": {"type": "integer"},
                        "x": {"type": ["number", "null"]},
                        "flag": {"type": "boolean"},
                        "nested": {"type": "object", "properties": {"z": {"type": "string"}}},
                        "tags": {"type": "array", "items": {"type": "string"}},
                    },
                },
            },
            "count": {"type": "integer"},
            "status": {"type": "string", "enum": ["ok", "ko"]},
            "lines": {"type": "array", "items": {"type": "string"}},
        },
    }
    text = "hypotheque | 1 234 | 2,5\nautre | n/a | \n"
    value = schema.instance(schema.parse_schema(raw), schema.Content(text))
    assert value == {
        "texte": text,
        "items": [
            {
                "kind": "hypotheque",
                "n": 1234,
                "x": 2.5,
                "flag": False,
                "nested": {"z": ""},
                "tags": [],
            },
            {"kind": "vente", "n": 0, "x": None, "flag": False, "nested": {"z": ""}, "tags": []},
        ],
        "count": 0,
        "status": "ok",
        "lines": ["hypotheque | 1 234 | 2,5", "autre | n/a |"],
    }


def test_json_schema_refs_and_unions() -> None:
    class Inner(BaseModel):
        v: int | None

    class Outer(BaseModel):
        inner: list[Inner]
        label: str | None = None

    node = schema.parse_schema(Outer.model_json_schema())
    value = schema.instance(node, schema.Content("7\nx"))
    assert Outer.model_validate(value) == Outer(inner=[Inner(v=7), Inner(v=None)], label="7\nx")
    with pytest.raises(schema.SchemaError):
        schema.parse_schema({"$ref": "#/$defs/Missing"})
    with pytest.raises(schema.SchemaError):
        schema.parse_schema({"type": "BANANA"})
    with pytest.raises(schema.SchemaError, match="deep"):
        schema.parse_schema({"$defs": {"A": {"$ref": "#/$defs/A"}}, "$ref": "#/$defs/A"})


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.lists(st.text(alphabet="abc |-1 é", max_size=8), min_size=0, max_size=8),
        max_size=12,
    ),
    st.booleans(),
)
def test_any_content_gives_a_valid_page(rows: list[list[str]], illegible: bool) -> None:
    text = "\n".join(" | ".join(cells) for cells in rows)
    lines = [line for line in text.splitlines() if line.strip()]
    # Rows are the lines with a cell separator when some have one, else every line.
    table = [line for line in lines if re.search(r"(^| )\|( |$)", line)]
    for raw in (PAGE_OPENAPI, Page.model_json_schema()):
        value = schema.instance(schema.parse_schema(raw), schema.Content(text, illegible))
        page = Page.model_validate(value)
        assert len(page.lignes) == len(table or lines)
        assert page.page_illisible == illegible


# --- answers -------------------------------------------------------------------------------
class FakeReader:
    def __init__(self) -> None:
        self.pdfs: list[bytes] = []

    def pdf_pages(self, data: bytes) -> list[str]:
        self.pdfs.append(data)
        return [f"pdf {data.decode()}\nline 2"]

    def recognise(self, data: bytes) -> tuple[str, str] | None:
        return ("known.pdf#1", "a | b") if data == b"known" else None


def test_text_only_answer_is_the_longest_part_normalised() -> None:
    request = parse_generate_request(
        {
            "contents": [
                {"role": "user", "parts": [{"text": "Corrige :"}, {"text": "a   b  \n\n c\t d  "}]},
                {"role": "model", "parts": [{"text": "x" * 100}]},  # not user content
            ]
        }
    )
    derived = answers.derive(request, FakeReader())
    assert derived.source == "text"
    assert derived.text == "a b\n\n c d"
    assert answers.answer_text(request, derived) == "a b\n\n c d"


def test_blob_answers_pdf_text_known_and_unknown_images() -> None:
    body: dict[str, Any] = {
        "contents": [
            {
                "parts": [
                    {"text": "prompt"},
                    {"inlineData": {"mimeType": "application/pdf", "data": "MQ=="}},  # "1"
                    {"inlineData": {"mimeType": "image/png", "data": "a25vd24="}},  # "known"
                    {"inlineData": {"mimeType": "image/jpeg", "data": "Pz8/"}},  # unknown
                ]
            }
        ]
    }
    request = parse_generate_request(body)
    derived = answers.derive(request, FakeReader())
    assert derived.text == "--- Page 1 ---\npdf 1\nline 2\n\na | b\n\n[illisible]"
    assert derived.source == "mixed"
    assert derived.pages == ["known.pdf#1", "?"]
    assert derived.content.illegible
    assert derived.content.text == "pdf 1\nline 2\n\na | b"  # no marker, no [illisible]
    body["generationConfig"] = {"responseMimeType": "application/json"}
    as_json = parse_generate_request(body)
    assert json.loads(answers.answer_text(as_json, derived)) == derived.text


@pytest.mark.parametrize("text", ['{"a": 1}', "[]", '"abc"', "12", "true", "{}"])
def test_spoiled_json_never_parses(text: str) -> None:
    with pytest.raises(json.JSONDecodeError):
        json.loads(answers.spoil_json(text))


# --- faults and latency --------------------------------------------------------------------
def test_fault_slices() -> None:
    rates = {"5xx": 0.1, "hang": 0.1, "malformed": 0.0, "safety": 0.2, "bad_json": 0.1}
    assert pick_kind(0.0, rates) == "5xx"
    assert pick_kind(0.0999, rates) == "5xx"
    assert pick_kind(0.1, rates) == "hang"
    assert pick_kind(0.2, rates) == "safety"
    assert pick_kind(0.4, rates) == "bad_json"
    assert pick_kind(0.5, rates) is None
    assert pick_kind(0.0, {}) is None


def test_fault_plan_is_seeded_and_follows_its_rates() -> None:
    rates = {"5xx": 0.1, "hang": 0.05, "malformed": 0.05, "safety": 0.1, "bad_json": 0.2}
    first = FaultPlan(rates, seed=7)
    second = FaultPlan(rates, seed=7)
    draws = [first.decide(wants_json=True) for _ in range(4000)]
    assert draws == [second.decide(wants_json=True) for _ in range(4000)]
    assert draws != [FaultPlan(rates, seed=8).decide(wants_json=True) for _ in range(4000)]
    counts: Counter[str | None] = Counter(f.kind if f else None for f in draws)
    for kind, rate in rates.items():
        assert abs(counts[kind] / 4000 - rate) < 0.03, (kind, counts)
    statuses = [f.status for f in draws if f and f.kind == "5xx"]
    assert statuses[:4] == [500, 503, 500, 503]
    assert all(s == (500, 503)[i % 2] for i, s in enumerate(statuses))
    # bad_json needs a request that asks for JSON
    only_json = FaultPlan({"bad_json": 1.0}, seed=1)
    assert only_json.decide(wants_json=False) is None
    decided = only_json.decide(wants_json=True)
    assert decided is not None
    assert decided.kind == "bad_json"


def test_latency_exact_without_sigma_and_seeded_with_it() -> None:
    exact = LatencyModel(base_ms=50, per_1k_tokens_ms=10, sigma=0, seed=1)
    assert exact.seconds(2500) == pytest.approx(0.075)
    a = LatencyModel(50, 10, 0.5, seed=3)
    b = LatencyModel(50, 10, 0.5, seed=3)
    draws = [a.seconds(1000) for _ in range(2000)]
    assert draws == [b.seconds(1000) for _ in range(2000)]
    assert len(set(draws)) > 1000
    median = sorted(draws)[1000]
    assert median == pytest.approx(0.060, rel=0.1)  # lognormal factor has median 1


def test_config_checks_and_runtime_updates() -> None:
    config = SimulatorConfig(fault_5xx=0.5)
    assert config.updated({"rpm": 5, "fault_hang": 0.25}).rpm == 5
    with pytest.raises(ConfigError, match="add up"):
        config.updated({"fault_safety": 0.6})
    with pytest.raises(ConfigError, match="host"):
        config.updated({"host": "0.0.0.0"})
    with pytest.raises(ConfigError, match="integer"):
        config.updated({"rpm": 1.5})
    with pytest.raises(ConfigError, match="window_seconds"):
        SimulatorConfig(window_seconds=0)
    with pytest.raises(ConfigError, match="number"):
        config.updated({"seed": "x"})


# --- corpus page lookup --------------------------------------------------------------------
def write_pdf(path: Path, pages: list[list[str]], width: float = 612, height: float = 792) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = pymupdf.open()
    for lines in pages:
        page = doc.new_page(width=width, height=height)
        for n, line in enumerate(lines):
            page.insert_text((54, 72 + 14 * n), line, fontsize=9)
    doc.save(path)
    doc.close()
    return path


def render(path: Path, page: int, dpi: float) -> Any:
    with pymupdf.open(path) as doc:
        scale = dpi / 72
        return doc[page].get_pixmap(
            matrix=pymupdf.Matrix(scale, scale), colorspace=pymupdf.csGRAY, alpha=False
        )


def _rows(seed: int, count: int = 25) -> list[str]:
    return [f"{seed}-{n} | Partie {seed * 7 + n} | Vente | {seed * 1000 + n}" for n in range(count)]


@pytest.fixture
def corpus_files(tmp_path: Path) -> tuple[Path, Path]:
    known = write_pdf(tmp_path / "corpus" / "known.pdf", [_rows(1), _rows(2), _rows(3)])
    (tmp_path / "corpus" / "not-a-pdf.txt").write_text("ignored")
    odd = write_pdf(tmp_path / "corpus" / "sub" / "odd.pdf", [_rows(9)], width=612.1, height=792)
    return known, odd


@pytest.fixture
def corpus_dir(tmp_path: Path, corpus_files: tuple[Path, Path]) -> Path:
    return tmp_path / "corpus"


def test_corpus_finds_the_page_an_image_shows(
    corpus_dir: Path, corpus_files: tuple[Path, Path]
) -> None:
    known, odd = corpus_files
    corpus = Corpus()
    assert corpus.add([corpus_dir]) == 4
    assert corpus.add([known]) == 0  # already known
    try:
        for dpi in (100, 150, 200):
            png = render(known, 1, dpi).tobytes("png")
            match = corpus.recognise(png)
            assert match is not None
            assert (match.page.label, match.exact) == ("known.pdf#2", True)
            assert match.page.text.splitlines()[0] == _rows(2)[0]
        # 612.1 pt at 200 DPI is 1701 px wide: found through the whole-DPI scale
        odd_png = render(odd, 0, 200).tobytes("png")
        odd_match = corpus.recognise(odd_png)
        assert odd_match is not None
        assert (odd_match.page.label, odd_match.exact) == ("odd.pdf#1", True)
        # RGB and JPEG: converted to gray; JPEG is near, not exact
        rgb = pymupdf.Pixmap(pymupdf.csRGB, render(known, 2, 120))
        rgb_match = corpus.recognise(rgb.tobytes("png"))
        assert rgb_match is not None
        assert (rgb_match.page.label, rgb_match.exact) == ("known.pdf#3", True)
        jpeg_match = corpus.recognise(render(known, 0, 150).tobytes("jpg", jpg_quality=60))
        assert jpeg_match is not None
        assert (jpeg_match.page.label, jpeg_match.exact) == ("known.pdf#1", False)
    finally:
        corpus.close()


def test_corpus_unknown_pages_and_bad_paths(tmp_path: Path, corpus_dir: Path) -> None:
    corpus = Corpus()
    corpus.add([corpus_dir])
    stranger = write_pdf(tmp_path / "stranger.pdf", [_rows(5)])
    try:
        assert corpus.recognise(render(stranger, 0, 150).tobytes("png")) is None
        assert corpus.recognise(_gray_pixmap(400, 300).tobytes("png")) is None  # other shape
        # Once added, the same image is recognised (the answer cache was cleared).
        corpus.add([stranger])
        found = corpus.recognise(render(stranger, 0, 150).tobytes("png"))
        assert found is not None
        assert found.page.label == "stranger.pdf#1"
    finally:
        corpus.close()
    with pytest.raises(CorpusError, match="not found"):
        Corpus().add([tmp_path / "missing"])
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4 garbage")
    with pytest.raises(CorpusError, match="not a readable PDF"):
        Corpus().add([broken])


def test_ink_distance() -> None:
    white = bytes([255] * 16)
    ink = bytes([0] * 8 + [255] * 8)
    other = bytes([255] * 8 + [0] * 8)
    assert ink_distance(white, white) == 0
    assert ink_distance(ink, ink) == 0
    assert ink_distance(ink, other) == 1
    assert 0 < ink_distance(ink, bytes([0] * 7 + [255] * 9)) < 0.2
    with pytest.raises(ValueError, match="shorter"):
        ink_distance(white, white[:-1])


def test_png_made_by_hand_is_read() -> None:
    # A minimal 2x1 gray PNG written without pymupdf: the header parser and the decoder agree.
    raw = b"\x00\x00\xff"
    ihdr = struct.pack(">IIBBBBB", 2, 1, 8, 0, 0, 0, 0)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
    assert header_image_size(png) == (2, 1)
    assert bytes(pymupdf.Pixmap(png).samples) == b"\x00\xff"
