#!/usr/bin/env bash
# run_http.sh [BUILD_DIR] - HTTP/1.1 keep-alive throughput and server CPU per request
# of ebb (bench/http_server.cpp on ebb::App) and Boost.Beast (peers/beast_http.cpp),
# measured with wrk in the same run.
#
#   run_http.sh [BUILD_DIR]          run, then print the tables
#   run_http.sh --table RESULTS...   only print the tables of earlier result files
#
#   BUILD_DIR   build tree holding bench/http_server and bench/beast_http (default
#               build/release); a server whose binary is missing is skipped with a note.
#
# Both servers answer GET /plaintext ("Hello, World!", text/plain) and GET /json
# ({"message":"Hello, World!"}, serialized per request) with the same headers:
# Content-Type, Content-Length, Date (the script records each server's header names).
#
# Each run starts the server fresh, pinned to core SERVER_CPU, with THREADS I/O
# threads, and runs wrk pinned to core CLIENT_CPU: WARM seconds of warm-up, then
# `wrk -t1 -cCONNS -dDURs --latency`. Server CPU time is utime+stime from
# /proc/PID/stat (all threads) read just before and after the measured wrk run, so
# srv_cpu_us_per_req = that CPU time / requests completed. Runs are interleaved
# (rep → test → server) so that machine noise spreads over both servers.
# req/s is bounded by whichever side saturates first (with srv_cpu_util well below 1
# the server was not the bottleneck: wrk, or other load on the machine, was);
# server CPU per request is the steadier figure. Run on a quiet machine.
#
# Environment:
#   REP=3                  repetitions of every (test, server) pair
#   TESTS="plaintext json"
#   SERVERS="ebb beast"
#   PORT=9330              port every server listens on (one server at a time)
#   THREADS=1              server I/O threads
#   CONNS=64 DUR=10 WARM=2 wrk connections, measured seconds, warm-up seconds
#   SERVER_CPU=0 CLIENT_CPU=1
#
# Writes one line per run to bench/results/http-<date>.txt (servers' output in
# bench/results/http-logs-<date>/), then prints median (min–max) per server and test
# and the ratios ebb/beast: throughput (above 1: ebb serves more) and server CPU per
# request (below 1: ebb spends less). Time: (WARM + DUR + ~1) s per run, so ≈ 3 minutes
# with the defaults (REP=3, 2 tests, 2 servers).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3

# Markdown tables from result lines: median (min–max) per server and test, then
# ebb/beast ratios of medians.
print_tables() {
  "$PY" - "$@" <<'PYEOF'
import statistics, sys
from collections import OrderedDict, defaultdict

rows = defaultdict(lambda: defaultdict(list))
tests, peers = OrderedDict(), OrderedDict()
for fn in sys.argv[1:]:
    for line in open(fn):
        if not line.startswith("peer="):
            continue
        d = dict(t.split("=", 1) for t in line.split() if "=" in t)
        if d.get("ok") != "1":
            continue
        tests[d["test"]] = peers[d["peer"]] = 1
        for k, v in d.items():
            try:
                rows[(d["test"], d["peer"])][k].append(float(v))
            except ValueError:
                pass

METRICS = [("rps", "req/s", "%.0f"), ("srv_cpu_us_per_req", "srv CPU µs/req", "%.2f"),
           ("srv_cpu_util", "srv CPU util", "%.2f"), ("p50_us", "p50 µs", "%.0f"),
           ("p99_us", "p99 µs", "%.0f")]

def med(t, p, k):
    v = rows.get((t, p), {}).get(k, [])
    return statistics.median(v) if v else None

print("| test | server | runs | " + " | ".join(m[1] for m in METRICS) + " |")
print("|---|---|---|" + "---|" * len(METRICS))
for t in tests:
    for p in peers:
        r = rows.get((t, p))
        if not r:
            continue
        cells = []
        for k, _, f in METRICS:
            v = r.get(k, [])
            cells.append((f + " (" + f + "–" + f + ")") % (statistics.median(v), min(v), max(v))
                         if v else "-")
        print("| %s | %s | %d | %s |" % (t, p, len(r["rps"]), " | ".join(cells)))

if "ebb" in peers and "beast" in peers:
    print("\n### Ratios ebb/beast (median / median)\n")
    print("| test | req/s (>1 better) | srv CPU µs/req (<1 better) | p99 (<1 better) |")
    print("|---|---|---|---|")
    for t in tests:
        cells = []
        for k in ("rps", "srv_cpu_us_per_req", "p99_us"):
            a, b = med(t, "ebb", k), med(t, "beast", k)
            cells.append("%.2f" % (a / b) if a and b else "-")
        print("| %s | %s |" % (t, " | ".join(cells)))
PYEOF
}

