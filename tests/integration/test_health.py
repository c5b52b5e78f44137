"""/healthz, /readyz and /metrics over real HTTP; /metrics scraped and read back by
`prometheus_client`'s parsers (text 0.0.4 and OpenMetrics)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import aiohttp
import anyio
import pytest
from prometheus_client.parser import text_string_to_metric_families

from pool.status.health import HealthServer, Readiness, serve_health
from pool.status.snapshot import PoolSnapshot
from tests.unit.test_metrics import (
    POOL_FAMILIES,
    PROCESS_FAMILIES,
    check_families,
    full_snapshot,
    parse,
    parse_openmetrics,
    value,
)
from tests.unit.test_panel import sample_snapshot

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


async def test_metrics_scraped_by_prometheus_client_parser(
    server: HealthServer, http: aiohttp.ClientSession, pool: Pool
) -> None:
    """Today's families, each with its type and labels, plus the process and GC ones."""
    pool.snapshot = full_snapshot()
    async with http.get(f"{server.url}/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        text = await resp.text()
    families = list(text_string_to_metric_families(text))
    by_name = check_families(families, {**POOL_FAMILIES, **PROCESS_FAMILIES})
    for name in ("process_cpu_seconds", "process_resident_memory_bytes"):
        assert by_name[name].samples[0].value > 0, name
    generations = {s.labels["generation"] for s in by_name["python_gc_objects_collected"].samples}
    assert generations == {"0", "1", "2"}
    (info,) = by_name["ocr_pool_info"].samples
    assert info.labels == {"pool_id": "pool-a", "server_id": "srv-1"}


async def test_metrics_in_openmetrics_when_asked(
    server: HealthServer, http: aiohttp.ClientSession, pool: Pool
) -> None:
    pool.snapshot = full_snapshot()
    headers = {"Accept": "application/openmetrics-text; version=1.0.0,text/plain;q=0.5"}
    async with http.get(f"{server.url}/metrics", headers=headers) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith(
            "application/openmetrics-text; version=1.0.0; charset=utf-8"
        )
        text = await resp.text()
    assert text.endswith("# EOF\n")
    families = list(parse_openmetrics(text))
    check_families(families, {**POOL_FAMILIES, **PROCESS_FAMILIES})
    # and plain text again for a client that does not ask
    async with http.get(f"{server.url}/metrics") as resp:
        assert not (await resp.text()).endswith("# EOF\n")


async def test_metrics_gzip_when_accepted(
    server: HealthServer, http: aiohttp.ClientSession
) -> None:
    headers = {"Accept-Encoding": "gzip"}
    async with http.get(f"{server.url}/metrics", headers=headers) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Encoding"] == "gzip"
        families = parse(await resp.text())  # the client inflates it
    assert value(families, "ocr_pool_ready") == 1


async def test_two_pools_in_one_process_each_with_its_registry(
    http: aiohttp.ClientSession, pool: Pool
) -> None:
    other = Pool()
    other.snapshot = sample_snapshot(pool_id="pool-b")
    async with (
        serve_health("127.0.0.1", 0, pool.snap, pool.ready) as a,
        serve_health("127.0.0.1", 0, other.snap, other.ready) as b,
    ):
        texts = []
        for server in (a, b):
            async with http.get(f"{server.url}/metrics") as resp:
                assert resp.status == 200
                texts.append(await resp.text())
    for text, pool_id in zip(texts, ("pool-a", "pool-b"), strict=True):
        families = parse(text)
        assert value(families, "ocr_pool_info", pool_id=pool_id, server_id="srv-1") == 1
        assert len(families["ocr_pool_info"].samples) == 1
        assert "process_resident_memory_bytes" in families


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
