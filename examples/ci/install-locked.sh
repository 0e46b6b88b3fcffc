#!/usr/bin/env bash
# Installs a locked requirements file through pipwall, for CI:
#   1. `pipwall vet` decides and audits every pinned file first, and stops the job with a report
#      when one cannot be installed;
#   2. `pipwall serve` runs with policies/ci-locked.toml, so only the pinned files exist;
#   3. pip installs with --require-hashes, pipwall being its only index.
#
# Usage: install-locked.sh [REQUIREMENTS] [MORE PIP OPTIONS...]   (default: requirements.txt)
# Environment:
#   PIPWALL_UPSTREAM      the index pipwall fronts (required), e.g. https://index.example.internal/simple/
#   PIPWALL               the pipwall binary (default: pipwall)
#   PIPWALL_POLICY        default: policies/ci-locked.toml of the pipwall checkout holding this script
#   PIPWALL_CACHE_DIR     verified wheels and audit reports; keep it between jobs (default: .pipwall-cache)
#   PIPWALL_DECISION_LOG  where the decision log goes (default: a temporary file)
#   PIPWALL_LISTEN        default: 127.0.0.1:0 (any free port)
#   PYTHON                the interpreter whose pip installs (default: python3)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
requirements=${1:-requirements.txt}
shift || true
pipwall=${PIPWALL:-pipwall}
python=${PYTHON:-python3}
: "${PIPWALL_UPSTREAM:?set PIPWALL_UPSTREAM to the index pipwall fronts}"
export PIPWALL_POLICY=${PIPWALL_POLICY:-$here/../../policies/ci-locked.toml}
export PIPWALL_CACHE_DIR=${PIPWALL_CACHE_DIR:-.pipwall-cache}
# ci-locked.toml reads the lock from PIPWALL_LOCK; relative paths there start at the policy's folder.
PIPWALL_LOCK=$(cd "$(dirname "$requirements")" && pwd)/$(basename "$requirements")
export PIPWALL_LOCK

work=$(mktemp -d)
server=
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
decisions=${PIPWALL_DECISION_LOG:-$work/decisions.jsonl}

echo "== pipwall vet -r $requirements"
if ! "$pipwall" vet -r "$requirements"; then
  echo "install-locked: a pinned project has no file pipwall would serve (see above); nothing was installed" >&2
  exit 1
fi

"$pipwall" serve --listen "${PIPWALL_LISTEN:-127.0.0.1:0}" --decision-log "$decisions" 2>"$work/serve.log" &
server=$!
index=
for _ in $(seq 300); do
  index=$(sed -n 's#^pipwall: serving \(http://[^ ]*/simple/\).*#\1#p' "$work/serve.log")
  [ -n "$index" ] && break
  if ! kill -0 "$server" 2>/dev/null; then break; fi
  sleep 0.1
done
if [ -z "$index" ]; then
  cat "$work/serve.log" >&2
  echo "install-locked: pipwall did not start" >&2
  exit 1
fi

echo "== pip install --require-hashes -r $requirements --index-url $index"
if ! PIP_DISABLE_PIP_VERSION_CHECK=1 "$python" -m pip install --require-hashes -r "$requirements" \
  --index-url "$index" "$@"; then
  # Name what pipwall hid: every project pip asked for that had no file to show.
  "$python" - "$decisions" >&2 <<'EOF'
import json, sys
shown, hidden = set(), {}
for line in open(sys.argv[1], encoding="utf-8"):
    d = json.loads(line)
    if d["action"] == "show":
        shown.add(d["project"])
    else:
        hidden.setdefault(d["project"], f'{d["code"]}: {d["reason"]}')
for project, why in hidden.items():
    if project not in shown:
        print(f"install-locked: pipwall hid {project}: {why}")
EOF
  echo "install-locked: pip failed; pin every dependency in $requirements with its --hash" >&2
  exit 1
fi
