# Sourced by build.sh and check.sh. Debian and Ubuntu ship LLVM tools as name-NN, and only some
# of them get an unversioned alias (llvm-lipo and ld64.lld do not on Debian 12), so look in all
# three places rather than trusting PATH. Prints the tool's path; fails quietly.
find_tool() {
  local name=$1 v d
  if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return 0; fi
  for v in 20 19 18 17 16 15 14 13; do
    if command -v "$name-$v" >/dev/null 2>&1; then command -v "$name-$v"; return 0; fi
  done
  for d in /usr/lib/llvm-*/bin; do
    if [[ -x $d/$name ]]; then echo "$d/$name"; return 0; fi
  done
  return 1
}
