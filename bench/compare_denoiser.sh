#!/usr/bin/env bash
# Denoiser forward on the CPU, C++ against the PyTorch reference in the same run, interleaved
# (C++, Python, C++, Python, …) so drift on a shared machine hits both alike. Prints medians and
# the ratio. Usage: bench/compare_denoiser.sh [rounds=3] [batch=1] [side=32]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}; batch=${2:-1}; side=${3:-32}
threads=$(nproc)
[ -x build/bench_denoiser ] || { echo "build first: scripts/build.sh" >&2; exit 1; }
cpp=(); py=()
for r in $(seq "$rounds"); do
  c=$(build/bench_denoiser --benchmark_filter="default_b${batch}_${side}x${side}" --benchmark_repetitions=3 \
        --benchmark_report_aggregates_only=true --benchmark_format=csv 2>/dev/null |
      awk -F, '/_median/{print $3}')   # real_time, already in ms
  p=$(/usr/bin/python3 bench/reference_denoiser.py --threads "$threads" --batch "$batch" --side "$side" --runs 5 |
      sed -E 's/.*median ([0-9.]+) ms.*/\1/')
  echo "round $r: C++ ${c} ms, PyTorch ${p} ms"
  cpp+=("$c"); py+=("$p")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END{print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }
mc=$(median "${cpp[@]}"); mp=$(median "${py[@]}")
echo "median over $rounds rounds, batch $batch, ${side}x${side} latents, $threads threads:"
echo "  C++ ${mc} ms/step, PyTorch reference ${mp} ms/step, ratio PyTorch/C++ = $(awk -v a="$mp" -v b="$mc" 'BEGIN{printf "%.2f", a/b}')"
