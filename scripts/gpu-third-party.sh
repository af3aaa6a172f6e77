#!/usr/bin/env bash
# Gathers, on a Debian machine with the packages installed, what a GPU machine lacks (docs/gpu.md):
# .third_party/bundle.tar.xz (the header-only libraries, utf8proc and zlib, GoogleTest's sources;
# under 2 MB, unpacked there by scripts/gpu-build.sh) and, with --fixtures, the reference tensors
# and the reference spec the tests and bench/reference_denoiser.py read (.third_party/fixtures,
# .third_party/spec; 22 MB). Name what a call needs in the device call's carry:
#   training (scripts/gpu-train-emoji.sh): .third_party/bundle.tar.xz and .gpu-train
#   the GPU check (scripts/gpu-check.sh):  .third_party/bundle.tar.xz, .third_party/fixtures, .third_party/spec
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${LUMINARS_SHARED:-$PWD/../shared}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/include/stb" "$tmp/lib"
cp -r /usr/include/nlohmann /usr/include/CLI "$tmp/include/"
for h in stb_image.h stb_image_write.h stb_image_resize.h stb_easy_font.h; do cp "/usr/include/stb/$h" "$tmp/include/stb/"; done
cp /usr/include/utf8proc.h /usr/include/zlib.h /usr/include/zconf.h "$tmp/include/"
cp /usr/lib/x86_64-linux-gnu/libutf8proc.a /usr/lib/x86_64-linux-gnu/libz.a "$tmp/lib/"
# OpenSSL's headers (libcrypto itself is on every such machine: Python's ssl module links it)
cp -r /usr/include/openssl "$tmp/include/" && cp /usr/include/x86_64-linux-gnu/openssl/* "$tmp/include/openssl/"
cp -r /usr/src/googletest "$tmp/googletest"
mkdir -p .third_party
tar -C "$tmp" -cJf .third_party/bundle.tar.xz include lib googletest
echo "wrote .third_party/bundle.tar.xz ($(stat -c %s .third_party/bundle.tar.xz) bytes)"
if [ "${1:-}" = --fixtures ]; then
  rm -rf .third_party/fixtures .third_party/spec
  cp -r "$shared/fixtures" "$shared/spec" .third_party/
  echo "copied $shared/fixtures and $shared/spec into .third_party/"
fi
