#!/usr/bin/env bash
# Stops the balancer, the replicas and PostgreSQL started by up.sh.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
"$here/balancer.sh" stop
for n in 1 2 3; do "$here/replica.sh" stop "$n"; done
"$here/postgres.sh" stop
