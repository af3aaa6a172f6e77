#!/usr/bin/env bash
# Builds the whole test suite (library, programs, tests) with AddressSanitizer and
# UndefinedBehaviorSanitizer into build-asan/ and runs it with ctest. Any report fails the test it
# happens in: UBSan stops at the first finding, ASan at the first memory error, LeakSanitizer at
# exit. Extra arguments go to ctest (e.g. -L fixtures, -LE slow, -R Safetensors).
#
# -O1 with line tables: fast enough to run the suite, and reports name file and line.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-browser-deps.sh
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Sanitize -DCMAKE_CXX_FLAGS_SANITIZE="-O1 -g1" \
  -DLUMINARS_SANITIZE=address,undefined -DLUMINARS_UNITY_BUILD=ON -DLUMINARS_BUILD_BENCH=OFF >/dev/null
ninja -C build-asan
# LeakSanitizer runs with no suppressions: the suite, LibTorch and OpenBLAS included, leaks nothing.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1:strict_string_checks=1:detect_stack_use_after_return=0:check_initialization_order=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
ctest --test-dir build-asan --output-on-failure --no-tests=error -j2 --output-junit "$PWD/build-asan/sanitize.xml" "$@"
