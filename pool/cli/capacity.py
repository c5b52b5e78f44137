"""`ocr-pool capacity`: each server's CPU/RAM ledger and its holders, from Redis.

`pool/cli/app.py` calls `register(app)`. Reading a server's ledger reaps its expired
leases first (as every ledger operation does), so what is shown is what holds.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pool.cli.console import die, out, settings_or_exit
from pool.status.tables import Column, FitTable

if TYPE_CHECKING:  # imported where used: registering the command loads none of them
    from rich.text import Text

    from capacity import ServerState
    from capacity.resources import Resources
    from pool.wiring.settings import Settings


def register(app: typer.Typer) -> None:
    """Add the `capacity` command to `app`."""

    @app.command("capacity")
    def capacity(
        server: Annotated[
            list[str] | None,
            typer.Option("--server", help="Only this server id (repeatable; default: all)."),
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    ) -> None:
        """Each server's CPU/RAM ledger: allocated vs available, host pressure, holders."""
        import anyio

        from capacity import CapacityError
        from pool.wiring.settings import redact_url

        settings = settings_or_exit()
        try:
            states = anyio.run(_read, settings, server or [])
        except CapacityError as exc:
            target = redact_url(settings.redis_url.get_secret_value())
            die(f"Redis {target}: {exc}", 1)
        if as_json:
            sys.stdout.write(json.dumps({"servers": [_as_dict(s) for s in states]}, indent=2))
            sys.stdout.write("\n")
            return
        if not states:
            prefix = settings.ocr_redis_prefix
            out.print(
                f"no capacity ledger in Redis{f' under prefix {prefix!r}' if prefix else ''}",
                markup=False,
                highlight=False,
            )
            return
        out.print(_servers_table(states))
        if any(s.leases for s in states):
            out.print(_holders_table(states))


async def _read(settings: Settings, servers: list[str]) -> list[ServerState]:
    from capacity import read_fleet
    from pool.wiring.redis_client import redis_client

    async with redis_client(settings) as redis:
        return await read_fleet(redis, settings.ocr_redis_prefix, servers)


def _num(value: float | None, unit: str = "") -> str:
    return "-" if value is None else f"{value:g}{unit}"


def _share(allocated: float, available: float | None) -> str:
    if available is None:
        return f"{allocated:g} / ?"
    percent = f" ({100 * allocated / available:.0f}%)" if available > 0 else ""
    return f"{allocated:g} / {available:g}{percent}"


def _seconds(ms: float) -> str:
    seconds = ms / 1000
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def _servers_table(states: list[ServerState]) -> FitTable:
    table = FitTable(
        (
            Column("server", justify="left", key=True),
            Column("CPU alloc / avail", "CPU alloc\n/ avail"),
            Column("RAM GB alloc / avail", "RAM GB alloc\n/ avail"),
            Column("max CPU / RAM", "max CPU\n/ RAM"),
            Column("reserve %", "reserve\n%"),
            Column("host CPU / RAM %", "host CPU\n/ RAM %"),
            Column("admission"),
            Column("holders"),
            Column("by type", justify="left", free=True),
            Column("published"),
        ),
        title="Capacity ledger",
    )
    for s in states:
        available = s.available
        blocked = s.pressure
        table.add_row(
            s.server_id,
            _share(s.allocated.cpu, None if available is None else available.cpu),
            _share(s.allocated.ram, None if available is None else available.ram),
            f"{_num(s.max_cpu)} / {_num(s.max_ram)}",
            f"{_num(s.reserve_cpu_percent)} / {_num(s.reserve_ram_percent)}",
            f"{_num(s.host_cpu_percent)} / {_num(s.host_ram_percent)}",
            "-" if blocked is None else (_paused(s) if blocked else "open"),
            str(len(s.leases)),
            ", ".join(f"{kind} {n}" for kind, n in sorted(s.by_kind.items())) or "-",
            "-" if s.published_age_seconds is None else f"{s.published_age_seconds:.0f}s ago",
        )
    return table


def _paused(s: ServerState) -> Text:
    from rich.text import Text

    """Pressure: what presses (a pool's only lease still goes through)."""
    return Text(f"paused ({s.pressing or 'pressure'})", style="red")


def _holders_table(states: list[ServerState]) -> FitTable:
    table = FitTable(
        (
            Column("server", justify="left", key=True),
            Column("holder", justify="left", key=True),
            Column("type", justify="left"),
            Column("vCPU"),
            Column("RAM GB"),
            Column("held for", "held\nfor", justify="left"),
            Column("expires in", "expires\nin", justify="left"),
        ),
        title="Holders",
    )
    for s in states:
        for lease in s.leases:
            table.add_row(
                s.server_id,
                lease.holder,
                lease.kind or "-",
                f"{lease.held.cpu:g}",
                f"{lease.held.ram:g}",
                _seconds(s.now_ms - lease.since_ms) if lease.since_ms else "-",
                _seconds(max(0, lease.expires_ms - s.now_ms)),
            )
    return table


def _amounts(value: Resources | None) -> dict[str, float] | None:
    return None if value is None else {"cpu": value.cpu, "ram": value.ram}


def _as_dict(s: ServerState) -> dict[str, Any]:
    return {
        "server": s.server_id,
        "allocated": _amounts(s.allocated),
        "available": _amounts(s.available),
        "max": {"cpu": s.max_cpu, "ram": s.max_ram},
        "reserve_percent": {"cpu": s.reserve_cpu_percent, "ram": s.reserve_ram_percent},
        "host_percent": {"cpu": s.host_cpu_percent, "ram": s.host_ram_percent},
        "pressure": s.pressure,
        "pressing": s.pressing or None,
        "costs": {
            "charged": s.costs or None,
            "configured": s.capacity.get("costs_configured") or None,
            "measured": s.capacity.get("costs_measured") or None,
        },
        "published_seconds_ago": s.published_age_seconds,
        "by_kind": s.by_kind,
        "holders": [
            {
                "holder": lease.holder,
                "kind": lease.kind,
                "cpu": lease.held.cpu,
                "ram": lease.held.ram,
                "held_seconds": (s.now_ms - lease.since_ms) / 1000 if lease.since_ms else None,
                "expires_in_seconds": max(0, lease.expires_ms - s.now_ms) / 1000,
            }
            for lease in s.leases
        ],
        "reaped_now": list(s.reaped),
    }
