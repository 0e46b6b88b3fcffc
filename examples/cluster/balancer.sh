#!/usr/bin/env bash
# The load balancer: `balancer.sh start` runs HAProxy on $BALANCER_PORT in front of the three
# replicas (haproxy.cfg); `balancer.sh stop` stops it.
set -euo pipefail
source "$(dirname "$0")/env.sh"

haproxy="$(command -v haproxy || echo /usr/sbin/haproxy)"
[ -x "$haproxy" ] || { echo "HAProxy is not installed: run tests/cluster/install-servers.sh" >&2; exit 1; }
read -r R1_PORT R2_PORT R3_PORT <<<"$REPLICA_PORTS"
export BALANCER_PORT R1_PORT R2_PORT R3_PORT

case "${1:-start}" in
start)
  "$haproxy" -c -q -f "$here/haproxy.cfg"
  "$haproxy" -q -D -p "$CLUSTER_DIR/haproxy.pid" -f "$here/haproxy.cfg"
  wait_ok "http://127.0.0.1:$BALANCER_PORT/readyz" 30
  echo "balancer: http://127.0.0.1:$BALANCER_PORT/simple/"
  ;;
stop)
  if [ -f "$CLUSTER_DIR/haproxy.pid" ]; then
    kill "$(cat "$CLUSTER_DIR/haproxy.pid")" 2>/dev/null || true
    rm -f "$CLUSTER_DIR/haproxy.pid"
  fi
  ;;
*)
  echo "usage: balancer.sh start|stop" >&2
  exit 2
  ;;
esac
