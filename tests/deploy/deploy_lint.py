#!/usr/bin/python3
"""Checks the deployment files under deploy/ against ebb-chat's timings.

The syntax checks are the tools' own (systemd-analyze, nginx -t, haproxy -c;
see check_configs.sh). This script checks what no tool knows:

- every deploy/ file is quoted byte for byte in docs/DEPLOY.md (fenced blocks
  whose info string carries `file=deploy/...`), and every such block matches
  its file;
- the relationships between the layers' timeouts and ebb-chat's drain
  (stop timeouts above the drain deadline, proxy timeouts above the heartbeat
  and the long-poll hold, probes on the right paths, ...);
- a self-test: each check must reject a copy of the file with one value made
  wrong, so that a check that silently passes everything is caught.

Usage: deploy_lint.py REPO_ROOT. Exit 0 when all is well, 1 otherwise, each
problem on its own line.
"""

import re
import shlex
import sys
from pathlib import Path

import yaml  # Debian python3-yaml

# ebb-chat's timings that the proxies must respect (apps/ebb-chat --help,
# docs/CONFIGURATION.md). A deployment that changes them must change the
# proxies too, and this table.
PING_INTERVAL_S = 30.0  # WEBSOCKET_PING_INTERVAL_MS: ping a client silent this long
PONG_TIMEOUT_S = 10.0  # WEBSOCKET_PONG_TIMEOUT_MS: no pong within this: dropped
POLL_HOLD_S = 25.0  # LONGPOLL_POLL_TIMEOUT: a long-poll is held this long
# What a stop timeout must leave after the drain deadline: the forced close,
# joining threads, closing the SQLite store, exiting.
EXIT_MARGIN_S = 5.0
# A proxy must wait this much longer than ebb holds a long-poll.
POLL_MARGIN_S = 5.0

SNIPPETS = {
    "systemd": "deploy/systemd/ebb-chat.service",
    "kubernetes": "deploy/kubernetes/ebb-chat.yaml",
    "nginx": "deploy/nginx/ebb-chat.conf",
    "nginx_main": "deploy/nginx/ebb-chat-main.conf",
    "haproxy": "deploy/haproxy/ebb-chat.cfg",
}


class Problems(list):
    def need(self, ok, message):
        if not ok:
            self.append(message)
        return ok


# ---------------------------------------------------------------- durations

_UNITS = {
    "us": 1e-6, "usec": 1e-6, "ms": 1e-3, "msec": 1e-3,
    "s": 1.0, "sec": 1.0, "second": 1.0, "seconds": 1.0,
    "m": 60.0, "min": 60.0, "minute": 60.0, "minutes": 60.0,
    "h": 3600.0, "hr": 3600.0, "hour": 3600.0, "hours": 3600.0,
    "d": 86400.0, "day": 86400.0, "days": 86400.0,
}


def seconds(text, plain_unit):
    """'1min 30s', '1500ms', '75s', '20' (in `plain_unit` seconds) -> float."""
    text = str(text).strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text) * plain_unit
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]+)", text)
    if not parts or re.sub(r"[\d.\sa-z]", "", text):
        raise ValueError(f"not a duration: {text!r}")
    total = 0.0
    for number, unit in parts:
        if unit not in _UNITS:
            raise ValueError(f"unknown unit {unit!r} in {text!r}")
        total += float(number) * _UNITS[unit]
    return total


def ebb_drain_budget(env):
    """Longest time ebb-chat may take to drain with these settings: the
    readiness grace (within SHUTDOWN_TIMEOUT for HTTP, but counted on top to
    be safe) plus the deadline. `env` maps keys to values; both must be
    given explicitly, else the stop timeouts cannot be checked."""
    timeout = seconds(env["SHUTDOWN_TIMEOUT"], 1.0)  # a plain number is seconds
    grace = seconds(env.get("SHUTDOWN_READINESS_GRACE_MS", "0"), 1e-3)
    return timeout + grace


# ----------------------------------------------------------------- snippets

_FENCE = re.compile(rb"^(`{3,})([^`\s]*)[ \t]*(.*)$")


