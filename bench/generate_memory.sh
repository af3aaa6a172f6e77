#!/usr/bin/env bash
# `luminars generate` at the published sizes (random weights): wall time and peak resident memory
# of the whole process, one 256×256 image, 12 guided Euler steps. Needs a CLIP tokenizer folder
# (vocab.json, merges.txt): the first argument, default ../shared/fixtures/clip_tokenizer.
set -euo pipefail
cd "$(dirname "$0")/.."
tok=${1:-../shared/fixtures/clip_tokenizer}
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
build/make_random_pipeline "$dir/model" "$tok" >/dev/null
for size in 256 512; do
  /usr/bin/time -f "size $size: %e s wall, %M KiB peak resident" build/luminars generate --model "$dir/model" \
    --prompt "a lighthouse at dusk, watercolor" --size "$size" --steps 12 --cfg 4 --quiet --out "$dir/out.png" 2>&1 | grep -E "size|error"
done
