#!/usr/bin/env bash
# On a GPU machine, the whole GPU check in at most 10 minutes: build against the CUDA LibTorch of
# PyTorch's Python package, the CUDA tests, 12-step sampling (eager, and replayed from a CUDA
# graph with bf16 weights: the target is <= 20 ms for one prompt with guidance) beside the PyTorch
# reference eager and under torch.compile, training at batch 128 with bf16 autocast beside the
# reference under torch.compile, then (if time is left) a real `luminars prepare/train/generate`.
# Expects .third_party/ as docs/gpu.md describes. Logs and summary.txt go to $OUT; keep
# summary.txt in docs/gpu-runs/. CI compiles the same sources against PyPI's CUDA wheel
# (scripts/cuda-compile-check.sh), so this script only has to run them.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/luminars-gpu}
mkdir -p "$out"
sum="$out/summary.txt"
say() { echo "$*" | tee -a "$sum"; }
export LUMINARS_FIXTURES=${LUMINARS_FIXTURES:-$PWD/.third_party/fixtures}
spec=${LUMINARS_SPEC:-$PWD/.third_party/spec}
start=$SECONDS
say "machine: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader), $(nproc) cores," \
    "torch $(python3 -c 'import torch;print(torch.__version__)'), $(g++ --version | head -1)"

# 1. Build the program, the tests and bench_throughput against the CUDA LibTorch.
prefix=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
cmake -S . -B build-cuda -G Ninja -DCMAKE_BUILD_TYPE=Release -DLUMINARS_UNITY_BUILD=ON -DCMAKE_PREFIX_PATH="$prefix" \
  -DLUMINARS_THIRD_PARTY_INCLUDE="$PWD/.third_party/include" \
  -DLUMINARS_GTEST_SOURCE="$PWD/.third_party/googletest" >"$out/build.log" 2>&1
timeout 240 ninja -C build-cuda -k 0 luminars_cli luminars_tests bench_throughput >>"$out/build.log" 2>&1
say "build: rc $? after $((SECONDS - start)) s, $(grep -c 'warning:' "$out/build.log") warnings"
if [ ! -x build-cuda/bench_throughput ]; then grep -m 8 -A 6 'error' "$out/build.log" | tee -a "$sum"; exit 1; fi
say "$(grep -m1 'data-parallel training' "$out/build.log" || echo 'data-parallel training: no configure message')"
say "$(grep -m1 'CUDA code' "$out/build.log" || echo 'CUDA code: no configure message')"

# 2. The CUDA tests (parity, bf16, CUDA graph capture, end to end on the GPU).
OMP_NUM_THREADS=2 timeout 150 build-cuda/luminars_tests --gtest_filter='Cuda.*:*EndToEnd*cuda' >"$out/cuda-tests.log" 2>&1
say "CUDA tests: rc $? after $((SECONDS - start)) s"
grep -E '^\[ *(OK|FAILED|SKIPPED|PASSED) *\]' "$out/cuda-tests.log" | tail -12 | tee -a "$sum"

