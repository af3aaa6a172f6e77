#!/usr/bin/env bash
# On a lent GPU machine, inside its time limit: train the emoji model's denoiser (preset small, bf16
# autocast) on the training pictures with a given text encoder and the shipped VAE, for as many
# steps as fit in BUDGET seconds, and bring back the EMA weights and the logs.
#
# What travels (the GPU machine has none of the Debian packages and a 64 MiB limit on the tree),
# gathered here into .gpu-train/ (git ignores it; name it in the device call's carry):
#   include/ lib/   headers and libutf8proc.a, as docs/gpu.md describes for .third_party/, and zlib's
#   the rest        `scripts/gpu_train_data.py pack DATA/train TEXT_ENCODER .gpu-train`: the 64×64
#                   training pictures as one xz'd raw array with their captions, and TEXT_ENCODER
#                   from an exported model folder (f16), e.g. models/emoji/text_encoder
# BIN=path skips the build (a dry run on the CPU: BIN=build/luminars DEVICE=cpu BUDGET=120).
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
prefix=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
zlib=()  # zlib's headers, where the machine lacks them, travel too (zlib.h, zconf.h, libz.a)
[ -f /usr/include/zlib.h ] || zlib=(-DZLIB_INCLUDE_DIR="$pack/include" -DZLIB_LIBRARY="$pack/lib/libz.a")
cmake -S . -B build-cuda -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
  -DLUMINARS_THIRD_PARTY_INCLUDE="$pack/include" -DLUMINARS_BUILD_TESTS=OFF -DLUMINARS_BUILD_BENCH=OFF \
  -DLUMINARS_DISTRIBUTED=OFF "${zlib[@]}" >"$out/build.log" 2>&1
ninja -C build-cuda luminars_cli >>"$out/build.log" 2>&1 || { say "build failed"; grep -m 5 -A 5 error "$out/build.log" | tee -a "$sum"; exit 1; }
say "build: $((SECONDS - start)) s"
bin=build-cuda/luminars
fi

work=${WORK:-/tmp/emoji-gpu}
rm -rf "$work" && mkdir -p "$work"
python3 scripts/gpu_train_data.py unpack "$pack" "$work/data" | tee -a "$sum" || { say "unpack failed"; exit 1; }
$bin prepare --data "$work/data" --vae models/emoji/vae --text-encoder "$pack/text_encoder" \
  --tokenizer models/emoji/tokenizer --resolution 64 --sample-prompts 8 --device "$device" --batch 256 \
  --out "$work/cache" >"$work/prepare.log" 2>&1 || { say "prepare failed"; tail -5 "$work/prepare.log" | tee -a "$sum"; exit 1; }
say "prepare: $((SECONDS - start)) s; $(tail -1 "$work/prepare.log")"

common=(--cache "$work/cache" --preset small --batch "$batch" --device "$device" --lr-schedule cosine
  --sample-every 0 --val-fraction 0.02 --keep-checkpoints 1)
# Calibration: 300 steps, timed whole (start-up included, so the estimate errs short).
t0=$SECONDS
$bin train "${common[@]}" --out "$work/calibrate" --stage 1 --steps 300 --lr 1e-3 --warmup 50 \
  --validate-every 0 --checkpoint-every 100000 >"$work/calibrate.log" 2>&1 || { say "calibration failed"; tail -5 "$work/calibrate.log" | tee -a "$sum"; exit 1; }
cal=$((SECONDS - t0)); [ "$cal" -lt 1 ] && cal=1
left=$((budget - (SECONDS - start) - 45))   # 45 s: start-up, the final export and the copy back
steps=$((left * 300 / cal))
s2=$((steps / 20)); s3=$((steps / 20)); s1=$((steps - s2 - s3))
say "calibration: 300 steps in $cal s; training $s1 + $s2 + $s3 steps of batch $batch in about $left s"
timeout $((budget - (SECONDS - start) - 15)) $bin train "${common[@]}" --out "$work/run" --stage all --steps "$s1" "$s2" "$s3" --lr 1e-3 1e-5 1e-6 \
  --warmup 500 --ema 0.9995 --checkpoint-every 2000 --validate-every 1000 >"$out/train.log" 2>&1
rc=$?
say "train: rc $rc after $((SECONDS - start)) s; $(tail -1 "$out/train.log")"
grep '"type":"val"' "$work/run/log.jsonl" | tail -4 | tee -a "$sum"
cp "$work/run/log.jsonl" "$work/run/loss.png" "$out/" 2>/dev/null
f="$work/run/model/denoiser/model.safetensors"
[ -f "$f" ] || f=$(ls -d "$work"/run/checkpoints/step-*/ 2>/dev/null | tail -1)ema.safetensors
[ -f "$f" ] && split -b 15M "$f" "$out/ema.safetensors.part-" && say "weights: $f ($(stat -c %s "$f") bytes)"
say "total: $((SECONDS - start)) s"
