#!/usr/bin/env bash
# Sourced by the other scripts: make `uv` available and the locked environment
# installed in .venv (from uv.lock, exactly). Needs Python >= 3.11 and PyPI.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

PYTHON=$(command -v python3.11 || command -v python3 || true)
[ -n "$PYTHON" ] || { echo "bootstrap: error: python3 (>= 3.11) not found" >&2; exit 1; }
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "bootstrap: error: $PYTHON is older than Python 3.11" >&2; exit 1; }
export UV_PYTHON="$PYTHON" UV_PYTHON_DOWNLOADS=never

if command -v uv >/dev/null 2>&1; then
    UV=(uv)
else
    if ! "$PYTHON" -m uv --version >/dev/null 2>&1; then
        echo "bootstrap: installing uv with pip" >&2
        "$PYTHON" -m pip install --quiet --disable-pip-version-check uv >&2 \
            || { echo "bootstrap: error: could not install uv (pip install uv)" >&2; exit 1; }
    fi
    UV=("$PYTHON" -m uv)
fi

# Bytecode compiled once here: with PYTHONDONTWRITEBYTECODE set (containers, many
# CI images) every `ocr-pool start` would otherwise compile google-genai & co. from
# source again: 3.1 s of imports instead of 1.2 s on a 2-core machine.
"${UV[@]}" sync --frozen --quiet --compile-bytecode >&2
# The project itself is installed editable: compile its modules too (stale ones are
# recompiled by their timestamps), as an installed wheel would be.
"$ROOT/.venv/bin/python" -m compileall -q -j 0 pool workers store domain ratelimit capacity \
    gemini_simulator >&2
export PATH="$ROOT/.venv/bin:$PATH"