if [ "${1:-}" = "--table" ]; then
  shift
  print_tables "$@"
  exit
fi

BUILD=$(cd "${1:-$ROOT/build/release}" 2>/dev/null && pwd) || BUILD=${1:-$ROOT/build/release}
REP=${REP:-3}
TESTS=${TESTS:-"plaintext json"}
SERVERS=${SERVERS:-"ebb beast"}
PORT=${PORT:-9330}
THREADS=${THREADS:-1}
CONNS=${CONNS:-64}
DUR=${DUR:-10}
WARM=${WARM:-2}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
TICKS=$(getconf CLK_TCK)

die() { echo "run_http: $*" >&2; exit 1; }
command -v wrk >/dev/null || die "wrk not installed (scripts/setup.sh installs it)"
command -v curl >/dev/null || die "curl not installed"

# Prints the command line that starts server $1 on $PORT, or nothing if unavailable.
server_cmd() {
  case "$1" in
  ebb) [ -x "$BUILD/bench/http_server" ] &&
    echo "$BUILD/bench/http_server --port $PORT --threads $THREADS" ;;
  beast) [ -x "$BUILD/bench/beast_http" ] &&
    echo "$BUILD/bench/beast_http --port $PORT --threads $THREADS" ;;
  esac
}

# utime + stime of process $1 in clock ticks (fields 14 and 15 of /proc/PID/stat;
# the command name, field 2, may hold spaces, so count from its closing paren).
cpu_ticks() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  # shellcheck disable=SC2086  # split into fields on purpose
  set -- $stat
  echo $((${12} + ${13}))
}

# Waits (up to 5 s) until the server answers on $PORT.
wait_ready() {
  for _ in $(seq 1 50); do
    curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/plaintext" && return 0
    kill -0 "$1" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# SIGTERM, then SIGKILL if still alive after 10 s.
stop_server() {
  kill -TERM "$1" 2>/dev/null
  for _ in $(seq 1 100); do
    kill -0 "$1" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$1" 2>/dev/null
  wait "$1" 2>/dev/null
}

# A wrk latency figure ("512.34us", "1.20ms", "2.00s") in µs.
to_us() {
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    if (u == "ms") n *= 1000; else if (u == "s") n *= 1000000; else if (u == "m") n *= 60000000
    printf "%.0f", n }'
}

