#!/usr/bin/env bash
# Configures and builds LuminaRS into build/ (Release, Ninja). Extra arguments go to CMake.
# By default only what the main job needs (the `luminars` program) and libluminars.so (the C API,
# which the Python package loads);
# LUMINARS_TARGETS=all (scripts/test.sh) builds the tests and benchmarks too.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DLUMINARS_UNITY_BUILD=ON "$@" >/dev/null
targets=${LUMINARS_TARGETS:-luminars_cli luminars}
[ "$targets" = all ] && targets=
# shellcheck disable=SC2086
ninja -C build $targets
