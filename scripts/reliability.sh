#!/usr/bin/env bash
# Reruns what docs/reliability.md reports and rewrites it: every fuzz target for FUZZ_SECONDS
# (default 60) with its executions and findings, the fault tests (kill -9, a full disk, NaN
# losses, truncated model files) and the hostile-input tests, each with its outcome, the result of
# the last scripts/sanitize.sh, and the HTTP layer under hostile clients (scripts/http_hostile.py).
# Usage: scripts/reliability.sh   (after scripts/build.sh with LUMINARS_TARGETS=all)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fuzz_status=0
REPORT="$work/fuzz.tsv" scripts/fuzz.sh "$seconds" || fuzz_status=$?
ctest --test-dir build -R '^(Faults|HostileInputs|ServeHttp|ServeQueue|ServeProgram|FuzzRegressions)\.|^Safetensors\.Overflowing' --no-tests=error \
  --output-junit "$work/tests.xml" >/dev/null || true
# The last whole-suite sanitizer run (scripts/sanitize.sh), when there is one.
sanitized=$([ -f build-asan/sanitize.xml ] && echo "$PWD/build-asan/sanitize.xml" || true)
/usr/bin/python3 scripts/reliability_report.py "$work/fuzz.tsv" "$work/tests.xml" "$seconds" $sanitized > docs/reliability.md.tmp
mv docs/reliability.md.tmp docs/reliability.md
# The HTTP layer against the hostile requests, on a real server (appends its section).
/usr/bin/python3 scripts/http_hostile.py --update docs/reliability.md >/dev/null
echo "wrote docs/reliability.md"
exit "$fuzz_status"
