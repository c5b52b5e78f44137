#!/usr/bin/env bash
# The steps of deploy/Dockerfile on a host without a container engine, then the
# container's run: what CI can check of the image (tests/integration/test_deploy_image_steps.py).
#
#   DATABASE_URL=postgresql://…/empty_db REDIS_URL=redis://… bash deploy/image-steps.sh
#
# Build stage: a fresh source tree holding only what the Dockerfile copies (its COPY
# lines are read from it), uv at the Dockerfile's UV_VERSION installed with pip into a
# venv of its own, the same two `uv sync --frozen --no-dev` calls into
# <work>/opt/ocr-pool/.venv; then the source tree is deleted, as the final stage has none.
# Final stage, as a user that is not root (a system user `ocr-image-steps` is made when
# this runs as root): `ocr-pool migrate` (compose's migrate service) on DATABASE_URL (an
# empty database), the simulator, sample PDFs queued, `ocr-pool start` with the image's
# environment (OCR_METRICS_HOST=0.0.0.0), the HEALTHCHECK command until it passes, the
# documents done, then SIGTERM (docker stop): exit 0 within the grace period.
#
# Keys go under a Redis prefix and a server id of their own. Needs Python 3.11, PyPI
# (for uv and the locked packages), DATABASE_URL and REDIS_URL. WORK_DIR: where to
# build (default: a new temporary directory, removed at the end).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DOCKERFILE=$ROOT/deploy/Dockerfile
: "${DATABASE_URL:?DATABASE_URL (an empty database) is required}"
: "${REDIS_URL:?REDIS_URL is required}"
READY_TIMEOUT=${READY_TIMEOUT_SECONDS:-120}
DONE_TIMEOUT=${DONE_TIMEOUT_SECONDS:-240}
RUN_USER=ocr-image-steps
export OCR_REDIS_PREFIX="image-steps-$$:" OCR_SERVER_ID="image-steps-$$"

step() { printf '== %s\n' "$*"; }
die() { echo "image-steps: error: $*" >&2; exit 1; }

# The user of the final stage: not root (the image's USER 10001).
AS=()
if [ "$(id -u)" = 0 ]; then
    id "$RUN_USER" >/dev/null 2>&1 \
        || useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$RUN_USER"
    AS=(setpriv "--reuid=$(id -u "$RUN_USER")" "--regid=$(id -g "$RUN_USER")" --init-groups)
fi
as_user() { "${AS[@]}" "$@"; }

# The base image's python3: a real interpreter (not a pyenv shim) >= 3.11, with venv and
# ensurepip, that the run user can execute (the venv links to it).
PYTHON=
for candidate in python3.11 python3 /usr/local/bin/python3.11 /usr/bin/python3.11 /usr/bin/python3; do
    real=$(command -v "$candidate" >/dev/null 2>&1 \
        && "$candidate" -c 'import sys; print(sys._base_executable)' 2>/dev/null) || continue
    probe='import ensurepip, sys, venv; print(sys.version, sys.prefix); sys.exit(sys.version_info < (3, 11))'
    # The same interpreter for both users (a binary under an unreadable prefix can fall
    # back to the system's libpython when the run user starts it).
    if mine=$("$real" -c "$probe" 2>/dev/null) && [ "$(as_user "$real" -c "$probe" 2>/dev/null)" = "$mine" ]; then
        PYTHON=$real
        break
    fi
done
[ -n "$PYTHON" ] || die "no Python >= 3.11 with venv that $(as_user id -un) can run"

if [ -n "${WORK_DIR:-}" ]; then
    WORK=$WORK_DIR
    mkdir -p "$WORK"
