#!/usr/bin/env bash
# On a GPU machine: build against the CUDA LibTorch of PyTorch's Python package, time the denoiser
# beside the PyTorch reference (training at batch 128 with bf16 autocast, 12-step sampling), run
# the whole test suite there (CUDA tests included), then a real `luminars prepare/train/generate`
# on the GPU. Expects .third_party/ as docs/gpu.md describes. Logs and a summary go to $OUT.
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

# 1. Build everything (library, CLI, tests, bench_throughput) against the CUDA LibTorch.
prefix=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
cmake -S . -B build-cuda -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
  -DLUMINARS_THIRD_PARTY_INCLUDE="$PWD/.third_party/include" \
  -DLUMINARS_GTEST_SOURCE="$PWD/.third_party/googletest" >"$out/build.log" 2>&1
timeout 330 ninja -C build-cuda -k 0 >>"$out/build.log" 2>&1
say "build: rc $? after $((SECONDS - start)) s, $(grep -c 'warning:' "$out/build.log") warnings"
if [ ! -x build-cuda/luminars ]; then grep -m 8 -A 6 'error' "$out/build.log"; exit 1; fi
build-cuda/luminars info 2>&1 | head -4 | tee -a "$sum"
say "$(grep -m1 'data-parallel training' "$out/build.log" || echo 'data-parallel training: no configure message')"

# 2. Benchmarks: C++ and the reference alternately, each the median of timed runs after warm-up.
median_of() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END{print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }
cpp() { timeout 120 build-cuda/bench_throughput --device cuda "$@" 2>>"$out/bench.log" | head -1; }
ref() { timeout 120 python3 bench/reference_denoiser.py --spec "$spec" --device cuda --bf16 "$@" 2>>"$out/bench.log" | tail -1; }
compare() {  # label, rounds, then the shared arguments
  local label=$1 rounds=$2; shift 2
  local c=() p=()
  for _ in $(seq "$rounds"); do c+=("$(cpp "$@")"); p+=("$(ref "$@")"); done
  local mc mp; mc=$(median_of "${c[@]}"); mp=$(median_of "${p[@]}")
  awk -v l="$label" -v a="$mp" -v b="$mc" -v cs="${c[*]}" -v ps="${p[*]}" \
    'BEGIN{printf "%-34s C++ %8.2f ms  PyTorch %8.2f ms  ratio %.2fx   (C++ runs: %s; PyTorch: %s)\n", l, b, a, (b>0?a/b:0), cs, ps}' | tee -a "$sum"
}
if [ -x build-cuda/bench_throughput ]; then
  compare "training b128 bf16 (ms/step)" 2 --mode training --batch 128 --runs 10 --warmup 3
  compare "sampling 12 steps b1 (ms/run)" 1 --mode sample-run --batch 1 --runs 10 --warmup 2
  compare "sampling 12 steps b2 cfg (ms/run)" 1 --mode sample-run --batch 2 --runs 10 --warmup 2
  grep -E '^(luminars|reference) ' "$out/bench.log" | tee -a "$sum"
fi

# 3. The whole test suite, CUDA tests included.
left=$((540 - (SECONDS - start)))
[ "$left" -lt 60 ] && left=60
OMP_NUM_THREADS=2 timeout "$left" ctest --test-dir build-cuda -j 8 --timeout 200 --output-on-failure >"$out/ctest.log" 2>&1
say "ctest: rc $? after $((SECONDS - start)) s"
grep -E 'tests passed|tests failed|Failed|\*\*\*|Skipped|Cuda\.|cuda' "$out/ctest.log" | tail -15 | tee -a "$sum"

# 4. A real run on the GPU: 512 pictures -> prepare -> default preset, batch 128 -> generate.
if [ $((SECONDS - start)) -lt 470 ]; then
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
