#!/usr/bin/env bash
# Installs the real servers the cluster tests and examples/cluster start: PostgreSQL (initdb,
# pg_ctl, psql) and HAProxy, from Debian's packages. Does nothing when they are there.
set -euo pipefail

have_postgres() { compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; }
have_haproxy() { command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ]; }

missing=()
have_postgres || missing+=(postgresql)
have_haproxy || missing+=(haproxy)
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-servers: ${missing[*]} missing; run this script as root (it uses apt-get)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian's package starts a cluster of its own as a service; the tests and the example start
# their own, so it is not needed (and may not run without an init system).
have_postgres && have_haproxy
