"""Secrets never leak: every CLI command and a short pool run, with recognisable secret
values set, print none of them (stdout, stderr, logs), write none to Redis, expose none
on /metrics. A password-protected Redis: the right password works, a wrong one stops
start-up at once with one clear line."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import anyio
import pytest
import redis as sync_redis

from gemini_simulator import SimulatorConfig, run_simulator
from pool.cli.samples import acte_paragraphs, write_pdf
from tests.support.pool_process import ROOT
from tests.support.redis_server import RedisServer, free_port

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
REDIS_PASSWORD = "SECRET-redis-pw-7f3a"
DB_PASSWORD = "SECRET-db-pw-91c2"
GEMINI_KEY = "SECRET-gemini-key-55d1"
SERVICE_KEY = "SECRET-service-key-0a9b"
SECRETS = (REDIS_PASSWORD, DB_PASSWORD, GEMINI_KEY, SERVICE_KEY)


@pytest.fixture
def protected_redis(tmp_path: Path) -> Iterator[RedisServer]:
    (tmp_path / "redis").mkdir()
    server = RedisServer(tmp_path / "redis", password=REDIS_PASSWORD)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    host = f"{parts.hostname}:{parts.port or 5432}"
    return urlunsplit(parts._replace(netloc=f"{parts.username or 'postgres'}:{password}@{host}"))


def run(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pool.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def redis_dump(url: str) -> str:
    """Every key and value of the private Redis, as text."""
    client = sync_redis.Redis.from_url(url, decode_responses=True)
    out = []
    try:
        for key in client.scan_iter(count=500):
            kind = client.type(key)
            value: object
            if kind == "string":
                value = client.get(key)
            elif kind == "hash":
                value = client.hgetall(key)
            elif kind == "zset":
                value = client.zrange(key, 0, -1, withscores=True)
            elif kind == "set":
                value = sorted(client.smembers(key))
            elif kind == "list":
                value = client.lrange(key, 0, -1)
            else:
                value = kind
            out.append(f"{key} = {value!r}")
    finally:
        client.close()
    return "\n".join(out)


async def test_no_secret_in_any_output_key_or_metric(
    migrated_url: str, protected_redis: RedisServer, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    files = []
    for n in range(2):
        path = docs / f"acte-{n}.pdf"
        write_pdf(path, [acte_paragraphs(4000 + n, 4)])
        files.append(str(path))
    port = free_port()
    config = SimulatorConfig(port=0, corpus=(docs,), latency_ms=700, latency_sigma=0)
    async with run_simulator(config) as sim:
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "DEV_DATABASE_URL": with_password(migrated_url, DB_PASSWORD),
            "DEV_SUPABASE_URL": "http://127.0.0.1:9",
            "DEV_SUPABASE_SERVICE_KEY": SERVICE_KEY,
            "REDIS_URL": protected_redis.url,
            "OCR_REDIS_PREFIX": "secrets:",
            "OCR_SERVER_ID": "secrets-test",
            "GEMINI_API_KEY": GEMINI_KEY,
            "GEMINI_BASE_URL": sim.url,
            "OCR_RENDER_DPI": "72",
            "OCR_IDLE_POLL_SECONDS": "0.2",
            "OCR_STATUS_INTERVAL_MS": "500",
            "OCR_REBALANCE_INTERVAL_MS": "500",
            "OCR_METRICS_PORT": str(port),
            "SERVER_MAX_CPU": "16",
            "SERVER_MAX_RAM": "16",
        }
        outputs: list[str] = []

        def command(*args: str) -> subprocess.CompletedProcess[str]:
            result = run(env, *args)
            outputs.append(f"$ {' '.join(args)}\n{result.stdout}\n{result.stderr}")
            return result

        async def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return await anyio.to_thread.run_sync(lambda: command(*args))

        assert (await cli("migrate")).returncode == 0
        assert (await cli("enqueue", *files, "--source", "acte")).returncode == 0
        pool = subprocess.Popen(  # noqa: ASYNC220 - returns at once; waited on in a thread
            [sys.executable, "-m", "pool.cli", "start", "--until-empty"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        metrics = ""
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 60
            while not metrics and time.monotonic() < deadline:
                try:
                    async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                        if response.status == 200:
                            metrics = await response.text()
                except aiohttp.ClientError:
                    await anyio.sleep(0.1)
        stdout, stderr = await anyio.to_thread.run_sync(lambda: pool.communicate(timeout=120))
        outputs.append(f"$ start --until-empty\n{stdout}\n{stderr}")
        assert pool.returncode == 0, stderr[-2000:]
        for args in (("status",), ("status", "--json"), ("gemini",), ("gemini", "--json")):
            assert (await cli(*args)).returncode == 0, outputs[-1]
        assert (await cli("capacity", "--json")).returncode == 0, outputs[-1]
        assert (await cli("requeue-failed")).returncode == 0, outputs[-1]
        # Failures print the URL too: still without the password.
        wrong = dict(
            env, REDIS_URL=protected_redis.url.replace(REDIS_PASSWORD, "nope-" + GEMINI_KEY)
        )
        await anyio.to_thread.run_sync(lambda: outputs.append(run(wrong, "gemini").stderr))
    everything = "\n".join(outputs) + "\n" + metrics + "\n" + redis_dump(protected_redis.url)
    assert "ocr_pool_jobs_total" in metrics
    assert "secrets:gemini:rpm:current" in everything  # Redis was written to and dumped
    assert "DEV" in everything.upper()
    for secret in SECRETS:
        assert secret not in everything, f"{secret} leaked"


async def test_redis_password_right_works_wrong_fails_fast(
    migrated_url: str, protected_redis: RedisServer, tmp_path: Path
) -> None:
    base = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "DATABASE_URL": migrated_url,
        "GEMINI_BASE_URL": "http://127.0.0.1:9",
        "OCR_REDIS_PREFIX": "pw:",
    }
    right = run({**base, "REDIS_URL": protected_redis.url}, "gemini", "--json", timeout=30)
    assert right.returncode == 0, right.stderr
    assert "models" in json.loads(right.stdout) or right.stdout.strip().startswith("{")

    wrong_url = protected_redis.url.replace(REDIS_PASSWORD, "wrong-password")
    started = time.monotonic()
    wrong = run({**base, "REDIS_URL": wrong_url}, "start", timeout=60)
    took = time.monotonic() - started
    lines = wrong.stderr.strip().splitlines()
    assert wrong.returncode == 1
    assert lines[-1].startswith("ocr-pool: Redis redis://:***@127.0.0.1:")
    assert "refused the credentials in REDIS_URL" in lines[-1]
    assert "wrong-password" not in wrong.stderr + wrong.stdout
    assert took < 20  # fails at once, no retry loop

    missing_url = protected_redis.url.replace(f":{REDIS_PASSWORD}@", "")
    missing = run({**base, "REDIS_URL": missing_url}, "start", timeout=60)
    assert missing.returncode == 1
    assert "requires a password" in missing.stderr.strip().splitlines()[-1]
