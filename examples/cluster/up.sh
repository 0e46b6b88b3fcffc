#!/usr/bin/env bash
# The whole cluster on one machine: PostgreSQL, three pipwall replicas, HAProxy in front.
#   examples/cluster/up.sh      then   pip install --index-url http://127.0.0.1:3141/simple/ …
#   examples/cluster/down.sh    stops everything (data stays in $CLUSTER_DIR)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bash "$here/../../tests/cluster/install-servers.sh"
"$here/postgres.sh" start
# The first replica migrates the schema; the others find it done.
for n in 1 2 3; do "$here/replica.sh" start "$n"; done
"$here/balancer.sh" start
