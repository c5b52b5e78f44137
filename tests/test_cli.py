"""The `ocr-pool` commands, run as a user runs them (a subprocess, settings from
the environment) against a real database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from tests.support.databases import temporary_database, truncate_queue

SECRET = "pw-Zq81-unseen"


def ocr_pool(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.endswith(("_DATABASE_URL", "_KEY"))}
    clean.pop("DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "pool.cli", *args],
        env={**clean, "COLUMNS": "200", **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def db_env(migrated_url: str) -> dict[str, str]:
    anyio.run(truncate_queue, migrated_url)
    return {"DATABASE_URL": migrated_url}


def test_migrate_reports_then_is_up_to_date(tmp_path: Path) -> None:
    with temporary_database(migrate=False) as url:
        first = ocr_pool("migrate", env={"DATABASE_URL": url}, cwd=tmp_path)
        assert first.returncode == 0, first.stderr
        assert "applied 0001_queue_table, 0002_queue_functions" in first.stdout
        second = ocr_pool("migrate", env={"DATABASE_URL": url}, cwd=tmp_path)
        assert second.returncode == 0
        assert "up to date" in second.stdout


def test_print_sql_needs_no_database(tmp_path: Path) -> None:
    result = ocr_pool("migrate", "--print-sql", env={}, cwd=tmp_path)
    assert result.returncode == 0
    assert "CREATE OR REPLACE FUNCTION ocr_claim" in result.stdout
    assert result.stdout.index("0001_queue_table") < result.stdout.index("0003_dashboard_views")


def test_enqueue_status_requeue(db_env: dict[str, str], tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for n in range(3):
        (docs / f"acte{n}.pdf").write_bytes(b"%PDF-1.4 " + bytes([n]) * 10)
    (docs / "readme.txt").write_text("not a pdf")
    first = ocr_pool("enqueue", str(docs), "--source", "acte", env=db_env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "queued 3 acte document(s) in 'default'; 0 already queued" in first.stdout
    assert "skipped 1 non-PDF" in first.stderr

    again = ocr_pool(
        "enqueue",
        str(docs / "acte1.pdf"),
        str(tmp_path / "missing.pdf"),
        "--source",
        "acte",
        env=db_env,
        cwd=tmp_path,
    )
    assert again.returncode == 1  # one file was not found
    assert f"already queued (status 3): {(docs / 'acte1.pdf').as_uri()}" in again.stdout
    assert "not found: " in again.stderr

    status = ocr_pool("status", "--json", env=db_env, cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    rows = {r["document_source"]: r for r in json.loads(status.stdout)["queues"]["default"]}
    assert (rows["acte"]["pending"], rows["index"]["pending"]) == (3, 0)
    table = ocr_pool("status", env=db_env, cwd=tmp_path)
    assert "acte" in table.stdout
    assert "default" in table.stdout

    requeue = ocr_pool("requeue-failed", "--source", "acte", env=db_env, cwd=tmp_path)
    assert requeue.returncode == 0
    assert "default: requeued 0 document(s)" in requeue.stdout


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"OCR_WORKER_POOL_SIZE": "0"}, "OCR_WORKER_POOL_SIZE"),
        ({"SERVER_RESERVE_RAM_PERCENT": "150"}, "SERVER_RESERVE_RAM_PERCENT"),
        ({"DATABASE_URL": f"mysql://u:{SECRET}@h/db"}, "DATABASE_URL"),
        ({"REDIS_URL": f"http://:{SECRET}@h"}, "REDIS_URL"),
        ({}, "DATABASE_URL"),  # nothing configured at all
    ],
)
def test_bad_settings_stop_with_one_line(
    env: dict[str, str], variable: str, tmp_path: Path
) -> None:
    result = ocr_pool("status", env=env, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"ocr-pool: {variable}")
    assert SECRET not in result.stderr + result.stdout


def test_unreachable_database_is_one_line_without_password(tmp_path: Path) -> None:
    url = f"postgresql://postgres:{SECRET}@127.0.0.1:1/nowhere"
    result = ocr_pool("status", env={"DATABASE_URL": url}, cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "cannot reach queue database 'default'" in lines[0]
    assert "postgres:***@127.0.0.1:1" in lines[0]
    assert SECRET not in result.stderr + result.stdout


def test_unmigrated_database_says_so(tmp_path: Path) -> None:
    with temporary_database(migrate=False) as url:
        result = ocr_pool("status", env={"DATABASE_URL": url}, cwd=tmp_path)
    assert result.returncode == 1
    assert "run `ocr-pool migrate`" in result.stderr
