"""`ocr-pool start`: one pool on this machine, until SIGTERM/SIGINT (or an empty queue).

The first signal stops claiming and lets in-flight jobs finish (within
OCR_SHUTDOWN_GRACE_SECONDS); a second one gives the jobs in hand back at once.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Callable

import anyio
from rich.console import Console

from pool.manager import PoolManager, StartupError
from pool.panel import render_line, render_panel
from pool.runtime import open_runtime
from pool.settings import Settings, SettingsError
from pool.snapshot import PoolSnapshot
from workers.store import StoreError

log = logging.getLogger("pool")
QUIET_LOGGERS = ("httpx", "httpcore", "google_genai", "google.genai", "aiohttp.access")


def configure_logging(level: int = logging.INFO) -> None:
    """Plain timestamped lines on stderr (stdout carries the status panel)."""
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    for name in QUIET_LOGGERS:
        # Their INFO lines name every request; ours say what matters.
        logging.getLogger(name).setLevel(logging.WARNING)


async def _watch_signals(manager: PoolManager) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        received = 0
        async for signum in signals:
            received += 1
            name = signal.Signals(signum).name
            if received == 1:
                log.info("%s: finishing the jobs in hand, then exiting", name)
                manager.request_stop()
            else:
                log.warning("%s again: giving back the jobs in hand now", name)
                manager.force_stop()


async def run_pool(
    settings: Settings,
    *,
    until_empty: bool,
    on_status: Callable[[PoolSnapshot], None] | None,
) -> PoolManager:
    async with open_runtime(settings) as runtime:
        manager = PoolManager(runtime, until_empty=until_empty, on_status=on_status)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(_watch_signals, manager)
                await manager.run()
                tg.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # A start-up failure is one line for the CLI, not a task-group traceback.
            clear, _ = group.split((StartupError, StoreError, SettingsError))
            while isinstance(clear, BaseExceptionGroup) and len(clear.exceptions) == 1:
                clear = clear.exceptions[0]  # type: ignore[assignment]
            if clear is not None and not isinstance(clear, BaseExceptionGroup):
                raise clear from None
            raise
        return manager


def status_printer(console: Console) -> Callable[[PoolSnapshot], None]:
    """The status every OCR_STATUS_INTERVAL_MS: a Rich panel on a terminal, else one line."""

    def show(snapshot: PoolSnapshot) -> None:
        if console.is_terminal:
            console.print(render_panel(snapshot))
        else:
            console.print(render_line(snapshot), markup=False, highlight=False, soft_wrap=True)

    return show