def doc_blocks(doc_bytes):
    """[(path, content, line, closed)] of the fenced blocks marked file=PATH."""
    blocks, lines, i = [], doc_bytes.split(b"\n"), 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, info, start = m.group(1), m.group(3), i
        j = i + 1
        while j < len(lines) and lines[j].rstrip() != fence:
            j += 1
        path = re.search(rb"(?:^|\s)file=(\S+)", info)
        if path:
            content = b"".join(line + b"\n" for line in lines[start + 1:j])
            blocks.append((path.group(1).decode(), content, start + 1, j < len(lines)))
        i = j + 1
    return blocks


def check_snippets(root, doc_bytes):
    p = Problems()
    quoted = set()
    for path, content, line, closed in doc_blocks(doc_bytes):
        where = f"docs/DEPLOY.md:{line}"
        if not p.need(closed, f"{where}: the block for {path} is never closed"):
            continue
        file = root / path
        if not p.need(path.startswith("deploy/") and file.is_file(),
                      f"{where}: {path} is not a file under deploy/"):
            continue
        quoted.add(path)
        actual = file.read_bytes()
        if content != actual:
            a, b = content.split(b"\n"), actual.split(b"\n")
            k = next((n for n, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            p.append(f"{where}: differs from {path} at its line {k + 1}: "
                     f"doc {a[k] if k < len(a) else b'<end>'!r} vs file "
                     f"{b[k] if k < len(b) else b'<end>'!r}")
    for file in sorted((root / "deploy").rglob("*")):
        rel = file.relative_to(root).as_posix()
        if file.is_file():
            p.need(rel in quoted, f"{rel} is not quoted in docs/DEPLOY.md (```lang file={rel})")
    return p


# ------------------------------------------------------------------ systemd

def parse_unit(text):
    """{section: {key: [values in order]}}; continuation lines joined."""
    sections, current, pending = {}, None, ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def check_systemd(text):
    p = Problems()
    svc = parse_unit(text).get("Service", {})

    def last(key):
        values = svc.get(key, [])
        return values[-1] if values else None

    p.need(last("Type") in ("simple", "exec"),
           "systemd: Type= must be simple or exec (ebb-chat has no sd_notify)")
    p.need(last("KillSignal") == "SIGTERM", "systemd: KillSignal= must be SIGTERM (starts the drain)")
    p.need(last("KillMode") in ("mixed", "process"),
           "systemd: KillMode= must be mixed or process (SIGTERM to the main process only)")
    p.need(last("Restart") == "on-failure", "systemd: Restart= must be on-failure")
    success = " ".join(svc.get("SuccessExitStatus", [])).split()
    p.need("3" not in success,
           "systemd: exit 3 (forced drain) must stay a failure (not in SuccessExitStatus=)")
    for key, want in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                      ("DynamicUser", "yes"), ("StateDirectory", "ebb-chat")):
        p.need(last(key) == want, f"systemd: {key}={want} missing")
    p.need("/var/lib/ebb-chat" in " ".join(svc.get("ReadWritePaths", [])).split(),
           "systemd: ReadWritePaths= must include /var/lib/ebb-chat")
    p.need("-/etc/ebb-chat/env" in svc.get("EnvironmentFile", []),
           "systemd: EnvironmentFile=-/etc/ebb-chat/env missing")
    exec_start = shlex.split(last("ExecStart") or "")
    p.need(exec_start and exec_start[0].endswith("/ebb-chat"),
           "systemd: ExecStart= must run ebb-chat")
    data_dir = [a.split("=", 1)[1] for a in exec_start if a.startswith("--data-dir=")]
    p.need(data_dir == ["%S/ebb-chat"],
           "systemd: ExecStart= must pass --data-dir=%S/ebb-chat (the StateDirectory)")

    env = {}
    for value in svc.get("Environment", []):
        for assignment in shlex.split(value):
            key, _, val = assignment.partition("=")
            env[key] = val
    if not p.need("SHUTDOWN_TIMEOUT" in env,
                  "systemd: set Environment=SHUTDOWN_TIMEOUT= explicitly (TimeoutStopSec "
                  "is computed from it)"):
        return p
    stop = last("TimeoutStopSec")
    if not p.need(stop is not None, "systemd: TimeoutStopSec= missing"):
        return p
    budget = ebb_drain_budget(env)
    p.need(seconds(stop, 1.0) >= budget + EXIT_MARGIN_S,
           f"systemd: TimeoutStopSec={stop} must be at least the drain ({budget:g} s) "
           f"+ {EXIT_MARGIN_S:g} s, or systemd SIGKILLs a drain that would have ended")
    return p


# --------------------------------------------------------------- kubernetes

def check_kubernetes(text):
    p = Problems()
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as e:
        p.append(f"kubernetes: YAML does not parse: {e}")
        return p
    by_kind = {}
    for d in docs:
        if not p.need(isinstance(d, dict) and "kind" in d and "apiVersion" in d
                      and "name" in d.get("metadata", {}),
                      "kubernetes: every document needs apiVersion, kind, metadata.name"):
            return p
        by_kind.setdefault(d["kind"], []).append(d)
    workloads = by_kind.get("Deployment", []) + by_kind.get("StatefulSet", [])
    if not p.need(len(workloads) == 1, "kubernetes: expected one Deployment or StatefulSet"):
        return p
    wl = workloads[0]
    spec = wl.get("spec", {})
    pod = spec.get("template", {}).get("spec", {})
    labels = spec.get("template", {}).get("metadata", {}).get("labels", {})
    p.need(spec.get("selector", {}).get("matchLabels", {}).items() <= labels.items(),
           "kubernetes: the selector does not match the pod labels")
    containers = pod.get("containers", [])
    if not p.need(len(containers) == 1, "kubernetes: expected one container"):
        return p
    c = containers[0]
    env = {e["name"]: str(e.get("value", "")) for e in c.get("env", [])}
    ports = {pt.get("name"): pt.get("containerPort") for pt in c.get("ports", [])}
    port = int(env.get("SERVER_PORT", "8080"))
    p.need(port in ports.values(), f"kubernetes: no containerPort {port} (SERVER_PORT)")

    def probe_ok(kind, path):
        pr = c.get(kind)
        if not p.need(isinstance(pr, dict) and "httpGet" in pr,
                      f"kubernetes: {kind} with httpGet missing"):
            return None
        get = pr["httpGet"]
        p.need(get.get("path") == path, f"kubernetes: {kind} must GET {path}")
        p.need(get.get("port") in (port, *[n for n, v in ports.items() if v == port]),
               f"kubernetes: {kind} must probe port {port}")
        return pr

    ready = probe_ok("readinessProbe", "/health/ready")
    if ready:
        p.need(ready.get("failureThreshold", 3) == 1,
               "kubernetes: readinessProbe.failureThreshold must be 1 (one 503 = draining)")
        p.need(ready.get("periodSeconds", 10) <= 5,
               "kubernetes: readinessProbe.periodSeconds must be small (<= 5)")
    live = probe_ok("livenessProbe", "/health/live")

    pre_stop = 0.0
    hook = c.get("lifecycle", {}).get("preStop")
    if hook:
        if "sleep" in hook:
            pre_stop = float(hook["sleep"]["seconds"])
        else:
            words = " ".join(hook.get("exec", {}).get("command", [])).split()
            m = [w for i, w in enumerate(words) if i > 0 and words[i - 1].endswith("sleep")]
            if p.need(len(m) == 1, "kubernetes: preStop must be a sleep of N seconds"):
                pre_stop = seconds(m[0], 1.0)
    if not p.need("SHUTDOWN_TIMEOUT" in env,
                  "kubernetes: set SHUTDOWN_TIMEOUT in env explicitly (the grace period "
                  "is computed from it)"):
        return p
    drain = ebb_drain_budget(env)
    p.need(hook or "SHUTDOWN_READINESS_GRACE_MS" in env,
           "kubernetes: either a preStop sleep or SHUTDOWN_READINESS_GRACE_MS must cover "
           "the endpoint removal")
    grace = pod.get("terminationGracePeriodSeconds", 30)
    p.need(grace >= pre_stop + drain + EXIT_MARGIN_S,
           f"kubernetes: terminationGracePeriodSeconds {grace} must be at least preStop "
           f"{pre_stop:g} + drain {drain:g} + {EXIT_MARGIN_S:g} s")
    if live:
        window = live.get("periodSeconds", 10) * live.get("failureThreshold", 3)
        p.need(window > grace,
               f"kubernetes: livenessProbe may fail mid-drain: periodSeconds x "
               f"failureThreshold ({window}) must exceed the termination grace ({grace})")

    data_dir = env.get("DATA_DIR")
    if p.need(data_dir, "kubernetes: set DATA_DIR in env"):
        mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        vol = volumes.get(mounts.get(data_dir), {})
        claims = {d["metadata"]["name"] for d in by_kind.get("PersistentVolumeClaim", [])}
        claims |= {t["metadata"]["name"] for t in spec.get("volumeClaimTemplates", [])}
        claim = vol.get("persistentVolumeClaim", {}).get("claimName")
        if wl["kind"] == "StatefulSet":
            claim = claim or mounts.get(data_dir)
        p.need(claim in claims,
               f"kubernetes: DATA_DIR {data_dir} must be mounted from a PersistentVolumeClaim")
    p.need(spec.get("replicas", 1) == 1, "kubernetes: SQLite history: replicas must be 1")
    if wl["kind"] == "Deployment":
        p.need(spec.get("strategy", {}).get("type") == "Recreate",
               "kubernetes: a Deployment on a ReadWriteOnce volume needs strategy Recreate "
               "(never two SQLite writers)")

    services = by_kind.get("Service", [])
    if p.need(len(services) == 1, "kubernetes: expected one Service"):
        s = services[0]["spec"]
        p.need(s.get("selector", {}).items() <= labels.items() and s.get("selector"),
               "kubernetes: the Service selector does not match the pod labels")
        targets = [pt.get("targetPort") for pt in s.get("ports", [])]
        p.need(targets and all(t in (port, *ports) for t in targets),
               "kubernetes: the Service targetPort must be the container's port")
    return p


# -------------------------------------------------------------------- nginx

def nginx_parse(text):
    """[(name, args, children|None)] from nginx configuration text."""
    tokens = re.findall(r"""#[^\n]*|"(?:\\.|[^"])*"|'(?:\\.|[^'])*'|[{};]|[^\s{};"'#]+""", text)
    tokens = [t[1:-1] if t[:1] in "\"'" else t for t in tokens if not t.startswith("#")]
    pos = 0

    def block():
        nonlocal pos
        out, words = [], []
        while pos < len(tokens):
            t = tokens[pos]
            pos += 1
            if t == ";":
                out.append((words[0], words[1:], None))
                words = []
            elif t == "{":
                out.append((words[0], words[1:], block()))
                words = []
            elif t == "}":
                return out
            else:
                words.append(t)
        if words:
            raise ValueError(f"nginx: unterminated directive {' '.join(words)!r}")
        return out

    return block()


class NginxLocation:
    """Effective settings at a location: the innermost level that has a
    directive wins; proxy_set_header at a level replaces the outer ones."""

    def __init__(self, levels):
        self.levels = levels  # outermost first

    def get(self, name):
        for level in reversed(self.levels):
            found = [args for n, args, _ in level if n == name]
            if found:
                return found[-1]
        return None

    def headers(self):
        for level in reversed(self.levels):
            found = {a[0].lower(): a[1] for n, a, _ in level if n == "proxy_set_header"}
            if found:
                return found
        return {}

    def denied(self):
        return any(n == "deny" and a == ["all"] for n, a, _ in self.levels[-1]) and not any(
            n == "allow" for n, _, _ in self.levels[-1])


def nginx_location(top, server, uri):
    exact, prefix = None, []
    for name, args, children in server:
        if name != "location":
            continue
        if args[0] in ("~", "~*") or args[0].startswith("@"):
            raise ValueError("nginx: regex/named locations are not modelled by this check")
        if args[0] == "=" and args[1] == uri:
            exact = children
        elif args[0] == "^~" and uri.startswith(args[1]):
            prefix.append((args[1], children))
        elif args[0] not in ("=", "^~") and uri.startswith(args[0]):
            prefix.append((args[0], children))
    chosen = exact if exact is not None else max(prefix, key=lambda x: len(x[0]))[1]
    return NginxLocation([top, server, chosen])


def check_nginx(main_text, site_text):
    p = Problems()
    try:
        main, top = nginx_parse(main_text), nginx_parse(site_text)
    except ValueError as e:
        p.append(str(e))
        return p
    p.need(any(n == "worker_shutdown_timeout" for n, _, _ in main),
           "nginx: worker_shutdown_timeout missing (old workers would keep WebSockets forever)")
    maps = {a[1]: c for n, a, c in top if n == "map" and a[0] == "$http_upgrade"}
    upstreams = {a[0]: c for n, a, c in top if n == "upstream"}
    servers = [c for n, _, c in top if n == "server"]
    if not p.need(len(servers) == 1 and upstreams, "nginx: expected one server and an upstream"):
        return p
    for name, body in upstreams.items():
        p.need(any(n == "server" for n, _, _ in body), f"nginx: upstream {name} has no server")
    try:
        at = {uri: nginx_location(top, servers[0], uri) for uri in
              ("/", "/ws", "/lp/poll", "/lp/send", "/health/ready", "/metrics",
               "/admin/shutdown")}
    except (ValueError, IndexError) as e:
        p.append(f"nginx: cannot resolve locations: {e}")
        return p
    for uri in ("/", "/ws", "/lp/poll", "/lp/send", "/health/ready", "/metrics"):
        target = (at[uri].get("proxy_pass") or [""])[0]
        p.need(target.removeprefix("http://") in upstreams,
               f"nginx: {uri} is not proxied to the upstream")
    p.need(at["/admin/shutdown"].denied(), "nginx: /admin/ must not be reachable from outside")
    p.need(at["/metrics"].get("allow") is not None and at["/metrics"].get("deny") == ["all"],
           "nginx: /metrics should be for operators only (allow ...; deny all;)")

    ws = at["/ws"]
    p.need(ws.get("proxy_http_version") == ["1.1"], "nginx: /ws needs proxy_http_version 1.1")
    h = ws.headers()
    p.need(h.get("upgrade") == "$http_upgrade", "nginx: /ws must pass Upgrade: $http_upgrade")
    conn = h.get("connection", "")
    p.need(conn in maps and any(n == "default" and a == ["upgrade"] for n, a, _ in maps[conn]),
           "nginx: /ws must pass Connection from a map of $http_upgrade (default upgrade)")
    read = seconds((ws.get("proxy_read_timeout") or ["60s"])[0], 1.0)
    p.need(read > PING_INTERVAL_S + PONG_TIMEOUT_S,
           f"nginx: /ws proxy_read_timeout {read:g} s must exceed ebb's heartbeat "
           f"({PING_INTERVAL_S:g} s ping + {PONG_TIMEOUT_S:g} s pong)")

    poll = at["/lp/poll"]
    p.need(poll.get("proxy_buffering") == ["off"], "nginx: /lp/ needs proxy_buffering off")
    read = seconds((poll.get("proxy_read_timeout") or ["60s"])[0], 1.0)
    p.need(read >= POLL_HOLD_S + POLL_MARGIN_S,
           f"nginx: /lp/ proxy_read_timeout {read:g} s must be at least the "
           f"{POLL_HOLD_S:g} s poll + {POLL_MARGIN_S:g} s")
    return p


# ------------------------------------------------------------------ haproxy

def parse_haproxy(text):
    """{(section, name): [[words]]}"""
    sections, current = {}, None
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        if words[0] in ("global", "defaults", "frontend", "backend", "listen"):
            current = sections.setdefault((words[0], words[1] if len(words) > 1 else ""), [])
        elif current is not None:
            current.append(words)
    return sections


def check_haproxy(text):
    p = Problems()
    s = parse_haproxy(text)
    glob = s.get(("global", ""), [])
    defaults = s.get(("defaults", ""), [])
    p.need(any(w[0] == "hard-stop-after" for w in glob),
           "haproxy: hard-stop-after missing (an old process would keep WebSockets forever)")
    p.need(any(w[:2] == ["stats", "socket"] and "admin" in w for w in glob),
           "haproxy: a runtime API socket (stats socket ... level admin) is needed for "
           "drain/maint")
    frontends = [(k[1], v) for k, v in s.items() if k[0] == "frontend"]
    if not p.need(len(frontends) == 1, "haproxy: expected one frontend"):
        return p
    fe_name, fe = frontends[0]
    backend_name = next((w[1] for w in fe if w[0] == "default_backend"), None)
    be = s.get(("backend", backend_name))
    if not p.need(be is not None, f"haproxy: frontend {fe_name} has no default_backend"):
        return p
    p.need(any(w[:2] == ["http-request", "deny"] and "/admin/" in w for w in fe),
           "haproxy: deny /admin/ at the frontend")

    def timeout(name, *scopes):
        for scope in scopes:
            found = [w[2] for w in scope if w[:2] == ["timeout", name]]
            if found:
                return seconds(found[-1], 1e-3)  # HAProxy: a plain number is ms
        return None

    for name, scope in (("client", fe), ("server", be)):
        t = timeout(name, scope, defaults)
        p.need(t is not None and t >= POLL_HOLD_S + POLL_MARGIN_S,
               f"haproxy: timeout {name} must be at least the {POLL_HOLD_S:g} s long-poll "
               f"+ {POLL_MARGIN_S:g} s")
    t = timeout("tunnel", be, defaults)
    p.need(t is not None and t > PING_INTERVAL_S + PONG_TIMEOUT_S,
           f"haproxy: timeout tunnel must exceed ebb's heartbeat ({PING_INTERVAL_S:g} s + "
           f"{PONG_TIMEOUT_S:g} s)")

    p.need(["option", "httpchk", "GET", "/health/ready"] in be,
           "haproxy: backend needs option httpchk GET /health/ready")
    p.need(["http-check", "expect", "status", "200"] in be,
           "haproxy: backend needs http-check expect status 200 (503 = draining)")
    default_server = [w for w in be if w[0] == "default-server"]
    servers = [w for w in be if w[0] == "server"]
    checked = any("check" in w for w in default_server)
    p.need(servers and all(checked or "check" in w for w in servers),
           "haproxy: every server needs `check`")
    p.need(not any("shutdown-sessions" in w for w in default_server + servers),
           "haproxy: on-marked-down shutdown-sessions would cut WebSockets without a Close "
           "the moment readiness turns 503")
    return p


# ---------------------------------------------------------------- self-test

def mutate(text, old, new):
    if old not in text:
        raise AssertionError(f"self-test: {old!r} no longer in the snippet; update the self-test")
    return text.replace(old, new, 1)


# The first line of the unit's block in DEPLOY.md: one space added to it
# must be caught.
_UNIT_FENCE = "file=deploy/systemd/ebb-chat.service\n# ebb-chat"


def self_test(texts, doc_bytes, root):
    """Each mutation breaks one relationship; its check must notice."""
    sd, k8s, ngx, main, hap = (texts[k] for k in
                               ("systemd", "kubernetes", "nginx", "nginx_main", "haproxy"))
    cases = [
        ("systemd TimeoutStopSec below the drain",
         lambda: check_systemd(mutate(sd, "TimeoutStopSec=20s", "TimeoutStopSec=12s"))),
        ("systemd KillMode=control-group",
         lambda: check_systemd(mutate(sd, "KillMode=mixed", "KillMode=control-group"))),
        ("systemd exit 3 counted as success",
         lambda: check_systemd(mutate(sd, "Restart=on-failure", "Restart=on-failure\n"
                                      "SuccessExitStatus=3"))),
        ("systemd SHUTDOWN_TIMEOUT raised alone",
         lambda: check_systemd(mutate(sd, "SHUTDOWN_TIMEOUT=10s", "SHUTDOWN_TIMEOUT=30"))),
        ("kubernetes grace below preStop + drain",
         lambda: check_kubernetes(mutate(k8s, "terminationGracePeriodSeconds: 20",
                                         "terminationGracePeriodSeconds: 14"))),
        ("kubernetes readiness failureThreshold 3",
         lambda: check_kubernetes(mutate(k8s, "failureThreshold: 1", "failureThreshold: 3"))),
        ("kubernetes readiness on the liveness path",
         lambda: check_kubernetes(mutate(k8s, "path: /health/ready", "path: /health/live"))),
        ("kubernetes RollingUpdate with SQLite",
         lambda: check_kubernetes(mutate(k8s, "type: Recreate", "type: RollingUpdate"))),
        ("kubernetes DATA_DIR not on the volume",
         lambda: check_kubernetes(mutate(k8s, "value: /var/lib/ebb-chat",
                                         "value: /srv/ebb-chat"))),
        ("nginx /ws timeout below the heartbeat",
         lambda: check_nginx(main, mutate(ngx, "proxy_read_timeout 75s", "proxy_read_timeout 30s"))),
        ("nginx /lp buffered",
         lambda: check_nginx(main, mutate(ngx, "proxy_buffering off;", ""))),
        ("nginx a location-level proxy_set_header drops Upgrade",
         lambda: check_nginx(main, mutate(ngx, "proxy_read_timeout 75s;",
                                          "proxy_read_timeout 75s;\n"
                                          "        proxy_set_header X-Ws 1;"))),
        ("nginx without worker_shutdown_timeout",
         lambda: check_nginx(mutate(main, "worker_shutdown_timeout 30s;", ""), ngx)),
        ("haproxy tunnel timeout below the heartbeat",
         lambda: check_haproxy(mutate(hap, "timeout tunnel 75s", "timeout tunnel 30s"))),
        ("haproxy server timeout in ms below the poll",
         lambda: check_haproxy(mutate(hap, "timeout server 60s", "timeout server 25000"))),
        ("haproxy checks the liveness path",
         lambda: check_haproxy(mutate(hap, "GET /health/ready", "GET /health/live"))),
        ("haproxy shutdown-sessions",
         lambda: check_haproxy(mutate(hap, "check inter 2s", "check inter 2s "
                                      "on-marked-down shutdown-sessions"))),
        ("DEPLOY.md quotes a changed unit",
         lambda: check_snippets(root, mutate(doc_bytes.decode(), _UNIT_FENCE,
                                             _UNIT_FENCE + " ").encode())),
        ("DEPLOY.md leaves a file out",
         lambda: check_snippets(root, mutate(doc_bytes.decode(), "file=deploy/haproxy/",
                                             "from=deploy/haproxy/").encode())),
    ]
    failures = Problems()
    for name, run in cases:
        failures.need(len(run()) > 0, f"self-test: the check accepted: {name}")
    return failures, len(cases)


def main(argv):
    root = Path(argv[1]).resolve() if len(argv) > 1 else Path(__file__).resolve().parents[2]
    doc = (root / "docs/DEPLOY.md").read_bytes()
    texts = {k: (root / v).read_text() for k, v in SNIPPETS.items()}
    results = [
        ("docs/DEPLOY.md quotes deploy/ verbatim", check_snippets(root, doc)),
        (SNIPPETS["systemd"], check_systemd(texts["systemd"])),
        (SNIPPETS["kubernetes"], check_kubernetes(texts["kubernetes"])),
        (SNIPPETS["nginx"], check_nginx(texts["nginx_main"], texts["nginx"])),
        (SNIPPETS["haproxy"], check_haproxy(texts["haproxy"])),
    ]
    failures, n = self_test(texts, doc, root)
    results.append((f"self-test ({n} broken copies rejected)", failures))
    bad = 0
    for name, problems in results:
        print(f"{'ok  ' if not problems else 'FAIL'} {name}")
        for problem in problems:
            print(f"     {problem}")
        bad += len(problems)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