# 3. Timings: C++ and the reference alternately, each the median of timed runs after warm-up.
median_of() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END{print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }
cpp() { timeout 120 build-cuda/bench_throughput --device cuda "$@" 2>>"$out/bench.log" | head -1; }
ref() { timeout 240 python3 bench/reference_denoiser.py --spec "$spec" --device cuda --bf16 "$@" 2>>"$out/bench.log" | tail -1; }
row() {  # label, C++ ms, reference ms, reference kind
  awk -v l="$1" -v b="$2" -v a="$3" -v k="$4" \
    'BEGIN{printf "%-40s C++ %8.2f ms  PyTorch %-8s %8.2f ms  C++ speed %.2fx\n", l, b, k, a, (b>0?a/b:0)}' | tee -a "$sum"
}
s2=$(cpp --mode sample-run --batch 2 --runs 20 --warmup 3)
g2=$(cpp --mode sample-run --batch 2 --runs 50 --warmup 3 --graph)
g1=$(cpp --mode sample-run --batch 1 --runs 50 --warmup 3 --graph)
r2=$(ref --mode sample-run --batch 2 --runs 10 --warmup 2)
c2=$(ref --mode sample-run --batch 2 --runs 10 --warmup 3 --compile)
row "sampling 12 steps, guided (b2), eager" "$s2" "$r2" eager
row "sampling 12 steps, guided (b2), graph" "$g2" "$r2" eager
row "sampling 12 steps, guided (b2), graph" "$g2" "$c2" compile
say "$(awk -v g="$g1" 'BEGIN{printf "sampling 12 steps, unguided (b1), graph: %.2f ms", g}')"
say "$(awk -v g="$g2" 'BEGIN{printf "target: 12-step guided sampling <= 20 ms: %s (%.2f ms)", (g>0 && g<=20)?"met":"NOT met", g}')"
t=(); for _ in 1 2; do t+=("$(cpp --mode training --batch 128 --runs 10 --warmup 3)"); done
tc=$(median_of "${t[@]}")
re=$(ref --mode training --batch 128 --runs 10 --warmup 3)
rc=$(ref --mode training --batch 128 --runs 10 --warmup 3 --compile)
row "training b128 bf16 AdamW (ms/step)" "$tc" "$re" eager
row "training b128 bf16 AdamW (ms/step)" "$tc" "$rc" compile
say "$(awk -v c="$tc" -v r="$rc" 'BEGIN{printf "target: training >= torch.compile: %s (%.0f vs %.0f img/s)", (c>0 && r>0 && c<=r)?"met":"NOT met", 128000/c, (r>0?128000/r:0)}')"
grep -E '^(luminars|reference) ' "$out/bench.log" | tee -a "$sum"

# 4. A real run on the GPU (only with time to spare): 512 pictures -> prepare -> default preset, batch 128 -> generate.
if [ $((SECONDS - start)) -lt 420 ]; then
  work=/tmp/luminars-gpu-run
  rm -rf "$work" && mkdir -p "$work/data"
  python3 - "$work/data" <<'EOF'
import sys, numpy as np
from PIL import Image
rng = np.random.default_rng(0)
yy, xx = np.mgrid[0:64, 0:64]
for i in range(512):
    c = rng.integers(0, 255, 3); cx, cy, r = rng.integers(16, 48, 3) // 2 + 8
    img = np.full((64, 64, 3), 240, np.uint8); img[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = c
    Image.fromarray(img).save(f'{sys.argv[1]}/p{i:03d}.png')
    open(f'{sys.argv[1]}/p{i:03d}.txt', 'w').write(f'a disc of colour {c[0]} {c[1]} {c[2]}\n')
EOF
  fx=$LUMINARS_FIXTURES
  {
    time timeout 60 build-cuda/luminars prepare --data "$work/data" --vae "$fx/vae_tiny_16ch" --text-encoder "$fx/clip_text_tiny" \
      --tokenizer "$fx/clip_tokenizer" --resolution 64 --device cuda --out "$work/cache"
    time timeout 150 build-cuda/luminars train --cache "$work/cache" --out "$work/run" --preset default --stage all \
      --steps 10 5 5 --batch 128 --warmup 2 --validate-every 10 --sample-every 0 --device cuda
    time timeout 60 build-cuda/luminars generate --model "$work/run/model" --prompt 'a disc of colour 200 30 30' --batch 4 \
      --device cuda --out "$out/generated.png"
  } >"$out/train.log" 2>&1
  say "real run: rc $? after $((SECONDS - start)) s"
  grep -E '^(prepared|trained|wrote|real)|error' "$out/train.log" | tee -a "$sum"
  if [ -f "$work/run/log.jsonl" ]; then
    cp "$work/run/log.jsonl" "$out/log.jsonl"
    python3 - "$out/log.jsonl" <<'EOF' | tee -a "$sum"
import json, statistics, sys
by = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get('type') == 'train': by.setdefault(r['stage'], []).append(r['img_per_s'])
for stage, v in by.items():
    print(f'trainer stage {stage}: median {statistics.median(v[2:] or v):.0f} img/s over {len(v)} steps (the first two left out)')
EOF
  fi
fi
say "done after $((SECONDS - start)) s"
