# Settings shared by the cluster scripts; each may be set in the environment first.
# Sourced, not run.
CLUSTER_DIR="${CLUSTER_DIR:-${TMPDIR:-/tmp}/pipwall-cluster}"
PIPWALL="${PIPWALL:-pipwall}"
PG_PORT="${PG_PORT:-5433}"
REPLICA_PORTS="${REPLICA_PORTS:-3151 3152 3153}"
BALANCER_PORT="${BALANCER_PORT:-3141}"
# Seconds an audit claim lasts unless renewed: how soon a surviving replica takes over the
# audits of one that died.
STATE_LEASE="${STATE_LEASE:-30}"
# PIPWALL_UPSTREAM (the index to front) and PIPWALL_POLICY (policy files) are passed through
# when set; without an upstream, pipwall fronts its bundled example wheelhouse.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mkdir -p "$CLUSTER_DIR"

# The connection string, from the password postgres.sh made. Given to pipwall in the
# environment (PIPWALL_STATE), never on a command line that `ps` shows.
state_url() {
  printf 'postgres://pipwall:%s@127.0.0.1:%s/pipwall' "$(cat "$CLUSTER_DIR/pg/password")" "$PG_PORT"
}

# Waits until URL answers 200, or fails after $2 seconds.
wait_ok() {
  local url="$1" limit="${2:-30}" i=0
  until python3 - "$url" <<'PY' 2>/dev/null
import sys, urllib.request
sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=2).status == 200 else 1)
PY
  do
    i=$((i + 1))
    if [ "$i" -ge $((limit * 4)) ]; then
      echo "no answer from $url after ${limit}s" >&2
      return 1
    fi
    sleep 0.25
  done
}
