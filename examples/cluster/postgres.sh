#!/usr/bin/env bash
# PostgreSQL for the cluster: `postgres.sh start` makes a database cluster in
# $CLUSTER_DIR/pg on first use (user `pipwall`, a random password kept in pg/password,
# scram-sha-256 logins, loopback only) and starts it on $PG_PORT; `postgres.sh stop` stops it.
# PostgreSQL will not run as root, so as root it runs as `nobody`.
set -euo pipefail
source "$(dirname "$0")/env.sh"

bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
[ -x "$bin/initdb" ] || { echo "PostgreSQL is not installed: run tests/cluster/install-servers.sh" >&2; exit 1; }
pg="$CLUSTER_DIR/pg"
as_server() {
  if [ "$(id -u)" -eq 0 ]; then
    setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"
  else
    "$@"
  fi
}

case "${1:-start}" in
start)
  if [ ! -d "$pg/data" ]; then
    mkdir -p "$pg"
    python3 -c 'import secrets; print(secrets.token_urlsafe(24))' >"$pg/password"
    chmod 600 "$pg/password"
    [ "$(id -u)" -ne 0 ] || chown -R nobody:nogroup "$pg"
    as_server "$bin/initdb" -D "$pg/data" -U pipwall -E UTF8 --no-instructions \
      --auth=scram-sha-256 --pwfile="$pg/password" >"$pg/initdb.log"
  fi
  as_server "$bin/pg_ctl" -D "$pg/data" -l "$pg/log" -w -t 60 \
    -o "-p $PG_PORT -k $pg -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
  if ! PGPASSWORD="$(cat "$pg/password")" "$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U pipwall -d postgres -Atc \
    "SELECT 1 FROM pg_database WHERE datname = 'pipwall'" | grep -q 1; then
    PGPASSWORD="$(cat "$pg/password")" "$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U pipwall -d postgres -qc \
      "CREATE DATABASE pipwall"
  fi
  echo "postgres: 127.0.0.1:$PG_PORT (database pipwall, log $pg/log)"
  ;;
stop)
  [ -d "$pg/data" ] && as_server "$bin/pg_ctl" -D "$pg/data" -m fast -w stop >/dev/null || true
  ;;
*)
  echo "usage: postgres.sh start|stop" >&2
  exit 2
  ;;
esac
