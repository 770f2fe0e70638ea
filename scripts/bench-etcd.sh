#!/bin/bash
# Usage: scripts/bench-etcd.sh BINDIR [ROUNDS] [bench flags...]
#
# The issue 11 reference comparison: a three-node etcd cluster and a
# three-node ledgerd network on this machine's loopback, under the same load
# from the same tool (`ledgerctl bench`: 64 mTLS HTTP/1.1 keep-alive
# connections, 1 KiB values; etcd through its v3 JSON gateway with
# --etcd), run one after the other, alternating, ROUNDS times (default 3).
# Needs etcd (Debian: apt-get install etcd-server), openssl and jq; BINDIR
# holds ledgerd and ledgerctl. Certificates (a CA, one server certificate per
# member for both the client and the peer interfaces, one client
# certificate), data and logs go to a fresh directory under ${TMPDIR:-/tmp},
# removed at the end (KEEP=1 keeps it). Reports go to OUT (default
# ./bench-etcd-out), one JSON file per run; a summary line per run is
# printed. The extra flags go to both benches (e.g. --duration 5s).
set -eu
B=$(cd "$1" && pwd); ROUNDS=${2:-3}; shift; [ $# -gt 0 ] && shift
OUT=${OUT:-./bench-etcd-out}; mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
ETCD=${ETCD:-etcd}
P=${ETCD_PORT:-32370}
D=$(mktemp -d "${TMPDIR:-/tmp}/etcd-bench.XXXXXX")
pids=()
stop_etcd() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
cleanup() {
  stop_etcd
  if [ -n "${KEEP:-}" ]; then echo "kept $D" >&2; else rm -rf "$D"; fi
}
trap cleanup EXIT

# Certificates: P-256 ECDSA, as ledgerd's.
cd "$D"
openssl ecparam -name prime256v1 -genkey -noout -out ca.key
openssl req -x509 -new -key ca.key -subj /CN=etcd-bench-ca -days 2 -out ca.pem 2>/dev/null
for n in 1 2 3 client; do
  openssl ecparam -name prime256v1 -genkey -noout -out $n.key
  openssl req -new -key $n.key -subj /CN=etcd-$n -out $n.csr 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' > $n.ext
  openssl x509 -req -in $n.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile $n.ext -out $n.pem 2>/dev/null
done
cat client.pem client.key > client-bundle.pem
cd - >/dev/null

cluster=""
for n in 1 2 3; do cluster="$cluster${cluster:+,}e$n=https://127.0.0.1:$((P+10*n+1))"; done
start_etcd() {
  rm -rf "$D"/e?.data
  for n in 1 2 3; do
    "$ETCD" --name e$n --data-dir "$D/e$n.data" \
      --listen-client-urls https://127.0.0.1:$((P+10*n)) --advertise-client-urls https://127.0.0.1:$((P+10*n)) \
      --listen-peer-urls https://127.0.0.1:$((P+10*n+1)) --initial-advertise-peer-urls https://127.0.0.1:$((P+10*n+1)) \
      --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token bench \
      --client-cert-auth --trusted-ca-file "$D/ca.pem" --cert-file "$D/$n.pem" --key-file "$D/$n.key" \
      --peer-client-cert-auth --peer-trusted-ca-file "$D/ca.pem" --peer-cert-file "$D/$n.pem" --peer-key-file "$D/$n.key" \
      >"$D/e$n.log" 2>&1 & pids+=($!)
  done
  # The leader: the member whose status says it leads.
  for _ in $(seq 300); do
    for n in 1 2 3; do
      st=$(curl -sf --cacert "$D/ca.pem" --cert "$D/client.pem" --key "$D/client.key" \
        -X POST -d '{}' https://127.0.0.1:$((P+10*n))/v3/maintenance/status 2>/dev/null || true)
      if [ -n "$st" ] && [ "$(jq -r '.leader' <<<"$st")" = "$(jq -r '.header.member_id' <<<"$st")" ]; then
        LEADER=https://127.0.0.1:$((P+10*n)); return 0
      fi
    done
    sleep 0.1
  done
  echo "etcd: no leader" >&2; return 1
}
summary() { # LABEL FILE
  jq -r --arg l "$1" --arg load "$(cut -d' ' -f1 /proc/loadavg)" \
    '"\($l) load=\($load) ops/s=\(.appends.per_second) op p50/p99=\(.appends.latency.p50_ms)/\(.appends.latency.p99_ms) ms committed p50/p99=\(.committed.latency.p50_ms)/\(.committed.latency.p99_ms) ms errors=\(.appends.errors + .committed.unresolved)"' "$2"
}
for r in $(seq "$ROUNDS"); do
  order="etcd ledgerd"; [ $((r % 2)) = 0 ] && order="ledgerd etcd"
  for which in $order; do
    uptime > "$OUT/$which-$r.load"
    if [ $which = etcd ]; then
      start_etcd
      "$B/ledgerctl" bench --etcd "$LEADER" --cert "$D/client-bundle.pem" --service-cert "$D/ca.pem" --json "$@" >"$OUT/etcd-$r.json" 2>"$D/bench.err" || cat "$D/bench.err" >&2
      stop_etcd
    else
      "$HERE/bench-network.sh" "$B" "$OUT/ledgerd-$r.json" "$@" 2>"$D/bench.err" || cat "$D/bench.err" >&2
    fi
    summary "$which r$r" "$OUT/$which-$r.json"
  done
done
