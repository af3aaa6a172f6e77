#!/usr/bin/env bash
# Rebuilds the shipped model (models/emoji/) from nothing with the project's own tools:
#   data (scripts/fetch-emoji.sh) -> tokenizer -> VAE -> its decoder fine-tuned -> CLIP -> prepare ->
#   denoiser stages 1-3 and cycles -> export (with the fine-tuned decoder)
# Every phase resumes where it was interrupted (finished phases are skipped, trainers continue
# from their latest checkpoint), so rerunning the same command after a kill or a reboot goes on.
#
# Usage: scripts/train-emoji-model.sh [WORK] [OUT]
#   WORK  working folder for data, runs and caches (default ../emoji-work, outside the repository)
#   OUT   the exported model folder (default models/emoji)
# Environment: DEN_INIT=FILE starts the denoiser from those weights (a previous release's
#   denoiser/model.safetensors, as the 2026-12-04 release was made); PROFILE=cpu (default: 64×64 and 128×128 pictures, 8×8×16 latents at 64; about 15 hours on two
#   CPU cores with the cycles below, models/emoji/README.md) or PROFILE=gpu (128×128, sized for minutes on one H100); DEVICE (auto, cpu, cuda).
#   DEN_CYCLES="STEPS:LR[:BATCH[:SHIFT]] ..." further cosine cycles of the denoiser, each started from the
#   previous run's averaged (EMA) weights with a short warm-up (BATCH defaults to the profile's;
#   SHIFT, default 1, shifts the cycle's training times towards noise: train --time-shift; cpu
#   default "9000:5e-4 8000:3e-4 12000:4e-4:64", as the release was trained; "" for none).
#   SIZES_CYCLE="STEPS:LR[:BATCH[:SHIFT]] ...": last cycles on a cache of every picture at 64 and at 128 pixels
#   (prepare --extra-sizes), so that the model is trained at both sizes; cpu default
#   "13000:3e-4:32 15000:2.5e-4:32 10000:2e-4:32" (about 4 h 38 min), as the 2026-12-05f release was trained; "" for none
#   (a model trained at 64 only, docs/emoji/ablations.md).
#   DEN_BF16=auto|on|off: the denoiser's CPU training under bf16 autocast (auto: the faster of the
#   two on this CPU, timed once on the cache; the choice is kept in WORK/denoiser-precision).
# Phase times go to WORK/times.tsv (one line per phase and run of this script).
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(realpath -m "${1:-../emoji-work}")
out=${2:-models/emoji}
profile=${PROFILE:-cpu}
device=${DEVICE:-auto}
bin=build/luminars
[ -x "$bin" ] || { echo "train-emoji-model.sh: $bin is missing: run scripts/build.sh first" >&2; exit 1; }
mkdir -p "$work"

case "$profile" in
  cpu)
    size=64
    vae_steps=3000;  vae_batch=16;  vae_widths="32 64 128 128"; vae_groups=8; vae_decoder_steps=2000
    clip_steps=5000; clip_batch=128   # 600 x 64 encoded colour but hardly the emoji (models/emoji/README.md)
    den_steps="12000 500 500"; den_batch=32; den_lr="1e-3 1e-5 1e-6"; den_warmup=300
    den_cycles="9000:5e-4 8000:3e-4 12000:4e-4:64"  # the release's further cosine cycles (models/emoji/README.md)
    extra_size=128; sizes_cycle="13000:3e-4:32 15000:2.5e-4:32 10000:2e-4:32"  # the release's cycles at 64 and 128 pixels
    ;;
  gpu)
    size=128
    vae_steps=3000;  vae_batch=64;  vae_widths="64 128 256 256"; vae_groups=32; vae_decoder_steps=1000
    clip_steps=1500; clip_batch=256
    den_steps="8000 500 500"; den_batch=128; den_lr="1e-3 1e-5 1e-6"; den_warmup=300
    den_cycles=""
    extra_size=""; sizes_cycle=""
    ;;
  *) echo "train-emoji-model.sh: PROFILE must be cpu or gpu, got '$profile'" >&2; exit 1 ;;
esac

