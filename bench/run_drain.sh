#!/usr/bin/env bash
# run_drain.sh [BUILD_DIR] - graceful shutdown (drain) of ebb's echo_server and its
# peers (Boost.Beast, websocketpp, Node ws, Go gorilla/websocket + http.Server.Shutdown),
# all measured in the same run with the shared load tool (../shared/bench/wsload).
#
#   run_drain.sh [BUILD_DIR]          run, then print the tables
#   run_drain.sh --table RESULTS...   only print the tables of earlier result files
#
#   BUILD_DIR   build tree holding examples/echo_server (default build/release);
#               ebb is skipped with a note if the binary is missing.
#
# Tests (10,000 connections each; every server started fresh for every run):
#   drain10k     runbench.sh: idle clients that answer the Close; wsload sends SIGTERM
#   drain10kR    runbench.sh: idle clients that never answer the Close (wsload -R)
#   drainecho    clients echoing when SIGTERM arrives. wsload's drain mode holds its
#                connections idle, so this runs two wsloads: `-m echo -n 10000 -k 1`
#                (counts echoes that arrive corrupted, reordered or unexpected in `bad`,
#                and in `early_closed` the connections the server ended during the
#                run), and a one-connection `-m drain` probe, connected before
#                the load, that times the server's exit (pidfd) from the SIGTERM.
#
# Servers: ebb (defaults: shutdown notice, then Close 1001; WEBSOCKET_CLOSE_WAIT_MS
# 1000), ebb-nonotice (WEBSOCKET_SHUTDOWN_NOTICE set empty), beast, websocketpp,
# node-ws, gorilla. In drainecho ebb runs without the notice (wsload's echo mode
# would count the notice text message as a bad echo) and ebb-nonotice is skipped.
#
# Environment:
#   REP=3                repetitions of every (test, server) pair
#   TESTS="drain10k drain10kR drainecho"
#   SERVERS="ebb ebb-nonotice beast websocketpp node-ws gorilla"
#   PORT=9320            port every server listens on (one server at a time)
#   DRAIN_TIMEOUT=35     wsload -T: servers still alive then are SIGKILLed (gorilla
#                        never exits with -R; Beast and Node wait 30 s)
#   ECHO_K=1             messages in flight per connection in drainecho
#   ECHO_LEAD=1          seconds of echoing between "all connected" and the SIGTERM
#   PEERS_DIR            where beast_echo, websocketpp_echo, gorilla_echo and wsload
#                        are (default: BUILD_DIR/bench, else build/bench/bench)
#   SHARED_BENCH         the shared harness (default ../shared/bench beside the repo)
#
# Writes every result line to bench/results/drain-<date>.txt, server logs (stdout and
# stderr) to bench/results/drain-logs-<date>/NAME-TEST-REP.log, then prints one table
# per test (median and min–max over repetitions) and the ratios ebb/beast.
# Time per repetition: drain10k ≈ 6 s and drainecho ≈ 10 s per server; drain10kR
# ≈ 33 s for Beast and Node, 38 s for gorilla (killed), 8 s for websocketpp, 5 s for
# ebb: ≈ 3.5 minutes per repetition for the six servers, ≈ 11 minutes with REP=3.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3

