#!/usr/bin/env bash
# `luminars generate` at the published sizes (random weights): wall time and peak resident memory
# of the whole process, one image, 12 guided Euler steps, for each weight storage (F16, q8_0,
# q4_0; `luminars export --dtype`) and size (256², 512²), as shipped and with --low-memory.
# Needs a CLIP tokenizer folder (vocab.json, merges.txt): the first argument, default
# ../shared/fixtures/clip_tokenizer. LUMINARS_BENCH_STORAGES and LUMINARS_BENCH_SIZES narrow it.
set -euo pipefail
cd "$(dirname "$0")/.."
tok=${1:-../shared/fixtures/clip_tokenizer}
storages=${LUMINARS_BENCH_STORAGES:-f16 q8_0 q4_0}
sizes=${LUMINARS_BENCH_SIZES:-256 512}
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
build/make_random_pipeline "$dir/random" "$tok" >/dev/null
echo "| storage | folder | image | mode | time | peak resident |"
echo "| --- | --- | --- | --- | --- | --- |"
for storage in $storages; do
  build/luminars export --model "$dir/random" --out "$dir/$storage" --dtype "$storage" >/dev/null
  mib=$(du -sm --apparent-size "$dir/$storage" | cut -f1)
  for size in $sizes; do
    for mode in "" --low-memory; do
      /usr/bin/time -f "%e %M" -o "$dir/time" build/luminars generate --model "$dir/$storage" --any-size $mode \
        --prompt "a lighthouse at dusk, watercolor" --size "$size" --steps 12 --cfg 4 --seed 1 --quiet --out "$dir/out.png" >/dev/null
      read -r wall kib < "$dir/time"
      echo "| $storage | $mib MiB | ${size}² | ${mode:-default} | $wall s | $((kib / 1024)) MiB |"
    done
  done
done
