#!/usr/bin/env bash
# Throughput of every trainer on a captioned image folder at the sizes the shipped model uses
# (64×64 pictures): images per second (median of the logged steps after the first few) and peak
# resident memory of the whole process. Usage: bench/trainer_throughput.sh DATA [STEPS]
# DATA: a captioned image folder, e.g. the train/ half of scripts/fetch-emoji.sh's output.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:?usage: bench/trainer_throughput.sh DATA [STEPS]}
steps=${2:-30}
[ -d "$data" ] || { echo "bench/trainer_throughput.sh: no folder $data" >&2; exit 1; }
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
bin=build/luminars

run() {  # NAME RUN_DIR ARGS...
  local name=$1 run=$2; shift 2
  /usr/bin/time -f "%M" -o "$dir/rss" "$bin" "$@" --out "$run" --steps "$steps" --warmup 1 --validate-every 0 \
    --checkpoint-every 0 >/dev/null 2>"$dir/err" || { cat "$dir/err" >&2; exit 1; }
  printf '%-44s %8s img/s %8.0f MiB peak\n' "$name" "$(/usr/bin/python3 scripts/median_img_s.py "$run")" "$(( $(cat "$dir/rss") / 1024 ))"
}

start=$(date +%s.%N)
"$bin" train-tokenizer --data "$data" --vocab-size 4096 --context-length 32 --out "$dir/tok" >/dev/null
printf '%-44s %8.2f s for the whole folder\n' "train-tokenizer (vocab 4096)" "$(echo "$(date +%s.%N) - $start" | bc)"
run "train-vae 64 px, widths 32/64/128/128, batch 16" "$dir/vae" train-vae --data "$data" --resolution 64 --batch 16 --sample-every 0
run "train-clip 64 px, 256 wide x 4 layers, batch 64" "$dir/clip" train-clip --data "$data" --tokenizer "$dir/tok" --resolution 64 --batch 64
"$bin" prepare --data "$data" --vae "$dir/vae/vae" --text-encoder "$dir/clip/text_encoder" --tokenizer "$dir/clip/tokenizer" \
  --resolution 64 --out "$dir/cache" >/dev/null 2>&1
run "train (denoiser) small preset, 8x8x16, batch 32" "$dir/den" train --cache "$dir/cache" --preset small --batch 32 --sample-every 0
# The same under bf16 autocast, where the CPU has native bf16 (elsewhere the flag changes nothing).
if grep -qwE 'avx512_bf16|amx_bf16' /proc/cpuinfo 2>/dev/null; then
  run "train (denoiser) as above, --cpu-bf16" "$dir/den-bf16" train --cache "$dir/cache" --preset small --batch 32 \
    --sample-every 0 --cpu-bf16
fi
