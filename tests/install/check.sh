#!/usr/bin/env bash
# Installs the build tree $1 into a scratch prefix, builds tests/install as an
# outside project with find_package(ebb CONFIG), and runs the result.
set -euo pipefail
build=$1 src=$(cd "$(dirname "$0")" && pwd) work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
cmake -S "$src" -B "$work/build" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" \
      -DCMAKE_BUILD_TYPE="${2:-RelWithDebInfo}" >/dev/null
cmake --build "$work/build" >/dev/null
"$work/build/consumer"
echo "install check: find_package(ebb CONFIG) works"