else
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/ocr-image-steps.XXXXXX")
fi
chmod 0755 "$WORK"
PIDS=()
cleanup() {
    local rc=$?
    for pid in "${PIDS[@]}"; do
        [ -z "$pid" ] || kill -KILL "$pid" 2>/dev/null || true
    done
    if [ "$rc" != 0 ]; then
        for log in "$WORK"/*.log; do
            [ -f "$log" ] || continue
            echo "--- last lines of $log" >&2
            tail -n 30 "$log" >&2
        done
    fi
    if [ -x "${VENV:-}/bin/python" ]; then  # this run's Redis keys
        "$VENV/bin/python" -c 'import os, redis
r = redis.Redis.from_url(os.environ["REDIS_URL"])
for key in r.scan_iter(match=os.environ["OCR_REDIS_PREFIX"] + "*", count=500):
    r.delete(key)' 2>/dev/null || true
    fi
    [ -n "${WORK_DIR:-}" ] || rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT

# ------------------------------------------------------------------ build stage
UV_VERSION=$(sed -n 's/^ARG UV_VERSION=//p' "$DOCKERFILE")
[ -n "$UV_VERSION" ] || die "no ARG UV_VERSION in $DOCKERFILE"
# COPY lines of the build stage (before the second FROM), without --from.
mapfile -t SOURCES < <(awk '/^FROM /{n++} n==1 && /^COPY / && !/--from/ {
    for (i = 2; i < NF; i++) print $i }' "$DOCKERFILE")
[ "${#SOURCES[@]}" -gt 0 ] || die "no COPY lines in the build stage of $DOCKERFILE"

step "build stage: $PYTHON, uv $UV_VERSION, sources: ${SOURCES[*]}"
"$PYTHON" -m venv "$WORK/uv"
"$WORK/uv/bin/pip" install --quiet --disable-pip-version-check "uv==$UV_VERSION"
mkdir -p "$WORK/src"
for source in "${SOURCES[@]}"; do
    cp -R "$ROOT/${source%/}" "$WORK/src/"
done
find "$WORK/src" -name __pycache__ -prune -exec rm -rf {} +

export UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON="$PYTHON" UV_PROJECT_ENVIRONMENT="$WORK/opt/ocr-pool/.venv"
(
    cd "$WORK/src"
    "$WORK/uv/bin/uv" sync --frozen --no-dev --no-install-project --quiet
    "$WORK/uv/bin/uv" sync --frozen --no-dev --no-editable --quiet
)
VENV=$WORK/opt/ocr-pool/.venv
"$VENV/bin/ocr-pool" --help >/dev/null
rm -rf "$WORK/src" "$WORK/uv"
unset UV_PROJECT_ENVIRONMENT UV_PYTHON
cd "$WORK"  # not the repository: nothing may come from it from now on
"$VENV/bin/python" - <<'EOF'
import importlib.metadata as md
import sys

import pool

names = {(d.metadata["Name"] or "").lower() for d in md.distributions()}
dev = sorted(names & {"pytest", "mypy", "ruff", "hypothesis"})
if dev:
    sys.exit(f"development packages in the image's venv: {dev}")
print(f"   {len(names)} packages, no development ones; the project from {pool.__file__}")
EOF

# ------------------------------------------------------------------ final stage
[ "$(id -u)" != 0 ] || chown -R "$RUN_USER:" "$WORK"
user_name=$(as_user id -un)
[ "$(as_user id -u)" != 0 ] || die "the run stage must not run as root"
as_user mkdir -p -m 0700 "$WORK/tmp" "$WORK/home"
as_user mkdir -p "$WORK/documents"

free_port() { "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
METRICS_PORT=$(free_port)
SIM_PORT=$(free_port)
# The image's environment (ENV of the final stage), and what compose adds.
export PATH="$VENV/bin:$PATH" PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    OCR_METRICS_PORT=$METRICS_PORT OCR_METRICS_HOST=0.0.0.0 \
    HOME=$WORK/home TMPDIR=$WORK/tmp \
    GEMINI_BASE_URL=http://127.0.0.1:$SIM_PORT GEMINI_API_KEY=simulator \
    OCR_LOCAL_ROOTS=$WORK/documents OCR_WORKER_POOL_SIZE=2 OCR_STATUS_INTERVAL_MS=5000 \
    OCR_SHUTDOWN_GRACE_SECONDS=60
cd "$WORK/home"

step "run stage as $user_name (uid $(as_user id -u)): ocr-pool migrate"
as_user ocr-pool migrate

step "ocr-pool simulator (port $SIM_PORT) and sample documents"
as_user python3 -c "
from pathlib import Path
from pool.cli.samples import write_samples
write_samples(Path('$WORK/documents'), 2, 2, $$ % 10000, index_pages=2, acte_pages=2)"
# Started without a function or subshell in between: $! is the process itself.
"${AS[@]}" ocr-pool simulator --host 127.0.0.1 --port "$SIM_PORT" --corpus "$WORK/documents" \
    >"$WORK/simulator.log" 2>&1 &
SIM_PID=$!
PIDS+=("$SIM_PID")
as_user ocr-pool enqueue --source index "$WORK"/documents/index-*.pdf
as_user ocr-pool enqueue --source acte "$WORK"/documents/acte-*.pdf

step "ocr-pool start (metrics port $METRICS_PORT)"
"${AS[@]}" ocr-pool start >"$WORK/pool.log" 2>&1 &
POOL_PID=$!
PIDS+=("$POOL_PID")
HEALTHCHECK=("$VENV/bin/python3" "$ROOT/deploy/healthcheck.py" /readyz)
deadline=$((SECONDS + READY_TIMEOUT))
until as_user "${HEALTHCHECK[@]}" 2>/dev/null; do
    kill -0 "$POOL_PID" 2>/dev/null || die "the pool exited before it was ready"
    [ "$SECONDS" -lt "$deadline" ] || die "/readyz not 200 within ${READY_TIMEOUT}s"
    sleep 1
done

step "waiting for the 4 documents"
done_count() {
    as_user python3 - <<'EOF'
import asyncio
import os

import asyncpg


async def main() -> None:
    conn = await asyncpg.connect(os.environ["DATABASE_URL"])
    try:
        sql = "SELECT count(*) FROM extraction_queue WHERE status_id = 5 AND file_content <> ''"
        print(await conn.fetchval(sql))
    finally:
        await conn.close()


asyncio.run(main())
EOF
}
deadline=$((SECONDS + DONE_TIMEOUT))
until [ "$(done_count)" = 4 ]; do
    kill -0 "$POOL_PID" 2>/dev/null || die "the pool exited while documents were waiting"
    [ "$SECONDS" -lt "$deadline" ] || die "documents not done within ${DONE_TIMEOUT}s"
    sleep 2
done
echo "   4 documents done"
as_user "${HEALTHCHECK[@]}"

step "SIGTERM (docker stop)"
kill -TERM "$POOL_PID"
rc=0
wait "$POOL_PID" || rc=$?
PIDS=("${PIDS[@]/$POOL_PID/}")
[ "$rc" = 0 ] || die "the pool exited $rc after SIGTERM"
echo "   pool exited 0"
grep -E "ready on|stopping" "$WORK/pool.log" | sed 's/^/   /'
kill -TERM "$SIM_PID"
wait "$SIM_PID" || true
PIDS=()
echo "image-steps: ok"
