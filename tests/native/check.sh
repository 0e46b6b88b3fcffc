#!/usr/bin/env bash
# Re-reads every fixture in OUTDIR with binutils/LLVM tools and checks the
# facts the wheel-audit tests depend on. A toolchain upgrade that quietly
# changes a fixture (an import optimised away, RPATH instead of RUNPATH, a new
# glibc version) then fails here, with the difference spelled out, instead of
# as a puzzling pipwall test failure.
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 OUTDIR" >&2
  exit 2
fi
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$1"

# shellcheck source=find-tool.sh
source "$here/find-tool.sh"
need() {
  find_tool "$1" || { echo "check.sh: missing tool '$1' (run tests/native/install-toolchains.sh)" >&2; return 1; }
}
READELF=$(need readelf)
READOBJ=$(need llvm-readobj)
OBJDUMP=$(need llvm-objdump)
NM=$(need llvm-nm)
LIPO=$(need llvm-lipo)

failures=0
expect() { # FILE WHAT ACTUAL EXPECTED
  if [[ $3 == "$4" ]]; then
    printf 'ok    %-46s %-10s %s\n' "$1" "$2" "$3"
  else
    printf 'FAIL  %-46s %-10s got [%s] want [%s]\n' "$1" "$2" "$3" "$4"
    failures=$((failures + 1))
  fi
}
words() { sort -u | tr '\n' ' ' | sed 's/ $//'; }

# ---------------------------------------------------------------- ELF
elf_machine() { "$READELF" -h "$1" | sed -n 's/^ *Machine: *//p'; }
# Undefined .dynsym entries that look like CPython API, version suffix cut.
elf_py_imports() {
  "$READELF" --dyn-syms -W "$1" |
    awk '$7 == "UND" && $8 ~ /^_?Py/ { sub(/@.*/, "", $8); print $8 }' | words
}
elf_py_exports() {
  "$READELF" --dyn-syms -W "$1" |
    awk '$7 != "UND" && $5 == "GLOBAL" && $8 ~ /^_?Py/ { sub(/@.*/, "", $8); print $8 }' | words
}
elf_dyn() { "$READELF" -d "$1" | sed -n "s/.*($2) *[^\[]*\[\(.*\)\]/\1/p" | tr '\n' ' ' | sed 's/ $//'; }
elf_glibc_versions() {
  "$READELF" -V -W "$1" | sed -n 's/.*Name: \(GLIBC_[0-9.]*\).*/\1/p' | sort -V -u | tr '\n' ' ' | sed 's/ $//'
}

elf() { # FILE MACHINE "PY IMPORTS" "PY EXPORTS" "NEEDED" "GLIBC VERNEED"
  expect "$1" machine "$(elf_machine "$1")" "$2"
  expect "$1" imports "$(elf_py_imports "$1")" "$3"
  expect "$1" exports "$(elf_py_exports "$1")" "$4"
  expect "$1" needed "$(elf_dyn "$1" NEEDED)" "$5"
  expect "$1" verneed "$(elf_glibc_versions "$1")" "$6"
}

