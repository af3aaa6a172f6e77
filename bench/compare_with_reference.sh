#!/usr/bin/env bash
# The C++ denoiser against the PyTorch reference on this machine, interleaved round by round
# (C++, PyTorch, C++, PyTorch, …) so drift on a shared machine hits both alike; prints each
# round, the medians and the ratio.
# Usage: bench/compare_with_reference.sh sampling|sampling-cached|training|adamw [rounds=3] [batch] [side=32]
#   sampling         one denoiser call with the reference's work per call: the C++ side recomputes
#                    the prompt's context embedding and keys/values in every call, as the reference
#                    does (like for like);
#   sampling-cached  one step as `luminars generate` runs it: the C++ side computes the prompt's
#                    part once per generation (a product advantage; the reference still recomputes);
#   training         forward, backward, AdamW;
#   adamw            one AdamW step alone over the default preset's parameters (float32).
# Batch 2 is a guided step (conditional and unconditional rows in one call).
# REFERENCE: torch2 (default; PyTorch 2.x from scripts/install-reference.sh, eager), torch2-compile
#   (the same under torch.compile, inductor on the CPU) or debian (/usr/bin/python3's PyTorch 1.13).
# CPP_PRECISION and REFERENCE_PRECISION: f32 (default) or bf16 (autocast; the C++ side only on CPUs
#   with native bf16, see src/core/autocast.h).
# Threads and BLAS: both sides use every available core for LibTorch's intra-op (OpenMP) pool.
#   The C++ side sets OpenBLAS (Debian's LibTorch's BLAS) to one thread (src/core/threads.cpp); the
#   debian reference gets OPENBLAS_NUM_THREADS=1 to match. The PyPI wheel calls MKL and oneDNN on
#   the OpenMP pool, which has the same thread count. REFERENCE_ENV="VAR=value …" replaces the
#   reference's environment settings (e.g. REFERENCE_ENV= for OpenBLAS's default threads).
# REFERENCE_ADAMW (training): default (torch.optim.AdamW as people construct it; on the CPU a loop
#   over the parameters), foreach or fused (one pass per tensor, as the C++ side's AdamW on the CPU).
# CPP_BUILD: the C++ build folder (default build, against Debian's LibTorch 1.13); build-cuda times
#   the C++ side built against the wheel's LibTorch (`scripts/cuda-compile-check.sh bench_denoiser`),
#   which runs on the CPU too: the same kernels (MKL, oneDNN) as the torch2 reference.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-sampling}; rounds=${2:-3}
case "$mode" in
  sampling) batch=${3:-1}; bm=BM_SamplingStepWithPrompt; runs=5; ref_mode=sampling ;;
  sampling-cached) batch=${3:-1}; bm=BM_SamplingStep; runs=5; ref_mode=sampling ;;
  training) batch=${3:-32}; bm=BM_TrainingStep; runs=2; ref_mode=training ;;
  adamw) batch=1; bm=BM_AdamWStep; runs=7; ref_mode=adamw ;;
  *) echo "usage: $0 sampling|sampling-cached|training|adamw [rounds] [batch] [side]" >&2; exit 2 ;;
esac
side=${4:-32}
reference=${REFERENCE:-torch2}
cpp_prec=${CPP_PRECISION:-f32}; ref_prec=${REFERENCE_PRECISION:-f32}
ref_flags=(--threads "$(nproc)")
case "$reference" in
  debian) python=/usr/bin/python3; ref_env=${REFERENCE_ENV-OPENBLAS_NUM_THREADS=1} ;;
  torch2) python=.venv-reference/bin/python; ref_env=${REFERENCE_ENV-} ;;
  torch2-compile) python=.venv-reference/bin/python; ref_env=${REFERENCE_ENV-}; ref_flags+=(--compile --warmup 3) ;;
  *) echo "REFERENCE must be debian, torch2 or torch2-compile, not '$reference'" >&2; exit 2 ;;
esac
[ -x "$python" ] || { echo "$python is missing: run scripts/install-reference.sh first" >&2; exit 1; }
for p in "$cpp_prec" "$ref_prec"; do
  case "$p" in f32|bf16) ;; *) echo "CPP_PRECISION and REFERENCE_PRECISION are f32 or bf16, not '$p'" >&2; exit 2 ;; esac
done
filter="^$bm/$batch/$side/$([ "$cpp_prec" = bf16 ] && echo 1 || echo 0)/"
[ "$mode" = adamw ] && filter="^$bm/"
[ "$ref_prec" = bf16 ] && ref_flags+=(--bf16)
ref_adamw=${REFERENCE_ADAMW:-default}
case "$ref_adamw" in default|foreach|fused) ;; *) echo "REFERENCE_ADAMW is default, foreach or fused, not '$ref_adamw'" >&2; exit 2 ;; esac
case "$mode" in training|adamw) ref_flags+=(--adamw "$ref_adamw") ;; esac
cpp_build=${CPP_BUILD:-build}
[ -x "$cpp_build/bench_denoiser" ] || { echo "$cpp_build/bench_denoiser is missing: build the benchmarks first (LUMINARS_TARGETS=all scripts/build.sh)" >&2; exit 1; }
ref_version=$("$python" -c 'import torch; print(torch.__version__)' 2>/dev/null)
cpp=(); py=()
for r in $(seq "$rounds"); do
  c=$("$cpp_build/bench_denoiser" --benchmark_filter="$filter" --benchmark_format=csv 2>/dev/null |
      awk -F, -v b="$bm/" 'index($1, b) == 2 {print $3}')   # real_time in ms
  # shellcheck disable=SC2086
  p=$(env $ref_env "$python" bench/reference_denoiser.py --mode "$ref_mode" --batch "$batch" --side "$side" --runs "$runs" "${ref_flags[@]}" 2>/dev/null | tail -1)
  [ -n "$c" ] && [ -n "$p" ] || { echo "round $r: no time from $([ -n "$c" ] && echo the reference || echo "$cpp_build/bench_denoiser")" >&2; exit 1; }
  echo "round $r: C++ ${c} ms, PyTorch ${p} ms"
  cpp+=("$c"); py+=("$p")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END{print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }
mc=$(median "${cpp[@]}"); mp=$(median "${py[@]}")
echo "$mode step, default preset, batch $batch, ${side}x${side} latents, $(nproc) threads, median of $rounds rounds, $(date -u +%F):" \
     "C++ $cpp_prec ($bm, $cpp_build), reference $reference (torch $ref_version) $ref_prec${ref_env:+ with $ref_env}$(case "$mode" in training|adamw) [ "$ref_adamw" != default ] && echo ", AdamW $ref_adamw" ;; esac)"
if [ "$mode" = adamw ]; then  # no pictures in an optimizer step
  awk -v a="$mp" -v b="$mc" 'BEGIN{printf "  C++ %.1f ms, PyTorch reference %.1f ms: C++ is %.2fx the reference speed\n", b, a, a/b}'
else
  awk -v a="$mp" -v b="$mc" -v n="$batch" 'BEGIN{printf "  C++ %.1f ms (%.2f img/s), PyTorch reference %.1f ms (%.2f img/s): C++ is %.2fx the reference speed\n", b, n*1000/b, a, n*1000/a, a/b}'
fi
