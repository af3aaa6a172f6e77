#!/usr/bin/env bash
# On a GPU machine: build TARGETS... into build-cuda/ against the CUDA LibTorch of PyTorch's Python
# package, with what .third_party/bundle.tar.xz holds (scripts/gpu-third-party.sh). Every script
# configures the same way, so that a second call on a machine still warm builds only what the first
# did not. Exit status: ninja's.
set -uo pipefail
cd "$(dirname "$0")/.."
tp=$PWD/.third_party
if [ ! -d "$tp/include" ] && [ -f "$tp/bundle.tar.xz" ]; then tar -C "$tp" -xJf "$tp/bundle.tar.xz"; fi
[ -d "$tp/include" ] || { echo "gpu-build.sh: $tp/include is missing: run scripts/gpu-third-party.sh here and carry .third_party/bundle.tar.xz" >&2; exit 1; }
prefix=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
zlib=()  # zlib's headers and library travel in the bundle for machines without them
[ -f /usr/include/zlib.h ] || zlib=(-DZLIB_INCLUDE_DIR="$tp/include" -DZLIB_LIBRARY="$tp/lib/libz.a")
ssl=()   # and OpenSSL's headers, with the machine's own libcrypto
crypto=$(ldconfig -p | awk '/libcrypto\.so\.3 .*x86-64/ {print $NF; exit}')
[ -f /usr/include/openssl/evp.h ] || [ -z "$crypto" ] || ssl=(-DOPENSSL_INCLUDE_DIR="$tp/include" -DOPENSSL_CRYPTO_LIBRARY="$crypto")
cmake -S . -B build-cuda -G Ninja -DCMAKE_BUILD_TYPE=Release -DLUMINARS_UNITY_BUILD=ON -DCMAKE_PREFIX_PATH="$prefix" \
  -DLUMINARS_THIRD_PARTY_INCLUDE="$tp/include" -DLUMINARS_GTEST_SOURCE="$tp/googletest" "${zlib[@]}" "${ssl[@]}" || exit 1
ninja -C build-cuda -k 0 "$@"
