#!/usr/bin/env bash
# On a GPU machine: build against the CUDA LibTorch of PyTorch's Python package and run
# `luminars info` and the quick start. Expects .third_party/include (see docs/gpu.md).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/luminars-gpu}; mkdir -p "$out"
prefix=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
cmake -S . -B build-cuda -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
  -DLUMINARS_THIRD_PARTY_INCLUDE="$PWD/.third_party/include" -DLUMINARS_BUILD_TESTS=OFF \
  -DLUMINARS_BUILD_BENCH=OFF 2>&1 | tail -3
ninja -C build-cuda luminars_cli quickstart 2>&1 | tail -3
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$out/gpu.txt"
build-cuda/quickstart default | tee -a "$out/gpu.txt"
build-cuda/luminars info | tee -a "$out/gpu.txt"
