"""`ocr-pool gemini`: the shared Gemini limiter's view of the fleet, and the day's bill
(tokens by kind and money per model, `pool.bill`), from Redis.

`pool/cli/app.py` calls `register(app)`; `status` shows the same table under the queue.
Reading runs the limiter's publish script, so `gemini:rpm:current` and
`gemini:tpm:current` are fresh afterwards even when no pool is running.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from pool.cli.console import die, out, settings_or_exit
from pool.status.tables import Column, FitTable

if TYPE_CHECKING:  # imported where used: registering the command loads none of them
    from pool.bill import BillRow
    from pool.wiring.settings import Settings
    from ratelimit import FleetUsage, ModelUsage


async def read_gemini(settings: Settings) -> FleetUsage:
    from pool.wiring.configs import limiter_config
    from pool.wiring.redis_client import redis_client
    from ratelimit import read_fleet_usage

    async with redis_client(settings) as redis:
        return await read_fleet_usage(redis, settings.ocr_redis_prefix, limiter_config(settings))


async def read_todays_bill(settings: Settings) -> tuple[str, list[BillRow]]:
    """(quota day, the fleet's bill for it per model) from Redis."""
    from pool.bill import quota_day, read_bill
    from pool.wiring.redis_client import redis_client

    day = quota_day(settings.gemini_quota_timezone)
    async with redis_client(settings) as redis:
        return day, await read_bill(redis, settings.ocr_redis_prefix, day)


def bill_table(day: str, rows: list[BillRow]) -> FitTable:
    table = FitTable(
        (
            Column("model", justify="left", key=True),
            Column("requests"),
            Column("input"),
            Column("output"),
            Column("thinking"),
            Column("USD"),
        ),
        title=f"Gemini bill, quota day {day} (every pool of the fleet)",
    )
    for r in rows:
        table.add_row(
            r.model,
            f"{r.requests:,}",
            f"{r.input_tokens:,}",
            f"{r.output_tokens:,}",
            f"{r.thinking_tokens:,}",
            "?" if r.cost_usd is None else f"{r.cost_usd:,.4f}",
        )
    return table


def gemini_or_error(settings: Settings) -> FleetUsage | str:
    """The fleet's usage, or a one-line reason it could not be read (no secrets)."""
    import anyio
    from redis.exceptions import RedisError

    from pool.wiring.settings import redact_url
    from ratelimit import LimiterError

    try:
        return anyio.run(read_gemini, settings)
    except (RedisError, OSError, LimiterError) as exc:
        target = redact_url(settings.redis_url.get_secret_value())
        return f"Redis {target}: {type(exc).__name__}: {redact_url(str(exc))}"


def _of(used: int, limit: int | None) -> str:
    if not limit:
        return f"{used:,}"
    return f"{used:,} / {limit:,} ({100 * used / limit:.0f}%)"


def _model_row(m: ModelUsage) -> list[str]:
    error = m.estimate_error_ratio
    cooldown = f"{m.cooldown_seconds:.1f}s {m.cooldown_reason}" if m.cooldown_seconds else "-"
    return [
        m.model,
        _of(m.rpm, m.rpm_effective),
        _of(m.tpm, m.tpm_effective),
        _of(m.rpd, m.rpd_limit),
        f"{m.factor:.0%}",
        str(m.waiting),
        cooldown,
        str(m.stats.get("quota_errors", 0)),
        "-" if error is None else f"{error:.1%}",
    ]


def gemini_table(usage: FleetUsage) -> FitTable:
    window = usage.models[0].window_seconds if usage.models else 60.0
    title = f"Gemini (last {window:g} s; {usage.workers} workers seen)"
    if usage.fence_seconds:
        title += f" - fenced {usage.fence_seconds:.1f}s after Redis lost its data"
    table = FitTable(
        (
            Column("model", justify="left", key=True),
            Column("requests / effective limit", "requests\n/ limit"),
            Column("input tokens / effective limit", "input tokens\n/ limit"),
            Column("today / limit", "today\n/ limit"),
            Column("ceiling"),
            Column("waiting"),
            Column("cooldown", justify="left", free=True),
            Column("429s"),
            Column("estimate error", "estimate\nerror"),
        ),
        title=title,
    )
    for m in usage.models:
        table.add_row(*_model_row(m))
    return table


def register(app: typer.Typer) -> None:
    """Add the `gemini` command to `app`."""

    @app.command("gemini")
    def gemini(
        as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    ) -> None:
        """Gemini usage per model against the (adaptive) limits, cooldowns, 429s."""
        import anyio

        settings = settings_or_exit()
        usage = gemini_or_error(settings)
        if isinstance(usage, str):
            die(usage, 1)
        day, bill = anyio.run(read_todays_bill, settings)
        if as_json:
            document = {
                **usage.as_json(),
                "bill": {"day": day, "models": [r.as_json() for r in bill]},
            }
            sys.stdout.write(json.dumps(document, indent=2) + "\n")
            return
        if not usage.models:
            out.print("no Gemini usage recorded in Redis yet", markup=False, highlight=False)
            return
        out.print(gemini_table(usage))
        if bill:
            out.print(bill_table(day, bill))
