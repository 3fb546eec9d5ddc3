#!/usr/bin/env bash
# Installs every Debian and npm dependency ebb needs, on a fresh Debian 12
# machine. Idempotent: packages already present are skipped by apt/npm, and
# a second run changes nothing. Needs root (or sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

DEB_PACKAGES=(
  # build
  build-essential cmake ninja-build pkg-config clang-14 libclang-rt-14-dev lld-14
  # libraries
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libssl-dev zlib1g-dev libsqlite3-dev libspdlog-dev libfmt-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-websockets openssl prometheus
  libwebsocketpp-dev valgrind strace wrk golang-go golang-github-gorilla-websocket-dev
  # deploy config checks (tests/deploy/check_configs.sh)
  nginx haproxy systemd python3-yaml
  # browser end-to-end tests (driven by playwright-core from tests/package.json)
  chromium
)

missing=()
# Node: any node >= 18 with npm will do; Debian's packages only when there is none
# (a nodesource node already bundles npm and conflicts with Debian's npm).
if ! command -v npm >/dev/null 2>&1; then DEB_PACKAGES+=(nodejs npm); fi
for p in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: Debian packages present"
fi

# Node packages for the integration tests (versions pinned in tests/package.json).
if [ ! -d tests/node_modules/ws ] || [ ! -d tests/node_modules/playwright-core ] || [ tests/package.json -nt tests/node_modules/.ebb-stamp ]; then
  (cd tests && npm install --no-audit --no-fund --loglevel=error && touch node_modules/.ebb-stamp)
else
  echo "setup: npm packages present"
fi
