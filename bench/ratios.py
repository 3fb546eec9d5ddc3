#!/usr/bin/env python3
"""Ratios of each server to the baselines, from runbench.sh result lines.

usage: ratios.py RESULTS... [--base beast,websocketpp]

For every (test, metric) pair we compare (server CPU per message, p99 latency and
throughput for echo tests; RSS per connection for idle tests) it prints the median
of each server divided by the median of each baseline, e.g. "ebb/beast 0.62".
Below 1 means less CPU, lower latency or less memory than the baseline; for
msgs/s above 1 is better. A baseline missing from the results is skipped.

Two more views of server CPU per message for echo tests, less exposed to the
machine drifting during a run:
- by repetition: each run's ratio to the baseline's run of the same
  repetition (run_echo.sh interleaves them), then the median of those;
- against the load client: server CPU per message divided by the client's own
  (wsload's CPU over the same messages), per run, then the median. The client
  does one recv and one send per message, like an echo server, so about 1 is
  the floor for a server on the same kernel.
"""
import statistics
import sys
from collections import OrderedDict, defaultdict

METRICS = {
    "echo": [("srv_cpu_us_per_msg", "srv CPU µs/msg"), ("p99_us", "p99 µs"),
             ("msgs_per_s", "msgs/s")],
    "idle": [("rss_per_conn_kb", "KB/conn")],
}


def parse(line):
    return dict(tok.split("=", 1) for tok in line.split() if "=" in tok)


def load(files):
    """Returns {(test, peer): {metric: [values]}} and the peers in order of appearance."""
    values = defaultdict(lambda: defaultdict(list))
    peers = OrderedDict()
    for fn in files:
        with open(fn) as f:
            for line in f:
                if not line.startswith("peer="):
                    continue
                d = parse(line)
                peers[d["peer"]] = 1
                for k, v in d.items():
                    try:
                        values[(d["test"], d["peer"])][k].append(float(v))
                    except ValueError:
                        pass
    return values, list(peers)


def median(vals):
    vals = [v for v in vals if v > 0]  # wsload prints -1 for "not measured"
    return statistics.median(vals) if vals else None


def mode_of(test):
    if test.startswith("e") or test.startswith("count"):
        return "echo"
    return "idle" if test.startswith("idle") else None


def main(argv):
    bases = ["beast", "websocketpp"]
    files = []
    i = 0
    while i < len(argv):
        if argv[i] == "--base" and i + 1 < len(argv):
            bases = argv[i + 1].split(",")
            i += 2
        else:
            files.append(argv[i])
            i += 1
    values, peers = load(files)
    tests = OrderedDict((t, 1) for t, _ in values)
    wanted, bases = bases, [b for b in bases if b in peers]
    if not bases:
        print("ratios: no baseline (%s) in the results" % ", ".join(wanted))
        return 0
    # No beast/websocketpp column when websocketpp/beast is there already.
    pairs = [(p, b) for i, b in enumerate(bases) for p in peers if p not in bases[:i + 1]]
    if not pairs:
        print("ratios: nothing to compare (servers: %s)" % ", ".join(peers))
        return 0
    print("### Ratios (median / median of the baseline)\n")
    print("| test | metric | " + " | ".join("%s/%s" % pb for pb in pairs) + " |")
    print("|---|---|" + "---|" * len(pairs))
    for t in tests:
        for key, label in METRICS.get(mode_of(t), []):
            cells = []
            for p, b in pairs:
                num = median(values.get((t, p), {}).get(key, []))
                den = median(values.get((t, b), {}).get(key, []))
                cells.append("%.2f" % (num / den) if num and den else "-")
            print("| %s | %s | %s |" % (t, label, " | ".join(cells)))
    print_run_by_run(files, pairs, peers)
    return 0


def runs_of(files):
    """Yields (test, (file, rep), peer, fields) for every echo result line."""
    for fn in files:
        with open(fn) as f:
            for line in f:
                if line.startswith("peer="):
                    d = parse(line)
                    if mode_of(d.get("test", "")) == "echo":
                        yield d["test"], (fn, d.get("rep", "1")), d["peer"], d


def as_float(d, key):
    try:
        v = float(d.get(key, "-1"))
    except ValueError:
        return None
    return v if v > 0 else None


def print_run_by_run(files, pairs, peers):
    cpu = {}  # (test, rep, peer) -> srv CPU µs/msg
    vs_client = defaultdict(list)  # (test, peer) -> [srv / cli CPU per message]
    for test, rep, peer, d in runs_of(files):
        srv, cli, rate = (as_float(d, k) for k in ("srv_cpu_us_per_msg", "cli_cpu_pct", "msgs_per_s"))
        if srv:
            cpu[(test, rep, peer)] = srv
        if srv and cli and rate:
            vs_client[(test, peer)].append(srv / (cli / 100 / rate * 1e6))
    tests = OrderedDict((t, 1) for t, _, _ in cpu)
    print("\n### Server CPU per message, run by run (medians; min-max)\n")
    print("| test | " + " | ".join("%s/%s by rep" % pb for pb in pairs) + " | " +
          " | ".join("%s ÷ client" % p for p in peers) + " |")
    print("|---|" + "---|" * (len(pairs) + len(peers)))
    for t in tests:
        cells = []
        for p, b in pairs:
            r = [cpu[(t, rep, p)] / cpu[(t, rep, b)] for (tt, rep, pp) in cpu
                 if tt == t and pp == p and (t, rep, b) in cpu]
            cells.append(spread(r))
        cells += [spread(vs_client.get((t, p), [])) for p in peers]
        print("| %s | %s |" % (t, " | ".join(cells)))


def spread(vals):
    if not vals:
        return "-"
    return "%.2f (%.2f-%.2f)" % (statistics.median(vals), min(vals), max(vals))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
