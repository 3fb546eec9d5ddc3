# Sourced by bench/run_*.sh: locating the shared load tool and the peer
# binaries. Expects ROOT and BUILD set, and defines SHARED, die(), find_peers_dir.
SHARED=$(cd "${SHARED_BENCH:-$ROOT/../shared/bench}" 2>/dev/null && pwd) || SHARED=${SHARED_BENCH:-}

die() { echo "$(basename "$0" .sh): $*" >&2; exit 1; }

# Where beast_echo and wsload were built: PEERS_DIR, BUILD/bench, or build/bench/bench.
find_peers_dir() {
  local d
  for d in "${PEERS_DIR:-}" "$BUILD/bench" "$ROOT/build/bench/bench"; do
    [ -n "$d" ] && [ -x "$d/beast_echo" ] && [ -x "$d/wsload" ] && { (cd "$d" && pwd); return 0; }
  done
  return 1
}
