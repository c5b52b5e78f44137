"""/healthz, /readyz and /metrics over real HTTP."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import aiohttp
import anyio
import pytest

from pool.health import HealthServer, Readiness, serve_health
from pool.snapshot import PoolSnapshot
from tests.test_metrics import parse, value
from tests.test_panel import sample_snapshot

pytestmark = pytest.mark.anyio


class Pool:
    """What the pool manager would hand to the server."""

    def __init__(self) -> None:
        self.readiness = Readiness(False, "warming up: queue not read yet")
        self.snapshot = sample_snapshot()
        self.snapshots_taken = 0

    def ready(self) -> tuple[bool, str]:
        return self.readiness

    def snap(self) -> PoolSnapshot:
        self.snapshots_taken += 1
        return self.snapshot


@pytest.fixture
def pool() -> Pool:
    return Pool()


@pytest.fixture
async def server(pool: Pool) -> AsyncIterator[HealthServer]:
    async with serve_health(None, 0, pool.snap, pool.ready) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


async def test_binds_to_localhost_on_a_free_port(server: HealthServer) -> None:
    assert server.host == "127.0.0.1"
    assert server.port > 0
    assert server.url == f"http://127.0.0.1:{server.port}"


async def test_healthz(server: HealthServer, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{server.url}/healthz") as resp:
        assert resp.status == 200
        assert (await resp.text()).strip() == "ok"


async def test_readyz_follows_readiness(
    server: HealthServer, http: aiohttp.ClientSession, pool: Pool
) -> None:
    async with http.get(f"{server.url}/readyz") as resp:
        assert resp.status == 503
        assert (await resp.text()).strip() == "not ready: warming up: queue not read yet"
    pool.readiness = Readiness(True)
    async with http.get(f"{server.url}/readyz") as resp:
        assert resp.status == 200
        assert (await resp.text()).strip() == "ready"
    pool.readiness = Readiness(False, "stopping:\nfinishing 2 jobs")
    async with http.get(f"{server.url}/readyz") as resp:
        assert resp.status == 503
        assert (await resp.text()).strip() == "not ready: stopping: finishing 2 jobs"


async def test_readyz_is_503_when_the_check_raises(http: aiohttp.ClientSession, pool: Pool) -> None:
    def broken() -> tuple[bool, str]:
        raise RuntimeError("secret detail")

    async with (
        serve_health("127.0.0.1", 0, pool.snap, broken) as server,
        http.get(f"{server.url}/readyz") as resp,
    ):
        assert resp.status == 503
        body = await resp.text()
    assert "RuntimeError" in body
    assert "secret detail" not in body


async def test_metrics_content_type_and_values(
    server: HealthServer, http: aiohttp.ClientSession, pool: Pool
) -> None:
    async with http.get(f"{server.url}/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        families = parse(await resp.text())
    assert value(families, "ocr_pool_queue_jobs", env="prod", type="index", state="waiting") == 120
    assert value(families, "ocr_pool_ready") == 1
    # every scrape takes a fresh snapshot
    pool.snapshot = sample_snapshot(ready=False, pool_size=9)
    async with http.get(f"{server.url}/metrics") as resp:
        families = parse(await resp.text())
    assert value(families, "ocr_pool_size_workers") == 9
    assert value(families, "ocr_pool_ready") == 0
    assert pool.snapshots_taken == 2


async def test_metrics_from_an_async_snapshot(http: aiohttp.ClientSession, pool: Pool) -> None:
    async def snap() -> PoolSnapshot:
        await anyio.sleep(0.01)
        return sample_snapshot(pool_id="async-pool")

    async with (
        serve_health("127.0.0.1", 0, snap, pool.ready) as server,
        http.get(f"{server.url}/metrics") as resp,
    ):
        assert resp.status == 200
        families = parse(await resp.text())
    assert value(families, "ocr_pool_info", pool_id="async-pool", server_id="srv-1") == 1


async def test_metrics_500_when_the_snapshot_fails(http: aiohttp.ClientSession, pool: Pool) -> None:
    def broken() -> PoolSnapshot:
        raise ConnectionError("redis://user:hunter2@host")

    async with (
        serve_health("127.0.0.1", 0, broken, pool.ready) as server,
        http.get(f"{server.url}/metrics") as resp,
    ):
        assert resp.status == 500
        body = await resp.text()
        # the server keeps answering
        async with http.get(f"{server.url}/healthz") as health:
            assert health.status == 200
    assert "ConnectionError" in body
    assert "hunter2" not in body


async def test_unknown_path_is_404(server: HealthServer, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{server.url}/nope") as resp:
        assert resp.status == 404


async def test_given_port_is_used_and_freed_on_exit(
    http: aiohttp.ClientSession, pool: Pool
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    async with serve_health("127.0.0.1", port, pool.snap, pool.ready) as server:
        assert server.port == port
        async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
            assert resp.status == 200
    with pytest.raises(aiohttp.ClientConnectionError):
        async with http.get(f"http://127.0.0.1:{port}/healthz"):
            pass


async def test_port_in_use_raises_oserror(pool: Pool) -> None:
    async with serve_health("127.0.0.1", 0, pool.snap, pool.ready) as first:
        with pytest.raises(OSError, match=r"address|in use|Errno"):
            async with serve_health("127.0.0.1", first.port, pool.snap, pool.ready):
                pass
