#!/usr/bin/env bash
# The README's picture of the shipped model: 8 prompts (rows) × 4 seeds (columns), 12 Euler steps,
# guidance 4, written to docs/emoji/readme-grid.png (or OUT). Usage: scripts/emoji-readme-grid.sh [MODEL] [OUT]
# Environment: SIZE draws the pictures at SIZExSIZE (one of the model's trained sizes) into
# docs/emoji/readme-grid-SIZE.png by default.
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-models/emoji}
size=${SIZE:-}
[[ -z $size || $size =~ ^[1-9][0-9]*$ ]] || { echo "emoji-readme-grid.sh: SIZE must be a number of pixels, got '$size'" >&2; exit 1; }
out=${2:-docs/emoji/readme-grid${size:+-$size}.png}
prompts=(
  "red heart, noto style" "blue heart, twemoji style" "purple heart, openmoji style" "green apple, fluent flat style"
  "cat face, noto style" "tiger face, noto style" "rocket, twemoji style" "grinning face, fluent 3d style"
)
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
files=()
for i in "${!prompts[@]}"; do
  for seed in 1 2 3 4; do
    f="$dir/$i-$seed.png"
    build/luminars generate --model "$model" --prompt "${prompts[$i]}" --seed "$seed" ${size:+--size "$size"} --quiet --out "$f" >/dev/null
    files+=("$f")
  done
done
mkdir -p "$(dirname "$out")"
/usr/bin/python3 scripts/png_grid.py "$out" 4 "${files[@]}"
printf 'rows, top to bottom (seeds 1-4 across):\n'; printf '  %s\n' "${prompts[@]}"
echo "wrote $out"
