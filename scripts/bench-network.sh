#!/bin/bash
# Usage: scripts/bench-network.sh BINDIR OUT.json [bench flags...]
#
# Starts a three-node ledgerd network on loopback (as the README's walk-through,
# data in a fresh directory under ${TMPDIR:-/tmp}), opens it, runs
# `ledgerctl bench` against the primary (extra arguments go to the bench),
# writes the bench's JSON report to OUT.json, and stops and removes the
# network. LEDGERD_FLAGS adds flags to every node, %N replaced by the node's
# number (e.g. LEDGERD_FLAGS='--cpuprofile /tmp/cpu%N.prof'). PORT (default 31740)
# is the first of the six ports used (client PORT+3, peer PORT+4 for node 1,
# +13/+14, +23/+24). BENCH_HOOK, if set, is a command run in the background
# while the bench runs (e.g. a sampler), then killed.
set -eu
LEDGERD_FLAGS=${LEDGERD_FLAGS:-}
B=$(cd "$1" && pwd); OUT=$2; shift 2
P=${PORT:-31740}
D=$(mktemp -d "${TMPDIR:-/tmp}/ledgerd-net.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "${KEEP:-}" ]; then echo "kept $D" >&2; else rm -rf "$D"; fi
}
trap cleanup EXIT
wait_up() { # URL
  for _ in $(seq 300); do curl -sfk "$1/node/state" >/dev/null && return 0; sleep 0.1; done
  echo "no answer from $1" >&2; return 1
}
u1=https://127.0.0.1:$((P+3))
"$B/ledgerd" --data "$D/n1" --listen 127.0.0.1:$((P+3)) --peer-listen 127.0.0.1:$((P+4)) --start-opening \
  ${LEDGERD_FLAGS//%N/1} >"$D/n1.log" 2>&1 & pids+=($!)
for _ in $(seq 300); do [ -f "$D/n1/service.pem" ] && break; sleep 0.1; done
wait_up "$u1"
for i in 2 3; do
  o=$(( (i-1)*10 ))
  "$B/ledgerd" --data "$D/n$i" --listen 127.0.0.1:$((P+3+o)) --peer-listen 127.0.0.1:$((P+4+o)) \
    --join "$u1" --service-cert "$D/n1/service.pem" ${LEDGERD_FLAGS//%N/$i} >"$D/n$i.log" 2>&1 & pids+=($!)
done
wait_up https://127.0.0.1:$((P+13)); wait_up https://127.0.0.1:$((P+23))
export LEDGER_ENDPOINT=$u1 LEDGER_SERVICE_CERT=$D/n1/service.pem LEDGER_CERT=$D/n1/member0.pem
"$B/ledgerctl" gov propose --action transition_service_to_open --vote \
  --args "$(jq -n --rawfile c "$D/n1/service.pem" '{next_service_identity: $c}')" >"$D/open.log" 2>&1
# Wait until the three nodes are Raft voters and have caught up.
for _ in $(seq 300); do
  n=$(curl -sfk --cert "$D/n1/member0.pem" "$u1/node/consensus" | jq '.details.configs[0].nodes | length' 2>/dev/null || echo 0)
  [ "${n:-0}" = 3 ] && break; sleep 0.1
done
LEDGER_CERT=$D/n1/admin.pem "$B/ledgerctl" append --wait "replicated" >>"$D/open.log" 2>&1
if [ -n "${BENCH_HOOK:-}" ]; then bash -c "$BENCH_HOOK" & pids+=($!); fi
"$B/ledgerctl" bench --endpoint "$u1" --cert "$D/n1/admin.pem" --service-cert "$D/n1/service.pem" --json "$@" >"$OUT"
for i in 1 2 3; do o=$(( (i-1)*10 )); curl -sk https://127.0.0.1:$((P+3+o))/node/commit; echo; done >&2
