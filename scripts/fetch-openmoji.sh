#!/usr/bin/env bash
# Fetches OpenMoji's colour emoji (npm package `openmoji`, CC BY-SA 4.0) and writes them as a
# Hugging Face imagefolder dataset: OUT_DIR/<hexcode>.png (256×256, transparent background) and
# OUT_DIR/metadata.jsonl with `file_name` and `text` ("an emoji of <annotation>, <group>/<subgroups>")
# plus the columns `annotation`, `tags`, `group`, `subgroups`, `hexcode` for other captions.
#
#   scripts/fetch-openmoji.sh OUT_DIR [N]
#
# N: how many emoji, the first N in OpenMoji's own order (data/openmoji.json: Unicode's emoji
# order, smileys first, OpenMoji's extras last); default all (4,495 in openmoji 17).
# Environment: OPENMOJI_VERSION (default: the latest), JOBS (parallel rasterisers, default nproc).
# Needs npm, node and tar; installs rsvg-convert (Debian librsvg2-bin) with apt-get when missing.
# Re-running is cheap: PNGs already in OUT_DIR are kept; metadata.jsonl is rewritten.
# The images are data, not source: never commit them.
set -euo pipefail

usage() {
  echo "usage: $0 OUT_DIR [N]" >&2
  exit 2
}
[[ $# -ge 1 && $# -le 2 ]] || usage
out_dir=$1
count=${2:-0}
[[ $count =~ ^[0-9]+$ ]] || { echo "error: N must be a non-negative integer, got '$count'" >&2; exit 2; }
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}
package=openmoji${OPENMOJI_VERSION:+@$OPENMOJI_VERSION}

for tool in npm node tar; do
  command -v "$tool" >/dev/null || { echo "error: $tool is required" >&2; exit 1; }
done

if ! command -v rsvg-convert >/dev/null; then
  echo "rsvg-convert not found: installing librsvg2-bin" >&2
  if [[ $(id -u) -eq 0 ]]; then
    as_root=()
  elif command -v sudo >/dev/null; then
    as_root=(sudo)
  else
    echo "error: rsvg-convert is missing; install librsvg2-bin (apt-get install librsvg2-bin)" >&2
    exit 1
  fi
  "${as_root[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends librsvg2-bin >/dev/null
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "fetching $package from npm" >&2
tarball=$(cd "$tmp" && npm pack "$package" --silent | tail -n 1)
tar -xzf "$tmp/$tarball" -C "$tmp"
pkg=$tmp/package
[[ -f $pkg/data/openmoji.json && -d $pkg/color/svg ]] || {
  echo "error: $tarball has no data/openmoji.json or color/svg/" >&2
  exit 1
}
version=$(node -p "require('$pkg/package.json').version")

mkdir -p "$out_dir"

# The selection, in OpenMoji's order: one hexcode a line.
node - "$pkg" "$count" >"$tmp/selection.txt" <<'EOF'
const fs = require('fs');
const [pkg, count] = process.argv.slice(2);
let rows = JSON.parse(fs.readFileSync(`${pkg}/data/openmoji.json`, 'utf8'))
  .filter(r => fs.existsSync(`${pkg}/color/svg/${r.hexcode}.svg`));
if (Number(count) > 0) rows = rows.slice(0, Number(count));
for (const r of rows) console.log(r.hexcode);
EOF
total=$(wc -l <"$tmp/selection.txt")
echo "rasterising $total SVGs at 256x256 into $out_dir ($jobs jobs)" >&2

export pkg out_dir
# shellcheck disable=SC2016
xargs -P "$jobs" -n 1 sh -c '
  png="$out_dir/$1.png"
  [ -s "$png" ] && exit 0
  rsvg-convert -w 256 -h 256 -f png -o "$png.tmp" "$pkg/color/svg/$1.svg" && mv "$png.tmp" "$png" ||
    { rm -f "$png.tmp"; echo "warning: cannot rasterise $1.svg" >&2; }
' sh <"$tmp/selection.txt"

# metadata.jsonl for the PNGs that exist, written beside and renamed into place.
node - "$pkg" "$out_dir" "$tmp/selection.txt" >"$out_dir/metadata.jsonl.tmp" <<'EOF'
const fs = require('fs');
const [pkg, outDir, selection] = process.argv.slice(2);
const wanted = new Set(fs.readFileSync(selection, 'utf8').split('\n').filter(Boolean));
for (const r of JSON.parse(fs.readFileSync(`${pkg}/data/openmoji.json`, 'utf8'))) {
  const file = `${r.hexcode}.png`;
  if (!wanted.has(r.hexcode) || !fs.existsSync(`${outDir}/${file}`)) continue;
  const where = [r.group, r.subgroups].filter(Boolean).join('/');
  const tags = [...new Set([r.tags, r.openmoji_tags].join(',').split(',').map(t => t.trim()).filter(Boolean))].join(', ');
  console.log(JSON.stringify({
    file_name: file,
    text: `an emoji of ${r.annotation}` + (where ? `, ${where}` : ''),
    annotation: r.annotation, tags, group: r.group, subgroups: r.subgroups, hexcode: r.hexcode,
  }));
}
EOF
mv "$out_dir/metadata.jsonl.tmp" "$out_dir/metadata.jsonl"

cat >"$out_dir/ATTRIBUTION.txt" <<EOF
Emoji from OpenMoji $version (https://openmoji.org), the open-source emoji and icon project.
License: CC BY-SA 4.0 (https://creativecommons.org/licenses/by-sa/4.0/).
Rasterised to 256x256 PNG with rsvg-convert by scripts/fetch-openmoji.sh.
EOF

rows=$(wc -l <"$out_dir/metadata.jsonl")
echo "done: $rows images with captions in $out_dir (openmoji $version)" >&2
[[ $rows -eq $total ]] || { echo "error: $((total - rows)) of $total SVGs failed to rasterise" >&2; exit 1; }
