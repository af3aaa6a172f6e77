#!/usr/bin/env bash
# On a lent GPU machine, inside its time limit: train the emoji model's denoiser (preset small, bf16
# autocast) at 64 and 128 pixels (one cache of every picture at both sizes, as the CPU recipe's last
# cycles), with the shipped VAE and text encoder, for as many steps as fit in BUDGET seconds, and
# bring back the EMA weights and the logs. By default it continues from the shipped denoiser
# (INIT=models/emoji/denoiser/model.safetensors); INIT= trains from scratch.
#
# What travels (the GPU machine has none of the Debian packages and a 64 MiB limit on the tree;
# name both in the device call's carry; git ignores them):
#   .third_party/bundle.tar.xz   headers, utf8proc, zlib, GoogleTest (scripts/gpu-third-party.sh)
#   .gpu-train                   `scripts/gpu_train_data.py pack DATA/train .gpu-train`: the 128×128
#                                training pictures (scripts/fetch-emoji.sh at 128) as one xz'd raw
#                                array with their captions (37 MB), and `gpu_train_data.py vae-encoder
#                                models/emoji/vae .gpu-train/vae` (3 MB); the tree must stay under
#                                64 MiB, so leave docs/ and models/emoji/vae's weights out of it for
#                                the call (and put them back after)
# Environment: BUDGET (seconds for the whole script, build included; default 540), BATCH (256),
# LR (stage 1's peak: 4e-4 continuing, 1e-3 from scratch), INIT, TEXT_ENCODER (default
# models/emoji/text_encoder), VAE (PACK/vae, else models/emoji/vae), DEVICE (cuda), BIN=path skips the build (a dry run on the CPU:
# BIN=build/luminars DEVICE=cpu BUDGET=300 PACK=small-pack).
# Results in $OUT: summary.txt, build.log, train.log, log.jsonl, loss.png, ema.safetensors.part-aa/-ab
# (`cat ema.safetensors.part-* > model.safetensors` gives the denoiser, float32).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/luminars-gpu-train}
budget=${BUDGET:-540}          # seconds for the whole script, build included
batch=${BATCH:-256}
device=${DEVICE:-cuda}
pack=${PACK:-$PWD/.gpu-train}
mkdir -p "$out"
start=$SECONDS
sum="$out/summary.txt"
say() { echo "$*" | tee -a "$sum"; }
say "machine: $(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || echo no GPU), $(nproc) cores"

bin=${BIN:-}
if [ -z "$bin" ]; then
  scripts/gpu-build.sh luminars_cli >"$out/build.log" 2>&1 ||
    { say "build failed"; grep -m 5 -A 5 error "$out/build.log" | tee -a "$sum"; exit 1; }
  say "build: $((SECONDS - start)) s"
  bin=build-cuda/luminars
fi
init=${INIT-models/emoji/denoiser/model.safetensors}
text_encoder=${TEXT_ENCODER:-models/emoji/text_encoder}
vae=${VAE:-models/emoji/vae}   # prepare reads only the encoder: `gpu_train_data.py vae-encoder` makes a 3 MB copy
[ -d "$pack/vae" ] && [ -z "${VAE:-}" ] && vae=$pack/vae
[ -d "$pack/text_encoder" ] && [ -z "${TEXT_ENCODER:-}" ] && text_encoder=$pack/text_encoder
if [ -n "$init" ]; then lr=${LR:-4e-4}; init_opt=(--init "$init"); else lr=${LR:-1e-3}; init_opt=(); fi

work=${WORK:-/tmp/emoji-gpu}
rm -rf "$work" && mkdir -p "$work"
python3 scripts/gpu_train_data.py unpack "$pack" "$work/data" | tee -a "$sum" || { say "unpack failed"; exit 1; }
$bin prepare --data "$work/data" --vae "$vae" --text-encoder "$text_encoder" \
  --tokenizer models/emoji/tokenizer --resolution 64 --extra-sizes 128 --sample-prompts 8 --device "$device" --batch 256 \
  --out "$work/cache" >"$work/prepare.log" 2>&1 || { say "prepare failed"; tail -5 "$work/prepare.log" | tee -a "$sum"; exit 1; }
say "prepare: $((SECONDS - start)) s; $(tail -1 "$work/prepare.log")"

common=(--cache "$work/cache" --preset small --batch "$batch" --device "$device" --lr-schedule cosine
  --sample-every 0 --val-fraction 0.02 --keep-checkpoints 1 "${init_opt[@]}")
# Calibration: 300 steps, timed whole (start-up included, so the estimate errs short).
t0=$SECONDS
$bin train "${common[@]}" --out "$work/calibrate" --stage 1 --steps 300 --lr "$lr" --warmup 50 \
  --validate-every 0 --checkpoint-every 100000 >"$work/calibrate.log" 2>&1 || { say "calibration failed"; tail -5 "$work/calibrate.log" | tee -a "$sum"; exit 1; }
cal=$((SECONDS - t0)); [ "$cal" -lt 1 ] && cal=1
left=$((budget - (SECONDS - start) - 45))   # 45 s: start-up, the final export and the copy back
[ "$left" -ge 60 ] || { say "calibration: 300 steps in $cal s; only $left s left of BUDGET=$budget: not training"; exit 1; }
steps=$((left * 300 / cal))
s2=$((steps / 40)); s3=$((steps / 40)); s1=$((steps - s2 - s3))
say "calibration: 300 steps in $cal s; training $s1 + $s2 + $s3 steps of batch $batch (lr $lr${init:+, from $init}) in about $left s"
timeout $((budget - (SECONDS - start) - 15)) $bin train "${common[@]}" --out "$work/run" --stage all --steps "$s1" "$s2" "$s3" --lr "$lr" 1e-5 1e-6 \
  --warmup 300 --ema 0.999 --checkpoint-every 1000 --validate-every 1000 >"$out/train.log" 2>&1
rc=$?
say "train: rc $rc after $((SECONDS - start)) s; $(tail -1 "$out/train.log")"
grep '"type":"val"' "$work/run/log.jsonl" | tail -4 | tee -a "$sum"
cp "$work/run/log.jsonl" "$work/run/loss.png" "$out/" 2>/dev/null
f="$work/run/model/denoiser/model.safetensors"
[ -f "$f" ] || f=$(ls -d "$work"/run/checkpoints/step-*/ 2>/dev/null | tail -1)ema.safetensors
[ -f "$f" ] && split -b 15M "$f" "$out/ema.safetensors.part-" && say "weights: $f ($(stat -c %s "$f") bytes)"
say "total: $((SECONDS - start)) s"
