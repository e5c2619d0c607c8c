#!/usr/bin/env bash
# Start a throwaway PostgreSQL 15 cluster, PgBouncer in front of it (transaction pooling) and Redis on
# loopback, run "$@" with their URLs exported, and tear them down afterwards. Used by `make test` and `make bench`. Fails loudly when a service
# cannot start: nothing is skipped.
set -euo pipefail

PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)}
if [ -z "${PG_BIN}" ] || [ ! -x "${PG_BIN}/initdb" ]; then
  echo "with-services: PostgreSQL server binaries not found (apt-get install -y postgresql)" >&2
  exit 1
fi
if ! command -v redis-server >/dev/null 2>&1; then
  echo "with-services: redis-server missing; installing with apt-get" >&2
  if [ "$(id -u)" = "0" ]; then
    (apt-get install -y redis-server >/dev/null 2>&1 || (apt-get update >/dev/null && apt-get install -y redis-server >/dev/null))
  else
    sudo apt-get install -y redis-server >/dev/null
  fi
fi

PGBOUNCER_BIN=${PGBOUNCER_BIN:-$(command -v pgbouncer || echo /usr/sbin/pgbouncer)}
if [ ! -x "$PGBOUNCER_BIN" ]; then
  echo "with-services: pgbouncer missing; installing with apt-get" >&2
  if [ "$(id -u)" = "0" ]; then
    (apt-get install -y pgbouncer >/dev/null 2>&1 || (apt-get update >/dev/null && apt-get install -y pgbouncer >/dev/null))
  else
    sudo apt-get install -y pgbouncer >/dev/null
  fi
  PGBOUNCER_BIN=/usr/sbin/pgbouncer
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

WORK=$(mktemp -d /tmp/starpromo-services.XXXXXX)
chmod 755 "$WORK"
PG_PORT=${PG_PORT:-$(free_port)}
REDIS_PORT=${REDIS_PORT:-$(free_port)}
PGBOUNCER_PORT=${PGBOUNCER_PORT:-$(free_port)}
PGDATA="$WORK/pgdata"

as_pg() {
  if [ "$(id -u)" = "0" ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cleanup() {
  if [ -f "$WORK/pgbouncer.pid" ]; then
    pid="$(cat "$WORK/pgbouncer.pid")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -m immediate stop >/dev/null 2>&1 || true
  if [ -f "$WORK/redis.pid" ]; then
    pid="$(cat "$WORK/redis.pid")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  # A server still flushing its files can refill the directory for a moment: retry briefly.
  for _ in 1 2 3 4 5; do rm -rf "$WORK" 2>/dev/null && break; sleep 0.5; done
}
trap cleanup EXIT INT TERM

mkdir -p "$PGDATA"
if [ "$(id -u)" = "0" ]; then chown -R postgres "$WORK"; fi
as_pg "$PG_BIN/initdb" -D "$PGDATA" -U postgres -A trust --no-sync -E UTF8 >"$WORK/initdb.log" 2>&1 \
  || { cat "$WORK/initdb.log" >&2; exit 1; }
cat >>"$PGDATA/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$WORK'
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 256MB
CONF
as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$WORK/pg.log" -w -t 60 start >/dev/null \
  || { cat "$WORK/pg.log" >&2; exit 1; }
as_pg "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "CREATE DATABASE starpromo_test" >/dev/null

# PgBouncer in transaction pooling mode, every database of the cluster behind it (the tests create their own), as
# few server connections per database as keeps the pooling real: more clients than that share them, so a client
# that relied on its server connection (prepared statements, session SET) breaks here as behind a production one.
cat >"$WORK/pgbouncer-users.txt" <<USERS
"postgres" ""
USERS
cat >"$WORK/pgbouncer.ini" <<CONF
[databases]
* = host=127.0.0.1 port=$PG_PORT
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGBOUNCER_PORT
unix_socket_dir =
auth_type = trust
auth_file = $WORK/pgbouncer-users.txt
pool_mode = transaction
max_client_conn = 2000
default_pool_size = 20
query_wait_timeout = 60
ignore_startup_parameters = extra_float_digits
logfile = $WORK/pgbouncer.log
pidfile = $WORK/pgbouncer.pid
CONF
as_pg "$PGBOUNCER_BIN" -d -q "$WORK/pgbouncer.ini" \
  || { cat "$WORK/pgbouncer.log" >&2 2>/dev/null; echo "with-services: pgbouncer did not start" >&2; exit 1; }
for _ in $(seq 1 50); do
  as_pg "$PG_BIN/psql" -h 127.0.0.1 -p "$PGBOUNCER_PORT" -U postgres -d starpromo_test -qAtc "SELECT 1" \
    >/dev/null 2>&1 && break
  sleep 0.1
done
as_pg "$PG_BIN/psql" -h 127.0.0.1 -p "$PGBOUNCER_PORT" -U postgres -d starpromo_test -qAtc "SELECT 1" >/dev/null \
  || { cat "$WORK/pgbouncer.log" >&2; echo "with-services: pgbouncer does not answer" >&2; exit 1; }

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
  --pidfile "$WORK/redis.pid" --logfile "$WORK/redis.log" --dir "$WORK" >/dev/null
for _ in $(seq 1 50); do
  redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
  sleep 0.1
done
redis-cli -p "$REDIS_PORT" ping >/dev/null || { echo "with-services: redis did not start" >&2; exit 1; }

export STARPROMO_TEST_PG_URL="postgresql+psycopg://postgres@127.0.0.1:$PG_PORT/starpromo_test"
export STARPROMO_TEST_PG_ADMIN_URL="postgresql+psycopg://postgres@127.0.0.1:$PG_PORT/postgres"
export STARPROMO_TEST_PGBOUNCER_URL="postgresql+psycopg://postgres@127.0.0.1:$PGBOUNCER_PORT/starpromo_test"
export STARPROMO_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
export STARPROMO_TEST_PG_BIN="$PG_BIN"
echo "with-services: PostgreSQL on 127.0.0.1:$PG_PORT (PgBouncer on $PGBOUNCER_PORT), Redis on 127.0.0.1:$REDIS_PORT"
"$@"
