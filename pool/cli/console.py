"""The CLI's consoles and its one way to stop: one line on stderr, an exit code."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, NoReturn, TypeVar

import typer
from rich.console import Console

if TYPE_CHECKING:
    from pool.wiring.settings import QueueEnvironment, Settings

T = TypeVar("T")
out = Console()
err = Console(stderr=True)


def die(message: str, code: int) -> NoReturn:
    # One line, no markup interpretation (messages may contain brackets).
    err.print(f"ocr-pool: {message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def settings_or_exit() -> Settings:
    """The settings, or one line and exit 2 (a command's first step)."""
    from pool.wiring.settings import load_settings

    return _or_exit(load_settings)


def environment_or_exit(settings: Settings, name: str | None) -> QueueEnvironment:
    """The queue environment `name` (None: the one configured), or one line and exit 2."""
    return _or_exit(lambda: settings.environment(name))


def queue_environments(env: str | None, settings: Settings | None = None) -> list[QueueEnvironment]:
    """The queue environment named `env`, or every configured one; a settings problem is
    one line and exit 2."""
    settings = settings if settings is not None else settings_or_exit()
    if env:
        return [environment_or_exit(settings, env)]
    return _or_exit(settings.require_queue)


def _or_exit(read: Callable[[], T]) -> T:
    """`read()`, a settings lookup; its `SettingsError` is one line and exit 2."""
    from pool.wiring.settings import SettingsError

    try:
        return read()
    except SettingsError as exc:
        die(str(exc), 2)


def print_report(lines: Iterable[str], problems: Iterable[str]) -> None:
    """A command's report: its lines on stdout, its problems on stderr, one line each."""
    for line in lines:
        out.print(line, markup=False, highlight=False, soft_wrap=True)
    for problem in problems:
        err.print(f"ocr-pool: {problem}", markup=False, highlight=False, soft_wrap=True)
