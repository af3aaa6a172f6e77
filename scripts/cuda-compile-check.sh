#!/usr/bin/env bash
# Configures and builds every target (library, program, server, tests, benchmarks) against the
# CUDA LibTorch inside PyPI's torch wheel, into build-cuda/: the CUDA-only code (CUDA graphs,
# fused attention, NCCL) is compiled and linked on every commit, without a GPU; nothing is run.
# The wheel and PyPI's nvcc come from scripts/install-reference.sh (cached in ~/.cache/luminars).
# LibTorch's CMake config needs a CUDA compiler: nvcc from PyPI (nvidia-cuda-nvcc, nvvm, crt,
# cccl) at the version the wheel pins. On a GPU machine, scripts/gpu-check.sh builds the same
# sources against that machine's own PyTorch and CUDA instead.
# Usage: scripts/cuda-compile-check.sh [--ci | ninja targets…]   (default: every target)
#   --ci  what CI compiles on 2 cores (not linked): each file with CUDA-only code, one object per
#         file (no unity build): CUDA graph capture, fused attention, the NCCL process group and
#         bench_throughput's CUDA memory statistics. The rest is the same source as the CPU build
#         (the CUDA tests included: they compile there and skip without a GPU); a GPU machine
#         (scripts/gpu-check.sh) builds and links everything. The tests' objects are left out:
#         ninja orders them after every program the tests run, which would build everything.
# LUMINARS_CUDA_CHECK_SECONDS bounds the build (default 1800); LUMINARS_JOBS its parallelism;
# LUMINARS_REFERENCE_VENV the virtual environment (default .venv-reference; CI keeps it in ~/.cache).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
scripts/install-reference.sh --cuda-toolkit
py=${LUMINARS_REFERENCE_VENV:-$PWD/.venv-reference}/bin/python
site=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
torch_cmake=$("$py" -c 'import torch; print(torch.utils.cmake_prefix_path)')
cuda=$site/nvidia/cu$("$py" -c 'import torch; print(torch.version.cuda.split(".")[0])')
log=$(mktemp)
# The torch prefix ahead of the system's: a Debian LibTorch in /usr/lib must not be found instead.
unity=ON
[ "${1:-}" = --ci ] && unity=OFF
cmake -S . -B build-cuda -G Ninja -DCMAKE_BUILD_TYPE=Release -DLUMINARS_UNITY_BUILD=$unity \
  -DCMAKE_PREFIX_PATH="$torch_cmake;$site/torch" \
  -DCUDA_TOOLKIT_ROOT_DIR="$cuda" -DCMAKE_CUDA_COMPILER="$cuda/bin/nvcc" -DTORCH_CUDA_ARCH_LIST=9.0 \
  >"$log" 2>&1 || { tail -40 "$log"; exit 1; }
mv "$log" build-cuda/configure.log
torch_lib=$(sed -n 's/^TORCH_LIBRARY:FILEPATH=//p' build-cuda/CMakeCache.txt)
case "$torch_lib" in
  "$site"/torch/*) ;;
  *) echo "error: build-cuda found LibTorch at '$torch_lib', not in the wheel ($site/torch)" >&2; exit 1 ;;
esac
grep -q '^LUMINARS_CUDA:INTERNAL=ON' build-cuda/CMakeCache.txt ||
  { echo "error: build-cuda did not enable the CUDA code (LUMINARS_CUDA)" >&2; exit 1; }
grep -E 'data-parallel training|CUDA code' build-cuda/configure.log || true
echo "configured against $(sed -n 's/^Torch_DIR:PATH=//p' build-cuda/CMakeCache.txt) after $((SECONDS - start)) s"
targets=("$@")
if [ "${1:-}" = --ci ]; then
  targets=(CMakeFiles/luminars_internal.dir/src/flow/captured_sampling.cpp.o
           CMakeFiles/luminars_internal.dir/src/model/blocks.cpp.o
           CMakeFiles/luminars_internal.dir/src/train/distributed.cpp.o
           CMakeFiles/bench_throughput.dir/bench/throughput.cpp.o)
fi
timeout "${LUMINARS_CUDA_CHECK_SECONDS:-1800}" ninja -C build-cuda -j "${LUMINARS_JOBS:-$(nproc)}" "${targets[@]}"
echo "CUDA compile check: ${targets[*]:-every target} built against torch $("$py" -c 'import torch; print(torch.__version__)') in $((SECONDS - start)) s"
