#!/usr/bin/env bash
# Local stand-ins for the public images deploy/compose.yaml uses, for a machine whose
# container engine runs but cannot pull from Docker Hub (an air-gapped host, or this
# project's build machine). Built from Debian bookworm packages (deb.debian.org):
#
#   localhost/python:3.11-slim-standin     debootstrap minbase + python3.11 + venv
#   localhost/postgres:15-standin          postgresql-15, entrypoint: POSTGRES_USER /
#                                          _PASSWORD / _DB on first start, as postgres:*
#   localhost/redis:7-standin              redis-server (bookworm: 7.0)
#   localhost/prometheus:standin           prometheus (bookworm: 2.42) and wget
#
# Then: eval "$(bash deploy/standins/build.sh --print-env)" before `docker compose`
# (or docker-compose) selects them through PYTHON_IMAGE, POSTGRES_IMAGE, REDIS_IMAGE,
# PROMETHEUS_IMAGE. Where Docker Hub answers, none of this is needed.
#
# Needs root, debootstrap and a running engine (`docker`). EXTRA_CA_DIR: a directory of
# *.crt added to the base's trust store (a TLS-inspecting proxy between the build and
# PyPI); default /usr/local/share/ca-certificates when it holds any.
set -euo pipefail

PY=localhost/python:3.11-slim-standin
PG=localhost/postgres:15-standin
REDIS=localhost/redis:7-standin
PROM=localhost/prometheus:standin

if [ "${1:-}" = --print-env ]; then
    printf 'export PYTHON_IMAGE=%s POSTGRES_IMAGE=%s REDIS_IMAGE=%s PROMETHEUS_IMAGE=%s\n' \
        "$PY" "$PG" "$REDIS" "$PROM"
    exit 0
fi

DOCKER=${DOCKER:-docker}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CA_DIR=${EXTRA_CA_DIR:-/usr/local/share/ca-certificates}
log() { echo "standins: $*" >&2; }

[ "$(id -u)" = 0 ] || { log "error: debootstrap needs root"; exit 1; }
command -v debootstrap >/dev/null || { log "error: debootstrap is not installed"; exit 1; }

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

if ! "$DOCKER" image inspect "$PY" >/dev/null 2>&1; then
    log "debootstrap bookworm (minbase + python3.11) from $MIRROR"
    debootstrap --variant=minbase \
        --include=python3.11,python3.11-venv,python3-venv,ca-certificates,tzdata \
        bookworm "$WORK/rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
        || { tail -20 "$WORK/debootstrap.log" >&2; exit 1; }
    ln -sf python3.11 "$WORK/rootfs/usr/bin/python"
    if compgen -G "$CA_DIR/*.crt" >/dev/null; then
        log "adding the CA certificates of $CA_DIR"
        cp "$CA_DIR"/*.crt "$WORK/rootfs/usr/local/share/ca-certificates/"
        chroot "$WORK/rootfs" update-ca-certificates >/dev/null
    fi
    rm -rf "$WORK/rootfs/var/lib/apt/lists/"* "$WORK/rootfs/usr/share/doc/"* \
        "$WORK/rootfs/usr/share/man/"*
    tar -C "$WORK/rootfs" -c . | "$DOCKER" import \
        -c 'ENV LANG=C.UTF-8' -c 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
        -c 'CMD ["python3"]' -m "stand-in for python:3.11-slim (deploy/standins/build.sh)" \
        - "$PY" >/dev/null
    rm -rf "$WORK/rootfs"
fi
log "$PY ready"

mkdir -p "$WORK/pg"
cat >"$WORK/pg/entrypoint.sh" <<'EOS'
#!/bin/sh
# The part of the postgres image's entrypoint compose.yaml relies on.
set -eu
PGDATA=${PGDATA:-/var/lib/postgresql/data}
if [ "${1:-postgres}" = postgres ]; then
    [ $# -gt 0 ] && shift
    if [ ! -s "$PGDATA/PG_VERSION" ]; then
        : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required}"
        user=${POSTGRES_USER:-postgres}
        pwfile=$(mktemp)
        printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
        initdb -D "$PGDATA" -U "$user" --pwfile="$pwfile" -E UTF8 \
            --auth-local=trust --auth-host=scram-sha-256 >/dev/null
        rm -f "$pwfile"
        echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
        echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
        db=${POSTGRES_DB:-$user}
        if [ "$db" != postgres ]; then
            pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
            createdb -U "$user" "$db"
            pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
        fi
        echo "postgres stand-in: initialised $PGDATA (user $user, database $db)"
    fi
    exec postgres -D "$PGDATA" "$@"
fi
exec "$@"
EOS
cat >"$WORK/pg/Dockerfile" <<EOS
FROM $PY
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-15 \\
    && rm -rf /var/lib/apt/lists/* \\
    && mkdir -p /var/lib/postgresql/data /var/run/postgresql \\
    && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql \\
    && chmod 0700 /var/lib/postgresql/data
COPY entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:\$PATH PGDATA=/var/lib/postgresql/data
USER postgres
STOPSIGNAL SIGINT
EXPOSE 5432
ENTRYPOINT ["sh", "/usr/local/bin/docker-entrypoint.sh"]
CMD ["postgres"]
EOS
log "building $PG"
"$DOCKER" build -q -t "$PG" "$WORK/pg" >/dev/null

mkdir -p "$WORK/redis"
cat >"$WORK/redis/Dockerfile" <<EOS
FROM $PY
RUN apt-get update && apt-get install -y --no-install-recommends redis-server redis-tools \\
    && rm -rf /var/lib/apt/lists/* && mkdir -p /data && chown redis:redis /data
WORKDIR /data
USER redis
EXPOSE 6379
CMD ["redis-server", "--protected-mode", "no"]
EOS
log "building $REDIS"
"$DOCKER" build -q -t "$REDIS" "$WORK/redis" >/dev/null

mkdir -p "$WORK/prom"
cat >"$WORK/prom/Dockerfile" <<EOS
FROM $PY
RUN apt-get update && apt-get install -y --no-install-recommends prometheus wget \\
    && rm -rf /var/lib/apt/lists/* \\
    && mkdir -p /prometheus /etc/prometheus && chown nobody:nogroup /prometheus
USER nobody
WORKDIR /prometheus
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
EOS
log "building $PROM"
"$DOCKER" build -q -t "$PROM" "$WORK/prom" >/dev/null

log "done; select them with: eval \"\$(bash $0 --print-env)\""
