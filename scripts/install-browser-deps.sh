#!/usr/bin/env bash
# Installs what the browser test of `luminars serve` needs (tests/browser/serve_page.mjs): Debian's
# chromium and npm's playwright-core (pinned in tests/browser/package-lock.json; Node.js 20 or
# later). Idempotent: nothing is fetched when both are present.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
missing=()
dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q "install ok installed" || missing+=(chromium)
command -v npm >/dev/null || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
lock=tests/browser/package-lock.json stamp=tests/browser/node_modules/.luminars-lock
if ! cmp -s "$lock" "$stamp" 2>/dev/null; then
  npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
  cp "$lock" "$stamp"
fi
echo "browser test dependencies: ok (node $(node --version), $(/usr/bin/chromium --version 2>/dev/null | head -1))"
