#!/usr/bin/env bash
# LuminaRS for ARM64 (aarch64), cross-compiled here and run under emulation (qemu-user).
#   scripts/arm64.sh build        the library, `luminars` and the inference tests into build-arm64/
#   scripts/arm64.sh build-cli    the library and `luminars` alone (what CI builds, with `compare`)
#   scripts/arm64.sh run ARGS…    build-arm64/luminars ARGS… under qemu-aarch64
#   scripts/arm64.sh test [REGEX] the inference and parity tests under qemu (ctest -R REGEX)
#   scripts/arm64.sh compare      the shipped model's picture drawn by build/luminars (this machine)
#                                 and by build-arm64/luminars (ARM64 under qemu), float32, same seeds:
#                                 their mean absolute difference must be at most 1 level of 255
#                                 (LUMINARS_ARM64_SEEDS: the seeds, default "1 2")
#   scripts/arm64.sh count ARGS…  like run, and prints the ARM64 instructions the program executed
#                                 (all threads): "instructions: N". Debian's qemu-user-static has
#                                 no TCG plugins, so the first count builds qemu-aarch64 7.2 with
#                                 them from Debian 12's own source (deb.debian.org, checked by its
#                                 SHA-256; about 2 min on 2 cores) into $LUMINARS_QEMU_PLUGINS
#                                 (default ~/.cache/luminars-qemu-plugins) and counts with its
#                                 instruction-count plugin (tests/plugin/insn.c, inline counters).
# The first build installs g++-aarch64-linux-gnu, qemu-user-static and mmdebstrap (idempotent) and
# prepares an arm64 root: Debian 12's libtorch-dev:arm64 and the other libraries, extracted (not
# installed) by mmdebstrap into $LUMINARS_ARM64_ROOT (default ~/.cache/luminars-arm64-root, about
# 1 GB, kept between runs). It is the cross-compiler's sysroot and qemu's -L.
# LUMINARS_ARM64_TESTS (a regex on tests/*.cpp names) chooses the test files built.
set -euo pipefail
cd "$(dirname "$0")/.."
root=${LUMINARS_ARM64_ROOT:-$HOME/.cache/luminars-arm64-root}
build=build-arm64
# In-process inference and parity tests: the quantized weights, the shipped model's picture, the
# denoiser's, CLIP's and the VAE's parity with the PyTorch reference (tests that start the
# `luminars` program are left out: it would need binfmt_misc to run under emulation).
tests=${LUMINARS_ARM64_TESTS:-test_quantize|test_shipped_model|test_model_parity|test_vae_parity|test_clip_text_model}
root_packages=libtorch-dev,libopenblas0-pthread,libc6-dev,libstdc++-12-dev,zlib1g-dev,libssl-dev,libutf8proc-dev,nlohmann-json3-dev,libcli11-dev,libstb-dev,libgtest-dev
# A root prepared for another package list is prepared again.
root_stamp=$root/.luminars-root-$(echo "$root_packages" | md5sum | cut -c1-12)

# install_packages PACKAGE...: installs the Debian packages missing (idempotent).
install_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
}

install_tools() {
  install_packages g++-aarch64-linux-gnu qemu-user-static mmdebstrap binfmt-support cmake ninja-build pkg-config \
    python3-pil python3-numpy
}

prepare_root() {
  [ -f "$root_stamp" ] && return 0
  echo "preparing the arm64 root in $root (Debian 12 packages, about 1 GB)"
  rm -rf "$root.tmp"
  mkdir -p "$(dirname "$root")"
  # extract: the packages and their dependencies unpacked, no maintainer scripts run.
  mmdebstrap --quiet --variant=extract --architectures=arm64 --include="$root_packages" bookworm "$root.tmp"
  # What update-alternatives and ld.so.conf.d would have given: OpenBLAS behind libblas.so.3 and
  # liblapack.so.3, and its own library, where the loader looks without a cache.
  local lib=$root.tmp/usr/lib/aarch64-linux-gnu
  for f in libblas.so.3 liblapack.so.3 libopenblas.so.0; do ln -sf "openblas-pthread/$f" "$lib/$f"; done
  echo "$root_packages" > "$root.tmp/$(basename "$root_stamp")"
  rm -rf "$root"
  mv "$root.tmp" "$root"
}

qemu() { QEMU_LD_PREFIX=$root qemu-aarch64-static "$@"; }

