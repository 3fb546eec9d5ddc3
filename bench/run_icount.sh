#!/usr/bin/env bash
# run_icount.sh [BUILD_DIR] - user-space instructions (valgrind callgrind) and syscalls
# (strace -f) per echoed message for ebb's echo_server and its peers, with the shared
# ../shared/bench/icount.sh (100 connections, 16-byte messages, K in flight; each
# figure is the difference of a 20,000- and a 220,000-message run, so start-up and
# shutdown cancel out). These counts repeat from run to run, unlike times.
#
#   BUILD_DIR   build tree holding examples/echo_server (default build/release);
#               ebb is skipped with a note if the binary is missing.
#
# Environment:
#   SERVERS="ebb beast websocketpp node-ws"   KS="16 1"   TOOLS="callgrind strace"
#   PORT=9310   PEERS_DIR, SHARED_BENCH as in run_echo.sh
#   NODE_CALLGRIND=1   0 skips node under callgrind (it needs ~25 s to start there
#                      and ~3 minutes for both K; V8's JIT and GC threads are counted
#                      too, like every other thread of every server)
#   M1, M2      message counts of the two runs (icount.sh defaults 20000, 220000)
#
# Writes bench/results/icount-<date>.txt and prints a markdown table. Takes about
# 2-3 minutes per server under callgrind and under a minute under strace: about
# 10 minutes for the four servers.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build/release}" 2>/dev/null && pwd) || BUILD=${1:-$ROOT/build/release}
SERVERS=${SERVERS:-"ebb beast websocketpp node-ws"}
KS=${KS:-"16 1"}
TOOLS=${TOOLS:-"callgrind strace"}
PORT=${PORT:-9310}
source "$ROOT/bench/common.sh"
NODE_CALLGRIND=${NODE_CALLGRIND:-1}


[ -x "$SHARED/icount.sh" ] || die "no icount.sh in $SHARED (set SHARED_BENCH)"
PEERS=$(find_peers_dir) || die "beast_echo/wsload not built (see bench/README.md)"
export WSLOAD=$PEERS/wsload
command -v valgrind >/dev/null || TOOLS=${TOOLS//callgrind/}
command -v strace >/dev/null || TOOLS=${TOOLS//strace/}
[ -n "${TOOLS// /}" ] || die "neither valgrind nor strace installed (scripts/setup.sh)"

# The server's command line. No `env` wrapper: valgrind does not follow exec, so ebb
# gets WEBSOCKET_PORT from our environment instead.
server_cmd() {
  case "$1" in
  ebb) [ -x "$BUILD/examples/echo_server" ] && echo "$BUILD/examples/echo_server" ;;
  beast) [ -x "$PEERS/beast_echo" ] && echo "$PEERS/beast_echo --port $PORT" ;;
  websocketpp) [ -x "$PEERS/websocketpp_echo" ] && echo "$PEERS/websocketpp_echo --port $PORT" ;;
  node-ws) command -v node >/dev/null && [ -d "$ROOT/tests/node_modules/ws" ] &&
    echo "node $ROOT/bench/peers/node_ws_echo.mjs --port $PORT" ;;
  esac
}
export WEBSOCKET_HOST=127.0.0.1 WEBSOCKET_PORT=$PORT

# node needs ~25 s to start listening under valgrind, more than icount.sh's 20 s
# wait for the port; node gets a copy of icount.sh (in a temporary directory) that
# waits up to 150 s and is otherwise unchanged.
SLOW_DIR=$(mktemp -d) || die "mktemp failed"
trap 'rm -rf "$SLOW_DIR"' EXIT
sed 's/seq 1 400)/seq 1 3000)/' "$SHARED/icount.sh" >"$SLOW_DIR/icount.sh"
chmod +x "$SLOW_DIR/icount.sh"

# Servers start in an empty directory: no stray .env changes ebb's settings.
cd "$SLOW_DIR" || die "cannot enter $SLOW_DIR"

STAMP=$(date +%Y-%m-%d-%H%M%S)
mkdir -p "$ROOT/bench/results"
OUT=$ROOT/bench/results/icount-$STAMP.txt
echo "# run_icount.sh $STAMP KS=\"$KS\" TOOLS=\"$TOOLS\" M1=${M1:-20000} M2=${M2:-220000}" >"$OUT"

declare -A FIG
ROWS=()
for s in $SERVERS; do
  cmd=$(server_cmd "$s")
  if [ -z "$cmd" ]; then
    echo "# skipped $s: not built / not installed" | tee -a "$OUT" >&2
    continue
  fi
  ROWS+=("$s")
  for k in $KS; do
    for tool in $TOOLS; do
      if [ "$s" = node-ws ] && [ "$tool" = callgrind ] && [ "$NODE_CALLGRIND" != 1 ]; then
        FIG[$s,$k,$tool]="skipped"
        continue
      fi
      echo "run_icount: $s K=$k $tool ..." >&2
      icount=$SHARED/icount.sh
      [ "$s" = node-ws ] && [ "$tool" = callgrind ] && icount=$SLOW_DIR/icount.sh
      # shellcheck disable=SC2086  # the command line is split on purpose
      line=$(TOOL=$tool "$icount" "$PORT" "$k" -- $cmd) || line=""
      echo "server=$s ${line:-tool=$tool k=$k failed}" >>"$OUT"
      per=$(sed -n 's/.*per_msg=\([0-9.-]*\).*/\1/p' <<<"$line")
      FIG[$s,$k,$tool]=${per:-failed}
    done
  done
done

echo
echo "### Instructions and syscalls per echoed message ($OUT)"
echo
header="| server |" sep="|---|"
for k in $KS; do
  for tool in $TOOLS; do
    [ "$tool" = callgrind ] && header+=" instr/msg K=$k |" || header+=" syscalls/msg K=$k |"
    sep+="---|"
  done
done
echo "$header"
echo "$sep"
for s in "${ROWS[@]}"; do
  row="| $s |"
  for k in $KS; do
    for tool in $TOOLS; do row+=" ${FIG[$s,$k,$tool]:--} |"; done
  done
  echo "$row"
done
if [ "$NODE_CALLGRIND" != 1 ] && [[ " ${ROWS[*]} " == *" node-ws "* ]] && [[ "$TOOLS" == *callgrind* ]]; then
  echo
  echo "node-ws was not run under callgrind (NODE_CALLGRIND=0)."
fi