# Runs one (server, test, rep): appends a result line to $RESULTS.
run_one() {
  local s=$1 test=$2 rep=$3
  local log="$LOGDIR/$s-$test-$rep.log" out="$LOGDIR/$s-$test-$rep.wrk"
  local url="http://127.0.0.1:$PORT/$test" pid t0 t1
  # shellcheck disable=SC2046  # the command line is split on purpose
  taskset -c "$SERVER_CPU" $(server_cmd "$s") >"$log" 2>&1 &
  pid=$!
  if ! wait_ready "$pid"; then
    echo "peer=$s test=$test rep=$rep ok=0 error=not_ready" >>"$RESULTS"
    echo "run_http: $s did not start (log: $log)" >&2
    stop_server "$pid"
    return
  fi
  if [ "$rep" = 1 ]; then
    echo "# headers $s /$test: $(curl -s -D - -o /dev/null "$url" | tr -d '\r' |
      sed -n '2,$p' | cut -d: -f1 | grep . | tr '\n' ' ')" >>"$RESULTS"
  fi
  [ "$WARM" -gt 0 ] && taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d"${WARM}s" "$url" >/dev/null 2>&1
  t0=$(cpu_ticks "$pid")
  taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d"${DUR}s" --latency "$url" >"$out" 2>&1
  t1=$(cpu_ticks "$pid")
  stop_server "$pid"

  local rps requests secs p50 p99 non2xx sockerr cpu_s
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
  requests=$(awk '/requests in/ {print $1}' "$out")
  secs=$(awk '/requests in/ {sub(/s,$/, "", $4); print $4}' "$out")
  p50=$(to_us "$(awk '$1 == "50%" {print $2}' "$out")")
  p99=$(to_us "$(awk '$1 == "99%" {print $2}' "$out")")
  non2xx=$(awk '/Non-2xx/ {print $NF}' "$out")
  sockerr=$(awk '/Socket errors/ {gsub(/,/, ""); print $4 + $6 + $8 + $10}' "$out")
  if [ -z "$rps" ] || [ -z "$requests" ] || [ "$requests" -eq 0 ] || [ -z "$t0" ] || [ -z "$t1" ]; then
    echo "peer=$s test=$test rep=$rep ok=0 error=no_result" >>"$RESULTS"
    echo "run_http: $s $test rep $rep gave no result (see $out)" >&2
    return
  fi
  [ "${non2xx:-0}" -gt 0 ] && echo "run_http: $s $test rep $rep: $non2xx non-2xx responses" >&2
  cpu_s=$(awk -v d=$((t1 - t0)) -v hz="$TICKS" 'BEGIN {printf "%.2f", d / hz}')
  echo "peer=$s test=$test rep=$rep ok=1 rps=$rps requests=$requests secs=$secs" \
    "srv_cpu_s=$cpu_s srv_cpu_util=$(awk -v c="$cpu_s" -v t="$secs" 'BEGIN {printf "%.3f", c / t}')" \
    "srv_cpu_us_per_req=$(awk -v c="$cpu_s" -v n="$requests" 'BEGIN {printf "%.3f", c * 1e6 / n}')" \
    "p50_us=$p50 p99_us=$p99 non2xx=${non2xx:-0} sock_err=${sockerr:-0}" >>"$RESULTS"
}

STAMP=$(date +%Y-%m-%d-%H%M%S)
mkdir -p "$ROOT/bench/results"
RESULTS=$ROOT/bench/results/http-$STAMP.txt
LOGDIR=$ROOT/bench/results/http-logs-$STAMP
{
  echo "# run_http.sh $STAMP REP=$REP TESTS=\"$TESTS\" THREADS=$THREADS CONNS=$CONNS DUR=$DUR WARM=$WARM server_cpu=$SERVER_CPU client_cpu=$CLIENT_CPU"
  echo "# host: $(uname -srm), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "# wrk: $(wrk -v 2>&1 | head -1)"
  echo "# load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "# ebb: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null) $BUILD/bench/http_server"
} >"$RESULTS"

# Servers start in the (fresh) log directory, so that no stray .env in the caller's
# directory changes ebb's settings.
{ mkdir -p "$LOGDIR" && cd "$LOGDIR"; } || die "cannot create $LOGDIR"

ACTIVE=()
for s in $SERVERS; do
  if [ -n "$(server_cmd "$s")" ]; then
    ACTIVE+=("$s")
  else
    echo "run_http: skipping $s (not built)" | tee -a "$RESULTS" >&2
  fi
done
[ "${#ACTIVE[@]}" -gt 0 ] || die "no server to run; build: cmake --build $BUILD --target http_server beast_http"
echo "run_http: servers: ${ACTIVE[*]}; tests: $TESTS; REP=$REP; results: $RESULTS" >&2

for rep in $(seq 1 "$REP"); do
  for test in $TESTS; do
    for s in "${ACTIVE[@]}"; do
      run_one "$s" "$test" "$rep"
    done
  done
done
echo "# load at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RESULTS"

echo
echo "## Results ($RESULTS)"
print_tables "$RESULTS"
