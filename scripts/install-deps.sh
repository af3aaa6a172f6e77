#!/usr/bin/env bash
# Installs the Debian 12 packages LuminaRS builds, tests and benchmarks with. Idempotent: packages
# already present are skipped, and apt is only touched when something is missing.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libtorch-dev libopenblas0-pthread      # LibTorch; OpenBLAS, else matrix products run ~30x slower
  nlohmann-json3-dev libcli11-dev libstb-dev libcpp-httplib-dev libutf8proc-dev zlib1g-dev
  libssl-dev                             # SHA-256 (libcrypto): identities of base models and LoRA files
  libboost1.81-dev                       # Boost.Beast and Asio (header-only): the HTTP layer of `luminars serve`
  libgloo-dev                            # gloo's headers, for c10d's Gloo process group (data-parallel training on the CPU)
  libgtest-dev libbenchmark-dev
  python3-torch python3-numpy            # the PyTorch reference, for parity scripts and benchmarks
  python3-pil python3-pytest python3-tqdm  # the Python package's tests (python/tests)
  python3-venv python3-dev               # PyTorch 2.x from PyPI (scripts/install-reference.sh); Python.h for torch.compile's C++
  librsvg2-bin                           # rasterising SVG training data (scripts/fetch-emoji.sh, fetch-openmoji.sh)
  time                                   # peak-memory measurement (bench/generate_memory.sh)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# LibTorch must find OpenBLAS (pthread build) behind libblas.so.3, not the reference BLAS.
blas=$(update-alternatives --query libblas.so.3-x86_64-linux-gnu 2>/dev/null | awk '/^Value:/{print $2}')
case "$blas" in
  *openblas*) ;;
  *)
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO update-alternatives --set libblas.so.3-x86_64-linux-gnu /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3
    $SUDO update-alternatives --set liblapack.so.3-x86_64-linux-gnu /usr/lib/x86_64-linux-gnu/openblas-pthread/liblapack.so.3
    ;;
esac
echo "dependencies: ok"
