#!/usr/bin/env bash
# Builds and runs every test of one CMake preset (default: release).
#   scripts/test.sh [preset]      presets: release debug asan-ubsan tsan fuzz
# Exits non-zero when any test fails or when no test ran.
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-release}"
jobs="${EBB_JOBS:-$(nproc)}"

cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j "$jobs"
ctest --preset "$preset" -j "$jobs" --no-tests=error "${@:2}"
