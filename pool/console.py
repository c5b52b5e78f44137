"""The CLI's consoles and its one way to stop: one line on stderr, an exit code."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console

out = Console()
err = Console(stderr=True)


def die(message: str, code: int) -> NoReturn:
    # One line, no markup interpretation (messages may contain brackets).
    err.print(f"ocr-pool: {message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)
