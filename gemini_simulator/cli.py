"""`ocr-pool simulator`: a local Gemini simulator for tests, benchmarks and demos.

`pool/cli/app.py` calls `register(app)`; `python -m gemini_simulator` runs the same command
alone. The first line on stdout is `gemini-simulator listening on http://HOST:PORT`
(flushed), so scripts can read the URL; it serves until SIGINT/SIGTERM, then exits 0.
The server is imported when the command runs, not when it is registered (`--help` need
not load it), and nothing here imports the rest of the project.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from gemini_simulator.config import ConfigError, SimulatorConfig

_DEFAULTS = SimulatorConfig()


def die(message: str, code: int) -> NoReturn:
    """One line on stderr, as every `ocr-pool` command says its errors, then exit with
    `code` (2: a bad option, 1: could not serve)."""
    typer.echo(f"ocr-pool: {message}", err=True)
    raise typer.Exit(code)


def _announce(url: str) -> None:
    sys.stdout.write(f"gemini-simulator listening on {url}\n")
    sys.stdout.flush()


def register(app: typer.Typer) -> None:
    """Add the `simulator` command to `app`."""

    @app.command("simulator")
    def simulator(
        host: Annotated[str, typer.Option(help="Address to bind.")] = _DEFAULTS.host,
        port: Annotated[int, typer.Option(help="Port (0 = any free port).")] = _DEFAULTS.port,
        rpm: Annotated[
            int, typer.Option(help="Requests per model per window (0 = unlimited).")
        ] = _DEFAULTS.rpm,
        tpm: Annotated[
            int, typer.Option(help="Input tokens per model per window (0 = unlimited).")
        ] = _DEFAULTS.tpm,
        window_seconds: Annotated[
            float, typer.Option(help="Sliding quota window.")
        ] = _DEFAULTS.window_seconds,
        latency_ms: Annotated[
            float, typer.Option(help="Base latency of an answer.")
        ] = _DEFAULTS.latency_ms,
        latency_per_1k_tokens_ms: Annotated[
            float, typer.Option(help="Latency added per 1000 input tokens.")
        ] = _DEFAULTS.latency_per_1k_tokens_ms,
        latency_sigma: Annotated[
            float, typer.Option(help="Sigma of the lognormal latency factor (0 = exact).")
        ] = _DEFAULTS.latency_sigma,
        fault_5xx: Annotated[
            float, typer.Option("--fault-5xx", help="Share of 500/503 answers (0..1).")
        ] = 0.0,
        fault_hang: Annotated[
            float, typer.Option(help="Share of requests that hang --hang-seconds.")
        ] = 0.0,
        fault_malformed: Annotated[
            float, typer.Option(help="Share of 200 answers with a truncated JSON body.")
        ] = 0.0,
        fault_safety: Annotated[
            float, typer.Option(help="Share of prompts blocked for SAFETY.")
        ] = 0.0,
        fault_bad_json: Annotated[
            float, typer.Option(help="Share of schema answers whose text is not JSON.")
        ] = 0.0,
        hang_seconds: Annotated[
            float, typer.Option(help="How long a hanging request waits.")
        ] = _DEFAULTS.hang_seconds,
        max_output_tokens: Annotated[
            int,
            typer.Option(
                help="The model's own output limit: longer answers are cut (MAX_TOKENS); 0 = none.",
            ),
        ] = _DEFAULTS.max_output_tokens,
        thinking_ratio: Annotated[
            float,
            typer.Option(
                help="Thought tokens per answer token of a gemini-2.5+ model asked to think "
                "dynamically (no budget); 0 = never thinks.",
            ),
        ] = _DEFAULTS.thinking_ratio,
        seed: Annotated[int, typer.Option(help="Seed of the fault and latency draws.")] = 0,
        corpus: Annotated[
            list[Path] | None,
            typer.Option(
                "--corpus",
                help="PDF file or directory whose pages images are matched against (repeatable).",
            ),
        ] = None,
        log: Annotated[
            Path | None, typer.Option("--log", help="Append every request record here (JSONL).")
        ] = None,
    ) -> None:
        """Run a local Gemini simulator (the REST API google-genai speaks) until stopped."""
        try:
            config = SimulatorConfig(
                host=host,
                port=port,
                rpm=rpm,
                tpm=tpm,
                window_seconds=window_seconds,
                latency_ms=latency_ms,
                latency_per_1k_tokens_ms=latency_per_1k_tokens_ms,
                latency_sigma=latency_sigma,
                fault_5xx=fault_5xx,
                fault_hang=fault_hang,
                fault_malformed=fault_malformed,
                fault_safety=fault_safety,
                fault_bad_json=fault_bad_json,
                hang_seconds=hang_seconds,
                max_output_tokens=max_output_tokens,
                thinking_ratio=thinking_ratio,
                seed=seed,
                corpus=tuple(corpus or ()),
                log_path=log,
            )
        except ConfigError as exc:
            die(f"simulator: {exc}", 2)
        from gemini_simulator import server
        from gemini_simulator.corpus import CorpusError

        try:
            server.serve_forever(config, _announce)
        except CorpusError as exc:
            die(f"simulator: {exc}", 2)
        except OSError as exc:  # port taken, log file not writable…
            die(f"simulator: {exc}", 1)


def main() -> None:
    """`python -m gemini_simulator`: the command alone."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    register(app)
    app()
