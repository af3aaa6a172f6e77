#!/usr/bin/env bash
# Builds (if needed) everything, tests and benchmarks included, and runs the whole test suite
# with ctest. Fixtures are read from $LUMINARS_FIXTURES, else ../shared/fixtures; tests that need
# them skip when neither exists.
set -euo pipefail
cd "$(dirname "$0")/.."
LUMINARS_TARGETS=all scripts/build.sh
ctest --test-dir build --output-on-failure -j2 "$@"
