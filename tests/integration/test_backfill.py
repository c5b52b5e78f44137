"""`ocr-pool backfill`: rows completed before this release get `file_content_json` (and an
index its boosted text) from what they hold, without Gemini, never overwriting."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from store.migrations.runner import apply_migrations
from store.sql import load_queries
from tests.integration.test_cli import ocr_pool
from tests.support.databases import temporary_database_async
from workers.pipelines.backfill import derive
from workers.pipelines.index_text import parse_index_text, render_index_text
from workers.pipelines.schema import IndexPageResult, Inscription, PageMetadata, Party

ORIGINAL = load_queries(Path(__file__).parents[1] / "support" / "original_shape.sql")
B = load_queries(Path(__file__).parents[1] / "support" / "backfill.sql")

# The replaced system's text: options with confidences, qualités as "Nème partie".
ORIGINAL_RAW = """--- Page 1 ---
Métadonnées de l'En-tête :
Circonscription foncière : Montréal
Cadastre : Cadastre du Québec
Lot : 1 358 176

Données du Tableau :
Ligne 1:
Date de présentation d'inscription: Option 1: 1999-05-04 (Confiance: 90%)
Numéro: 4 345 678
Nature de l'acte: Option 1: Hyp. (Confiance: 60%)
Qualité: Créancier
Nom des parties: Banque Royale du Canada
Remarques: 150 000 $
Radiations: [Vide]
"""
ORIGINAL_BOOSTED = ORIGINAL_RAW.replace("Option 1: Hyp. (Confiance: 60%)", "Hypothèque")
RAW_ONLY = """--- Page 1 ---
Circonscription foncière : Québec
Ligne 1:
Date de présentation d'inscription: 2001-02-03
Numéro: 5 111 222
Nature de l'acte: Vente
Qualité: Cédant ; Cessionnaire
Nom des parties: ROY, Sophie ; Hydro-Québec
Remarques: poteaux et haubans
Radiations: [Vide]
--- Page 2 ---
Données du Tableau :
Page illisible.
"""
EARLIER_OCR_POOL = json.dumps(
    {
        "pipeline": "index:v1.abcd:gemini-2.5-flash",
        "model": "gemini-2.5-flash",
        "page_count": 1,
        "pages": [
            {
                "page": 1,
                "page_illisible": False,
                "lignes": [
                    {
                        "date": "1990-01-02",
                        "parties": "Tremblay, Marie ; Gagnon, Jean",
                        "nature": "Vente",
                        "numero_publication": "1 234 567",
                        "radiation": None,
                        "remarques": "lot 12",
                    }
                ],
            }
        ],
    }
)
ACTE_RAW = "--- Page 1 ---\nPAR-DEVANT Me Morin.\n\n--- Page 2 ---\nDONT ACTE."
ACTE_BOOSTED = (
    "--- Page 1 ---\nPAR-DEVANT Me Morin [INCOHÉRENCE : prix de 10 $ et de 100 000 $].\n\n"
    "--- Page 2 ---\nDONT ACTE."
)


def test_original_index_structure_comes_from_its_boosted_text() -> None:
    derived = derive("index", ORIGINAL_RAW, ORIGINAL_BOOSTED)
    assert derived is not None
    assert derived.boosted_file_content is None  # already there: nothing to write
    assert derived.file_content is None
    (page,) = derived.file_content_json["pages"]
    assert page["metadata"] == {
        "circonscription": "Montréal",
        "cadastre": "Cadastre du Québec",
        "lot_number": "1 358 176",
    }
    (line,) = page["inscriptions"]
    assert line["acte_nature"] == "Hypothèque"
    assert line["acte_publication_date"] == "1999-05-04"
    assert line["parties"] == [{"name": "Banque Royale du Canada", "role": "Créancier"}]


def test_raw_text_only_is_boosted_by_the_rules() -> None:
    derived = derive("index", RAW_ONLY, None)
    assert derived is not None
    assert derived.boosted_file_content is not None
    boosted = parse_index_text(derived.boosted_file_content)
    assert boosted[0].inscriptions[0].acte_nature == "Servitude"
    assert derived.file_content_json["illegible_pages"] == [2]
    (note,) = derived.file_content_json["boost"]
    assert (note["before"], note["after"], note["rule"]) == ("Vente", "Servitude", "utility")
    assert [p.model_dump() for p in boosted] == derived.file_content_json["pages"]


def test_an_earlier_ocr_pool_json_becomes_the_production_text() -> None:
    derived = derive("index", EARLIER_OCR_POOL, None)
    assert derived is not None
    assert derived.file_content is not None
    assert derived.file_content.startswith("--- Page 1 ---\n")
    expected = IndexPageResult(
        pageNumber=1,
        metadata=PageMetadata(circonscription=None, cadastre=None, lot_number=None),
        inscriptions=[
            Inscription(
                acte_publication_date="1990-01-02",
                acte_publication_number="1 234 567",
                acte_nature="Vente",
                parties=[
                    Party(name="Tremblay, Marie", role=""),
                    Party(name="Gagnon, Jean", role=""),
                ],
                remarques="lot 12",
                radiation_number=None,
            )
        ],
    )
    assert parse_index_text(derived.file_content) == [expected]
    assert derived.file_content == render_index_text([expected])


def test_acte_gets_pages_and_flags_and_unreadable_rows_nothing() -> None:
    derived = derive("acte", ACTE_RAW, ACTE_BOOSTED)
    assert derived is not None
    assert derived.file_content_json["pages"] == [1, 2]
    assert derived.file_content_json["inconsistencies"] == ["prix de 10 $ et de 100 000 $"]
    assert derived.boosted_file_content is None
    assert derive("index", "texte libre sans rien de reconnaissable", None) is None
    assert derive("plan_cadastraux", ACTE_RAW, None) is None


async def snapshot(conn: asyncpg.Connection) -> dict[str, dict[str, Any]]:
    return {n: dict(await conn.fetchrow(B["row_by_number"], n) or {}) for n in NUMBERS}


async def _insert(conn: asyncpg.Connection, rows: list[tuple[Any, ...]]) -> None:
    for row in rows:
        await conn.fetchval(B["done_row"], *row)


@pytest.mark.anyio
async def test_backfill_command_on_the_production_table(tmp_path: Path) -> None:
    async with temporary_database_async(migrate=False) as url:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(ORIGINAL["schema"])
            await apply_migrations(conn)
            await _insert(
                conn,
                [
                    ("index", "orig", 5, "index/orig.pdf", ORIGINAL_RAW, ORIGINAL_BOOSTED),
                    ("index", "raw", 5, "index/raw.pdf", RAW_ONLY, None),
                    ("index", "earlier", 5, "/data/earlier.pdf", EARLIER_OCR_POOL, None),
                    ("acte", "acte-boosted", 5, "actes/a.pdf", ACTE_RAW, ACTE_BOOSTED),
                    ("acte", "acte-raw", 5, "actes/b.pdf", ACTE_RAW, None),
                    ("index", "garbled", 5, "index/g.pdf", "ceci n'est pas un index", None),
                    ("index", "waiting", 3, "index/w.pdf", None, None),
                    ("plan_cadastraux", "plan", 5, "plans-cadastraux/p.pdf", ACTE_RAW, None),
                ],
            )
            before = await snapshot(conn)
            env = {"DATABASE_URL": url}
            dry = ocr_pool("backfill", "--dry-run", env=env, cwd=tmp_path)
            assert dry.returncode == 0, dry.stderr
            assert (
                "6 completed row(s) examined; would give file_content_json to 3 index and 2 acte"
                in dry.stdout
            )
            assert {
                n: dict(await conn.fetchrow(B["row_by_number"], n) or {}) for n in NUMBERS
            } == before

            run = ocr_pool("backfill", env=env, cwd=tmp_path)
            assert run.returncode == 0, run.stderr
            assert "gave file_content_json to 3 index and 2 acte row(s)" in run.stdout
            assert "boosted_file_content to 2 index row(s)" in run.stdout
            assert "1 index row(s) held an earlier ocr-pool JSON" in run.stdout
            assert "1 acte row(s) have no boosted_file_content" in run.stdout
            assert "1 index row(s) left alone" in run.stdout
            after = await snapshot(conn)

            again = ocr_pool("backfill", env=env, cwd=tmp_path)
            assert again.returncode == 0, again.stderr
            assert "1 completed row(s) examined" in again.stdout  # only the garbled one
            assert {
                n: dict(await conn.fetchrow(B["row_by_number"], n) or {}) for n in NUMBERS
            } == after
        finally:
            await conn.close()

    def structured(n: str) -> Any:
        return json.loads(after[n]["structured"]) if after[n]["structured"] else None

    # Nothing that was there is overwritten; only what was missing is added.
    assert after["orig"]["file_content"] == ORIGINAL_RAW
    assert after["orig"]["boosted_file_content"] == ORIGINAL_BOOSTED
    assert structured("orig")["pages"][0]["inscriptions"][0]["acte_nature"] == "Hypothèque"
    assert after["raw"]["file_content"] == RAW_ONLY
    assert "Nature de l'acte: Servitude" in after["raw"]["boosted_file_content"]
    assert after["earlier"]["file_content"].startswith("--- Page 1 ---")
    assert structured("acte-boosted")["inconsistencies"] == ["prix de 10 $ et de 100 000 $"]
    assert after["acte-raw"]["boosted_file_content"] is None
    assert structured("acte-raw")["pages"] == [1, 2]
    for untouched in ("garbled", "waiting", "plan"):
        assert after[untouched] == before[untouched], untouched


NUMBERS = ("orig", "raw", "earlier", "acte-boosted", "acte-raw", "garbled", "waiting", "plan")
