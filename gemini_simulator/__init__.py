"""A Gemini simulator: a real HTTP server speaking the REST API the google-genai SDK uses.

Point the SDK (or `GEMINI_BASE_URL`) at `Simulator.url`. The simulator keeps its own
per-model quota (429 bodies as Gemini writes them), counts tokens its own way, injects
latency and faults from a seeded RNG, and derives its answers from what it receives
(PDF text layers with `--- Page N ---` markers, corpus pages recognised from images,
text; schema instances with header objects, nested cells and `lignes X à Y` windows),
so tests check content. Answers over `maxOutputTokens` (or the `max_output_tokens`
setting) are cut with finish reason MAX_TOKENS, and a continuation part
(`--- DÉJÀ TRANSCRIT ---`) is answered with the rest of the answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gemini_simulator.config import ConfigError, SimulatorConfig

if TYPE_CHECKING:
    from gemini_simulator.reqlog import RequestRecord
    from gemini_simulator.server import Simulator, run_simulator, serve_forever

_LAZY = {
    "RequestRecord": "gemini_simulator.reqlog",
    "Simulator": "gemini_simulator.server",
    "run_simulator": "gemini_simulator.server",
    "serve_forever": "gemini_simulator.server",
}


def __getattr__(name: str) -> Any:
    """The server and its request log are imported on first use (PEP 562): the command
    line registers the simulator's command without loading its server."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gemini_simulator' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "ConfigError",
    "RequestRecord",
    "Simulator",
    "SimulatorConfig",
    "run_simulator",
    "serve_forever",
]
