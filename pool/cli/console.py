"""The CLI's consoles and its one way to stop: one line on stderr, an exit code."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, NoReturn

import typer
from rich.console import Console

if TYPE_CHECKING:
    from pool.wiring.settings import QueueEnvironment, Settings

out = Console()
err = Console(stderr=True)


def die(message: str, code: int) -> NoReturn:
    # One line, no markup interpretation (messages may contain brackets).
    err.print(f"ocr-pool: {message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def settings_or_exit() -> Settings:
    """The settings, or one line and exit 2 (a command's first step)."""
    from pool.wiring.settings import SettingsError, load_settings

    try:
        return load_settings()
    except SettingsError as exc:
        die(str(exc), 2)


def queue_environments(env: str | None) -> list[QueueEnvironment]:
    """The queue environment named `env`, or every configured one; a settings problem is
    one line and exit 2."""
    from pool.wiring.settings import SettingsError

    settings = settings_or_exit()
    try:
        return [settings.environment(env)] if env else settings.require_queue()
    except SettingsError as exc:
        die(str(exc), 2)


def print_report(lines: Iterable[str], problems: Iterable[str]) -> None:
    """A command's report: its lines on stdout, its problems on stderr, one line each."""
    for line in lines:
        out.print(line, markup=False, highlight=False, soft_wrap=True)
    for problem in problems:
        err.print(f"ocr-pool: {problem}", markup=False, highlight=False, soft_wrap=True)
