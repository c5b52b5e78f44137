"""The `ocr-pool` commands, run as a user runs them (a subprocess, settings from
the environment) against a real database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from importlib.metadata import version
from pathlib import Path

import anyio
import asyncpg
import pytest

from store.sql import load_queries
from tests.support.databases import database_url, temporary_database, truncate_queue

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


# --- the operator's kit: every bad input gets its one-line answer ----------------------

K = load_queries(Path(__file__).parents[1] / "support" / "operator_kit.sql")


async def sql(url: str, name: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(K[name], *args)
    finally:
        await conn.close()


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(database_url("postgres"))
    try:
        await conn.execute(await conn.fetchval(K["drop_database_statement"], name))
    finally:
        await conn.close()


def stderr_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return result.stderr.strip().splitlines()


def test_version_comes_from_the_package(tmp_path: Path) -> None:
    result = ocr_pool("--version", env={}, cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, f"ocr-pool {version('ocr-pool')}\n")


def test_every_help_is_clean() -> None:
    """The group's and every command's help (in-process: one import, not one per
    command): no type shown for a flag, none of typer's `<list[...]>` / `<int range>`."""
    from typer.testing import CliRunner

    from pool.cli import app

    names = [
        info.name or getattr(info.callback, "__name__", "").replace("_", "-")
        for info in app.registered_commands
    ]
    assert {"migrate", "enqueue", "cleanup", "status", "start"} <= set(names)
    runner = CliRunner()
    for args in ([], *([name] for name in names)):
        result = runner.invoke(app, [*args, "--help"], prog_name="ocr-pool", env={"COLUMNS": "200"})
        assert result.exit_code == 0, (args, result.output)
        assert "Usage: ocr-pool" in result.output
        for noise in ("<bool>", "<list[", " range>"):
            assert noise not in result.output, (args, noise)


def test_shell_completion_is_on(tmp_path: Path) -> None:
    assert "--install-completion" in ocr_pool("--help", env={}, cwd=tmp_path).stdout
    script = ocr_pool(
        "--show-completion",
        "bash",
        env={"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"},
        cwd=tmp_path,
    )
    assert script.returncode == 0, script.stderr
    assert "_OCR_POOL_COMPLETE=complete_bash" in script.stdout
    completed = ocr_pool(
        env={
            "_OCR_POOL_COMPLETE": "complete_bash",
            "COMP_WORDS": "ocr-pool enq",
            "COMP_CWORD": "1",
        },
        cwd=tmp_path,
    )
    assert completed.stdout.split() == ["enqueue"]


