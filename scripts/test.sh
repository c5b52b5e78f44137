#!/usr/bin/env bash
# The project's test command (README): installs what is missing, brings up
# PostgreSQL and Redis, then runs ruff, mypy and pytest. Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "$0")/bootstrap.sh"
eval "$(bash scripts/services.sh)"

echo "== ruff" >&2
ruff check .
ruff format --check .
echo "== mypy" >&2
mypy
echo "== pytest" >&2
pytest "$@"
