"""`ocr-pool gemini` (and the Gemini part of `status`): the limiter's fleet view."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from redis.asyncio import Redis

from ratelimit import GeminiLimiter, LimiterConfig, Quota, QuotaSignal
from tests.support.redis_server import free_port

SECRET = "pw-Gemi-unseen"
MODEL = "gemini-2.5-flash"


def ocr_pool(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GEMINI_", "REDIS_"))}
    return subprocess.run(
        [sys.executable, "-m", "pool.cli", *args],
        env={**clean, "COLUMNS": "220", **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def env(redis_url: str, redis_prefix: str) -> dict[str, str]:
    return {
        "REDIS_URL": redis_url,
        "OCR_REDIS_PREFIX": redis_prefix,
        "GEMINI_RPM_LIMIT": "100",
        "GEMINI_TPM_LIMIT": "50000",
        "GEMINI_RPD_LIMIT": "1000",
        "GEMINI_MODEL_LIMITS": "gemini-2.5-pro=10:20000",
    }


async def _use_the_limiter(url: str, prefix: str) -> None:
    client = Redis.from_url(url)
    config = LimiterConfig(Quota(100, 50_000, 1000), {"gemini-2.5-pro": Quota(10, 20_000)})
    limiter = GeminiLimiter(client, config, prefix=prefix)
    first = await limiter.acquire(MODEL, 3000, worker="w1")
    await limiter.reconcile(first, 2400, worker="w1")
    await limiter.acquire("gemini-2.5-pro", 1000, worker="w2")
    await limiter.report_quota_error("gemini-2.5-pro", QuotaSignal(30.0, False), reservation=None)
    await client.aclose()


def test_gemini_shows_usage_limits_ceiling_and_cooldown(
    env: dict[str, str], tmp_path: Path
) -> None:
    anyio.run(_use_the_limiter, env["REDIS_URL"], env["OCR_REDIS_PREFIX"])
    result = ocr_pool("gemini", "--json", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    models = {m["model"]: m for m in data["models"]}
    flash, pro = models[MODEL], models["gemini-2.5-pro"]
    assert (flash["rpm"], flash["tpm"], flash["rpd"]) == (1, 2400, 1)
    assert (flash["rpm_limit"], flash["tpm_limit"], flash["rpd_limit"]) == (100, 50000, 1000)
    assert flash["estimate_error_ratio"] == pytest.approx(600 / 2400)
    assert (pro["rpm_limit"], pro["tpm_limit"]) == (10, 20000)
    # 70 %, plus 0.25 % a second since the 429 (the command's start-up, a loaded machine)
    assert 0.7 <= pro["ceiling_factor"] < 0.75
    assert pro["rpm_effective"] == 7
    assert 25 < pro["cooldown_seconds"] <= 30
    assert data["workers"] == 2
    assert (data["rpm"], data["tpm"]) == (2, 3400)

    table = ocr_pool("gemini", env=env, cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert "gemini-2.5-pro" in table.stdout
    assert "2,400 / 50,000 (5%)" in table.stdout
    # The lowered ceiling: 70 %, climbing back by 15 % of the limits a clean window
    # (0.25 % a second at 60 s) between the two commands: 70 % plus a few seconds' worth.
    assert re.search(r"\b7[0-5]%", table.stdout), table.stdout


def test_gemini_with_nothing_recorded_says_so(env: dict[str, str], tmp_path: Path) -> None:
    result = ocr_pool("gemini", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "no Gemini usage recorded" in result.stdout


def test_unreachable_redis_is_one_line_without_the_password(tmp_path: Path) -> None:
    url = f"redis://:{SECRET}@127.0.0.1:{free_port()}/0"
    result = ocr_pool("gemini", env={"REDIS_URL": url}, cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ocr-pool: Redis redis://:***@127.0.0.1:")
    assert SECRET not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("GEMINI_MODEL_LIMITS", "gemini-2.5-pro=150"),
        ("GEMINI_QUOTA_TIMEZONE", "Mars/Olympus"),
        ("GEMINI_WINDOW_SECONDS", "0"),
    ],
)
def test_bad_limiter_settings_stop_with_one_line(variable: str, value: str, tmp_path: Path) -> None:
    result = ocr_pool("gemini", env={variable: value}, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"ocr-pool: {variable}")


def test_status_shows_the_queue_and_gemini_and_survives_redis_down(
    env: dict[str, str], migrated_url: str, tmp_path: Path
) -> None:
    anyio.run(_use_the_limiter, env["REDIS_URL"], env["OCR_REDIS_PREFIX"])
    with_db = {**env, "DATABASE_URL": migrated_url}
    result = ocr_pool("status", "--json", env=with_db, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert "default" in data["queues"]
    assert {m["model"] for m in data["gemini"]["models"]} == {MODEL, "gemini-2.5-pro"}
    table = ocr_pool("status", env=with_db, cwd=tmp_path)
    assert "input tokens / effective limit" in table.stdout

    down = {**with_db, "REDIS_URL": f"redis://:{SECRET}@127.0.0.1:{free_port()}/0"}
    result = ocr_pool("status", "--json", env=down, cwd=tmp_path)
    assert result.returncode == 0, result.stderr  # the queue figures still come
    assert json.loads(result.stdout)["gemini"]["error"].startswith("Redis redis://:***@")
    assert SECRET not in result.stdout + result.stderr
