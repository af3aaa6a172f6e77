#!/usr/bin/env bash
# Time to the first image as a new user meets it: the README's first command on a fresh Debian 12
# (a debootstrap'ed minimal root, nothing installed but the base system) in a fresh clone of this
# repository's HEAD: install the packages, build, generate one picture. Then, as the peer, the same
# build without the unity build (one translation unit per file), in the same root.
#
#   sudo bench/first_command.sh [ROOT.tar]
#
# ROOT.tar is a tarball of a minimal bookworm root; without it one is made with debootstrap
# (needs the debootstrap package and a Debian mirror) and kept as build-bench/bookworm-root.tar.
# Needs root (chroot). Timings go to stdout and build-bench/first_command.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "first_command.sh: needs root (debootstrap, chroot)" >&2; exit 1; }
repo=$PWD
mkdir -p build-bench
tarball=${1:-build-bench/bookworm-root.tar}
if [ ! -f "$tarball" ]; then
  command -v debootstrap >/dev/null || { echo "first_command.sh: install debootstrap, or give a root tarball" >&2; exit 1; }
  tmp=$(mktemp -d)
  debootstrap --variant=minbase bookworm "$tmp" http://deb.debian.org/debian >/dev/null
  tar -C "$tmp" -cf "$tarball" .
  rm -rf "$tmp"
fi

root=$(mktemp -d /var/tmp/luminars-fresh.XXXXXX)
cleanup() {
  for m in dev/pts dev proc sys; do umount "$root/$m" 2>/dev/null || true; done
  # Never delete through a mount that is still there (it would be the machine's own /dev).
  if grep -q " $root/" /proc/mounts; then
    echo "first_command.sh: $root still has mounts; left in place" >&2
  else
    rm -rf --one-file-system "$root"
  fi
}
trap cleanup EXIT
tar -C "$root" -xf "$tarball"
cp /etc/resolv.conf "$root/etc/resolv.conf"
for m in proc sys dev dev/pts; do mount --bind "/$m" "$root/$m"; done
git clone -q --no-hardlinks "$repo" "$root/root/luminars"

out=build-bench/first_command.txt
chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin bash -c '
  set -euo pipefail
  cd /root/luminars
  now() { date +%s.%N; }
  t0=$(now)
  scripts/install-deps.sh >/tmp/install.log 2>&1
  t1=$(now)
  scripts/build.sh >/tmp/build.log 2>&1
  t2=$(now)
  build/luminars generate --prompt "red heart, noto style" --out heart.png --quiet
  t3=$(now)
  rm -rf build
  t4=$(now)
  scripts/build.sh -DLUMINARS_UNITY_BUILD=OFF >/tmp/build-per-file.log 2>&1
  t5=$(now)
  awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" -v e="$t4" -v f="$t5" -v cores="$(nproc)" "BEGIN {
    printf \"cores: %d\n\", cores
    printf \"install (scripts/install-deps.sh): %.0f s\n\", b - a
    printf \"build (scripts/build.sh, unity):   %.0f s\n\", c - b
    printf \"generate (first picture):          %.1f s\n\", d - c
    printf \"first command in all:              %.0f s (%.1f min)\n\", d - a, (d - a) / 60
    printf \"peer: build one file per unit:     %.0f s (unity build %.2fx faster)\n\", f - e, (f - e) / (c - b)
  }"
' | tee "$out"
