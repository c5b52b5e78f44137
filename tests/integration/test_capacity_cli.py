"""`ocr-pool capacity`: the ledger of every server, as a table and as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
import typer
from redis.asyncio import Redis
from typer.testing import CliRunner

from capacity import CapacityLedger, Limits, PressureGuard, Resources
from capacity.probe import CpuSample
from pool.cli.capacity import register
from tests.support.redis_server import free_port

SECRET = "pw-Capa-unseen"


def make_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """ocr-pool (test stand-in)"""

    register(app)
    return app


@pytest.fixture
def env(
    redis_url: str, redis_prefix: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("COLUMNS", "220")
    values = {"REDIS_URL": redis_url, "OCR_REDIS_PREFIX": redis_prefix}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


class Calm:
    def __init__(self) -> None:
        self.seconds = 0.0

    def cpu_sample(self) -> CpuSample:
        self.seconds += 100
        return CpuSample(0.3 * self.seconds, self.seconds)  # 30% busy

    def memory_percent(self) -> float:
        return 41.5


async def _populate(url: str, prefix: str) -> None:
    client = Redis.from_url(url)
    try:
        pool = CapacityLedger(
            client,
            "ocr-a",
            prefix=prefix,
            limits=Limits(8, 16, 20, 20),
            guard=PressureGuard(20, 20, probe=Calm()),
        )
        await pool.publish()
        assert (await pool.acquire("ocr-worker-1", "index")).admitted
        assert (await pool.acquire("ocr-worker-2", "acte")).admitted
        extractor = CapacityLedger(client, "ocr-a", prefix=prefix)  # limits as published
        assert (await extractor.acquire("registre-7", "registre")).admitted
        other = CapacityLedger(client, "ocr-b", prefix=prefix, limits=Limits(4, 8, 20, 20))
        assert (await other.acquire("ocr-worker-1", "acte")).admitted
    finally:
        await client.aclose()


def test_table_shows_each_server_and_its_holders(env: dict[str, str]) -> None:
    anyio.run(_populate, env["REDIS_URL"], env["OCR_REDIS_PREFIX"])
    result = CliRunner().invoke(make_app(), ["capacity"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    row_a = next(line for line in lines if "ocr-a " in line and "/" in line)
    assert "5.5 / 6.4 (86%)" in row_a
    assert "2.25 / 12.8 (18%)" in row_a
    assert "30 / 41.5" in row_a  # host readings published by the pool
    assert "open" in row_a
    assert "acte 1, index 1, registre 1" in row_a
    row_b = next(line for line in lines if "ocr-b " in line and "/" in line)
    assert "1 / ?" in row_b  # nothing published for ocr-b: available unknown
    holders = [line for line in lines if "registre-7" in line]
    assert len(holders) == 1
    assert "registre" in holders[0]


def test_json_and_server_filter(env: dict[str, str]) -> None:
    anyio.run(_populate, env["REDIS_URL"], env["OCR_REDIS_PREFIX"])
    result = CliRunner().invoke(make_app(), ["capacity", "--json", "--server", "ocr-a"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    (server,) = payload["servers"]
    assert server["server"] == "ocr-a"
    assert server["allocated"] == {"cpu": 5.5, "ram": 2.25}
    assert server["available"] == {"cpu": 6.4, "ram": 12.8}
    assert server["reserve_percent"] == {"cpu": 20.0, "ram": 20.0}
    assert server["pressure"] is False
    assert server["by_kind"] == {"index": 1, "acte": 1, "registre": 1}
    holders = {h["holder"]: h for h in server["holders"]}
    assert holders["registre-7"]["cpu"] == 3.0
    assert 0 < holders["registre-7"]["expires_in_seconds"] <= 30


def test_empty_ledger(env: dict[str, str]) -> None:
    result = CliRunner().invoke(make_app(), ["capacity"])
    assert result.exit_code == 0
    assert "no capacity ledger in Redis under prefix" in result.output
    as_json = CliRunner().invoke(make_app(), ["capacity", "--json"])
    assert json.loads(as_json.output) == {"servers": []}


def test_unreachable_redis_is_one_line_without_the_password(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", f"redis://:{SECRET}@127.0.0.1:{free_port()}/0")
    result = CliRunner().invoke(make_app(), ["capacity"])
    assert result.exit_code == 1
    assert SECRET not in result.output
    message = result.output.strip()
    assert "\n" not in message
    assert message.startswith("ocr-pool: Redis redis://:***@127.0.0.1:")
    assert "Connect" in message


def test_a_bad_setting_is_exit_2(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCR_REDIS_PREFIX", "has space")
    result = CliRunner().invoke(make_app(), ["capacity"])
    assert result.exit_code == 2
    assert (
        result.output.strip()
        == "ocr-pool: OCR_REDIS_PREFIX: must not contain spaces (got 'has space')"
    )


class Pressed(Calm):
    def cpu_sample(self) -> CpuSample:
        self.seconds += 100
        return CpuSample(0.913 * self.seconds, self.seconds)  # 91.3% busy


async def _pressed(url: str, prefix: str) -> None:
    client = Redis.from_url(url)
    try:
        pool = CapacityLedger(
            client,
            "ocr-p",
            prefix=prefix,
            limits=Limits(2, 16, 20, 20),
            guard=PressureGuard(20, 20, probe=Pressed()),
        )
        pool.measured = {"index": 0.1}
        pool.costs["index"] = Resources(125, 750)
        await pool.publish()
    finally:
        await client.aclose()


def test_what_presses_and_what_is_charged(env: dict[str, str]) -> None:
    anyio.run(_pressed, env["REDIS_URL"], env["OCR_REDIS_PREFIX"])
    table = CliRunner().invoke(make_app(), ["capacity"])
    assert table.exit_code == 0, table.output
    assert "paused (cpu 91.3% > 80%)" in table.output
    result = CliRunner().invoke(make_app(), ["capacity", "--json"])
    (server,) = json.loads(result.output)["servers"]
    assert server["pressure"] is True
    assert server["pressing"] == "cpu 91.3% > 80%"
    assert server["costs"] == {
        "charged": "registre=3:1,index=0.125:0.75,acte=1:0.5",
        "configured": "registre=3:1,index=1.5:0.75,acte=1:0.5",
        "measured": "index=0.1",
    }
