#!/bin/bash
# Usage: scripts/bench-appjs.sh BINDIR [ROUNDS]
#
# Issue 12's speed targets for user code, on one ledgerd on loopback (data in a
# fresh directory under ${TMPDIR:-/tmp}): installs, as the node's admin,
#   - a trivial user-defined function `check` (the validation pre-hook shape:
#     export function main() { if (context.contents.length > 100000) throw ... }),
#   - a trivial bundle: GET /app/hello/{name}, readonly, user_cert, answers
#     {"hello": name},
# then runs `ledgerctl bench` ROUNDS times (default 3), alternating: plain appends,
# appends with --pre-hook check, and appends followed by --get /app/hello/bench.
# Prints one line per run: appends/s, p50/p99 of appends, the server's CPU per
# append (ledgerd's user and system time in the measured window, per append:
# less sensitive to other load on the machine than appends/s), and the read
# phase's requests/s. Extra flags for the bench: BENCH_FLAGS (e.g. '--duration 8s').
set -eu
B=$(cd "$1" && pwd); ROUNDS=${2:-3}
P=${PORT:-31840}
D=$(mktemp -d "${TMPDIR:-/tmp}/ledgerd-appjs.XXXXXX")
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$D"; }
trap cleanup EXIT
u=https://127.0.0.1:$P
"$B/ledgerd" --data "$D/n" --listen 127.0.0.1:$P >"$D/ledgerd.log" 2>&1 & pid=$!
for _ in $(seq 300); do curl -sfk "$u/node/state" >/dev/null 2>&1 && break; sleep 0.1; done
c=(curl -sS --fail-with-body --cacert "$D/n/service.pem" --cert "$D/n/admin.pem" -H 'Content-Type: application/json')
v=api-version=2024-12-09-preview
"${c[@]}" -X PUT "$u/app/userDefinedFunctions/check?$v" \
  -d '{"code":"export function main() { if (context.contents.length > 100000) throw new Error(\"too long\"); }"}' >/dev/null
"${c[@]}" -X PUT "$u/app/userDefinedEndpoints?$v" -d '{"metadata":{"endpoints":{"/hello/{name}":{"get":{"js_module":"app.js","js_function":"hello","mode":"readonly","forwarding_required":"never","authn_policies":["user_cert"]}}}},"modules":[{"name":"app.js","module":"export function hello(request) { return { body: { hello: request.params.name } }; }"}]}' >/dev/null
"${c[@]}" "$u/app/hello/bench" >/dev/null
bench() { "$B/ledgerctl" bench --endpoint "$u" --cert "$D/n/admin.pem" --service-cert "$D/n/service.pem" --server-pid "$pid" --json ${BENCH_FLAGS:-} "$@" >"$D/r.json"
  jq -r '"\(.appends.per_second|floor) appends/s (p50 \(.appends.latency.p50_ms) ms, p99 \(.appends.latency.p99_ms) ms, server \(.appends.server_cpu.us_per_request) cpu-µs/append)  \(.cheap.request): \(.cheap.per_second|floor)/s (server \(.cheap.server_cpu.us_per_request) cpu-µs/request)"' "$D/r.json"; }
for r in $(seq "$ROUNDS"); do
  echo "round $r plain:    $(bench)"
  echo "round $r pre-hook: $(bench --pre-hook check)"
  echo "round $r endpoint: $(bench --get /app/hello/bench)"
done
