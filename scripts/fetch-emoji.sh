#!/usr/bin/env bash
# Fetches colour emoji in several art styles from npm and writes ONE captioned Hugging Face
# imagefolder dataset of them, split by concept:
#
#   scripts/fetch-emoji.sh OUT [N]
#
#   OUT/train/<style>/<slug>.png     + OUT/train/metadata.jsonl
#   OUT/heldout/<style>/<slug>.png   + OUT/heldout/metadata.jsonl
#   OUT/SOURCES.md                   packages, versions, licences, counts, attribution
#
# metadata.jsonl rows: {"file_name": "noto/red-heart.png", "text": ["red heart, noto style", ...],
# "emoji": "red heart", "style": "noto", "source": "@iconify-json/noto@1.2.9",
# "license": "Apache-2.0"} and, in heldout/, "heldout": "concept" or "pair".
#
# Styles (npm packages): openmoji (openmoji), noto, fluent-flat, twemoji, fluent-3d (fluent-emoji),
# emojione, fxemoji, streamline (streamline-emojis), the last seven from @iconify-json/*. Every
# icon is mapped to a canonical emoji concept: OpenMoji's CLDR annotation ("red heart") where its
# code points or name match one, else its own name as words. Skin-tone variants, aliases and
# OpenMoji's non-Unicode extras are left out. Held out, by a hash of the name (the same on every
# run and machine): ~5% of concepts with all their styles ("concept"), and ~1% of the other
# (concept, style) pairs ("pair"), to evaluate unseen concepts and unseen emoji x style pairs.
# Each image has several captions, all naming the style except one bare "red heart".
#
# N: only the first N concepts by name (all their styles), for quick tests; default all.
# Environment: SIZE (square PNG side, default 128), JOBS (parallel rsvg-convert, default nproc),
# EMOJI_STYLES (comma list of the styles above, default all).
# Needs npm, rsvg-convert (Debian librsvg2-bin, see scripts/install-deps.sh), tar and Python 3
# (standard library; the logic is in scripts/fetch_emoji.py).
# Re-running is cheap: packages are kept in OUT/.npm-cache, PNGs already there are kept, the
# metadata and SOURCES.md are rewritten; delete OUT/.npm-cache to take newer package versions. The images are data, not source: never commit them.
set -euo pipefail

die() {
  echo "error: $*" >&2
  exit 1
}
[[ $# -ge 1 && $# -le 2 ]] || { echo "usage: $0 OUT [N]" >&2; exit 2; }
out=$1
count=${2:-0}
size=${SIZE:-128}
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}
[[ $count =~ ^[0-9]+$ ]] || die "N must be a non-negative integer, got '$count'"
[[ $size =~ ^[1-9][0-9]*$ ]] || die "SIZE must be a positive integer, got '$size'"
[[ $jobs =~ ^[1-9][0-9]*$ ]] || die "JOBS must be a positive integer, got '$jobs'"
FETCH_EMOJI_T0=$(date +%s)
export FETCH_EMOJI_T0

command -v npm >/dev/null || die "npm is required (Debian: apt-get install npm)"
command -v tar >/dev/null || die "tar is required"
command -v rsvg-convert >/dev/null ||
  die "rsvg-convert is required (Debian: apt-get install librsvg2-bin, or scripts/install-deps.sh)"
python=/usr/bin/python3
[[ -x $python ]] || python=$(command -v python3 || true)
[[ -n $python ]] || die "python3 is required (Debian: apt-get install python3)"

mkdir -p "$out" 2>/dev/null || die "cannot create $out"
probe="$out/.write-test.$$"
{ : >"$probe"; } 2>/dev/null || die "$out is not writable"
rm -f "$probe"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache="$out/.npm-cache"
mkdir -p "$cache"

# style and npm package, in the order of scripts/fetch_emoji.py's STYLES.
styles=(
  openmoji:openmoji
  noto:@iconify-json/noto
  fluent-flat:@iconify-json/fluent-emoji-flat
  twemoji:@iconify-json/twemoji
  fluent-3d:@iconify-json/fluent-emoji
  emojione:@iconify-json/emojione
  fxemoji:@iconify-json/fxemoji
  streamline:@iconify-json/streamline-emojis
)
wanted=",${EMOJI_STYLES:-openmoji,noto,fluent-flat,twemoji,fluent-3d,emojione,fxemoji,streamline},"

# Downloads (once) and unpacks one package into $cache/<style>/package; returns 1 on failure.
fetch_package() {
  local style=$1 package=$2 base tarball
  base=$(echo "${package#@}" | tr / -) # @iconify-json/noto -> iconify-json-noto-<version>.tgz
  tarball=""
  for f in "$cache/$base"-[0-9]*.tgz; do # the newest cached one; not fluent-emoji-flat for fluent-emoji
    [[ -f $f && ${f##*/} =~ ^${base}-[0-9][^-]*(-[^-]+)?\.tgz$ ]] || continue
    [[ -z $tarball ]] || [[ $(printf '%s\n%s\n' "$tarball" "${f##*/}" | sort -V | tail -n 1) == "${f##*/}" ]] &&
      tarball=${f##*/}
  done
  if [[ -z $tarball ]]; then
    echo "fetching $package from npm" >&2
    tarball=$(cd "$cache" && npm pack "$package" --silent | tail -n 1) || return 1
    [[ -f $cache/$tarball ]] || return 1
  fi
  if [[ $(cat "$cache/$style/.from" 2>/dev/null) != "$tarball" ]]; then
    rm -rf "${cache:?}/$style"
    mkdir -p "$cache/$style"
    tar -xzf "$cache/$tarball" -C "$cache/$style" || return 1
    echo "$tarball" >"$cache/$style/.from"
  fi
  if [[ $style == openmoji ]]; then
    [[ -f $cache/$style/package/data/openmoji.json && -d $cache/$style/package/color/svg ]] || return 1
  else
    [[ -f $cache/$style/package/icons.json ]] || return 1
  fi
}

for entry in "${styles[@]}"; do
  style=${entry%%:*}
  package=${entry#*:}
  # openmoji's names and tags caption the other styles: always fetched.
  [[ $style == openmoji || $wanted == *",$style,"* ]] || continue
  if ! fetch_package "$style" "$package"; then
    [[ $style == openmoji ]] && die "cannot fetch or unpack $package (npm pack $package)"
    echo "warning: skipping $style: cannot fetch or unpack $package" >&2
    rm -rf "${cache:?}/$style"
  fi
done

limit=""
[[ $count -gt 0 ]] && limit=", the first $count concepts"
echo "building the emoji dataset in $out (${size}x${size}, $jobs jobs$limit)" >&2
exec "$python" "$here/fetch_emoji.py" "$cache" "$out" "$size" "$count" "$jobs"
