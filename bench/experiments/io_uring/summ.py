#!/usr/bin/env python3
import sys, statistics as st
rows = {}
order = []
for fn in sys.argv[1:]:
    for line in open(fn):
        d = dict(kv.split('=', 1) for kv in line.split() if '=' in kv)
        n = d['name']
        if n not in rows: rows[n] = []; order.append(n)
        rows[n].append(d)
keys = ['srv_cpu_us_per_msg', 'msgs_per_s', 'p50_us', 'p99_us', 'cli_cpu_pct', 'srv_cpu_pct']
print('name n ' + ' '.join(keys) + ' errs(bad/early/proto)')
base = None
for n in order:
    r = rows[n]; out = [n, str(len(r))]
    for k in keys:
        v = [float(x[k]) for x in r]
        out.append('%.4g [%.4g-%.4g]' % (st.median(v), min(v), max(v)))
    errs = sum(int(x['bad']) + int(x['early_closed']) + int(x['proto_err']) for x in r)
    out.append(str(errs))
    med = st.median(float(x['srv_cpu_us_per_msg']) for x in r)
    if n == 'epoll': base = med
    if base: out.append('ratio_vs_epoll=%.3f' % (med / base))
    print(' | '.join(out))
