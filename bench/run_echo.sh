#!/usr/bin/env bash
# run_echo.sh [BUILD_DIR] - echo throughput, latency, server CPU per message and idle
# memory of ebb's echo_server and its peers (Boost.Beast, websocketpp, Node ws), all
# measured in the same run with the shared load tool (../shared/bench/wsload).
#
#   BUILD_DIR   build tree holding examples/echo_server (default build/release);
#               ebb is skipped with a note if the binary is missing.
#
# Environment:
#   REP=3                  repetitions of every (test, server) pair
#   TESTS="e100k16 e100k1 e1000s1k idle10k"   runbench.sh test names
#   SERVERS="ebb beast websocketpp node-ws"
#   PORT=9300              port every server listens on (one server at a time)
#   PEERS_DIR              where beast_echo, websocketpp_echo and wsload are
#                          (default: BUILD_DIR/bench, else build/bench/bench)
#   SHARED_BENCH           the shared harness (default ../shared/bench beside the repo)
#   DUR, WARM              passed through to runbench.sh (10 s and 2 s)
#
# Writes every result line to bench/results/<date>.txt (logs beside it), then prints
# summarize.py's tables and the ratios of each server to Beast and websocketpp.
# Runs are interleaved (rep → test → server) so that machine noise spreads over all
# servers alike. One repetition of the four tests takes about a minute per server.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build/release}" 2>/dev/null && pwd) || BUILD=${1:-$ROOT/build/release}
REP=${REP:-3}
TESTS=${TESTS:-"e100k16 e100k1 e1000s1k idle10k"}
SERVERS=${SERVERS:-"ebb beast websocketpp node-ws"}
PORT=${PORT:-9300}
source "$ROOT/bench/common.sh"
PY=/usr/bin/python3


[ -x "$SHARED/runbench.sh" ] || die "no runbench.sh in $SHARED (set SHARED_BENCH)"
PEERS=$(find_peers_dir) || die "beast_echo/wsload not built; run:
  cmake -S $ROOT -B $ROOT/build/bench -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \\
        -DEBB_BUILD_TESTS=OFF -DEBB_BUILD_EXAMPLES=OFF
  cmake --build $ROOT/build/bench --target beast_echo websocketpp_echo wsload"
export WSLOAD=$PEERS/wsload

# Prints the command line that starts server $1 on $PORT, or nothing if unavailable.
server_cmd() {
  case "$1" in
  ebb) [ -x "$BUILD/examples/echo_server" ] &&
    echo "env WEBSOCKET_HOST=127.0.0.1 WEBSOCKET_PORT=$PORT $BUILD/examples/echo_server" ;;
  beast) [ -x "$PEERS/beast_echo" ] && echo "$PEERS/beast_echo --port $PORT" ;;
  websocketpp) [ -x "$PEERS/websocketpp_echo" ] && echo "$PEERS/websocketpp_echo --port $PORT" ;;
  node-ws) command -v node >/dev/null && [ -d "$ROOT/tests/node_modules/ws" ] &&
    echo "node $ROOT/bench/peers/node_ws_echo.mjs --port $PORT" ;;
  esac
}

ulimit -n "$(ulimit -Hn)" || die "cannot raise the open-file limit"
[ "$(ulimit -n)" -ge 10064 ] || echo "run_echo: warning: ulimit -n $(ulimit -n) < 10064, idle10k will fail" >&2

STAMP=$(date +%Y-%m-%d-%H%M%S)
mkdir -p "$ROOT/bench/results"
export RESULTS=$ROOT/bench/results/$STAMP.txt
export LOGDIR=$ROOT/bench/results/logs-$STAMP
{
  echo "# run_echo.sh $STAMP REP=$REP TESTS=\"$TESTS\" DUR=${DUR:-10} WARM=${WARM:-2}"
  echo "# host: $(uname -srm), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "# load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "# ebb: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null) $BUILD/examples/echo_server"
} >"$RESULTS"

# Servers start in the (fresh) log directory, so that no stray .env in the caller's
# directory changes ebb's settings.
mkdir -p "$LOGDIR" && cd "$LOGDIR" || die "cannot create $LOGDIR"

ACTIVE=()
for s in $SERVERS; do
  if [ -n "$(server_cmd "$s")" ]; then
    ACTIVE+=("$s")
  else
    echo "run_echo: skipping $s (not built / not installed)" | tee -a "$RESULTS" >&2
  fi
done
[ "${#ACTIVE[@]}" -gt 0 ] || die "no server to run"
echo "run_echo: servers: ${ACTIVE[*]}; tests: $TESTS; REP=$REP; results: $RESULTS" >&2

for rep in $(seq 1 "$REP"); do
  for test in $TESTS; do
    for s in "${ACTIVE[@]}"; do
      # shellcheck disable=SC2046  # the command line is split on purpose
      "$SHARED/runbench.sh" "$s" "$test" "$rep" "$PORT" $(server_cmd "$s") >/dev/null ||
        echo "run_echo: $s $test rep $rep failed (log: $LOGDIR/$s-$test-$rep.log)" | tee -a "$RESULTS" >&2
    done
  done
done
echo "# load at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RESULTS"

echo
echo "## Results ($RESULTS)"
"$PY" "$SHARED/summarize.py" "$RESULTS"
echo
"$PY" "$ROOT/bench/ratios.py" "$RESULTS"
