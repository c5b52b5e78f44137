#!/usr/bin/env bash
# The demo end to end with containers: deploy/compose.yaml with its `demo` and
# `monitoring` profiles, in a project of its own (ocr-pool-demo), then taken down with
# its volumes. Prints what an operator would look at: the services, the documents
# drained by the two pools, `ocr-pool status`, /readyz of each pool, Prometheus's
# targets, the pools' lines, and a graceful stop of both pools.
#
#   bash deploy/compose-demo.sh                 # DEMO_DOCUMENTS=6 per type
#   KEEP=1 bash deploy/compose-demo.sh          # leave it running (down -v by hand)
#
# COMPOSE: the compose command (default `docker compose`, else `docker-compose`).
# Images that cannot be pulled here: eval "$(bash deploy/standins/build.sh --print-env)".
set -euo pipefail
cd "$(dirname "$0")"

if [ -n "${COMPOSE:-}" ]; then
    read -r -a DC <<<"$COMPOSE"
elif docker compose version >/dev/null 2>&1; then
    DC=(docker compose)
else
    DC=(docker-compose)
fi
DC+=(-p "${DEMO_PROJECT:-ocr-pool-demo}" -f compose.yaml --profile demo --profile monitoring)
# A throw-away password for the demo's own database (its volume goes at the end).
export POSTGRES_PASSWORD=${POSTGRES_PASSWORD:-$(python3 -c 'import secrets; print(secrets.token_hex(16))')}
export DEMO_DOCUMENTS=${DEMO_DOCUMENTS:-6} OCR_STATUS_INTERVAL_MS=${OCR_STATUS_INTERVAL_MS:-5000}
POOL_1_PORT=${POOL_1_METRICS_PORT:-9464}
POOL_2_PORT=${POOL_2_METRICS_PORT:-9465}
PROM_PORT=${PROMETHEUS_PORT:-9090}
TIMEOUT=${DEMO_TIMEOUT_SECONDS:-600}
WORK_LOG=$(mktemp)

say() { printf '\n== %s\n' "$*"; }
finish() {
    local rc=$?
    if [ "$rc" != 0 ]; then
        say "failed (exit $rc): last lines of every service"
        "${DC[@]}" logs --no-color --tail 40 || true
    fi
    if [ "${KEEP:-0}" = 1 ]; then
        say "left running (KEEP=1): ${DC[*]} down -v"
    else
        say "down -v"
        "${DC[@]}" down -v --remove-orphans 2>&1 | tail -n 3
    fi
    rm -f "$WORK_LOG"
    exit "$rc"
}
trap finish EXIT

sql() {
    "${DC[@]}" exec -T postgres psql -X -q -U ocr -d ocr_pool -Atc "$1"
}
probe() { # probe URL: one line, exit 1 unless 200
    python3 healthcheck.py --url "$1"
}

say "build and start: ${DC[*]} up -d --build"
"${DC[@]}" up -d --build 2>&1 | grep -vE '^(Step |  ---> | ---> |Removing intermediate)' \
    | grep -vE '^\s*$' | tail -n 25

say "services"
"${DC[@]}" ps

say "migrate (one-shot) and the demo documents (one-shot)"
for service in migrate demo-documents; do
    rc=$(docker wait "$("${DC[@]}" ps -a -q "$service")")
    [ "$rc" = 0 ] || { echo "$service exited $rc" >&2; exit 1; }
done
"${DC[@]}" logs --no-color migrate demo-documents | sed -E 's/^[^|]*\| //' | tail -n 25

say "waiting for both pools to drain the queue (${DEMO_DOCUMENTS} index + ${DEMO_DOCUMENTS} acte)"
expected=$((2 * DEMO_DOCUMENTS))
deadline=$((SECONDS + TIMEOUT))
while :; do
    read -r done open failed < <(sql "SELECT count(*) FILTER (WHERE status_id = 5),
        count(*) FILTER (WHERE status_id IN (3, 6)), count(*) FILTER (WHERE status_id = 4)
        FROM extraction_queue WHERE document_source IN ('index', 'acte')" | tr '|' ' ')
    echo "  $(date +%T) done $done, waiting or in progress $open, failed $failed"
    if [ "$done" -ge "$expected" ] && [ "$open" = 0 ]; then
        break
    fi
    [ "$SECONDS" -lt "$deadline" ] || { echo "not drained within ${TIMEOUT}s" >&2; exit 1; }
    sleep 5
done

say "who did what"
sql "SELECT document_source, split_part(ocr_worker_id, '-w', 1) AS pool, count(*),
       round(avg(extract(epoch FROM ocr_completed_at - ocr_started_at))::numeric, 1) AS s_per_job,
       sum(length(file_content)) AS text_chars
     FROM extraction_queue WHERE status_id = 5 GROUP BY 1, 2 ORDER BY 1, 2" \
    | sed 's/^/  /'

say "ocr-pool status (from pool-1's container)"
"${DC[@]}" exec -T pool-1 ocr-pool status

say "health of the pools (host ports bound to 127.0.0.1)"
probe "http://127.0.0.1:${POOL_1_PORT}/readyz"
probe "http://127.0.0.1:${POOL_2_PORT}/readyz"
python3 - "$POOL_1_PORT" "$POOL_2_PORT" <<'EOF'
import sys, urllib.request
for name, port in zip(("pool-1", "pool-2"), sys.argv[1:]):
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    for line in body.splitlines():
        if line.startswith(("ocr_pool_info", "ocr_pool_ready ")) or (
            line.startswith(("ocr_pool_jobs_total{", "ocr_pool_gemini_calls_total{"))
            and ('outcome="completed"' in line or "calls" in line)
        ):
            print(f"  {name} /metrics: {line}")
EOF
for service in pool-1 pool-2; do
    echo "  $service container health: $(docker inspect -f '{{.State.Health.Status}}' \
        "$("${DC[@]}" ps -q "$service")")"
done

say "Prometheus targets (http://127.0.0.1:${PROM_PORT})"
deadline=$((SECONDS + 60))
until python3 - "$PROM_PORT" <<'EOF'
import json, sys, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/api/v1/targets"
targets = json.load(urllib.request.urlopen(url, timeout=5))["data"]["activeTargets"]
for t in targets:
    print(f"  {t['labels']['job']} {t['labels']['instance']}: {t['health']}")
sys.exit(0 if targets and all(t["health"] == "up" for t in targets) else 1)
EOF
do
    [ "$SECONDS" -lt "$deadline" ] || { echo "targets not up" >&2; exit 1; }
    sleep 5
done

say "pool lines (start-up; the capacity ledger's first word)"
for service in pool-1 pool-2; do
    "${DC[@]}" logs --no-color "$service" >"$WORK_LOG" 2>&1 || true
    grep -E "health and metrics|ready on|sweep" "$WORK_LOG" || true
    grep -m 2 -E "waiting for capacity|admitted" "$WORK_LOG" || true
done

say "graceful stop of both pools (SIGTERM; jobs in hand finish, exit 0)"
"${DC[@]}" stop pool-1 pool-2 2>&1 | tail -n 2
for service in pool-1 pool-2; do
    id=$("${DC[@]}" ps -a -q "$service")
    echo "  $service exit code: $(docker inspect -f '{{.State.ExitCode}}' "$id")"
    docker logs --tail 4 "$id" 2>&1 | sed 's/^/    /'
done
