#!/usr/bin/env bash
# How cost grows: one sampling step of the default denoiser against latent side (8, 16, 32, 48, 64)
# and batch (1, 2, 4, 8), C++ (float32 and, on CPUs with native bf16, bf16) beside the PyTorch
# reference (float32, same threads); then whole `luminars generate` runs (12 guided Euler steps,
# one image) against image size, wall time and peak resident memory, for the shipped model and for
# a published-size pipeline (CLIP ViT-L/14 text, default denoiser, SD3/Flux VAE; random weights).
# Writes OUT/cost-growth.tsv, cost-growth.md and cost-growth.svg (default OUT: docs/performance).
# The reference runs with REFERENCE_ENV (default OPENBLAS_NUM_THREADS=1, the thread mix the C++
# side sets for itself; see compare_with_reference.sh). PARTS (default "cpp reference generate")
# picks what to measure; rows of the parts left out are kept from an earlier OUT/cost-growth.tsv.
# Usage: bench/cost_growth.sh [OUT] [TOKENIZER]   Env: SIDES, BATCHES, SIZES, PUBLISHED_SIZES, RUNS.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/performance}
tok=${2:-../shared/fixtures/clip_tokenizer}
sides=${SIDES:-"8 16 32 48 64"}; batches=${BATCHES:-"1 2 4 8"}
sizes=${SIZES:-"64 128 256 512 1024"}; published_sizes=${PUBLISHED_SIZES:-"64 128 256 512 1024"}
runs=${RUNS:-3}
parts=${PARTS:-"cpp reference generate"}
ref_env=${REFERENCE_ENV-OPENBLAS_NUM_THREADS=1}
for b in build/bench_denoiser build/make_random_pipeline build/luminars; do
  [ -x "$b" ] || { echo "cost_growth.sh: $b is missing: LUMINARS_TARGETS=all scripts/build.sh" >&2; exit 1; }
done
mkdir -p "$out"
tsv=$out/cost-growth.tsv
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
old=$work/old.tsv
[ -f "$tsv" ] && cp "$tsv" "$old" || : >"$old"
printf 'kind\tmodel\tbatch\tside\tprecision\tms\tpeak_mib\n' >"$tsv"
has() { [[ " $parts " == *" $1 "* ]]; }
keep() { awk -F'\t' -v k="$1" -v m="$2" 'NR > 1 && $1 == k && (m == "" || $2 == m)' "$old" >>"$tsv"; }

if has cpp; then
echo "[cost] sampling steps: C++"
filter="BM_SamplingStepSweep/($(echo $batches | tr ' ' '|'))/($(echo $sides | tr ' ' '|'))/"
build/bench_denoiser --benchmark_filter="$filter" --benchmark_repetitions="$runs" --benchmark_report_aggregates_only=true \
  --benchmark_format=csv 2>/dev/null | awk -F, '$1 ~ /_median"?$/ {
    gsub(/"/, "", $1); split($1, a, "/"); printf "step\tdefault\t%s\t%s\t%s\t%s\t\n", a[2], a[3], (a[4] == 1 ? "bf16" : "f32"), $3
  }' >>"$tsv"
else keep step default; fi
if has reference; then
echo "[cost] sampling steps: PyTorch reference${ref_env:+ ($ref_env)}"
for s in $sides; do
  for b in $batches; do
    ms=$(env $ref_env /usr/bin/python3 bench/reference_denoiser.py --mode sampling --batch "$b" --side "$s" --runs "$runs" 2>/dev/null | tail -1)
    printf 'step\treference\t%s\t%s\tf32\t%s\t\n' "$b" "$s" "$ms" >>"$tsv"
  done
done
else keep step reference; fi

gen() {  # gen LABEL MODEL SIZE: one row; a run that fails (memory, time) is recorded as such
  local line
  if line=$( { /usr/bin/time -f "%e %M" build/luminars generate --model "$2" --prompt "a red heart, noto style" \
                 --size "$3" --steps 12 --cfg 4 --quiet --out "$work/out.png" >/dev/null; } 2>&1 | tail -1); then
    awk -v l="$1" -v s="$3" -v line="$line" 'BEGIN { split(line, a, " ");
      printf "generate\t%s\t1\t%s\tdefault\t%.0f\t%.0f\n", l, s, a[1] * 1000, a[2] / 1024 }' >>"$tsv"
  else
    printf 'generate\t%s\t1\t%s\tdefault\tfailed\t\n' "$1" "$3" >>"$tsv"
  fi
}
if has generate; then
echo "[cost] generation: shipped model"
for size in $sizes; do gen emoji models/emoji "$size"; done
echo "[cost] generation: published sizes"
build/make_random_pipeline "$work/model" "$tok" >/dev/null
for size in $published_sizes; do gen published "$work/model" "$size"; done
else keep generate; fi

/usr/bin/python3 bench/cost_growth_report.py "$tsv" "$out"
echo "wrote $tsv, $out/cost-growth.md, $out/cost-growth.svg"
