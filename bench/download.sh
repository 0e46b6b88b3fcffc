#!/usr/bin/env bash
# Cached-download throughput: one 4 MiB wheel, fetched once through pipwall (audited and stored),
# then downloaded by wrk at 16 connections. With `--base BINARY` the same runs against a second
# pipwall binary (an older build) in the same minutes, interleaved, so the two can be compared as
# a ratio on a noisy machine. Everything runs on loopback against a generated wheelhouse.
#
#   bench/download.sh [--base path/to/old/pipwall] [--seconds 8]
set -euo pipefail
cd "$(dirname "$0")/.."
base="" ; secs=8
while [[ $# -gt 0 ]]; do
  case $1 in
    --base) base=$2; shift 2 ;;
    --seconds) secs=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
[[ -x target/release/pipwall ]] || cargo build --release --quiet

work=$(mktemp -d)
trap 'xargs -r kill <"$work/pids" 2>/dev/null || true; rm -rf "$work"' EXIT
python3 - "$work/wheels" <<'PY'
import base64, hashlib, os, sys, zipfile
out = sys.argv[1]
os.makedirs(out)
def row(p, d):
    h = base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b"=").decode()
    return f"{p},sha256={h},{len(d)}"
files = {
    "big/__init__.py": b"",
    "big/data.bin": os.urandom(4 << 20),
    "big-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: big\nVersion: 1.0\n",
    "big-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
record = "\n".join(row(p, d) for p, d in files.items()) + "\nbig-1.0.dist-info/RECORD,,\n"
files["big-1.0.dist-info/RECORD"] = record.encode()
with zipfile.ZipFile(f"{out}/big-1.0-py3-none-any.whl", "w", zipfile.ZIP_STORED) as z:
    for p, d in files.items():
        z.writestr(zipfile.ZipInfo(p, (2024, 1, 1, 0, 0, 0)), d)
PY
wheel="$work/wheels/big-1.0-py3-none-any.whl"
sha=$(sha256sum "$wheel" | cut -d' ' -f1)
echo "wheel: $(stat -c %s "$wheel") bytes"

start() { # NAME BINARY -> prints the file URL
  local name=$1 bin=$2 port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  # Its own stdout, so the command substitution that calls this does not wait for it.
  "$bin" serve --listen "127.0.0.1:$port" --upstream "$work/wheels" --cache-dir "$work/cache-$name" \
    >"$work/$name.out" 2>"$work/$name.log" &
  echo $! >>"$work/pids"
  local url="http://127.0.0.1:$port/files/$sha/big-1.0-py3-none-any.whl"
  for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/simple/big/" && break; sleep 0.1; done
  curl -sf -o /dev/null "$url"
  echo "$url"
}
declare -A urls
urls[new]=$(start new target/release/pipwall)
[[ -n "$base" ]] && urls[base]=$(start base "$base")
for round in 1 2; do
  for name in "${!urls[@]}"; do
    printf '%-5s round %d: ' "$name" "$round"
    wrk -t2 -c16 -d"${secs}s" "${urls[$name]}" | awk '/Requests\/sec/ {r=$2} /Transfer\/sec/ {t=$2} END {print r " requests/s, " t "/s"}'
  done
done
