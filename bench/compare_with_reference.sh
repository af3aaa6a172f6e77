#!/usr/bin/env bash
# The C++ denoiser against the PyTorch reference on this machine, interleaved round by round
# (C++, PyTorch, C++, PyTorch, …) so drift on a shared machine hits both alike; prints each
# round, the medians and the ratio. Same thread count for both (every available core).
# Usage: bench/compare_with_reference.sh sampling|training [rounds=3] [batch] [side=32]
# REFERENCE_ENV="OPENBLAS_NUM_THREADS=1" runs the reference with that environment (the thread mix
# the C++ side sets for itself, see src/core/threads.cpp).
# CPP_PRECISION and REFERENCE_PRECISION: f32 (default) or bf16 (autocast; the C++ side
# only on CPUs with native bf16, see src/core/autocast.h).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-sampling}; rounds=${2:-3}
case "$mode" in
  sampling) batch=${3:-1}; bm=BM_SamplingStep; runs=5 ;;
  training) batch=${3:-32}; bm=BM_TrainingStep; runs=2 ;;
  *) echo "usage: $0 sampling|training [rounds] [batch] [side]" >&2; exit 2 ;;
esac
side=${4:-32}
cpp_prec=${CPP_PRECISION:-f32}; ref_prec=${REFERENCE_PRECISION:-f32}
filter="^$bm/$batch/$side/"; ref_flags=()
filter="$filter$([ "$cpp_prec" = bf16 ] && echo 1 || echo 0)/"
[ "$ref_prec" = bf16 ] && ref_flags=(--bf16)
[ -x build/bench_denoiser ] || { echo "build the benchmarks first: LUMINARS_TARGETS=all scripts/build.sh" >&2; exit 1; }
cpp=(); py=()
for r in $(seq "$rounds"); do
  c=$(build/bench_denoiser --benchmark_filter="$filter" --benchmark_format=csv 2>/dev/null |
      awk -F, -v b="$bm" '$1 ~ b {print $3}')   # real_time in ms
  p=$(env ${REFERENCE_ENV:-} /usr/bin/python3 bench/reference_denoiser.py --mode "$mode" --batch "$batch" --side "$side" --runs "$runs" "${ref_flags[@]}" 2>/dev/null | tail -1)
  echo "round $r: C++ ${c} ms, PyTorch ${p} ms"
  cpp+=("$c"); py+=("$p")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END{print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }
mc=$(median "${cpp[@]}"); mp=$(median "${py[@]}")
echo "$mode step, default preset, batch $batch, ${side}x${side} latents, $(nproc) threads, median of $rounds rounds${REFERENCE_ENV:+ (reference with $REFERENCE_ENV)}, C++ $cpp_prec, reference $ref_prec:"
awk -v a="$mp" -v b="$mc" -v n="$batch" 'BEGIN{printf "  C++ %.1f ms (%.2f img/s), PyTorch reference %.1f ms (%.2f img/s): C++ is %.2fx the reference speed\n", b, n*1000/b, a, n*1000/a, a/b}'
