#!/usr/bin/env bash
# Checks every deployment file under deploy/ (and its copy in docs/DEPLOY.md):
#
#   1. deploy_lint.py: DEPLOY.md quotes each file byte for byte; the timeouts
#      of each layer fit ebb-chat's drain, heartbeat and long-poll; a
#      self-test that each check rejects a broken copy.
#   2. the tools' own syntax checks: systemd-analyze verify, nginx -t,
#      haproxy -c; each also on a broken copy, which must be rejected (so a
#      check that cannot fail is caught).
#
# A missing tool is a failure, not a skip: scripts/setup.sh installs them
# (Debian: systemd nginx haproxy python3-yaml). Runs as root or not; writes
# only to a temporary directory.
#
# Usage: check_configs.sh [REPO_ROOT]
set -uo pipefail

root=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
# nginx and haproxy live in /usr/sbin, which a non-root PATH may lack.
PATH=$PATH:/usr/sbin:/sbin
python=/usr/bin/python3 # Debian's, which has python3-yaml (not a pyenv one)
failures=0

fail() {
  echo "FAIL $*"
  failures=$((failures + 1))
}

for tool in systemd-analyze nginx haproxy "$python"; do
  command -v "$tool" >/dev/null 2>&1 || fail "missing tool: $tool (run scripts/setup.sh)"
done
"$python" -c 'import yaml' 2>/dev/null || fail "missing python3-yaml (run scripts/setup.sh)"
if [ "$failures" -gt 0 ]; then exit 1; fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Runs "$@"; the check passes when it exits 0 and prints nothing matching
# $warn_re (the tools exit 0 on warnings, e.g. systemd-analyze on an
# unknown key). Prints the output on failure.
warn_re='.'
passes() {
  local out
  out=$("$@" 2>&1)
  local rc=$?
  if [ $rc -ne 0 ] || grep -Eq -- "$warn_re" <<<"$out"; then
    printf '%s\n' "$out" | sed 's/^/     /'
    return 1
  fi
  return 0
}

# expect NAME GOOD BROKEN: GOOD must pass, BROKEN must not.
expect() {
  local name=$1 good=$2 broken=$3
  if $good; then echo "ok   $name"; else fail "$name"; fi
  if $broken >/dev/null 2>&1; then
    fail "$name: a broken copy was accepted (the check cannot fail)"
  else
    echo "ok   $name rejects a broken copy"
  fi
}

# ---- 1. snippets in DEPLOY.md, timing relationships, self-test
if "$python" "$root/tests/deploy/deploy_lint.py" "$root"; then :; else fail "deploy_lint.py"; fi

# ---- 2a. systemd: `verify` needs ExecStart's binary to exist and be
# executable, and ebb-chat is not installed here: check a copy whose
# ExecStart points at a dummy executable, with everything else unchanged.
# It exits 0 on unknown keys and bad values (it only logs them), so any
# output at all is a failure. --recursive-errors=no: this unit only, not
# the machine's other units.
mkdir -p "$tmp/systemd/bin" "$tmp/systemd/broken"
printf '#!/bin/sh\nexit 0\n' >"$tmp/systemd/bin/ebb-chat"
chmod +x "$tmp/systemd/bin/ebb-chat"
unit=$root/deploy/systemd/ebb-chat.service
grep -q '^ExecStart=/usr/local/bin/ebb-chat ' "$unit" || fail "systemd: ExecStart is not /usr/local/bin/ebb-chat"
sed "s#^ExecStart=/usr/local/bin/ebb-chat #ExecStart=$tmp/systemd/bin/ebb-chat #" "$unit" \
  >"$tmp/systemd/ebb-chat.service"
sed 's/^KillMode=.*/KillMode=mixd/' "$tmp/systemd/ebb-chat.service" \
  >"$tmp/systemd/broken/ebb-chat.service"
systemd_good() { passes systemd-analyze verify --man=no --recursive-errors=no "$tmp/systemd/ebb-chat.service"; }
systemd_broken() { passes systemd-analyze verify --man=no --recursive-errors=no "$tmp/systemd/broken/ebb-chat.service"; }
expect "systemd-analyze verify $unit" systemd_good systemd_broken

# ---- 2b. nginx: a complete configuration around the two snippets, with
# every path nginx writes (pid, logs, temp dirs) in $tmp, so it runs
# without root and touches nothing of the machine's nginx. `nginx -t` also
# binds the listen addresses: the copy listens on a free loopback port
# instead of port 80 (which needs root and may be taken), nothing else changed.
mkdir -p "$tmp/nginx/logs"
site=$root/deploy/nginx/ebb-chat.conf
port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
grep -q '^    listen 80;$' "$site" || fail "nginx: the site no longer says 'listen 80;' (update this script)"
sed "s/^    listen 80;\$/    listen 127.0.0.1:$port;/" "$site" >"$tmp/nginx/site.conf"
sed 's/proxy_buffering off;/proxy_buffering off/' "$tmp/nginx/site.conf" >"$tmp/nginx/broken.conf"
write_nginx_conf() { # $1: output file, $2: site snippet
  cat >"$1" <<EOF
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/logs/error.log;
include $root/deploy/nginx/ebb-chat-main.conf;
events {}
http {
    access_log off;
    client_body_temp_path $tmp/nginx/client_body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    include $2;
}
EOF
}
write_nginx_conf "$tmp/nginx/nginx.conf" "$tmp/nginx/site.conf"
write_nginx_conf "$tmp/nginx/nginx-broken.conf" "$tmp/nginx/broken.conf"
warn_re='\[(warn|emerg|alert|crit|error)\]'
nginx_good() { passes nginx -t -q -p "$tmp/nginx/" -e "$tmp/nginx/logs/error.log" -c "$tmp/nginx/nginx.conf"; }
nginx_broken() { passes nginx -t -q -p "$tmp/nginx/" -e "$tmp/nginx/logs/error.log" -c "$tmp/nginx/nginx-broken.conf"; }
expect "nginx -t with deploy/nginx/ebb-chat-main.conf + ebb-chat.conf" nginx_good nginx_broken

# ---- 2c. HAProxy: the file is a complete haproxy.cfg. -c exits 0 with
# warnings; those fail here too.
sed 's/timeout tunnel 75s/timeout tunel 75s/' "$root/deploy/haproxy/ebb-chat.cfg" >"$tmp/haproxy-broken.cfg"
warn_re='\[(WARNING|ALERT|NOTICE)\]'
haproxy_good() { passes haproxy -c -f "$root/deploy/haproxy/ebb-chat.cfg"; }
haproxy_broken() { passes haproxy -c -f "$tmp/haproxy-broken.cfg"; }
expect "haproxy -c -f deploy/haproxy/ebb-chat.cfg" haproxy_good haproxy_broken

if [ "$failures" -gt 0 ]; then
  echo "deploy configs: $failures failure(s)"
  exit 1
fi
echo "deploy configs: all checks passed"
