#!/usr/bin/env bash
# PyTorch 2.x from PyPI in .venv-reference/ (ignored by git): the peer that
# bench/compare_with_reference.sh times (REFERENCE=torch2|torch2-compile), and the CUDA LibTorch
# that scripts/cuda-compile-check.sh compiles against. Idempotent; the wheels are kept in
# ~/.cache/luminars/wheels (LUMINARS_WHEEL_CACHE), so a second install downloads nothing.
#
# PyPI's Linux torch wheel is the CUDA build, and there is no CPU-only wheel on PyPI: its
# libtorch.so links libtorch_cuda.so, which links cuBLAS, cuDNN, cuFFT, cuSPARSE(Lt), cuRAND,
# cuFile, NCCL and NVSHMEM, so `import torch` fails without those nvidia-* wheels even on a
# machine without a GPU (measured with torch 2.11.0: 2.4 GB of wheels, 4.0 GB installed).
# Left out: triton and cuda-bindings (GPU kernels of torch.compile; on the CPU inductor writes
# C++ and compiles it with the system's g++, which needs /usr/include/python3.X, python3-dev).
#
# Usage: scripts/install-reference.sh [--cuda-toolkit]
#   --cuda-toolkit  also nvcc, its front end (nvvm), headers (crt, cccl) and the runtime's headers
#                   from PyPI, at the versions the torch wheel pins, laid out as a CUDA toolkit
#                   root (lib64, unversioned .so links) for LibTorch's CMake config.
# LUMINARS_TORCH_VERSION (default 2.11.0, the version of the GPU machine), LUMINARS_REFERENCE_VENV.
set -euo pipefail
cd "$(dirname "$0")/.."
version=${LUMINARS_TORCH_VERSION:-2.11.0}
venv=${LUMINARS_REFERENCE_VENV:-$PWD/.venv-reference}
wheels=${LUMINARS_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/luminars/wheels}
python=${LUMINARS_PYTHON:-/usr/bin/python3}
toolkit=0
for arg in "$@"; do
  case "$arg" in
    --cuda-toolkit) toolkit=1 ;;
    *) echo "usage: $0 [--cuda-toolkit]" >&2; exit 2 ;;
  esac
done
skip_re='^(triton|cuda-bindings|cuda-pathfinder)$'

have_torch() { "$venv/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$version')" 2>/dev/null; }
have_nvcc() { [ -x "$(cuda_root)/bin/nvcc" ] && [ -e "$(cuda_root)/nvvm/bin/cicc" ] && [ -e "$(cuda_root)/lib64/libcudart.so" ]; }
cuda_root() { echo "$venv/lib/python3.$("$python" -c 'import sys;print(sys.version_info.minor)')/site-packages/nvidia/cu${cuda_major:-13}"; }

# Downloads what `requirements` resolve to into the cache (nothing when it is all there), then
# installs exactly that set into the virtual environment, less what skip_re names.
install_set() {
  mkdir -p "$wheels"
  if ! "$venv/bin/pip" download -q --disable-pip-version-check --no-index --find-links "$wheels" -d "$wheels" "$@" >/dev/null 2>&1; then
    echo "downloading $* (and dependencies) into $wheels"
    "$venv/bin/pip" download -q --disable-pip-version-check --find-links "$wheels" -d "$wheels" "$@"
  fi
  local report
  report=$(mktemp)
  "$venv/bin/pip" install -q --disable-pip-version-check --dry-run --ignore-installed --no-index --find-links "$wheels" \
    --report "$report" "$@" >/dev/null
  mapfile -t pins < <("$venv/bin/python" - "$report" "$skip_re" <<'EOF'
import json, re, sys
for item in json.load(open(sys.argv[1]))['install']:
    meta = item['metadata']
    if not re.match(sys.argv[2], meta['name'].lower()):
        print(f"{meta['name']}=={meta['version']}")
EOF
)
  rm -f "$report"
  "$venv/bin/pip" install -q --disable-pip-version-check --no-deps --no-index --find-links "$wheels" "${pins[@]}"
}

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
if ! have_torch; then
  echo "installing PyTorch $version (CUDA wheel and its nvidia-* libraries, no triton) into $venv"
  install_set "torch==$version" numpy
  have_torch || { echo "error: PyTorch $version did not import from $venv" >&2; exit 1; }
fi
cuda_major=$("$venv/bin/python" -c 'import torch; print((torch.version.cuda or "0").split(".")[0])')
if [ "$toolkit" = 1 ] && ! have_nvcc; then
  pin=$("$venv/bin/python" - <<'EOF'
import importlib.metadata as m, re
for r in m.requires('torch') or []:
    hit = re.match(r'cuda-toolkit\[[^]]*\]\s*==\s*([0-9.]+)', r)
    if hit: print(hit.group(1)); break
EOF
)
  [ -n "$pin" ] || { echo "error: torch $version pins no cuda-toolkit version" >&2; exit 1; }
  echo "installing the CUDA $pin compiler (nvcc, nvvm, crt, cccl) into $venv"
  install_set "cuda-toolkit[nvcc,nvvm,crt,cccl,cudart]==$pin"
  # The layout LibTorch's CMake config (FindCUDA, enable_language(CUDA)) expects of a toolkit:
  # lib64/ beside bin/, and unversioned library names for linking.
  root=$(cuda_root)
  [ -e "$root/lib64" ] || ln -s lib "$root/lib64"
  for lib in "$root"/lib/lib*.so.*; do
    base=$(basename "$lib")
    [ -e "$root/lib/${base%%.so.*}.so" ] || ln -s "$base" "$root/lib/${base%%.so.*}.so"
  done
  have_nvcc || { echo "error: nvcc or cicc missing in $root after the install" >&2; exit 1; }
fi
echo "PyTorch $("$venv/bin/python" -c 'import torch; print(torch.__version__)') in $venv" \
     "$([ "$toolkit" = 1 ] && echo "; CUDA toolkit root $(cuda_root)")"
