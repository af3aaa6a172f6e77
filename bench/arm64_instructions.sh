#!/usr/bin/env bash
# The cost of sampling on ARM64 as instructions executed, a figure no machine's speed changes: the
# shipped model (default models/emoji) exported as f16, q8_0 and q4_0 (and q4_0 under --low-memory)
# draws one prompt with 2 and with 3 guided Euler steps under qemu-aarch64 with the
# instruction-count plugin (`scripts/arm64.sh count`, one thread); the difference is one sampling
# step (the guided batch of 2, both refinement passes), the 12-step run the whole generation
# (text encoder, 12 steps, VAE decoder, and the program's start: libraries, weights).
# Usage: bench/arm64_instructions.sh [MODEL]   (needs build-arm64/luminars: scripts/arm64.sh build-cli)
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-models/emoji}
[ -x build/luminars ] || { echo "arm64_instructions.sh: build/luminars is missing (scripts/build.sh)" >&2; exit 1; }
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
storages=(f16 q8_0 q4_0 q4_0-low-memory)
count() {  # count FOLDER STEPS [FLAGS...] -> instructions
  local folder=$1 steps=$2; shift 2
  scripts/arm64.sh count generate --model "$folder" --prompt "a red heart, noto style" --seed 1 --steps "$steps" \
    --no-bf16 --threads 1 --quiet --out "$dir/picture.png" "$@" | sed -n 's/^instructions: //p'
}
echo "| storage | one guided step (batch 2, T = 2) | 12-step generation, whole program | 2 steps | 3 steps |"
echo "| --- | --- | --- | --- | --- |"
for storage in "${storages[@]}"; do
  dtype=${storage%-low-memory}
  flags=()
  [ "$storage" != "$dtype" ] && flags+=(--low-memory)
  [ -d "$dir/$dtype" ] || build/luminars export --model "$model" --out "$dir/$dtype" --dtype "$dtype" >/dev/null
  two=$(count "$dir/$dtype" 2 "${flags[@]}")
  three=$(count "$dir/$dtype" 3 "${flags[@]}")
  twelve=$(count "$dir/$dtype" 12 "${flags[@]}")
  awk -v s="$storage" -v a="$two" -v b="$three" -v c="$twelve" 'BEGIN {
    printf "| %s | %.1f M | %.2f G | %.3f G | %.3f G |\n", s, (b - a) / 1e6, c / 1e9, a / 1e9, b / 1e9 }'
done
