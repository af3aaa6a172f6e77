#!/usr/bin/env bash
# `cmake --install` of a build into a temporary prefix, then examples/c/generate.c built against
# what was installed, once with pkg-config and once with CMake's find_package, and run.
#   tests/capi/install_and_use.sh BUILD_DIR C_COMPILER
set -euo pipefail
build=$1 cc=$2
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null
libdir=$(ls -d "$prefix"/lib*/ | head -1)
libdir=${libdir%/}
for f in "$libdir/libluminars.so" "$prefix/include/luminars.h" "$libdir/cmake/luminars/luminarsConfig.cmake" \
         "$libdir/cmake/luminars/luminarsTargets.cmake" "$libdir/pkgconfig/luminars.pc"; do
  [ -e "$f" ] || { echo "not installed: ${f#"$prefix"/}"; exit 1; }
done
# The public surface is the one header: nothing of src/ is installed.
extra=$(cd "$prefix/include" && find . -type f ! -name luminars.h)
[ -z "$extra" ] || { echo "installed besides include/luminars.h: $extra"; exit 1; }

check_program() {  # the program loads the installed library and reports a missing model folder
  local out rc=0
  out=$(LD_LIBRARY_PATH="$libdir" "$1" "$tmp/no-such-model" "a green apple" 3 "$tmp/x.png" 2>&1) || rc=$?
  [ "$rc" -eq 1 ] || { echo "$1: exit $rc, expected 1: $out"; exit 1; }
  case "$out" in *"$tmp/no-such-model"*) ;; *) echo "$1: the error does not name the folder: $out"; exit 1 ;; esac
}

# pkg-config
PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config --exists luminars
# shellcheck disable=SC2046
"$cc" -std=c99 -Wall -Werror -o "$tmp/generate_pc" "$root/examples/c/generate.c" \
  $(PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config --cflags --libs luminars) -I/usr/include/stb -lstb
check_program "$tmp/generate_pc"

# find_package(luminars)
cmake -S "$root/tests/capi/consumer" -B "$tmp/consumer" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_C_COMPILER="$cc" -DEXAMPLE="$root/examples/c/generate.c" >/dev/null
cmake --build "$tmp/consumer" >/dev/null
check_program "$tmp/consumer/generate_c"
echo "installed into $prefix and built against it with pkg-config and find_package: ok"