x86=${X86:-"Advanced Micro Devices X86-64"}
elf clean.abi3.so "$x86" "PyArg_ParseTuple PyLong_FromLong PyModule_Create2 _Py_Dealloc" "PyInit_clean" libc.so.6 GLIBC_2.2.5
elf outside.abi3.so "$x86" "PyLong_FromLong PyUnicode_New" "PyInit_outside" libc.so.6 GLIBC_2.2.5
elf newer.abi3.so "$x86" "PyLong_FromLong PyUnicode_AsUTF8AndSize" "PyInit_newer" libc.so.6 GLIBC_2.2.5
elf ownexports.abi3.so "$x86" "PyLong_FromLong PyModule_Create2" "PyInit_ownexports PyOwn_Parse _PyOwn_Helper" libc.so.6 GLIBC_2.2.5
elf wrongos.abi3.so "$x86" "PyErr_SetFromWindowsErr" "PyInit_wrongos" libc.so.6 GLIBC_2.2.5
elf glibcnew.cpython-311-x86_64-linux-gnu.so "$x86" "PyLong_FromLong" "PyInit_glibcnew" "libc.so.6" "GLIBC_2.2.5 GLIBC_2.36"
elf glibcold.cpython-311-x86_64-linux-gnu.so "$x86" "PyLong_FromLong PyModule_Create2" "PyInit_glibcold" "libc.so.6" "GLIBC_2.2.5"
elf libvendored.so.1 "$x86" "" "" libc.so.6 GLIBC_2.2.5
expect libvendored.so.1 soname "$(elf_dyn libvendored.so.1 SONAME)" "libvendored.so.1"
f=usesvendored.cpython-311-x86_64-linux-gnu.so
elf $f "$x86" "PyLong_FromLong" "PyInit_usesvendored" "libvendored.so.1 libc.so.6" "GLIBC_2.2.5"
expect $f runpath "$(elf_dyn $f RUNPATH)" '$ORIGIN/../pkg.libs'
expect $f rpath "$(elf_dyn $f RPATH)" ""
elf pylinked.abi3.so "$x86" "PyLong_FromLong" "PyInit_pylinked" "libpython3.11.so.1.0 libc.so.6" "GLIBC_2.2.5"
elf libchain.so.1 "$x86" "" "" "libchaindep.so.1 libc.so.6" GLIBC_2.2.5
expect libchain.so.1 rpath "$(elf_dyn libchain.so.1 RPATH)$(elf_dyn libchain.so.1 RUNPATH)" ""
f=rpathchain.cpython-311-x86_64-linux-gnu.so
elf $f "$x86" "PyLong_FromLong" "PyInit_rpathchain" "libchain.so.1 libc.so.6" "GLIBC_2.2.5"
expect $f rpath "$(elf_dyn $f RPATH)" '$ORIGIN/../pkg.libs'
expect $f runpath "$(elf_dyn $f RUNPATH)" ""
f=runpathchain.cpython-311-x86_64-linux-gnu.so
expect $f runpath "$(elf_dyn $f RUNPATH)" '$ORIGIN/../pkg.libs'
expect $f rpath "$(elf_dyn $f RPATH)" ""
elf arm.abi3.so AArch64 "PyLong_FromLong" "PyInit_arm" "" ""
f=muslarm.cpython-311-aarch64-linux-musl.so
elf $f AArch64 "PyLong_FromLong" "PyInit_muslarm" "libgcc_s-b5472b99.so.1 libc.musl-aarch64.so.1" GLIBC_2.0
expect $f verneed-file "$("$READELF" -V -W $f | sed -n 's/.*File: \([^ ]*\).*/\1/p' | words)" libgcc_s-b5472b99.so.1
elf musl.cpython-311-x86_64-linux-musl.so "$x86" "PyLong_FromLong" "PyInit_musl" "libc.so" ""
elf muslalpine.cpython-311-x86_64-linux-musl.so "$x86" "PyLong_FromLong" "PyInit_muslalpine" "libc.musl-x86_64.so.1" ""

