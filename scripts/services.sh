#!/usr/bin/env bash
# Make PostgreSQL and Redis available for the tests and the demo.
#
# For each service, in order: use it if it answers; else start it from the
# installed binaries; else install it with apt-get (as root); else stop with a
# message saying what is missing. On success prints `export ...` lines on
# stdout (eval them); progress goes to stderr.
#
#   eval "$(bash scripts/services.sh)"
#
# Knobs: OCR_PG_PORT (5432), OCR_REDIS_PORT (6379), OCR_SERVICES_DIR (.services).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PG_PORT=${OCR_PG_PORT:-5432}
REDIS_PORT=${OCR_REDIS_PORT:-6379}
STATE=${OCR_SERVICES_DIR:-$ROOT/.services}
HOST=127.0.0.1

log() { echo "services: $*" >&2; }
die() { echo "services: error: $*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

APT_UPDATED=0
apt_install() {
    if [ "$(id -u)" != 0 ] || ! have apt-get; then
        return 1
    fi
    if [ "$APT_UPDATED" = 0 ]; then
        log "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || return 1
        APT_UPDATED=1
    fi
    log "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

wait_for() { # wait_for SECONDS CMD...
    local deadline=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.2
    done
}

# ---------------------------------------------------------------- PostgreSQL
pg_bin() { # newest installed server binary directory
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

pg_usable() { # pg_usable PORT: connects as postgres without a password?
    local psql
    psql=$(command -v psql || echo "$(pg_bin)/psql")
    [ -x "$psql" ] || return 1
    PGCONNECT_TIMEOUT=3 "$psql" -X -q -h "$HOST" -p "$1" -U postgres -d postgres \
        -Atc 'select 1' >/dev/null 2>&1
}

pg_start_clusters() { # Debian clusters on our port
    have pg_lsclusters || return 1
    local ver name port
    while read -r ver name port _; do
        if [ "$port" = "$PG_PORT" ]; then
            log "starting PostgreSQL cluster $ver/$name"
            pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" start >&2 2>&1 || true
        fi
    done < <(pg_lsclusters -h 2>/dev/null)
    wait_for 30 pg_usable "$PG_PORT"
}

pg_private_cluster() { # our own trust-auth cluster under $STATE/pg
    local bin port data run_as=()
    bin=$(pg_bin)
    [ -n "$bin" ] && [ -x "$bin/initdb" ] || return 1
    port=$PG_PORT
    if pg_usable "$port" || (exec 3<>"/dev/tcp/$HOST/$port") 2>/dev/null; then
        port=55432 # our port is taken by a server we cannot use
    fi
    data="$STATE/pg"
    mkdir -p "$data"
    if [ "$(id -u)" = 0 ]; then # the server refuses to run as root
        id postgres >/dev/null 2>&1 || useradd --system --home-dir "$data" postgres
        chown -R postgres "$data"
        run_as=(runuser -u postgres --)
    fi
    if [ ! -f "$data/PG_VERSION" ]; then
        log "initdb $data (trust auth, local only)"
        "${run_as[@]}" "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 >&2
    fi
    log "starting private PostgreSQL on port $port"
    "${run_as[@]}" "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w \
        -o "-p $port -k $data -c listen_addresses=$HOST" start >&2 || true
    PG_PORT=$port
    wait_for 30 pg_usable "$PG_PORT"
}

ensure_postgres() {
    if pg_usable "$PG_PORT"; then
        log "PostgreSQL answers on $HOST:$PG_PORT"
        return
    fi
    pg_start_clusters && return
    if [ -z "$(pg_bin)" ]; then
        apt_install postgresql postgresql-client \
            || die "PostgreSQL is not running on $HOST:$PG_PORT, not installed, and cannot be installed here (need root and apt-get)"
        pg_start_clusters && return
    fi
    pg_private_cluster && return
    die "PostgreSQL could not be started; see $STATE/pg/server.log"
}

# --------------------------------------------------------------------- Redis
redis_usable() { # redis_usable PORT
    if have redis-cli; then
        [ "$(redis-cli -h "$HOST" -p "$1" ping 2>/dev/null)" = PONG ]
    else
        (exec 3<>"/dev/tcp/$HOST/$1" && printf 'PING\r\n' >&3 && read -r -t 2 reply <&3 \
            && [ "${reply%$'\r'}" = "+PONG" ]) 2>/dev/null
    fi
}

ensure_redis() {
    if redis_usable "$REDIS_PORT"; then
        log "Redis answers on $HOST:$REDIS_PORT"
        return
    fi
    if ! have redis-server; then
        apt_install redis-server \
            || die "Redis is not running on $HOST:$REDIS_PORT, not installed, and cannot be installed here (need root and apt-get)"
    fi
    mkdir -p "$STATE/redis"
    log "starting Redis on $HOST:$REDIS_PORT"
    redis-server --daemonize yes --bind "$HOST" --port "$REDIS_PORT" --save "" \
        --appendonly no --dir "$STATE/redis" --logfile "$STATE/redis/redis.log" >&2
    wait_for 15 redis_usable "$REDIS_PORT" || die "Redis did not start; see $STATE/redis/redis.log"
}

ensure_postgres
ensure_redis
echo "export OCR_TEST_DATABASE_URL=postgresql://postgres@$HOST:$PG_PORT/postgres"
echo "export OCR_TEST_REDIS_URL=redis://$HOST:$REDIS_PORT/0"
echo "export OCR_PG_BIN=$(pg_bin)"
