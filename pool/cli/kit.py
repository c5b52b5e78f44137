"""What every `ocr-pool` command shares: the version, help without type noise, and one
warning per settings typo before a command runs."""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from pool.cli.console import err

DISTRIBUTION = "ocr-pool"

_LIST = re.compile(r"^<list\[(?P<item>[^\]]+)\]>$")
_RANGE = re.compile(r"^<(?P<item>\w+) range>$")


def version_line() -> str:
    """`ocr-pool <version>`, from the installed package's metadata."""
    try:
        return f"{DISTRIBUTION} {package_version(DISTRIBUTION)}"
    except PackageNotFoundError:
        return f"{DISTRIBUTION} (version unknown: the package is not installed; run `uv sync`)"


def print_version(value: bool) -> None:
    """`--version`: print the version and stop (an eager option's callback)."""
    if value:
        typer.echo(version_line())
        raise typer.Exit(0)


def help_type(label: str | None, *, flag: bool, argument: bool) -> str | None:
    """The type shown beside a parameter in `--help`, without the noise: none for a flag
    (it takes no value) or a list argument (its name says it), `<str>` for a repeatable
    option's `<list[str]>`, `<int>` for `<int range>` (the range is shown after it)."""
    if flag or label is None:
        return None
    listed = _LIST.match(label)
    if listed:
        return None if argument else f"<{listed.group('item').lower()}>"
    ranged = _RANGE.match(label)
    if ranged:
        return f"<{ranged.group('item')}>"
    return label


def _tidy_params(command: Any, ctx: Any) -> None:
    for param in command.get_params(ctx):
        label = help_type(
            param.display_type_rich(ctx=ctx),
            flag=bool(getattr(param, "is_flag", False)),
            argument=param.param_type_name == "argument",
        )
        # Shadow the method on this parameter alone: help is printed once, then the
        # process exits.
        vars(param)["display_type_rich"] = lambda ctx=None, _label=label: _label


_warned = False


def warn_settings_typos() -> None:
    """One line on stderr per variable of a settings family that is no setting (a typo),
    naming the closest setting; never the value. Once per process."""
    global _warned
    if _warned:
        return
    _warned = True
    from pool.wiring.settings import settings_typos

    for unknown in settings_typos():
        err.print(f"ocr-pool: {unknown.warning()}", markup=False, highlight=False, soft_wrap=True)


class Command(TyperCommand):
    """A command whose help shows no type noise and which warns of settings typos
    before it runs."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _tidy_params(self, ctx)
        super().format_help(ctx, formatter)

    def invoke(self, ctx: Any) -> Any:
        if not ctx.resilient_parsing:
            warn_settings_typos()
        return super().invoke(ctx)


class Group(TyperGroup):
    """The `ocr-pool` group: its help shows no type noise either."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _tidy_params(self, ctx)
        super().format_help(ctx, formatter)


def finish(app: typer.Typer) -> None:
    """Give every command registered so far (by this module or a `register(app)`) the
    shared command class."""
    for info in app.registered_commands:
        if info.cls is None or info.cls is TyperCommand:
            info.cls = Command
