"""Starting and stopping a simulator: in-process (`run_simulator`) or as a program."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from gemini_simulator.app import build_app
from gemini_simulator.config import SimulatorConfig
from gemini_simulator.reqlog import RequestRecord
from gemini_simulator.state import SimulatorState

SHUTDOWN_TIMEOUT = 2.0
"""Seconds in-flight answers get at stop (hanging ones are released at once)."""


class Simulator:
    """A running simulator. `url` is the base URL to give the SDK (`HttpOptions.base_url`)."""

    def __init__(self, state: SimulatorState, runner: web.AppRunner, host: str, port: int) -> None:
        self.state = state
        self._runner = runner
        self.host = host
        self.port = port
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{port}"

    @property
    def config(self) -> SimulatorConfig:
        return self.state.config

    def records(self) -> list[RequestRecord]:
        """The request log (what `GET /_sim/log` returns)."""
        return self.state.log.records()

    def configure(self, **changes: Any) -> SimulatorConfig:
        """Change runtime settings (as `POST /_sim/config`)."""
        return self.state.configure(changes)

    def reset(self) -> None:
        """Clear the log, quota windows and files (as `POST /_sim/reset`)."""
        self.state.reset()

    async def add_corpus(self, paths: Iterable[Path]) -> int:
        """Add PDFs (files or directories) to the corpus; returns the pages added."""
        return await self.state.add_corpus(paths)

    async def stop(self) -> None:
        self.state.stopping.set()
        await self._runner.cleanup()
        await self.state.close()


async def start_simulator(config: SimulatorConfig | None = None) -> Simulator:
    """Start serving `config` (default settings if None); CorpusError / OSError if it cannot."""
    config = config or SimulatorConfig()
    state = SimulatorState(config)
    try:
        if config.corpus:
            await state.add_corpus(config.corpus)
        runner = web.AppRunner(
            build_app(state),
            access_log=None,
            handler_cancellation=True,
            shutdown_timeout=SHUTDOWN_TIMEOUT,
        )
        await runner.setup()
    except BaseException:
        await state.close()
        raise
    try:
        site = web.TCPSite(runner, config.host, config.port)
        await site.start()
    except BaseException:
        await runner.cleanup()
        await state.close()
        raise
    port = config.port
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            port = int(address[1])
            break
    return Simulator(state, runner, config.host, port)


@asynccontextmanager
async def run_simulator(config: SimulatorConfig | None = None) -> AsyncIterator[Simulator]:
    """`async with run_simulator(SimulatorConfig(port=0)) as sim:` … `sim.url` …"""
    simulator = await start_simulator(config)
    try:
        yield simulator
    finally:
        await simulator.stop()


async def serve_until_signal(config: SimulatorConfig, on_ready: Callable[[str], None]) -> None:
    """Serve until SIGINT or SIGTERM; `on_ready(url)` once listening."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    try:
        async with run_simulator(config) as simulator:
            on_ready(simulator.url)
            await stop.wait()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def serve_forever(config: SimulatorConfig, on_ready: Callable[[str], None]) -> None:
    """Blocking: serve until SIGINT or SIGTERM, then stop cleanly."""
    asyncio.run(serve_until_signal(config, on_ready))


async def admin(url: str, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
    """Call an admin endpoint of a simulator running elsewhere (`path` like "/_sim/log")."""
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url.rstrip("/") + path, json=body) as response,
    ):
        response.raise_for_status()
        return await response.json()
