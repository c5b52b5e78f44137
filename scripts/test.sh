#!/usr/bin/env bash
# The project's test command (README): installs what is missing, brings up
# PostgreSQL and Redis, then runs ruff, mypy, import-linter (the layers in pyproject.toml)
# and pytest. Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "$0")/bootstrap.sh"
eval "$(bash scripts/services.sh)"

echo "== ruff" >&2
ruff check .
ruff format --check .
echo "== mypy" >&2
mypy
echo "== import-linter" >&2
lint-imports
echo "== pytest" >&2
pytest "$@"
