#!/usr/bin/env bash
# Which weights a q4_0 folder keeps in 8 bits, and what each choice buys: the model (default
# models/emoji) exported as q4_0 with the default exceptions and with other sets chosen by
# `export --tensor-dtype PATTERN=SCHEME`, each drawn in float32 sampling (--no-bf16) against the
# f32 export's pictures. Two picture sets: the 8 prompts × 2 seeds of bench/quantized_pictures.sh,
# and 32 other prompts (emoji subjects in the training captions' form, seed 7) to tell a gain that
# holds from one that only fits the first set. Sampling is chaotic for some prompts: read medians.
# Usage: bench/quantized_allocations.sh [MODEL]   (LUMINARS: the luminars program, default build/luminars)
# About 1 minute a row on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-models/emoji}
luminars=${LUMINARS:-build/luminars}
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
prompts=("a red heart, noto style" "a smiling face with sunglasses" "a green apple" "a cat face"
         "a rocket" "a grinning face" "a blue diamond, twemoji style" "a yellow star")
subjects=("yellow banana" "watermelon" "lemon" "carrot" "hot dog" "doughnut" "teapot" "dog" "lion face" "penguin"
          "turtle" "whale" "ladybug" "rose" "cactus" "maple leaf" "crescent moon" "snowflake" "water droplet"
          "mountain" "globe" "airplane" "train" "ambulance" "castle" "key" "gift" "trophy" "laughing face"
          "thinking face" "ghost" "purple heart")
styles=("openmoji" "noto" "fluent flat" "twemoji" "fluent 3d" "emojione" "fxemoji" "streamline")
# label|export flags (the row's 8-bit set)
rows=("f32|--dtype f32"
      "q4_0, the default exceptions|--dtype q4_0"
      "+ adaptive-norm projections in q8_0|--dtype q4_0 --tensor-dtype \\.ada\\.=q8_0"
      "+ MLP inputs in q8_0|--dtype q4_0 --tensor-dtype mlp_in=q8_0"
      "+ MLP outputs in q8_0|--dtype q4_0 --tensor-dtype mlp_out=q8_0"
      "+ attention queries and outputs in q8_0|--dtype q4_0 --tensor-dtype \\.attn\\.(q|out)\\.=q8_0"
      "− context embedding in q4_0|--dtype q4_0 --tensor-dtype ^context_embed\\.=q4_0"
      "− upsampling convolution in q4_0|--dtype q4_0 --tensor-dtype ^unet\\.upsample\\.=q4_0"
      "− downsampling convolution in q4_0|--dtype q4_0 --tensor-dtype ^unet\\.downsample\\.=q4_0"
      "− depthwise convolutions in q4_0|--dtype q4_0 --tensor-dtype dwconv=q4_0"
      "− context embedding, + up path's MLP inputs|--dtype q4_0 --tensor-dtype ^context_embed\\.=q4_0 --tensor-dtype ^unet\\.up\\..*mlp_in=q8_0"
      "− context embedding, + down path's MLP inputs|--dtype q4_0 --tensor-dtype ^context_embed\\.=q4_0 --tensor-dtype ^unet\\.down\\..*mlp_in=q8_0"
      "− context embedding, + middle blocks' MLPs and norms|--dtype q4_0 --tensor-dtype ^context_embed\\.=q4_0 --tensor-dtype ^unet\\.mid\\.blocks.*(mlp_in|mlp_out|ada)=q8_0"
      "+ every MLP and adaptive norm in q8_0|--dtype q4_0 --tensor-dtype (mlp_in|mlp_out|\\.ada\\.)=q8_0")
for i in "${!rows[@]}"; do
  read -r -a flags <<<"${rows[$i]#*|}"
  "$luminars" export --model "$model" --out "$dir/$i" "${flags[@]}" >/dev/null
  for p in "${!prompts[@]}"; do
    for s in 1 2; do
      "$luminars" generate --model "$dir/$i" --prompt "${prompts[$p]}" --seed "$s" --no-bf16 --quiet --out "$dir/$i-a-$p-$s.png" >/dev/null
    done
  done
  for p in "${!subjects[@]}"; do
    "$luminars" generate --model "$dir/$i" --prompt "${subjects[$p]}, ${styles[$((p % 8))]} style" --seed 7 --no-bf16 --quiet \
      --out "$dir/$i-b-$p.png" >/dev/null
  done
done
printf '%s\n' "${rows[@]}" >"$dir/rows"
/usr/bin/python3 - "$dir" <<'PY'
import glob, os, sys
import numpy as np
from PIL import Image
d = sys.argv[1]
rows = open(os.path.join(d, "rows")).read().splitlines()
def size(folder):
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(folder) for f in fs)
def psnr(i, part):
    out = []
    for ref in sorted(glob.glob(os.path.join(d, f"0-{part}-*.png"))):
        a = np.asarray(Image.open(ref), dtype=np.float64)
        b = np.asarray(Image.open(ref.replace("/0-", f"/{i}-")), dtype=np.float64)
        mse = ((a - b) ** 2).mean()
        out.append(99.0 if mse == 0 else 10 * np.log10(255 ** 2 / mse))
    return np.array(out)
print("| 8-bit set | flags | folder | 8 prompts × 2 seeds: median | range | 32 other prompts: median | mean |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for i, row in enumerate(rows[1:], start=1):
    label, flags = row.split("|", 1)
    a, b = psnr(i, "a"), psnr(i, "b")
    flags = flags.replace("|", "\\|")
    print(f"| {label} | `{flags}` | {size(os.path.join(d, str(i))) / 1e6:.2f} MB | {np.median(a):.1f} dB | "
          f"{a.min():.1f}–{a.max():.1f} dB | {np.median(b):.1f} dB | {b.mean():.1f} dB |")
PY
