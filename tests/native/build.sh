#!/usr/bin/env bash
# Builds the native fixtures (ELF, Mach-O, PE) for pipwall's wheel-audit tests
# into OUTDIR, flat. Offline; needs the tools install-toolchains.sh provides.
# Each fixture's purpose is in README.md next to this script.
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 OUTDIR" >&2
  exit 2
fi

die() { echo "build.sh: $*" >&2; exit 1; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$here/src
mkdir -p "$1"
out=$(cd "$1" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/pipwall-native.XXXXXX")
trap 'rm -rf "$work"' EXIT

# shellcheck source=find-tool.sh
source "$here/find-tool.sh"

require() {
  local var=$1 name=$2 path
  path=$(find_tool "$name") || die "missing tool '$name' (run tests/native/install-toolchains.sh)"
  printf -v "$var" '%s' "$path"
}

require GCC gcc
require CLANG clang
require LD_LLD ld.lld
require LD64_LLD ld64.lld
require LLD_LINK lld-link
require DLLTOOL llvm-dlltool
require LIPO llvm-lipo
MUSL_GCC=$(find_tool musl-gcc || true)

# Fixed flags so the dynamic sections do not depend on the distro's compiler
# defaults: Ubuntu turns on the stack protector and _FORTIFY_SOURCE (extra
# __stack_chk_fail@GLIBC_2.4 or *_chk imports), and whether libc.so.6 lands in
# DT_NEEDED varies with the as-needed default. With --no-as-needed every
# glibc fixture records libc.so.6 and, through crtbegin's weak
# __cxa_finalize, a GLIBC_2.2.5 verneed, the way real extensions do.
gcc_flags=(-shared -fPIC -O2 -fno-stack-protector -U_FORTIFY_SOURCE -Wl,--no-as-needed -I"$src")
cross_flags=(-O2 -ffreestanding -fno-stack-protector -I"$src")

# elf NAME FILE [gcc args...]: an x86_64 extension module built from ext.c.
elf() {
  local name=$1 file=$2
  shift 2
  "$GCC" "${gcc_flags[@]}" -DMODNAME="$name" -o "$out/$file" "$src/ext.c" "$@"
}

# macho_obj TRIPLE NAME OBJ [cflags...]
macho_obj() {
  local triple=$1 name=$2 obj=$3
  shift 3
  "$CLANG" --target="$triple" "${cross_flags[@]}" -DMODNAME="$name" "$@" -c -o "$obj" "$src/ext.c"
}

# macho_link ARCH MINOS OBJ OUTPUT [ld64 args...]: a bundle, as setuptools
# makes on macOS; Python symbols stay undefined for dyld to bind at import.
# lld picks the load command from the version like Apple's ld64 does:
# LC_VERSION_MIN_MACOSX below 10.14, LC_BUILD_VERSION from then on.
macho_link() {
  local arch=$1 minos=$2 obj=$3 output=$4
  shift 4
  "$LD64_LLD" -arch "$arch" -platform_version macos "$minos" 14.0 -bundle \
    -undefined dynamic_lookup -o "$output" "$obj" "$@" "$src/libSystem.tbd"
}

# macho ARCH TRIPLE MINOS NAME [cflags...] [-- ld64 args...]: a single-arch
# bundle into OUTDIR.
macho() {
  local arch=$1 triple=$2 minos=$3 name=$4
  shift 4
  local cflags=()
  while [[ $# -gt 0 && $1 != -- ]]; do cflags+=("$1"); shift; done
  [[ $# -gt 0 ]] && shift
  macho_obj "$triple" "$name" "$work/$name.$arch.o" "${cflags[@]}"
  macho_link "$arch" "$minos" "$work/$name.$arch.o" "$out/$name.abi3.so" "$@"
}

# pe MACHINE NAME FILE [cflags...] -- [lld-link args...]: a DLL with no CRT
# and no entry point, exporting PyInit_NAME.
pe() {
  local machine=$1 name=$2 file=$3 triple
  shift 3
  local cflags=()
  while [[ $# -gt 0 && $1 != -- ]]; do cflags+=("$1"); shift; done
  [[ $# -gt 0 ]] && shift
  case $machine in
    x64) triple=x86_64-pc-windows-msvc ;;
    x86) triple=i686-pc-windows-msvc ;;
    arm64) triple=aarch64-pc-windows-msvc ;;
    *) die "unknown PE machine $machine" ;;
  esac
  "$CLANG" --target="$triple" "${cross_flags[@]}" -DMODNAME="$name" "${cflags[@]}" \
    -c -o "$work/$name.obj" "$src/ext.c"
  # /Brepro: a content hash instead of the wall clock in the timestamp, so
  # two builds give identical bytes.
  # -implib keeps lld-link's by-product import library out of OUTDIR.
  "$LLD_LINK" -nologo -dll -noentry -nodefaultlib -Brepro -machine:"$machine" \
    -out:"$out/$file" -implib:"$work/$name.lib" "$work/$name.obj" "$@"
}

# ---------------------------------------------------------------- ELF x86_64
elf clean clean.abi3.so -DUSE_CREATE -DUSE_LONG -DUSE_DEALLOC -DUSE_PARSE
elf outside outside.abi3.so -DUSE_UNICODE_NEW -DUSE_LONG
elf newer newer.abi3.so -DUSE_UTF8_AND_SIZE -DUSE_LONG
elf ownexports ownexports.abi3.so -DOWN_EXPORTS -DUSE_CREATE -DUSE_LONG
elf wrongos wrongos.abi3.so -DUSE_WINDOWS_ERR
elf glibcnew glibcnew.cpython-311-x86_64-linux-gnu.so -DUSE_ARC4RANDOM -DUSE_LONG
elf glibcold glibcold.cpython-311-x86_64-linux-gnu.so -DUSE_CREATE -DUSE_LONG

"$GCC" "${gcc_flags[@]}" -Wl,-soname,libvendored.so.1 -o "$out/libvendored.so.1" "$src/vendored.c"
# Single quotes keep $ORIGIN literal for the loader. --enable-new-dtags gives
# RUNPATH (what auditwheel's repair writes), not the legacy RPATH.
elf usesvendored usesvendored.cpython-311-x86_64-linux-gnu.so -DUSE_VENDORED -DUSE_LONG \
  -Wl,--enable-new-dtags -Wl,-rpath,'$ORIGIN/../pkg.libs' \
  "$out/libvendored.so.1"

"$GCC" "${gcc_flags[@]}" -Wl,-soname,libpython3.11.so.1.0 -o "$work/libpython3.11.so.1.0" "$src/libpython_stub.c"
elf pylinked pylinked.abi3.so -DUSE_LONG "$work/libpython3.11.so.1.0"
# Marked by the linker as needing x86-64-v3 (GNU_PROPERTY_X86_ISA_1_NEEDED): more than a
# plain x86_64 tag promises.
elf isav3 isav3.abi3.so -DUSE_LONG -Wl,-z,x86-64-v3

# Libraries found only through the RPATH of the module that loads them, as older auditwheel
# left numpy and scipy: the grafted libraries carry no search path of their own, and glibc
# finds libchaindep.so.1 (needed by libchain.so.1) through the extension's DT_RPATH. The same
# chain under a DT_RUNPATH fails to load: RUNPATH serves only the object that has it.
"$GCC" "${gcc_flags[@]}" -Wl,-soname,libchaindep.so.1 -o "$out/libchaindep.so.1" "$src/vendored.c"
"$GCC" "${gcc_flags[@]}" -Wl,-soname,libchain.so.1 -o "$out/libchain.so.1" "$src/vendored.c" \
  "$out/libchaindep.so.1"
elf rpathchain rpathchain.cpython-311-x86_64-linux-gnu.so -DUSE_VENDORED -DUSE_LONG \
  -Wl,--disable-new-dtags -Wl,-rpath,'$ORIGIN/../pkg.libs' -Wl,-rpath-link,"$out" "$out/libchain.so.1"
elf runpathchain runpathchain.cpython-311-x86_64-linux-gnu.so -DUSE_VENDORED -DUSE_LONG \
  -Wl,--enable-new-dtags -Wl,-rpath,'$ORIGIN/../pkg.libs' -Wl,-rpath-link,"$out" "$out/libchain.so.1"

# ---------------------------------------------------------------- ELF aarch64
"$CLANG" --target=aarch64-linux-gnu "${cross_flags[@]}" -fPIC -DMODNAME=arm -DUSE_LONG \
  -c -o "$work/arm.o" "$src/ext.c"
"$LD_LLD" -shared -o "$out/arm.abi3.so" "$work/arm.o"

# A musllinux aarch64 module the way real ones are: it ships libgcc_s (renamed by the repair
# tool), which defines its own GLIBC_2.0 version, so the module needs GLIBC_2.0 from it.
"$CLANG" --target=aarch64-linux-musl "${cross_flags[@]}" -fPIC -c -o "$work/gcc_s.o" "$src/vendored.c"
"$LD_LLD" -shared -soname libgcc_s-b5472b99.so.1 --version-script "$src/gcc_s.map" \
  -o "$out/libgcc_s-b5472b99.so.1" "$work/gcc_s.o"
"$CLANG" --target=aarch64-linux-musl -c -o "$work/empty.aarch64.o" -x c /dev/null
"$LD_LLD" -shared -soname libc.musl-aarch64.so.1 -o "$work/libc.musl-aarch64.so.1" "$work/empty.aarch64.o"
"$CLANG" --target=aarch64-linux-musl "${cross_flags[@]}" -fPIC -DMODNAME=muslarm -DUSE_VENDORED \
  -DUSE_LONG -c -o "$work/muslarm.o" "$src/ext.c"
"$LD_LLD" -shared -rpath '$ORIGIN/../pkg.libs' -o "$out/muslarm.cpython-311-aarch64-linux-musl.so" \
  "$work/muslarm.o" "$out/libgcc_s-b5472b99.so.1" "$work/libc.musl-aarch64.so.1"

# ---------------------------------------------------------------- ELF musl
[[ -n $MUSL_GCC ]] || die "missing tool 'musl-gcc' (run tests/native/install-toolchains.sh)"
# Debian's musl libc.so has no SONAME, so this one records DT_NEEDED "libc.so".
"$MUSL_GCC" -shared -fPIC -O2 -fno-stack-protector -I"$src" -DMODNAME=musl -DUSE_LONG \
  -o "$out/musl.cpython-311-x86_64-linux-musl.so" "$src/ext.c"
# Alpine, where musllinux wheels are really built, gives its libc the SONAME
# libc.musl-x86_64.so.1, and that is what real wheels record. A stub with that
# SONAME reproduces it without an Alpine sysroot.
"$MUSL_GCC" -shared -nostdlib -Wl,-soname,libc.musl-x86_64.so.1 \
  -o "$work/libc.musl-x86_64.so.1" -x c /dev/null
"$MUSL_GCC" -shared -fPIC -O2 -fno-stack-protector -nodefaultlibs -I"$src" \
  -DMODNAME=muslalpine -DUSE_LONG -o "$out/muslalpine.cpython-311-x86_64-linux-musl.so" \
  "$src/ext.c" -Wl,--no-as-needed "$work/libc.musl-x86_64.so.1"

# ---------------------------------------------------------------- Mach-O
macho x86_64 x86_64-apple-macos10.12 10.12 mac_x86_64 -DUSE_LONG
macho arm64 arm64-apple-macos11 11.0 mac_arm64 -DUSE_LONG
macho x86_64 x86_64-apple-macos13 13.0 mac_new -DUSE_LONG
macho x86_64 x86_64-apple-macos10.12 10.12 mac_outside -DUSE_UNICODE_NEW -DUSE_LONG
# From macOS 11 on a tag names the major only: 12.3 code keeps the promise of macosx_12_0.
macho x86_64 x86_64-apple-macos12.3 12.3 mac_twelve -DUSE_LONG

# Both slices must export PyInit_mac_universal2, so they are built for that
# name rather than reusing the single-arch objects.
macho_obj x86_64-apple-macos10.12 mac_universal2 "$work/u2.x86_64.o" -DUSE_LONG
macho_obj arm64-apple-macos11 mac_universal2 "$work/u2.arm64.o" -DUSE_LONG
macho_link x86_64 10.12 "$work/u2.x86_64.o" "$work/u2.x86_64.so"
macho_link arm64 11.0 "$work/u2.arm64.o" "$work/u2.arm64.so"
"$LIPO" -create "$work/u2.x86_64.so" "$work/u2.arm64.so" -output "$out/mac_universal2.abi3.so"

# A dylib the way delocate leaves it: install name under @loader_path/.dylibs,
# so the dependency resolves only if the wheel ships <pkg>/.dylibs/ next to it.
"$CLANG" --target=x86_64-apple-macos10.12 "${cross_flags[@]}" -c -o "$work/vendored.x86_64.o" "$src/vendored.c"
"$LD64_LLD" -arch x86_64 -platform_version macos 10.12 14.0 -dylib \
  -install_name @loader_path/.dylibs/libvendored.dylib \
  -o "$out/libvendored.dylib" "$work/vendored.x86_64.o" "$src/libSystem.tbd"
macho x86_64 x86_64-apple-macos10.12 10.12 mac_vendored -DUSE_VENDORED -DUSE_LONG -- "$out/libvendored.dylib"

# ---------------------------------------------------------------- PE
for m in x64:i386:x86-64 x86:i386 arm64:arm64; do
  "$DLLTOOL" -m "${m#*:}" -d "$src/python3.def" -l "$work/python3-${m%%:*}.lib"
done
"$DLLTOOL" -m i386:x86-64 -d "$src/python311.def" -l "$work/python311-x64.lib"

pe x64 win_amd64 win_amd64.pyd -DUSE_CREATE -DUSE_LONG -- "$work/python3-x64.lib"
pe x86 win32 win32.pyd -DUSE_CREATE -DUSE_LONG -- "$work/python3-x86.lib"
pe arm64 win_arm64 win_arm64.pyd -DUSE_CREATE -DUSE_LONG -- "$work/python3-arm64.lib"
pe x64 win_py311 win_py311.pyd -DUSE_LONG -- "$work/python311-x64.lib"

"$CLANG" --target=x86_64-pc-windows-msvc "${cross_flags[@]}" -c -o "$work/delayload_helper.obj" "$src/delayload_helper.c"
pe x64 win_delay win_delay.pyd -DUSE_UNICODE_NEW -- \
  -delayload:python3.dll "$work/python3-x64.lib" "$work/delayload_helper.obj"

# A non-system DLL dependency, as delvewheel would have to bundle it.
"$CLANG" --target=x86_64-pc-windows-msvc "${cross_flags[@]}" -c -o "$work/vendored.obj" "$src/vendored.c"
"$LLD_LINK" -nologo -dll -noentry -nodefaultlib -Brepro -machine:x64 \
  -out:"$out/vendored.dll" -implib:"$work/vendored.lib" "$work/vendored.obj"
pe x64 win_vendored win_vendored.pyd -DUSE_VENDORED -DUSE_LONG -- \
  "$work/python3-x64.lib" "$work/vendored.lib"

# A DLL dependency that is not part of Windows (numba's tbb12.dll), and one that is.
"$DLLTOOL" -m i386:x86-64 -d "$src/tbb12.def" -l "$work/tbb12.lib"
"$DLLTOOL" -m i386:x86-64 -d "$src/kernel32.def" -l "$work/kernel32.lib"
"$DLLTOOL" -m i386:x86-64 -d "$src/msvcp140.def" -l "$work/msvcp140.lib"
pe x64 win_tbb win_tbb.pyd -DUSE_VENDORED -DUSE_LONG -- "$work/python3-x64.lib" "$work/tbb12.lib"
pe x64 win_system win_system.pyd -DUSE_VENDORED -DUSE_LONG -- "$work/python3-x64.lib" "$work/kernel32.lib"
pe x64 win_msvcp win_msvcp.pyd -DUSE_VENDORED -DUSE_LONG -- "$work/python3-x64.lib" "$work/msvcp140.lib"

# A console launcher: a program (no IMAGE_FILE_DLL), as pure wheels ship them.
"$CLANG" --target=x86_64-pc-windows-msvc "${cross_flags[@]}" -c -o "$work/launcher.obj" "$src/launcher.c"
"$LLD_LINK" -nologo -entry:launcher_main -subsystem:console -nodefaultlib -Brepro -machine:x64 \
  -out:"$out/cli-64.exe" "$work/launcher.obj"

echo "build.sh: fixtures in $out"