# Markdown tables from result lines: median (min–max) per server and test, then
# ebb/beast ratios of medians.
print_tables() {
  "$PY" - "$@" <<'PYEOF'
import statistics, sys
from collections import OrderedDict, defaultdict

rows = defaultdict(list)
tests, peers = OrderedDict(), OrderedDict()
for fn in sys.argv[1:]:
    for line in open(fn):
        if not line.startswith("peer="):
            continue
        d = dict(t.split("=", 1) for t in line.split() if "=" in t)
        tests[d["test"]] = 1
        peers[d["peer"]] = 1
        rows[(d["test"], d["peer"])].append(d)

def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None

def stat(runs, key):
    vals = [num(r.get(key)) for r in runs]
    missing = sum(v is None for v in vals)
    vals = [v for v in vals if v is not None]
    if not vals:
        return None, "na" if runs else "-"
    m, lo, hi = statistics.median(vals), min(vals), max(vals)
    s = "{:,.0f}".format(m)
    if lo != hi:
        s += " ({:,.0f}–{:,.0f})".format(lo, hi)
    if missing:
        s += " +%d×na" % missing
    return m, s

def codes(runs):
    return " / ".join(sorted({r.get("codes", r.get("probe_codes", "-")) for r in runs}))

def killed(runs):
    n = sum(r.get("server_alive_after") == "1" for r in runs)
    return "%d of %d still running at -T" % (n, len(runs)) if n else ""

def rcs(runs):
    # A server alive at -T is SIGKILLed, but may exit by itself first as the
    # clients leave: its status then says nothing about the drain.
    return ",".join(sorted({"-" if r.get("server_alive_after") == "1" else r.get("server_rc", "?")
                            for r in runs}))

DRAIN = ["clean", "dropped", "reset", "hung", "close_rst", "close_hung"]
TIMES = ["last_close_ms", "last_end_ms", "server_exit_ms"]
ECHO = ["echoing_at_sigterm", "connected", "early_closed", "bad", "proto_err", "msgs"]
PROBE = ["probe_clean", "probe_end_ms", "server_exit_ms"]
medians = {}
for t in tests:
    echo = t.startswith("drainecho")
    cols = ECHO + PROBE if echo else DRAIN + TIMES
    print("\n### %s\n" % t)
    print("| server | runs | " + " | ".join(cols) + " | codes | exit status | notes |")
    print("|---|---|" + "---|" * len(cols) + "---|---|---|")
    for p in peers:
        runs = rows.get((t, p))
        if not runs:
            continue
        cells = []
        for k in cols:
            m, s = stat(runs, k)
            medians[(t, p, k)] = m
            cells.append(s)
        print("| %s | %d | %s | %s | %s | %s |" % (p, len(runs), " | ".join(cells), codes(runs),
                                                   rcs(runs), killed(runs)))

print("\n### Ratios ebb/beast (medians; < 1 is faster than Beast)\n")
print("| test | server | last_end_ms | server_exit_ms |")
print("|---|---|---|---|")
for t in tests:
    for p in peers:
        if not p.startswith("ebb"):
            continue
        cells = []
        # drainecho cannot time the end of the echoing connections (see the header).
        for k in ("-" if t.startswith("drainecho") else "last_end_ms", "server_exit_ms"):
            a, b = medians.get((t, p, k)), medians.get((t, "beast", k))
            cells.append("%.2f" % (a / b) if a is not None and b else "-")
        print("| %s | %s/beast | %s |" % (t, p, " | ".join(cells)))
PYEOF
}

if [ "${1:-}" = "--table" ]; then
  shift
  print_tables "$@"
  exit
fi

BUILD=$(cd "${1:-$ROOT/build/release}" 2>/dev/null && pwd) || BUILD=${1:-$ROOT/build/release}
REP=${REP:-3}
TESTS=${TESTS:-"drain10k drain10kR drainecho"}
SERVERS=${SERVERS:-"ebb ebb-nonotice beast websocketpp node-ws gorilla"}
PORT=${PORT:-9320}
export DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-35}
ECHO_K=${ECHO_K:-1}
ECHO_LEAD=${ECHO_LEAD:-1}
source "$ROOT/bench/common.sh"


[ -x "$SHARED/runbench.sh" ] || die "no runbench.sh in $SHARED (set SHARED_BENCH)"
PEERS=$(find_peers_dir) || die "beast_echo/wsload not built; run:
  cmake -S $ROOT -B $ROOT/build/bench -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \\
        -DEBB_BUILD_TESTS=OFF -DEBB_BUILD_EXAMPLES=OFF
  cmake --build $ROOT/build/bench --target beast_echo websocketpp_echo gorilla_echo wsload"
export WSLOAD=$PEERS/wsload