# ---------------------------------------------------------------- Mach-O
macho_minos() { # FILE ARCH: LC_BUILD_VERSION minos, else LC_VERSION_MIN_MACOSX version
  "$OBJDUMP" --macho --private-headers --arch="$2" "$1" |
    awk '/cmd LC_BUILD_VERSION|cmd LC_VERSION_MIN_MACOSX/ { lc = $2 }
         lc == "LC_BUILD_VERSION" && $1 == "minos" { print lc, $2; lc = "" }
         lc == "LC_VERSION_MIN_MACOSX" && $1 == "version" { print lc, $2; lc = "" }'
}
macho_py_imports() { "$NM" --arch="$2" -u "$1" | sed 's/^ *//' | grep -E '^__?Py' | words || true; }
macho_py_exports() { "$NM" --arch="$2" -g --defined-only "$1" | awk '{ print $3 }' | grep -E '^__?Py' | words || true; }
macho_dylibs() {
  "$OBJDUMP" --macho --dylibs-used --arch="$2" "$1" | awk 'NR > 1 { print $1 }' | words
}
macho() { # FILE ARCH MINOS-LINE "IMPORTS" "EXPORTS" "DYLIBS"
  expect "$1" "minos/$2" "$(macho_minos "$1" "$2")" "$3"
  expect "$1" "imp/$2" "$(macho_py_imports "$1" "$2")" "$4"
  expect "$1" "exp/$2" "$(macho_py_exports "$1" "$2")" "$5"
  expect "$1" "dylib/$2" "$(macho_dylibs "$1" "$2")" "$6"
}
sys=/usr/lib/libSystem.B.dylib
macho mac_x86_64.abi3.so x86_64 "LC_VERSION_MIN_MACOSX 10.12" _PyLong_FromLong _PyInit_mac_x86_64 $sys
macho mac_arm64.abi3.so arm64 "LC_BUILD_VERSION 11.0" _PyLong_FromLong _PyInit_mac_arm64 $sys
macho mac_new.abi3.so x86_64 "LC_BUILD_VERSION 13.0" _PyLong_FromLong _PyInit_mac_new $sys
macho mac_twelve.abi3.so x86_64 "LC_BUILD_VERSION 12.3" _PyLong_FromLong _PyInit_mac_twelve $sys
macho mac_outside.abi3.so x86_64 "LC_VERSION_MIN_MACOSX 10.12" "_PyLong_FromLong _PyUnicode_New" _PyInit_mac_outside $sys
expect mac_universal2.abi3.so archs "$("$LIPO" -archs mac_universal2.abi3.so | xargs)" "x86_64 arm64"
macho mac_universal2.abi3.so x86_64 "LC_VERSION_MIN_MACOSX 10.12" _PyLong_FromLong _PyInit_mac_universal2 $sys
macho mac_universal2.abi3.so arm64 "LC_BUILD_VERSION 11.0" _PyLong_FromLong _PyInit_mac_universal2 $sys
macho mac_vendored.abi3.so x86_64 "LC_VERSION_MIN_MACOSX 10.12" _PyLong_FromLong _PyInit_mac_vendored \
  "$sys @loader_path/.dylibs/libvendored.dylib"
expect libvendored.dylib id "$("$OBJDUMP" --macho --dylib-id libvendored.dylib | sed -n 2p)" \
  "@loader_path/.dylibs/libvendored.dylib"

# ---------------------------------------------------------------- PE
pe_machine() { "$READOBJ" --file-headers "$1" | sed -n 's/^ *Machine: .*(\(0x[0-9A-Fa-f]*\))/\1/p'; }
# One "kind:dll:symbol" per import, kind "import" or "delay".
pe_imports() {
  "$READOBJ" --coff-imports "$1" |
    awk '/^Import \{/ { kind = "import" } /^DelayImport \{/ { kind = "delay" }
         /^  Name: / { dll = $2 } /Symbol: / { print kind ":" dll ":" $2 }' | words
}
pe_exports() { "$READOBJ" --coff-exports "$1" | awk '/^  Name: ./ { print $2 }' | words; }
pe() { # FILE MACHINE "IMPORTS" "EXPORTS"
  expect "$1" machine "$(pe_machine "$1")" "$2"
  expect "$1" imports "$(pe_imports "$1")" "$3"
  expect "$1" exports "$(pe_exports "$1")" "$4"
}
p3="import:python3.dll:PyLong_FromLong import:python3.dll:PyModule_Create2"
pe win_amd64.pyd 0x8664 "$p3" PyInit_win_amd64
pe win32.pyd 0x14C "$p3" PyInit_win32
pe win_arm64.pyd 0xAA64 "$p3" PyInit_win_arm64
pe win_py311.pyd 0x8664 "import:python311.dll:PyLong_FromLong" PyInit_win_py311
pe win_delay.pyd 0x8664 "delay:python3.dll:PyUnicode_New" PyInit_win_delay
pe win_vendored.pyd 0x8664 "import:python3.dll:PyLong_FromLong import:vendored.dll:vendored_add" PyInit_win_vendored
pe vendored.dll 0x8664 "" vendored_add
pe win_tbb.pyd 0x8664 "import:python3.dll:PyLong_FromLong import:tbb12.dll:vendored_add" PyInit_win_tbb
pe win_system.pyd 0x8664 "import:kernel32.dll:vendored_add import:python3.dll:PyLong_FromLong" PyInit_win_system
expect cli-64.exe characteristics "$("$READOBJ" --file-headers cli-64.exe | grep -c IMAGE_FILE_DLL)" 0

if ((failures > 0)); then
  echo "check.sh: $failures fact(s) wrong" >&2
  exit 1
fi
echo "check.sh: all facts hold"