def test_settings_typos_warn_once_each_without_their_value(
    db_env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text(f"GEMINI_RPMLIMIT={SECRET}\n")
    env = {
        **db_env,
        "OCR_WORKER_POOLSIZE": SECRET,
        "OCR_TEST_DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/postgres",
        "OCR_TEST_REDIS_URL": "redis://127.0.0.1:6379/0",
    }
    result = ocr_pool("requeue-failed", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert stderr_lines(result) == [
        "ocr-pool: warning: GEMINI_RPMLIMIT (in .env) is not a setting and is ignored; "
        "did you mean GEMINI_RPM_LIMIT?",
        "ocr-pool: warning: OCR_WORKER_POOLSIZE (in the environment) is not a setting and is "
        "ignored; did you mean OCR_WORKER_POOL_SIZE?",
    ]
    assert SECRET not in result.stdout + result.stderr
    # A wrong value still stops with its own line, after the warnings.
    bad = ocr_pool("status", env={**env, "OCR_WORKER_POOL_SIZE": "0"}, cwd=tmp_path)
    assert bad.returncode == 2
    assert len(stderr_lines(bad)) == 3
    assert stderr_lines(bad)[2].startswith("ocr-pool: OCR_WORKER_POOL_SIZE: ")


def test_enqueue_refuses_a_named_non_pdf(db_env: dict[str, str], tmp_path: Path) -> None:
    page = tmp_path / "page.tif"
    page.write_bytes(b"II*\x00 not a pdf")
    disguised = tmp_path / "download.pdf"
    disguised.write_bytes(b"<html>404 Not Found</html>")
    result = ocr_pool(
        "enqueue", str(page), str(disguised), "--source", "acte", env=db_env, cwd=tmp_path
    )
    assert result.returncode == 1
    assert stderr_lines(result) == [
        f"ocr-pool: not a PDF (no %PDF- header in its first 1 KB), not queued: {page}",
        f"ocr-pool: not a PDF (no %PDF- header in its first 1 KB), not queued: {disguised}",
    ]
    assert result.stdout == (
        "queued 0 acte document(s) in 'default'; 0 already queued; 0 not found; 2 not a PDF\n"
    )


def test_enqueue_says_a_directory_holds_no_pdf(db_env: dict[str, str], tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = ocr_pool("enqueue", str(empty), "--source", "index", env=db_env, cwd=tmp_path)
    assert result.returncode == 1
    assert stderr_lines(result) == [
        f"ocr-pool: no PDF in {empty} (searched for *.pdf at any depth)"
    ]
    assert result.stdout == (
        "queued 0 index document(s) in 'default'; 0 already queued; 0 not found; "
        "1 directory without a PDF\n"
    )


def test_enqueue_duplicates_are_per_source_and_a_failed_file_hints_requeue(
    db_env: dict[str, str], tmp_path: Path
) -> None:
    scan_pdf = tmp_path / "scan.pdf"
    scan_pdf.write_bytes(b"%PDF-1.4 scan")
    uri = scan_pdf.as_uri()
    for source in ("index", "acte"):
        first = ocr_pool("enqueue", str(scan_pdf), "--source", source, env=db_env, cwd=tmp_path)
        assert first.returncode == 0, first.stderr
        assert first.stdout.startswith(f"queued 1 {source} document(s) in 'default'; ")
    again = ocr_pool("enqueue", str(scan_pdf), "--source", "index", env=db_env, cwd=tmp_path)
    assert (again.returncode, again.stdout.splitlines()[0]) == (
        0,
        f"already queued (status 3): {uri}",
    )
    anyio.run(sql, db_env["DATABASE_URL"], "fail_path", uri)  # both rows failed in OCR
    failed = ocr_pool(
        "enqueue", str(scan_pdf), "--source", "acte", "--env", "default", env=db_env, cwd=tmp_path
    )
    assert failed.returncode == 0, failed.stderr
    assert failed.stdout.splitlines() == [
        f"failed earlier (status 4), not queued again: {uri}; `ocr-pool requeue-failed "
        "--source acte --env default` gives failed documents fresh attempts",
        "queued 0 acte document(s) in 'default'; 1 already queued; 0 not found",
    ]


def test_migrate_a_missing_database(tmp_path: Path) -> None:
    name = f"ocr_test_missing_{uuid.uuid4().hex[:8]}"
    url = database_url(name)
    server = url.rsplit("/", 1)[0]
    try:
        missing = ocr_pool("migrate", env={"DATABASE_URL": url}, cwd=tmp_path)
        assert missing.returncode == 1
        assert stderr_lines(missing) == [
            f"ocr-pool: queue database 'default': database \"{name}\" does not exist on "
            f"{server}; create it with `ocr-pool migrate --create-database` (a local server) "
            "or ask the server's administrator"
        ]
        created = ocr_pool("migrate", "--create-database", env={"DATABASE_URL": url}, cwd=tmp_path)
        assert created.returncode == 0, created.stderr
        lines = created.stdout.splitlines()
        assert lines[0] == f'default: created database "{name}" on {server}'
        assert lines[1].startswith("default: applied 0001_queue_table, ")
        again = ocr_pool("migrate", "--create-database", env={"DATABASE_URL": url}, cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        assert again.stdout.startswith("default: up to date")
    finally:
        anyio.run(drop_database, name)


def test_create_database_refuses_a_remote_server(tmp_path: Path) -> None:
    url = f"postgresql://u:{SECRET}@db.example.invalid:5432/ocr_pool"
    result = ocr_pool("migrate", "--create-database", env={"DATABASE_URL": url}, cwd=tmp_path)
    assert result.returncode == 2
    assert stderr_lines(result) == [
        "ocr-pool: --create-database creates a database on a local server only (a Unix "
        "socket, localhost or a loopback address); 'default' is on db.example.invalid: "
        'create "ocr_pool" there with the provider\'s tools, then run `ocr-pool migrate`'
    ]


def test_create_database_refused_without_createdb(tmp_path: Path) -> None:
    admin = database_url("postgres")
    anyio.run(sql, admin, "create_role_without_createdb")
    name = f"ocr_test_nocreate_{uuid.uuid4().hex[:8]}"
    url = database_url(name).replace("://postgres@", "://ocr_test_no_createdb@", 1)
    server = url.rsplit("/", 1)[0]
    try:
        result = ocr_pool("migrate", "--create-database", env={"DATABASE_URL": url}, cwd=tmp_path)
    finally:
        anyio.run(sql, admin, "drop_role_without_createdb")
    assert result.returncode == 1
    assert stderr_lines(result) == [
        f'ocr-pool: default: role "ocr_test_no_createdb" may not create databases on {server} '
        f'(it needs CREATEDB): ask the server\'s administrator to create "{name}"'
    ]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("30", "expected a whole number and a unit d, h or m (e.g. 30d, 12h, 90m), got '30'"),
        ("0d", "must be longer than 0, got '0d'"),
    ],
)
def test_cleanup_bad_duration(value: str, problem: str, tmp_path: Path) -> None:
    result = ocr_pool("cleanup", "--older-than", value, env={}, cwd=tmp_path)
    assert result.returncode == 2
    assert stderr_lines(result) == [f"ocr-pool: --older-than: {problem}"]


def test_cleanup_dry_run(db_env: dict[str, str], tmp_path: Path) -> None:
    anyio.run(sql, db_env["DATABASE_URL"], "seed_old_queue")
    result = ocr_pool("cleanup", "--older-than", "30d", "--dry-run", env=db_env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "default: ocr_pool_allocations: would delete 0 allocation decisions made more than 30d ago",
        "default: ocr_result_cache: would delete 0 cached results last used more than 30d ago",
        "default: ocr_queue_outages: would delete 0 outage reports ended more than 30d ago",
        "default: ocr_gemini_day_usage: would delete 0 daily Gemini counts last updated more "
        "than 30d ago",
    ]
    done = ocr_pool("cleanup", "--older-than", "1m", env=db_env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    counts = anyio.run(sql, db_env["DATABASE_URL"], "own_table_counts")
    assert counts[0]["queue"] == 6  # year-old queue rows of every status stay


def test_cleanup_needs_a_direct_url(tmp_path: Path) -> None:
    env = {"DEV_SUPABASE_URL": "https://dev.supabase.invalid", "DEV_SUPABASE_SERVICE_KEY": SECRET}
    result = ocr_pool("cleanup", "--older-than", "30d", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert stderr_lines(result) == [
        "ocr-pool: dev: no direct database URL (DEV_DATABASE_URL); set it (Supabase: "
        "Dashboard > Connect, session pooler or direct host), then run `ocr-pool cleanup` again"
    ]
    assert SECRET not in result.stdout + result.stderr


HEAVY = {"google", "redis", "asyncpg", "pydantic", "pydantic_settings", "pymupdf", "aiohttp"}
"""Top-level packages a command imports when it runs, never to be registered."""


def test_the_command_line_loads_no_driver_or_sdk_until_a_command_runs() -> None:
    """`ocr-pool --help`, completion and a mistyped option build the command line only:
    Gemini's SDK, the database and Redis drivers, pydantic settings, the PDF renderer and
    the simulator's server are imported by the command that uses them."""
    code = "import sys, pool.cli; print('\\n'.join(sorted(sys.modules)))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert "pool.cli" in loaded
    heavy = [
        name
        for name in loaded
        if name.split(".")[0] in HEAVY or name.startswith("gemini_simulator.server")
    ]
    assert heavy == [], heavy
    helped = subprocess.run(
        [sys.executable, "-m", "pool.cli", "--help"], capture_output=True, text=True
    )
    assert helped.returncode == 0, helped.stderr
    for command in ("start", "status", "gemini", "capacity", "simulator", "lockdown", "cleanup"):
        assert command in helped.stdout


LOADED_AFTER_THE_CLAIM = {"google", "httpx", "pymupdf", "fitz"}
"""Top-level packages only a job needs: loaded by the pool's preheat, after its first claim."""


def test_the_claim_path_loads_neither_the_gemini_sdk_nor_the_renderer() -> None:
    """What `ocr-pool start` imports before its first claim (the command, the manager, the
    runtime with its workers and stores) leaves google-genai and pymupdf to the preheat,
    and the health server's aiohttp.web to a pool with OCR_METRICS_PORT."""
    code = (
        "import sys, pool.cli.start, pool.manager, pool.wiring.runtime, store.postgres; "
        "print('\\n'.join(sorted(sys.modules)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert "pool.manager" in loaded
    assert "workers.gemini.client" in loaded
    early = [n for n in loaded if n.split(".")[0] in LOADED_AFTER_THE_CLAIM]
    assert early == [], early
    assert "aiohttp.web" not in loaded
    assert "workers.gemini.sdk" not in loaded


@pytest.mark.parametrize(
    "command",
    [
        ("requeue-failed", "--env", "nosuch"),
        ("enqueue", "--source", "index", "--env", "nosuch", "x.pdf"),
        ("cleanup", "--older-than", "30d", "--dry-run", "--env", "nosuch"),
    ],
)
def test_an_unknown_environment_is_one_line_and_exit_2(
    command: tuple[str, ...], db_env: dict[str, str], tmp_path: Path
) -> None:
    """Every command that takes `--env` says the same thing of a name not configured."""
    result = ocr_pool(*command, env=db_env, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ocr-pool: ")
    assert "nosuch" in lines[0]
    assert "Traceback" not in result.stderr