# Prints the command line that starts server $1 on $PORT, or nothing if unavailable.
# $2 = test: drainecho turns ebb's shutdown notice off (see the header).
server_cmd() {
  local ebb="env WEBSOCKET_HOST=127.0.0.1 WEBSOCKET_PORT=$PORT"
  case "$1" in
  ebb)
    [ "${2:-}" = drainecho ] && ebb="$ebb WEBSOCKET_SHUTDOWN_NOTICE="
    [ -x "$BUILD/examples/echo_server" ] && echo "$ebb $BUILD/examples/echo_server" ;;
  ebb-nonotice) [ -x "$BUILD/examples/echo_server" ] &&
    echo "$ebb WEBSOCKET_SHUTDOWN_NOTICE= $BUILD/examples/echo_server" ;;
  beast) [ -x "$PEERS/beast_echo" ] && echo "$PEERS/beast_echo --port $PORT" ;;
  websocketpp) [ -x "$PEERS/websocketpp_echo" ] && echo "$PEERS/websocketpp_echo --port $PORT" ;;
  node-ws) command -v node >/dev/null && [ -d "$ROOT/tests/node_modules/ws" ] &&
    echo "node $ROOT/bench/peers/node_ws_echo.mjs --port $PORT" ;;
  gorilla) # a custom target outside `all`: it may exist only in build/bench
    local g
    for g in "$PEERS/gorilla_echo" "$ROOT/build/bench/bench/gorilla_echo"; do
      [ -x "$g" ] && { echo "$g --port $PORT"; return; }
    done ;;
  esac
}

port_listening() { ss -ltnH "sport = :$PORT" | grep -q .; }

# Value of key $1 in the key=value line $2 ("na" when absent).
field() { local v; v=$(tr ' ' '\n' <<<"$2" | grep -m1 "^$1=" | cut -d= -f2-); echo "${v:-na}"; }

