#!/usr/bin/env python3
"""Ratios of each server to the baselines, from runbench.sh result lines.

usage: ratios.py RESULTS... [--base beast,websocketpp]

For every (test, metric) pair we compare (server CPU per message, p99 latency and
throughput for echo tests; RSS per connection for idle tests) it prints the median
of each server divided by the median of each baseline, e.g. "ebb/beast 0.62".
Below 1 means less CPU, lower latency or less memory than the baseline; for
msgs/s above 1 is better. A baseline missing from the results is skipped.
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
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
