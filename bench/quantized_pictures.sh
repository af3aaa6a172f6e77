#!/usr/bin/env bash
# Picture quality of the weight storages against float32: the model (default models/emoji) exported
# as f32, f16, q8_0 and q4_0 (`luminars export --dtype`; q4_0 calibrated, as by default, with
# --no-calibration, and tuned for its rounding with --tune-steps $LUMINARS_BENCH_TUNE_STEPS, default
# 1000, about 20 minutes on 2 cores) draws the same prompts and seeds in float32
# sampling (--no-bf16); each picture's PSNR against the f32 export's, then the median and range
# per storage, and each folder's size. Sampling is chaotic for some prompts (a small change of the
# weights sends the trajectory elsewhere), so one picture says little: read the median.
# Usage: bench/quantized_pictures.sh [MODEL] (LUMINARS_BENCH_SEEDS: seeds per prompt, default 2;
# LUMINARS: the luminars program, default build/luminars).
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-models/emoji}
luminars=${LUMINARS:-build/luminars}  # another build to compare
seeds=${LUMINARS_BENCH_SEEDS:-2}
tune_steps=${LUMINARS_BENCH_TUNE_STEPS:-1000}
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
prompts=("a red heart, noto style" "a smiling face with sunglasses" "a green apple" "a cat face"
         "a rocket" "a grinning face" "a blue diamond, twemoji style" "a yellow star")
storages=(f32 f16 q8_0 q4_0 q4_0-uncalibrated q4_0-tuned)
for storage in "${storages[@]}"; do
  # q4_0-uncalibrated: every value's rounding error weighs alike (no calibration run)
  flags=(--dtype "${storage%-*}")
  [ "$storage" = q4_0-uncalibrated ] && flags+=(--no-calibration)
  [ "$storage" = q4_0-tuned ] && flags+=(--tune-steps "$tune_steps")
  "$luminars" export --model "$model" --out "$dir/$storage" "${flags[@]}" >/dev/null
  for i in "${!prompts[@]}"; do
    for ((s = 1; s <= seeds; s++)); do
      "$luminars" generate --model "$dir/$storage" --prompt "${prompts[$i]}" --seed "$s" --no-bf16 --quiet \
        --out "$dir/$storage-$i-$s.png" >/dev/null
    done
  done
done
/usr/bin/python3 - "$dir" <<'PY'
import glob, os, sys
import numpy as np
from PIL import Image
d = sys.argv[1]
def size(folder):
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(folder) for f in fs)
print("| storage | folder | median PSNR vs f32 | range | pictures |")
print("| --- | --- | --- | --- | --- |")
for storage in ["f32", "f16", "q8_0", "q4_0", "q4_0-uncalibrated", "q4_0-tuned"]:
    ps = []
    for ref in sorted(glob.glob(os.path.join(d, "f32-*.png"))):
        a = np.asarray(Image.open(ref), dtype=np.float64)
        b = np.asarray(Image.open(ref.replace("/f32-", f"/{storage}-")), dtype=np.float64)
        mse = ((a - b) ** 2).mean()
        ps.append(float("inf") if mse == 0 else 10 * np.log10(255 ** 2 / mse))
    fin = [p for p in ps if np.isfinite(p)]
    med = np.median(ps)
    rng = f"{min(fin):.1f}–{max(fin):.1f} dB" if fin else "identical"
    print(f"| {storage} | {size(os.path.join(d, storage)) / 1e6:.2f} MB | "
          f"{'—' if storage == 'f32' else ('identical' if not np.isfinite(med) else f'{med:.1f} dB')} | "
          f"{'—' if storage == 'f32' else rng} | {len(ps)} |")
PY
