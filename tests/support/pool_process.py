"""`ocr-pool start` as a real child process, for signal and crash tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from signal import Signals

import anyio

ROOT = Path(__file__).resolve().parents[2]


def pool_env(
    database_url: str,
    prefix: str,
    sim_url: str,
    server_id: str,
    **extra: str | int | float,
) -> dict[str, str]:
    """Environment of a pool process: only what is given here (no stray .env)."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "DATABASE_URL": database_url,
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "OCR_REDIS_PREFIX": prefix,
        "OCR_SERVER_ID": server_id,
        "GEMINI_BASE_URL": sim_url,
        "GEMINI_API_KEY": "sim-key",
        "GEMINI_RETRY_BASE_SECONDS": "0.05",
        "OCR_RENDER_DPI": "72",
        "OCR_RETRY_BASE_SECONDS": "0.1",
        "OCR_RETRY_MAX_SECONDS": "0.5",
        "OCR_IDLE_POLL_SECONDS": "0.2",
        "OCR_REBALANCE_INTERVAL_MS": "1000",
        "OCR_STATUS_INTERVAL_MS": "2000",
        "SERVER_MAX_CPU": "64",
        "SERVER_MAX_RAM": "64",
        "SERVER_RESERVE_CPU_PERCENT": "0",
        "SERVER_RESERVE_RAM_PERCENT": "0",
    }
    env.update({k: str(v) for k, v in extra.items()})
    return env


class PoolProcess:
    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        *args: str,
        launcher: tuple[str, ...] = (sys.executable, "-m", "pool.cli"),
        new_session: bool = False,
    ) -> None:
        """`<launcher> start <args>`; `new_session`: in its own session and process
        group, as a service manager runs it (`signal_group` then reaches every process
        of it, the launcher included)."""
        self.log_path = log_path
        self._log = log_path.open("wb")
        self._new_session = new_session
        self.proc = subprocess.Popen(
            [*launcher, "start", *args],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=new_session,
        )

    def signal(self, signum: signal.Signals) -> None:
        self.proc.send_signal(signum)

    def signal_group(self, signum: Signals) -> None:
        """`signum` to the whole process group (a control-group kill, a terminal's ^C)."""
        os.killpg(self.proc.pid, signum)

    async def wait(self, within: float) -> int:
        try:
            return await anyio.to_thread.run_sync(self.proc.wait, within)
        finally:
            self._log.flush()

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self._new_session:
            # The launcher may be gone while what it started is not: end the group.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()


async def wait_for(
    predicate: Callable[[], Awaitable[bool]], within: float, every: float = 0.1
) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await predicate():
            return
        await anyio.sleep(every)
    raise TimeoutError(f"condition not met within {within} s")
