#!/usr/bin/env bash
# Installs what tests/native/build.sh needs to cross-build ELF, Mach-O and PE
# fixtures offline. Safe to re-run: apt is only touched when a tool is absent,
# so a warm CI image pays nothing.
set -euo pipefail

# Each entry: "<command to probe> <debian package that provides it>".
# The probes accept either the unversioned name or the Debian "-14" one, since
# Debian 12 ships only the suffixed binaries unless the meta-packages are in.
need=(
  "gcc gcc"
  "clang clang"
  "ld.lld lld"
  "ld64.lld lld"
  "lld-link lld"
  "llvm-dlltool llvm"
  "llvm-lipo llvm"
  "llvm-readobj llvm"
  "llvm-objdump llvm"
  "readelf binutils"
  "file file"
  "musl-gcc musl-tools"
)

have() {
  command -v "$1" >/dev/null 2>&1 && return 0
  local v
  for v in 19 18 17 16 15 14; do
    command -v "$1-$v" >/dev/null 2>&1 && return 0
  done
  return 1
}

missing=()
for entry in "${need[@]}"; do
  read -r tool pkg <<<"$entry"
  if ! have "$tool"; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-toolchains: everything present"
  exit 0
fi

# De-duplicate while keeping order, so the apt log stays readable.
mapfile -t pkgs < <(printf '%s\n' "${missing[@]}" | awk '!seen[$0]++')
echo "install-toolchains: installing ${pkgs[*]}"

sudo=""
if [[ $(id -u) -ne 0 ]]; then
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${pkgs[@]}"

for entry in "${need[@]}"; do
  read -r tool pkg <<<"$entry"
  have "$tool" || { echo "install-toolchains: $tool still missing after installing $pkg" >&2; exit 1; }
done
echo "install-toolchains: done"