plugins=${LUMINARS_QEMU_PLUGINS:-$HOME/.cache/luminars-qemu-plugins}
qemu_source=qemu_7.2+dfsg.orig.tar.xz
qemu_source_sha256=91aca71520040edc40b8d437aa3004dae614f58e286cf653ee8996c07af2962f
# qemu-aarch64 with plugins and its instruction-count plugin, built once into $plugins.
plugin_qemu() {
  [ -x "$plugins/qemu-aarch64" ] && [ -f "$plugins/libinsn.so" ] && return 0
  install_packages meson ninja-build pkg-config libglib2.0-dev flex bison curl xz-utils
  local src=$plugins.src
  mkdir -p "$src"
  if ! { [ -f "$src/$qemu_source" ] && echo "$qemu_source_sha256  $src/$qemu_source" | sha256sum -c --quiet >/dev/null 2>&1; }; then
    echo "downloading Debian 12's qemu 7.2 source"
    curl -fsSL -o "$src/$qemu_source.part" "http://deb.debian.org/debian/pool/main/q/qemu/$qemu_source"
    echo "$qemu_source_sha256  $src/$qemu_source.part" | sha256sum -c --quiet ||
      { echo "arm64.sh: $qemu_source: SHA-256 mismatch" >&2; exit 1; }
    mv "$src/$qemu_source.part" "$src/$qemu_source"
  fi
  echo "building qemu-aarch64 with TCG plugins in $src (once)"
  rm -rf "$src/qemu-7.2.0"
  tar -xf "$src/$qemu_source" -C "$src"
  mkdir -p "$src/qemu-7.2.0/build"
  (cd "$src/qemu-7.2.0/build" &&
    ../configure --target-list=aarch64-linux-user --enable-plugins --disable-system --disable-tools \
      --disable-docs --disable-werror --disable-debug-info --disable-install-blobs \
      --without-default-features >"$src/configure.log" 2>&1 ||
      { echo "arm64.sh: configuring qemu failed; see $src/configure.log" >&2; exit 1; }
    ninja qemu-aarch64 tests/plugin/libinsn.so >"$src/build.log" 2>&1 ||
      { echo "arm64.sh: building qemu failed; see $src/build.log" >&2; exit 1; })
  mkdir -p "$plugins"
  cp "$src/qemu-7.2.0/build/tests/plugin/libinsn.so" "$plugins/"
  cp "$src/qemu-7.2.0/build/qemu-aarch64" "$plugins/qemu-aarch64"
  rm -rf "$src/qemu-7.2.0"
}

case "${1:-}" in
  build|build-cli)
    install_tools
    prepare_root
    cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_TOOLCHAIN_FILE="$PWD/cmake/aarch64-linux-gnu.cmake" -DLUMINARS_ARM64_ROOT="$root" \
      -DLUMINARS_UNITY_BUILD=ON -DLUMINARS_DISTRIBUTED=OFF -DLUMINARS_BUILD_BENCH=OFF \
      -DLUMINARS_TEST_FILTER="$tests" >/dev/null
    targets=(luminars_cli)
    [ "$1" = build ] && targets+=(luminars_tests)
    ninja -C "$build" -j "${LUMINARS_JOBS:-$(nproc)}" "${targets[@]}"
    ;;
  run)
    shift
    [ -x "$build/luminars" ] || { echo "no $build/luminars: run scripts/arm64.sh build first" >&2; exit 1; }
    qemu "$build/luminars" "$@"
    ;;
  count)
    shift
    [ -x "$build/luminars" ] || { echo "no $build/luminars: run scripts/arm64.sh build-cli first" >&2; exit 1; }
    plugin_qemu
    log=$(mktemp); trap 'rm -f "$log"' EXIT
    QEMU_LD_PREFIX=$root "$plugins/qemu-aarch64" -plugin "$plugins/libinsn.so,inline=on" -d plugin -D "$log" \
      "$build/luminars" "$@"
    n=$(sed -n 's/^insns: \([0-9]*\)$/\1/p' "$log" | tail -1)
    [ -n "$n" ] || { echo "arm64.sh: the instruction-count plugin reported nothing" >&2; exit 1; }
    echo "instructions: $n"
    ;;
  test)
    [ -x "$build/luminars_tests" ] || { echo "no $build/luminars_tests: run scripts/arm64.sh build first" >&2; exit 1; }
    # ctest runs the test binary through qemu (CMAKE_CROSSCOMPILING_EMULATOR).
    ctest --test-dir "$build" --output-on-failure -j 1 ${2:+-R "$2"}
    ;;
  compare)
    for b in build/luminars "$build/luminars"; do [ -x "$b" ] || { echo "no $b: build it first" >&2; exit 1; }; done
    dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
    for seed in ${LUMINARS_ARM64_SEEDS:-1 2}; do
      args=(generate --model models/emoji --prompt "a red heart, noto style" --seed "$seed" --no-bf16 --quiet)
      build/luminars "${args[@]}" --out "$dir/x86-$seed.png" >/dev/null
      qemu "$build/luminars" "${args[@]}" --out "$dir/arm64-$seed.png" >/dev/null
    done
    # shellcheck disable=SC2086
    /usr/bin/python3 - "$dir" ${LUMINARS_ARM64_SEEDS:-1 2} <<'PY'
import sys
import numpy as np
from PIL import Image
d = sys.argv[1]
worst = 0.0
for seed in sys.argv[2:]:
    a = np.asarray(Image.open(f"{d}/x86-{seed}.png").convert("RGB"), dtype=np.float64)
    b = np.asarray(Image.open(f"{d}/arm64-{seed}.png").convert("RGB"), dtype=np.float64)
    mad = np.abs(a - b).mean()
    worst = max(worst, mad)
    print(f"seed {seed}: mean absolute difference x86-64 vs ARM64 {mad:.4f} of 255 (max {np.abs(a - b).max():.0f})")
sys.exit(0 if worst <= 1.0 else 1)
PY
    ;;
  *)
    echo "usage: scripts/arm64.sh build | build-cli | run ARGS... | count ARGS... | test [REGEX] | compare" >&2
    exit 2
    ;;
esac
