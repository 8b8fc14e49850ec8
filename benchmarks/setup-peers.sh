#!/usr/bin/env bash
# Start the peers of benchmarks/peers.py on loopback with throwaway data directories:
# PostgreSQL (Debian's postgresql, default fsync and synchronous_commit) and Redis
# (Debian's redis-server, appendonly with appendfsync always). As root it first installs
# both with apt-get when missing; it always installs psycopg and redis-py into .venv
# (the project's `bench` extra).
#
#   benchmarks/setup-peers.sh          start (again) both peers; prints their addresses
#   benchmarks/setup-peers.sh stop     stop them and delete their data
#
# The addresses are the defaults of benchmarks/peers.py: PostgreSQL on 127.0.0.1:55432,
# Redis on 127.0.0.1:56379. The data lives under /tmp/seqgen-peers (the same filesystem
# as the benchmark's seqgen servers, so every fsync costs the same).
set -euo pipefail
cd "$(dirname "$0")/.."
PG_PORT=55432
REDIS_PORT=56379
RUN=/tmp/seqgen-peers

pg_bin() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [ -z "$dir" ]; then
        echo "PostgreSQL is not installed (run this script as root to install it)" >&2
        exit 1
    fi
    echo "$dir"
}

# Run a command as the owner of $RUN: postgres when we are root (PostgreSQL refuses root).
as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

stop() {
    if [ -f "$RUN/pg/postmaster.pid" ]; then
        as_owner "$(pg_bin)/pg_ctl" -D "$RUN/pg" -m fast -w stop >/dev/null || true
    fi
    if [ -f "$RUN/redis.pid" ]; then
        # SHUTDOWN answers only once the server has stopped (or not at all: it just exits).
        redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
    fi
    rm -rf "$RUN"
}

install() {
    local missing=()
    ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing+=(postgresql)
    command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
    if [ "${#missing[@]}" -gt 0 ]; then
        if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
            echo "missing: ${missing[*]}; run this script as root (with apt-get) to install them" >&2
            exit 1
        fi
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    # Should Debian have started system-wide instances, ours do not meet them: own ports and data.
    if [ ! -x .venv/bin/python ]; then
        python3 -m venv .venv
    fi
    .venv/bin/python -m pip install --quiet -e '.[bench]'
}

start() {
    stop
    mkdir -p "$RUN/redis"
    if [ "$(id -u)" = 0 ]; then
        chown -R postgres: "$RUN"
    fi
    local bin
    bin=$(pg_bin)
    as_owner "$bin/initdb" -D "$RUN/pg" -A trust -U postgres >/dev/null
    as_owner "$bin/pg_ctl" -D "$RUN/pg" -l "$RUN/pg.log" -w -o \
        "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $RUN" start >/dev/null
    as_owner redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$RUN/redis" \
        --appendonly yes --appendfsync always --save '' \
        --daemonize yes --pidfile "$RUN/redis.pid" --logfile "$RUN/redis.log"
    for _ in $(seq 100); do
        if redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; then
            break
        fi
        sleep 0.1
    done
    redis-cli -p "$REDIS_PORT" ping | grep -q PONG
    redis-cli -p "$REDIS_PORT" config get appendfsync | tr '\n' ' '
    echo
    echo "PostgreSQL: postgresql://postgres@127.0.0.1:$PG_PORT/postgres"
    echo "Redis:      redis://127.0.0.1:$REDIS_PORT/0"
    echo "run: .venv/bin/python -m benchmarks.peers   stop: benchmarks/setup-peers.sh stop"
}

case "${1:-start}" in
    start) install; start ;;
    stop) stop ;;
    *) echo "usage: $0 [start|stop]" >&2; exit 2 ;;
esac
