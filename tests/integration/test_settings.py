"""Settings: defaults, validation to one line naming the variable, no secret leaks."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from pool.wiring.settings import (
    NOT_SETTINGS,
    Settings,
    SettingsError,
    load_settings,
    redact_url,
    settings_typos,
    unknown_settings,
)

SECRET = "s3cr3t-Valu3-xyz"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """Settings come only from what each test passes: no ambient variables, no .env."""
    for name in list(Settings.model_fields):
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(tmp_path)


def error_of(**values: Any) -> str:
    with pytest.raises(SettingsError) as info:
        load_settings(**values)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_defaults_match_the_design() -> None:
    s = load_settings()
    assert s.ocr_rebalance_interval_ms == 30_000
    assert s.ocr_status_interval_ms == 60_000
    assert (s.gemini_rpm_limit, s.gemini_tpm_limit) == (1600, 6_400_000)
    assert (s.server_reserve_cpu_percent, s.server_reserve_ram_percent) == (20, 20)
    assert s.ocr_redis_prefix == ""
    assert s.environments() == []


def test_reads_environment_and_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    (tmp_path / ".env").write_text("OCR_WORKER_POOL_SIZE=9\nGEMINI_RPM_LIMIT=10\n")
    monkeypatch.setenv("GEMINI_RPM_LIMIT", "20")  # the environment wins over .env
    s = load_settings()
    assert (s.ocr_worker_pool_size, s.gemini_rpm_limit) == (9, 20)


@pytest.mark.parametrize(
    ("values", "variable", "problem"),
    [
        ({"ocr_worker_pool_size": 0}, "OCR_WORKER_POOL_SIZE", "greater than or equal to 1"),
        ({"ocr_worker_pool_size": "many"}, "OCR_WORKER_POOL_SIZE", "integer"),
        ({"server_reserve_cpu_percent": 100}, "SERVER_RESERVE_CPU_PERCENT", "less than 100"),
        ({"server_reserve_ram_percent": -1}, "SERVER_RESERVE_RAM_PERCENT", "greater than"),
        ({"redis_url": "http://x"}, "REDIS_URL", "redis://"),
        ({"database_url": "mysql://h/db"}, "DATABASE_URL", "postgresql://"),
        ({"dev_supabase_url": "ftp://x"}, "DEV_SUPABASE_URL", "http"),
        ({"gemini_base_url": "localhost:9000"}, "GEMINI_BASE_URL", "http"),
        ({"ocr_rebalance_interval_ms": 5}, "OCR_REBALANCE_INTERVAL_MS", "100"),
        ({"ocr_server_id": "host:1"}, "OCR_SERVER_ID", "':'"),
        ({"ocr_capacity_costs": "index=1.5"}, "OCR_CAPACITY_COSTS", "kind=cpu:ram"),
        ({"ocr_capacity_lease_seconds": 0}, "OCR_CAPACITY_LEASE_SECONDS", "greater than"),
    ],
)
def test_bad_value_names_the_variable(values: dict[str, Any], variable: str, problem: str) -> None:
    message = error_of(**values)
    assert message.startswith(f"{variable}: ")
    assert problem in message


def test_minimums_cannot_exceed_pool() -> None:
    message = error_of(ocr_worker_pool_size=2, ocr_min_index_workers=2, ocr_min_acte_workers=1)
    assert "OCR_MIN_INDEX_WORKERS + OCR_MIN_ACTE_WORKERS" in message
    assert "OCR_WORKER_POOL_SIZE (2)" in message


def test_supabase_url_needs_its_key() -> None:
    assert "STAGING_SUPABASE_SERVICE_KEY is missing" in error_of(
        staging_supabase_url="https://x.supabase.co"
    )
    assert "PROD_SUPABASE_URL is missing" in error_of(prod_supabase_service_key=SECRET)


def test_no_queue_database_is_an_error_when_one_is_needed() -> None:
    with pytest.raises(SettingsError, match="DATABASE_URL"):
        load_settings().require_queue()


def test_environments_in_polling_order() -> None:
    s = load_settings(
        dev_database_url="postgresql://u@dev/db",
        prod_supabase_url="https://prod.supabase.co",
        prod_supabase_service_key=SECRET,
        database_url="postgresql://u@local/db",
    )
    envs = s.environments()
    assert [(e.name, e.transport) for e in envs] == [
        ("prod", "supabase"),
        ("dev", "postgres"),
        ("default", "postgres"),
    ]
    narrowed = load_settings(
        dev_database_url="postgresql://u@dev/db",
        database_url="postgresql://u@dev/db",
        ocr_environments="dev",
    )
    assert [e.name for e in narrowed.environments()] == ["dev"]
    assert "OCR_ENVIRONMENTS names staging" in error_of(
        dev_database_url="postgresql://u@dev/db", ocr_environments="staging"
    )


def test_secrets_never_in_errors_or_repr() -> None:
    url = f"postgresql://user:{SECRET}@db.example:5432/x"
    s = load_settings(
        database_url=url,
        gemini_api_key=SECRET,
        dev_supabase_url="https://d.co",
        dev_supabase_service_key=SECRET,
        redis_url=f"redis://:{SECRET}@r:6379/0",
    )
    assert SECRET not in repr(s)
    assert SECRET not in str(s.model_dump())
    assert SECRET not in s.environments()[-1].display_target
    assert s.environments()[-1].display_target == "postgresql://user:***@db.example:5432/x"
    for bad in (
        {"database_url": f"mysql://u:{SECRET}@h/db"},
        {"redis_url": f"http://:{SECRET}@h"},
        {"database_url": f"postgresql://u:{SECRET}@h:notaport/db"},
    ):
        assert SECRET not in error_of(**bad)


def test_redact_url() -> None:
    assert redact_url("redis://:pw@h:6379/0") == "redis://:***@h:6379/0"
    assert redact_url("postgresql://u:pw@[::1]:5432/d") == "postgresql://u:***@[::1]:5432/d"
    assert redact_url("postgresql://u@h/d") == "postgresql://u@h/d"


def test_env_example_loads_as_is(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """The documented example is valid, blanks included, and documents every setting."""
    example = Path(__file__).resolve().parents[2] / ".env.example"
    (tmp_path / ".env").write_text(example.read_text())
    s = load_settings()
    assert [e.name for e in s.environments()] == ["default"]
    documented = {
        line.split("=", 1)[0]
        for line in example.read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert documented == {name.upper() for name in Settings.model_fields}


# --- names that are not settings (typos) ------------------------------------------


def test_a_typo_names_the_closest_setting() -> None:
    found = unknown_settings({"the environment": ["OCR_WORKER_POOLSIZE", "PATH", "HOME"]})
    assert [u.warning() for u in found] == [
        "warning: OCR_WORKER_POOLSIZE (in the environment) is not a setting and is ignored; "
        "did you mean OCR_WORKER_POOL_SIZE?"
    ]


@pytest.mark.parametrize(
    ("name", "closest"),
    [
        ("GEMINI_RPMLIMIT", "GEMINI_RPM_LIMIT"),
        ("SERVER_RESERVE_CPU", "SERVER_RESERVE_CPU_PERCENT"),
        ("PROD_SUPABASE_SERVICEKEY", "PROD_SUPABASE_SERVICE_KEY"),
        ("STAGE_DATABASE_URL", "STAGING_DATABASE_URL"),
        ("ocr_lease_secs", "OCR_LEASE_SECONDS"),
        ("OCR_ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ", None),
    ],
)
def test_every_family_is_watched(name: str, closest: str | None) -> None:
    (found,) = unknown_settings({".env": [name]})
    assert (found.name, found.closest) == (name.upper(), closest)
    if closest is None:
        assert found.warning().endswith("no setting has a similar name (see .env.example)")


def test_settings_other_names_and_allowed_ones_do_not_warn() -> None:
    names = [
        *(name.upper() for name in Settings.model_fields),
        "ocr_worker_pool_size",  # settings are case-insensitive
        *NOT_SETTINGS,
        "PATH",
        "REDISCLI_AUTH",
        "SUPABASE_ACCESS_TOKEN",  # not *_SUPABASE_*: the Supabase CLI's
        "GOOGLE_API_KEY",
    ]
    assert unknown_settings({"the environment": names, ".env": names}) == []


def test_one_warning_per_name_whatever_its_sources() -> None:
    found = unknown_settings(
        {"the environment": ["GEMINI_KEY", "gemini_key"], ".env": ["GEMINI_KEY"]}
    )
    assert [(u.name, u.sources) for u in found] == [("GEMINI_KEY", ("the environment", ".env"))]
    assert found[0].warning().startswith("warning: GEMINI_KEY (in the environment and .env) ")


def test_settings_typos_reads_the_environment_and_dotenv(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(f"export OCR_MAX_PAGE=9\n# OCR_COMMENTED=1\nGEMINI_API_KEYS={SECRET}\n")
    found = settings_typos({"OCR_WORKERPOOL_SIZE": SECRET, "OCR_TEST_REDIS_URL": "x"}, env_file)
    assert [(u.name, u.sources, u.closest) for u in found] == [
        ("GEMINI_API_KEYS", (".env",), "GEMINI_API_KEY"),
        ("OCR_MAX_PAGE", (".env",), "OCR_MAX_PAGES"),
        ("OCR_WORKERPOOL_SIZE", ("the environment",), "OCR_WORKER_POOL_SIZE"),
    ]
    assert all(SECRET not in u.warning() for u in found)
    assert settings_typos({}, tmp_path / "missing.env") == []


def test_every_variable_the_repository_reads_is_a_setting_or_allowed() -> None:
    """Scripts, tests and deploy files read some OCR_* variables themselves (os.environ,
    shell and compose `${NAME}`): each must be in NOT_SETTINGS, or the test run (or a
    command run beside deploy/.env) would warn."""
    root = Path(__file__).resolve().parents[2]
    read = re.compile(
        r"""(?:os\.environ\.get\(|os\.getenv\(|os\.environ\[)\s*["']([A-Z][A-Z0-9_]*)["']"""
        r"""|\$\{?([A-Z][A-Z0-9_]*)"""
    )
    files = [
        *root.glob("scripts/*.sh"),
        *root.glob(".ci/*"),
        *root.glob("deploy/**/*.sh"),
        *root.glob("deploy/**/*.y*ml"),
        *root.glob("deploy/**/*.env.example"),
        *root.glob("deploy/**/Dockerfile"),
        *(p for d in ("tests", "pool", "workers", "benchmarks") for p in root.glob(f"{d}/**/*.py")),
    ]
    names = {
        name
        for path in files
        if path.is_file()
        for match in read.finditer(path.read_text(encoding="utf-8", errors="replace"))
        for name in match.groups()
        if name
    }
    assert "OCR_TEST_DATABASE_URL" in names
    unknown = [u.name for u in unknown_settings({"the repository": names})]
    assert unknown == []


def test_env_example_points_at_a_database_of_its_own() -> None:
    """Not the server's `postgres` maintenance database, where the queue's tables would
    mix with whatever else lives there."""
    example = Path(__file__).resolve().parents[2] / ".env.example"
    (url,) = [
        line.split("=", 1)[1]
        for line in example.read_text().splitlines()
        if line.startswith("DATABASE_URL=")
    ]
    assert url == "postgresql://postgres@127.0.0.1:5432/ocr_pool"
