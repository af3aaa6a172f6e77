#!/usr/bin/env bash
# Installs what scripts/fuzz.sh needs: Debian's clang with its libFuzzer and sanitizer runtimes.
# Idempotent: apt is only touched when something is missing.
set -euo pipefail
missing=()
for p in clang libclang-rt-14-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "fuzzing dependencies: ok ($(clang++ --version | head -1))"
