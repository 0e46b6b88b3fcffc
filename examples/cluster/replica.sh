#!/usr/bin/env bash
# One pipwall replica: `replica.sh start N` serves on the Nth port of $REPLICA_PORTS as
# replica `rN`, with its own file cache in $CLUSTER_DIR/rN and the shared state in
# PostgreSQL; `replica.sh stop N` stops it (SIGTERM: it finishes what it serves).
set -euo pipefail
source "$(dirname "$0")/env.sh"

n="${2:?usage: replica.sh start|stop N}"
port="$(echo $REPLICA_PORTS | cut -d' ' -f"$n")"
[ -n "$port" ] || { echo "no port $n in REPLICA_PORTS=$REPLICA_PORTS" >&2; exit 2; }
dir="$CLUSTER_DIR/r$n"
mkdir -p "$dir"

case "$1" in
start)
  args=(serve --listen "127.0.0.1:$port" --replica "r$n" --cache-dir "$dir/cache"
    --state-lease "$STATE_LEASE" --decision-log "$dir/decisions.jsonl")
  for p in ${PIPWALL_POLICY:-}; do args+=(--policy "$p"); done
  PIPWALL_STATE="$(state_url)" nohup "$PIPWALL" "${args[@]}" >"$dir/log" 2>&1 &
  echo $! >"$dir/pid"
  wait_ok "http://127.0.0.1:$port/readyz" 60 || { tail -20 "$dir/log" >&2; exit 1; }
  echo "replica r$n: http://127.0.0.1:$port/simple/ (log $dir/log)"
  ;;
stop)
  if [ -f "$dir/pid" ]; then
    kill "$(cat "$dir/pid")" 2>/dev/null || true
    rm -f "$dir/pid"
  fi
  ;;
*)
  echo "usage: replica.sh start|stop N" >&2
  exit 2
  ;;
esac