# Waits up to $2 tenths of a second for file $1 to contain $3, while pid $4 lives.
wait_for_text() {
  local _
  for _ in $(seq 1 "$2"); do
    grep -q "$3" "$1" 2>/dev/null && return 0
    kill -0 "$4" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# drainecho NAME REP SERVER_CMD...: 10,000 echoing clients when SIGTERM arrives.
#  1. a probe `wsload -m drain -n 1` connects first (to an idle server) and waits
#     for SIGUSR1; it will time the server's exit (pidfd) from that instant;
#  2. `wsload -m echo -n 10000 -k ECHO_K` connects and echoes;
#  3. ECHO_LEAD s after all are connected: SIGUSR1 to the probe, then SIGTERM to
#     the server (two consecutive kill builtins, microseconds apart).
# The probe is connected before the load because under load some servers take
# seconds to accept one more connection. `echoing_at_sigterm=0` flags a run where
# the echo client had already stopped at the SIGTERM (it is reported, not hidden).
run_drainecho() {
  local name=$1 rep=$2
  shift 2
  local log="$LOGDIR/$name-drainecho-$rep.log" base="$LOGDIR/$name-drainecho-$rep"
  port_listening && { echo "run_drain: port $PORT already in use" >&2; return 1; }
  "$@" >"$log" 2>&1 &
  local srv=$!
  for _ in $(seq 1 200); do
    port_listening && break
    kill -0 "$srv" 2>/dev/null || break
    sleep 0.05
  done
  if ! port_listening; then
    echo "run_drain: server did not listen on $PORT (see $log)" >&2
    kill -KILL "$srv" 2>/dev/null
    wait "$srv" 2>/dev/null
    return 1
  fi
  sleep 0.3
  "$WSLOAD" -m drain -p "$PORT" -n 1 -c 1 -H 0.1 -P "$srv" -T "$DRAIN_TIMEOUT" \
    >"$base.probe.out" 2>"$base.probe.err" &
  local probe_pid=$!
  wait_for_text "$base.probe.err" 100 READY "$probe_pid" ||
    echo "run_drain: $name drainecho: probe not ready (see $base.probe.err)" >&2
  # Warm-up 1 s, then 6 s counted: the SIGTERM comes ECHO_LEAD s after all are
  # connected, inside the counted window; a server that has not ended a connection
  # by the end of it sees wsload's own Close (1000) there (early_closed < connected).
  "$WSLOAD" -m echo -p "$PORT" -n 10000 -c 200 -s 16 -k "$ECHO_K" -w 1 -d 6 -P "$srv" \
    >"$base.echo.out" 2>"$base.echo.err" &
  local echo_pid=$!
  wait_for_text "$base.echo.err" 600 connected "$echo_pid"
  sleep "$ECHO_LEAD"
  local echoing=0 rc alive=0 src
  kill -0 "$echo_pid" 2>/dev/null && echoing=1
  kill -USR1 "$probe_pid" 2>/dev/null
  kill -TERM "$srv" 2>/dev/null
  wait "$probe_pid"
  rc=$?
  if kill -0 "$srv" 2>/dev/null; then
    alive=1
    kill -KILL "$srv" 2>/dev/null
  fi
  wait "$srv" 2>/dev/null
  src=$?
  wait "$echo_pid"
  local echo_line probe
  echo_line=$(cat "$base.echo.out")
  probe=$(cat "$base.probe.out")
  local line="peer=$name test=drainecho rep=$rep n=10000 k=$ECHO_K echoing_at_sigterm=$echoing"
  for k in connected conn_fail early_closed bad proto_err msgs; do
    line+=" $k=$(field $k "$echo_line")"
  done
  line+=" probe_clean=$(field clean "$probe") probe_codes=$(field codes "$probe")"
  line+=" probe_end_ms=$(field last_end_ms "$probe") server_exit_ms=$(field server_exit_ms "$probe")"
  line+=" wsload_rc=$rc server_alive_after=$alive server_rc=$src"
  echo "$line" | tee -a "$RESULTS"
  sleep 1
}

ulimit -n "$(ulimit -Hn)" || die "cannot raise the open-file limit"
[ "$(ulimit -n)" -ge 10064 ] || echo "run_drain: warning: ulimit -n $(ulimit -n) < 10064, the 10k tests will fail" >&2

STAMP=$(date +%Y-%m-%d-%H%M%S)
mkdir -p "$ROOT/bench/results"
export RESULTS=$ROOT/bench/results/drain-$STAMP.txt
export LOGDIR=$ROOT/bench/results/drain-logs-$STAMP
{
  echo "# run_drain.sh $STAMP REP=$REP TESTS=\"$TESTS\" DRAIN_TIMEOUT=$DRAIN_TIMEOUT ECHO_K=$ECHO_K ECHO_LEAD=$ECHO_LEAD ulimit_n=$(ulimit -n)"
  echo "# host: $(uname -srm), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "# load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "# ebb: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null) $BUILD/examples/echo_server"
} >"$RESULTS"

# Servers start in the (fresh) log directory, so that no stray .env in the caller's
# directory changes ebb's settings.
mkdir -p "$LOGDIR" || die "cannot create $LOGDIR"
cd "$LOGDIR" || die "cannot enter $LOGDIR"

ACTIVE=()
for s in $SERVERS; do
  if [ -n "$(server_cmd "$s")" ]; then
    ACTIVE+=("$s")
  else
    echo "run_drain: skipping $s (not built / not installed)" | tee -a "$RESULTS" >&2
  fi
done
[ "${#ACTIVE[@]}" -gt 0 ] || die "no server to run"
echo "run_drain: servers: ${ACTIVE[*]}; tests: $TESTS; REP=$REP; results: $RESULTS" >&2

START=$(date +%s)
for rep in $(seq 1 "$REP"); do
  for test in $TESTS; do
    for s in "${ACTIVE[@]}"; do
      # Both ebb variants run without the notice there: one run is enough.
      [ "$test" = drainecho ] && [ "$s" = ebb-nonotice ] && continue
      # shellcheck disable=SC2046  # the command line is split on purpose
      if [ "$test" = drainecho ]; then
        run_drainecho "$s" "$rep" $(server_cmd "$s" "$test") >/dev/null
      else
        "$SHARED/runbench.sh" "$s" "$test" "$rep" "$PORT" $(server_cmd "$s" "$test") >/dev/null
      fi || echo "run_drain: $s $test rep $rep failed (log: $LOGDIR/$s-$test-$rep.log)" |
        tee -a "$RESULTS" >&2
    done
  done
done
{
  echo "# load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "# elapsed: $(($(date +%s) - START)) s"
} >>"$RESULTS"

echo
echo "## Results ($RESULTS)"
print_tables "$RESULTS"
