#!/usr/bin/env bash
# Gateway load test: a cached 200-file project page served by pipwall under wrk at 1, 64 and
# 1,024 concurrent connections, with requests/s, p50/p99 latency and peak RSS; then an optional
# soak (`--soak SECONDS`, default off) that samples RSS every 30 s and counts failed requests.
#
#   bench/gateway.sh [--soak 600]
#
# Installs wrk (Debian) if missing. Everything runs on loopback against a generated wheelhouse.
set -euo pipefail
cd "$(dirname "$0")/.."
soak=0
if [[ "${1:-}" == "--soak" ]]; then soak="${2:-600}"; fi

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
cargo build --release --quiet

work=$(mktemp -d)
trap 'kill "${pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
python3 - "$work/wheels" <<'PY'
import base64, hashlib, os, sys, zipfile
out = sys.argv[1]
os.makedirs(out)
def row(p, d):
    h = base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b"=").decode()
    return f"{p},sha256={h},{len(d)}"
for i in range(200):
    v = f"1.{i}"
    files = {
        "load/__init__.py": f"VERSION = '{v}'\n".encode(),
        f"load-{v}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: load\nVersion: {v}\n".encode(),
        f"load-{v}.dist-info/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "\n".join(row(p, d) for p, d in files.items()) + f"\nload-{v}.dist-info/RECORD,,\n"
    files[f"load-{v}.dist-info/RECORD"] = record.encode()
    with zipfile.ZipFile(f"{out}/load-{v}-py3-none-any.whl", "w", zipfile.ZIP_DEFLATED) as z:
        for p, d in files.items():
            z.writestr(zipfile.ZipInfo(p, (2024, 1, 1, 0, 0, 0)), d)
PY

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
target/release/pipwall serve --listen "127.0.0.1:$port" --upstream "$work/wheels" \
  --cache-dir "$work/cache" 2>"$work/pipwall.log" &
pid=$!
url="http://127.0.0.1:$port/simple/load/"
accept="Accept: application/vnd.pypi.simple.v1+json"
for _ in $(seq 50); do curl -sf -o /dev/null -H "$accept" "$url" && break; sleep 0.2; done
# Until every wheel is audited the page is partial (no-store); wait for the full one.
for _ in $(seq 100); do
  n=$(curl -s -H "$accept" "$url" | grep -o '"filename"' | wc -l)
  [[ "$n" -eq 200 ]] && break
  sleep 0.2
done
echo "page: $n files, $(curl -s -H "$accept" "$url" | wc -c) bytes"

rss() { awk '/VmHWM/ {print $2/1024 " MiB peak, " } /VmRSS/ {print $2/1024 " MiB now"}' "/proc/$pid/status" | tr -d '\n'; echo; }
for c in 1 64 1024; do
  t=$(( c < 2 ? 1 : 2 ))
  echo "== $c connections"
  wrk -t"$t" -c"$c" -d10s --latency -H "$accept" "$url" | grep -E 'Requests/sec|50%|99%|Socket errors|Non-2xx'
  echo "RSS: $(rss)"
done

if (( soak > 0 )); then
  echo "== soak: 64 connections for $soak s"
  wrk -t2 -c64 -d"${soak}s" --latency -H "$accept" "$url" > "$work/soak.txt" &
  wpid=$!
  for ((s = 0; s < soak; s += 30)); do sleep 30; echo "  ${s}s+30: $(rss)"; done
  wait "$wpid"
  grep -E 'requests in|Requests/sec|99%|Socket errors|Non-2xx' "$work/soak.txt"
fi
