#!/usr/bin/env bash
# Fuzzes the parsers of untrusted input (fuzz/, libFuzzer with AddressSanitizer and UBSan): builds
# every target with clang into build-fuzz/, runs each for SECONDS (30) on a copy of its committed
# corpus fuzz/corpus/<target>/ (plus fuzz/regressions/<target>/, read only), copies any crash,
# timeout or out-of-memory input into fuzz/findings/<target>/ and prints one line per target:
#   target  seconds  executions  new-corpus-units  findings
# The same lines are appended, tab separated, to the file $REPORT when it is set. Exits 1 when a
# target found something.
#
#   scripts/fuzz.sh [--merge] [SECONDS] [TARGET...]     targets: safetensors configs tokenizer image requests http
#
# --merge minimises the units a run added back into fuzz/corpus/<target>/ (libFuzzer -merge=1: only
# those that add coverage). Environment: CXX (clang++), JOBS (compile jobs, default: all cores),
# BUILD_FUZZ (build-fuzz), FUZZ_FLAGS (more libFuzzer flags, e.g. -jobs=2 -workers=2).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

ALL_TARGETS=(safetensors configs tokenizer image requests http)
declare -A MAX_LEN=([safetensors]=16384 [configs]=4096 [tokenizer]=8192 [image]=65536 [requests]=65536 [http]=65536)

merge=0
seconds=30
targets=()
for arg in "$@"; do
  case "$arg" in
    --merge) merge=1 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *[!0-9]*) [[ -n "${MAX_LEN[$arg]:-}" ]] || { echo "fuzz.sh: unknown target '$arg' (known: ${ALL_TARGETS[*]})" >&2; exit 2; }
              targets+=("$arg") ;;
    *) seconds=$arg ;;
  esac
done
[[ ${#targets[@]} -gt 0 ]] || targets=("${ALL_TARGETS[@]}")

# 1. Build (CMake keeps track of what changed; each source is compiled once for all targets).
BUILD=${BUILD_FUZZ:-$ROOT/build-fuzz}
mkdir -p "$BUILD"
exec 9>"$BUILD/.lock"
flock 9  # one run at a time per build folder: another waits here (the build and run/ are shared)
if [[ ! -f "$BUILD/CMakeCache.txt" ]]; then
  cmake -S fuzz -B "$BUILD" -DCMAKE_CXX_COMPILER="${CXX:-clang++}" -DCMAKE_BUILD_TYPE=None >/dev/null
fi
cmake --build "$BUILD" -j "${JOBS:-$(nproc)}" --target "${targets[@]/#/fuzz_}"

# 2. Run each target on a scratch copy of its corpus.
status=0
if [[ -n "${REPORT:-}" && ! -s "$REPORT" ]]; then
  printf 'target\tseconds\texecutions\tnew_corpus_units\tfindings\n' >"$REPORT"
fi
printf '%-12s %8s %12s %16s %9s\n' target seconds executions new-corpus-units findings
for t in "${targets[@]}"; do
  run="$BUILD/run/$t"
  rm -rf "$run"
  mkdir -p "$run/corpus" "$run/artifacts"
  [[ -d "fuzz/corpus/$t" ]] && cp -R "fuzz/corpus/$t/." "$run/corpus/"
  seeds=$(find "$run/corpus" -type f | wc -l)
  extra=()
  [[ -d "fuzz/regressions/$t" ]] && extra+=("fuzz/regressions/$t")
  dict=()
  [[ -f "fuzz/dicts/$t.dict" ]] && dict+=("-dict=fuzz/dicts/$t.dict")
  start=$(date +%s)
  # shellcheck disable=SC2086 # FUZZ_FLAGS is a list of flags
  "$BUILD/fuzz_$t" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len="${MAX_LEN[$t]}" \
      -print_final_stats=1 -artifact_prefix="$run/artifacts/" "${dict[@]}" ${FUZZ_FLAGS:-} \
      "$run/corpus" "${extra[@]}" >"$run/log.txt" 2>&1 || true
  elapsed=$(( $(date +%s) - start ))
  executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$run/log.txt" | tail -1)
  [[ -n "$executions" ]] || executions=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$run/log.txt" | tail -1)
  new_units=$(( $(find "$run/corpus" -type f | wc -l) - seeds ))
  findings=0
  for artifact in "$run/artifacts"/*; do
    [[ -f "$artifact" ]] || continue
    case "$(basename "$artifact")" in crash-*|timeout-*|oom-*|leak-*) ;; *) continue ;; esac
    mkdir -p "fuzz/findings/$t"
    cp "$artifact" "fuzz/findings/$t/"
    findings=$((findings + 1))
  done
  if [[ $findings -gt 0 ]] || ! grep -q '^Done ' "$run/log.txt"; then
    status=1
    [[ $findings -gt 0 ]] || findings="failed"   # no artifact but no clean finish: see the log
    echo "--- $t: see $run/log.txt" >&2
    grep -m 20 -E 'ERROR|runtime error|terminate|uncaught|SUMMARY|Test unit written' "$run/log.txt" >&2 || true
  fi
  printf '%-12s %8s %12s %16s %9s\n' "$t" "$elapsed" "${executions:-?}" "$new_units" "$findings"
  [[ -z "${REPORT:-}" ]] || printf '%s\t%s\t%s\t%s\t%s\n' "$t" "$elapsed" "${executions:-?}" "$new_units" "$findings" >>"$REPORT"
  if [[ $merge == 1 && $new_units -gt 0 ]]; then
    mkdir -p "fuzz/corpus/$t"
    "$BUILD/fuzz_$t" -merge=1 -rss_limit_mb=2048 -timeout=10 -max_len="${MAX_LEN[$t]}" \
        "fuzz/corpus/$t" "$run/corpus" >"$run/merge.txt" 2>&1 || { echo "--- $t: merge failed, see $run/merge.txt" >&2; status=1; }
  fi
done
exit $status
