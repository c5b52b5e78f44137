"""`ocr-pool start`: one pool on this machine, until SIGTERM/SIGINT (or an empty queue).

The first signal stops claiming and lets in-flight jobs finish (within
OCR_SHUTDOWN_GRACE_SECONDS). Copies of it (`uv run`, a control-group kill) and further
SIGTERMs before the grace deadline change nothing; a second SIGINT, a SIGQUIT, or a
SIGTERM after the deadline gives the jobs in hand back at once (`pool.cli.signals`).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable

import anyio
from rich.console import Console

from pool.cli.logs import LogFormat, json_line
from pool.cli.logs import configure_logging as _configure
from pool.cli.signals import STOP_SIGNALS, Action, SignalState, on_signal
from pool.manager import PoolManager
from pool.status.panel import panel_json, render_block, render_panel
from pool.status.snapshot import PoolSnapshot
from pool.wiring.runtime import StartupError, open_runtime
from pool.wiring.settings import Settings, SettingsError
from store import StoreError

log = logging.getLogger("pool")


def configure_logging(settings: Settings | None = None) -> None:
    """Log lines on stderr (stdout carries the status) at `OCR_LOG_LEVEL`, in
    `OCR_LOG_FORMAT` (`pool.cli.logs`); INFO, text without settings."""
    if settings is None:
        _configure()
    else:
        _configure(settings.ocr_log_level, settings.ocr_log_format)


async def _watch_signals(manager: PoolManager) -> None:
    grace = manager.config.shutdown_grace_seconds
    state = SignalState()
    with anyio.open_signal_receiver(*STOP_SIGNALS) as signals:
        async for signum in signals:
            action, state = on_signal(state, signum, time.monotonic(), grace)
            name = signal.Signals(signum).name
            if action is Action.STOP:
                log.info(
                    "%s: finishing the jobs in hand (up to %.0f s), then exiting; "
                    "SIGINT again or SIGQUIT gives them back now",
                    name,
                    grace,
                )
                manager.request_stop()
            elif action is Action.SAME:
                log.info("%s again at once: the same stop request, counted once", name)
            elif action is Action.ALREADY_STOPPING:
                assert state.stop_since is not None
                left = grace - (time.monotonic() - state.stop_since)
                log.info(
                    "%s again: still finishing the jobs in hand (grace ends in %.0f s); "
                    "SIGINT or SIGQUIT gives them back now",
                    name,
                    max(0.0, left),
                )
            else:
                log.warning("%s: giving back the jobs in hand now", name)
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
        finally:
            _ignore_late_signals()
        return manager


def _ignore_late_signals() -> None:
    """The pool has stopped: a late copy of its stop signal (uv forwards SIGINT
    200 ms after the group got it) must not kill the clean-up or turn exit 0 into
    death by signal. SIGKILL still ends the process."""
    if threading.current_thread() is not threading.main_thread():
        return  # only the main thread may set handlers (and only it had the receiver)
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


def status_printer(console: Console, fmt: LogFormat = "text") -> Callable[[PoolSnapshot], None]:
    """The status (once warmed up, then every OCR_STATUS_INTERVAL_MS): with
    `OCR_LOG_FORMAT=json` one JSON object on one line; else a Rich panel on a terminal,
    and a block of plain lines when stdout is not one (journald, `docker logs`, a file)."""

    def show(snapshot: PoolSnapshot) -> None:
        if fmt == "json":
            _write(console, json_line("pool.status", "status", status=panel_json(snapshot)))
        elif console.is_terminal:
            console.print(render_panel(snapshot))
        else:
            _write(console, render_block(snapshot))

    return show


def _write(console: Console, text: str) -> None:
    """Plain text as it is (no wrapping at the console's width, no markup), in one write."""
    console.file.write(text + "\n")
    console.file.flush()