# phase NAME DONE_MARKER COMMAND...: runs COMMAND unless DONE_MARKER exists; logs to WORK/NAME.log.
phase() {
  local name=$1 marker=$2; shift 2
  if [ -e "$marker" ]; then echo "[$name] done before"; return; fi
  echo "[$name] $(date '+%H:%M:%S') started (log: $work/$name.log)"
  local start=$SECONDS
  "$@" >>"$work/$name.log" 2>&1 || { echo "[$name] failed; the end of $work/$name.log:" >&2; tail -5 "$work/$name.log" >&2; exit 1; }
  printf '%s\t%s\t%d\n' "$name" "$profile" $((SECONDS - start)) >>"$work/times.tsv"
  echo "[$name] finished in $(( (SECONDS - start) / 60 )) min $(( (SECONDS - start) % 60 )) s"
}

data=$work/data
phase data "$data/.done-$size" bash -c "SIZE=$size scripts/fetch-emoji.sh '$data' && touch '$data/.done-$size'"
phase tokenizer "$work/tokenizer/vocab.json" \
  "$bin" train-tokenizer --data "$data/train" --vocab-size 4096 --context-length 32 --out "$work/tokenizer"
# shellcheck disable=SC2086
phase vae "$work/vae-run/vae/config.json" \
  "$bin" train-vae --data "$data/train" --out "$work/vae-run" --resume --device "$device" --resolution $size \
  --widths $vae_widths --norm-groups $vae_groups --steps $vae_steps --batch $vae_batch --lr 1e-3 --warmup 100 --ema 0.995 \
  --checkpoint-every 200 --validate-every 200 --sample-every 400 --val-fraction 0.03
# The VAE's decoder fine-tuned on (encoder frozen: the latents, and so every cache and denoiser made
# with vae-run/vae, stay valid); the exported model ships this decoder.
phase vae-decoder "$work/vae-decoder-run/vae/config.json" \
  "$bin" train-vae --data "$data/train" --init "$work/vae-run/vae" --decoder-only --out "$work/vae-decoder-run" --resume \
  --device "$device" --resolution $size --steps $vae_decoder_steps --batch $vae_batch --lr 1e-4 --warmup 100 --ema 0.999 \
  --checkpoint-every 250 --validate-every 250 --sample-every 500 --val-fraction 0.03
phase clip "$work/clip-run/text_encoder/config.json" \
  "$bin" train-clip --data "$data/train" --tokenizer "$work/tokenizer" --out "$work/clip-run" --resume --device "$device" \
  --resolution $size --steps $clip_steps --batch $clip_batch --lr 5e-4 --warmup 200 --ema 0.999 \
  --checkpoint-every 200 --validate-every 200 --val-fraction 0.03
phase prepare "$work/cache/cache.json" \
  "$bin" prepare --data "$data/train" --vae "$work/vae-run/vae" --text-encoder "$work/clip-run/text_encoder" \
  --tokenizer "$work/clip-run/tokenizer" --resolution $size --sample-prompts 8 --device "$device" --out "$work/cache"
# bf16 autocast for the denoiser where it trains faster on this CPU: 1.6x on an AMD EPYC with AVX-512
# BF16, 5-10x slower on a Xeon with AMX under LibTorch 1.13 (README). DEN_BF16=auto (default) times
# both on the cache once and keeps the choice in WORK/denoiser-precision, so resumed runs keep it.
den_precision_file=$work/denoiser-precision
case "${DEN_BF16:-auto}" in
  on) echo bf16 >"$den_precision_file" ;;
  off) echo f32 >"$den_precision_file" ;;
  auto)
    if [ ! -s "$den_precision_file" ]; then
      if [ "$profile" = cpu ] && [ "$device" != cuda ] && grep -qwE 'avx512_bf16|amx_bf16' /proc/cpuinfo 2>/dev/null; then
        probe() {  # probe DIR [FLAGS...] -> median img/s of 25 steps, the first 5 left out
          local dir=$1; shift
          rm -rf "$dir"
          "$bin" train --cache "$work/cache" --out "$dir" --device "$device" --preset small --batch $den_batch \
            --steps 25 --warmup 1 --validate-every 0 --checkpoint-every 0 --sample-every 0 "$@" >/dev/null 2>&1 || { echo 0; return; }
          /usr/bin/python3 scripts/median_img_s.py "$dir"
          rm -rf "$dir"
        }
        f32=$(probe "$work/.probe-f32")
        bf16=$(probe "$work/.probe-bf16" --cpu-bf16)
        echo "[denoiser precision] float32 $f32 img/s, bf16 autocast $bf16 img/s"
        awk -v a="$f32" -v b="$bf16" 'BEGIN { exit !(b > a) }' && echo bf16 >"$den_precision_file" || echo f32 >"$den_precision_file"
      else
        echo f32 >"$den_precision_file"
      fi
    fi
    ;;
  *) echo "train-emoji-model.sh: DEN_BF16 must be auto, on or off, got '$DEN_BF16'" >&2; exit 1 ;;
