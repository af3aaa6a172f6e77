#!/usr/bin/env bash
# Builds (if needed) everything, tests and benchmarks included, and runs the whole test suite
# with ctest. Fixtures are read from $LUMINARS_FIXTURES, else ../shared/fixtures; tests that need
# them skip when neither exists. The browser test's chromium and playwright-core are installed
# first (scripts/install-browser-deps.sh); its screenshot is kept in build/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-browser-deps.sh
LUMINARS_TARGETS=all scripts/build.sh
ctest --test-dir build --output-on-failure --no-tests=error -j2 "$@"
