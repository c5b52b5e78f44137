"""A small HTTP server for probes and Prometheus, on the pool's event loop.

    async with serve_health("127.0.0.1", 9464, snapshot_fn, ready_fn) as server:
        ...  # server.port, server.url

- `GET /healthz`: 200 `ok` whenever the event loop answers (liveness).
- `GET /readyz`: 200 `ready` when `ready_fn()` says so, else 503 with its reason.
- `GET /metrics`: `snapshot_fn()` and this process's series (`pool.status.metrics.PoolMetrics`,
  a registry of this server's own) in the Prometheus text format 0.0.4, or in
  OpenMetrics when the `Accept` header asks for `application/openmetrics-text`;
  gzip-compressed when the client accepts it.

`snapshot_fn` may be a plain or an async function. Binds to 127.0.0.1 when `host`
is None; port 0 picks a free port. Nothing served here holds a secret.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import NamedTuple

from aiohttp import hdrs, web

from pool.status.metrics import PoolMetrics
from pool.status.snapshot import PoolSnapshot

log = logging.getLogger("pool.health")

DEFAULT_HOST = "127.0.0.1"


class Readiness(NamedTuple):
    ready: bool
    reason: str = ""


SnapshotFn = Callable[[], PoolSnapshot | Awaitable[PoolSnapshot]]
ReadyFn = Callable[[], tuple[bool, str]]


@dataclass(frozen=True, slots=True)
class HealthServer:
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def health_app(
    snapshot_fn: SnapshotFn, ready_fn: ReadyFn, registry: PoolMetrics | None = None
) -> web.Application:
    """The three routes; `/metrics` through `registry` (a new one when None)."""
    pool_metrics = registry if registry is not None else PoolMetrics()

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_: web.Request) -> web.Response:
        try:
            ready, reason = ready_fn()
        except Exception as exc:
            log.exception("readiness check failed")
            ready, reason = False, f"readiness check failed: {type(exc).__name__}"
        if ready:
            return web.Response(text="ready\n")
        reason = " ".join((reason or "not ready").split())
        return web.Response(status=503, text=f"not ready: {reason}\n")

    async def metrics(request: web.Request) -> web.Response:
        try:
            produced = snapshot_fn()
            snap = await produced if inspect.isawaitable(produced) else produced
            accept = ",".join(request.headers.getall(hdrs.ACCEPT, []))
            body, content_type = pool_metrics.render(snap, accept)
        except Exception as exc:
            log.exception("metrics snapshot failed")
            return web.Response(status=500, text=f"snapshot failed: {type(exc).__name__}\n")
        response = web.Response(body=body, headers={"Content-Type": content_type, "Vary": "Accept"})
        response.enable_compression()
        return response

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app


@asynccontextmanager
async def serve_health(
    host: str | None,
    port: int,
    snapshot_fn: SnapshotFn,
    ready_fn: ReadyFn,
) -> AsyncIterator[HealthServer]:
    """Serve /healthz, /readyz and /metrics until the block exits. `host` None or
    empty: 127.0.0.1. Raises OSError when the address cannot be bound (port taken,
    unknown host)."""
    host = host or DEFAULT_HOST
    runner = web.AppRunner(health_app(snapshot_fn, ready_fn), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, reuse_address=True)
        await site.start()
        bound_port = port
        for address in runner.addresses:
            if isinstance(address, tuple) and len(address) >= 2:
                bound_port = int(address[1])
                break
        server = HealthServer(host, bound_port)
        log.info("health and metrics on %s (/healthz /readyz /metrics)", server.url)
        yield server
    finally:
        await runner.cleanup()