esac
den_bf16=()
[ "$(cat "$den_precision_file")" = bf16 ] && den_bf16=(--cpu-bf16)
echo "[denoiser precision] $(cat "$den_precision_file")"
# shellcheck disable=SC2086
phase denoiser "$work/denoiser-run/model/luminars.json" \
  "$bin" train --cache "$work/cache" --out "$work/denoiser-run" --resume --device "$device" --preset small ${DEN_INIT:+--init "$DEN_INIT"} "${den_bf16[@]}" \
  --stage all --steps $den_steps --lr $den_lr --batch $den_batch --warmup $den_warmup --lr-schedule cosine --ema 0.999 \
  --checkpoint-every 1000 --validate-every 500 --sample-every 2000 --val-fraction 0.02
# cycle_phase NAME CACHE STEPS:LR[:BATCH[:SHIFT]] TAIL: a further cosine cycle, started from the previous
# run's EMA weights (den_model), with TAIL steps in stages 2 and 3; den_model becomes its model.
cycle_phase() {
  local run=$work/$1 c_steps c_lr c_batch c_shift
  IFS=: read -r c_steps c_lr c_batch c_shift <<<"$3"
  phase "$1" "$run/model/luminars.json" \
    "$bin" train --cache "$2" --out "$run" --resume --device "$device" --preset small "${den_bf16[@]}" \
    --init "$den_model/denoiser/model.safetensors" --stage all --steps "$c_steps" "$4" "$4" --lr "$c_lr" 1e-5 1e-6 \
    --batch "${c_batch:-$den_batch}" --warmup 200 --lr-schedule cosine --ema 0.999 --checkpoint-every 250 --validate-every 1000 \
    --sample-every 0 --val-fraction 0.02 --time-shift "${c_shift:-1}"
  den_model=$run/model
}
den_model=$work/denoiser-run/model
cycle=2
for c in ${DEN_CYCLES-$den_cycles}; do
  cycle_phase denoiser-cycle$cycle "$work/cache" "$c" 200
  cycle=$((cycle + 1))
done
# The last cycles at two sizes: the pictures rasterised at the larger size, cached at both.
sizes_cycles=${SIZES_CYCLE-$sizes_cycle}
if [ -n "$extra_size" ] && [ -n "$sizes_cycles" ]; then
  data_large=$work/data-$extra_size
  phase data-$extra_size "$data_large/.done-$extra_size" bash -c "SIZE=$extra_size scripts/fetch-emoji.sh '$data_large' && touch '$data_large/.done-$extra_size'"
  phase prepare-sizes "$work/cache-sizes/cache.json" \
    "$bin" prepare --data "$data_large/train" --vae "$work/vae-run/vae" --text-encoder "$work/clip-run/text_encoder" \
    --tokenizer "$work/clip-run/tokenizer" --resolution $size --extra-sizes $extra_size --sample-prompts 8 --device "$device" \
    --out "$work/cache-sizes"
  n=1
  for c in $sizes_cycles; do
    cycle_phase "denoiser-sizes$([ $n -gt 1 ] && echo $n)" "$work/cache-sizes" "$c" 150
    n=$((n + 1))
  done
fi
phase export "$work/.exported-$profile" bash -c "'$bin' export --model '$den_model' --vae '$work/vae-decoder-run/vae' --out '$out' --dtype f16 \
  --steps 12 --cfg 4 ${extra_size:+--hires-from $size --hires-strength 0.5} && /usr/bin/python3 scripts/write_model_card.py '$work' '$out' '$profile' && touch '$work/.exported-$profile'"

echo "phase times (s):"; awk -F'\t' '{t[$1]+=$3} END {for (p in t) printf "  %-10s %6d\n", p, t[p]}' "$work/times.tsv"
