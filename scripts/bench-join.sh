#!/bin/bash
# Usage: scripts/bench-join.sh BINDIR ENDPOINT DATADIR0 NEWDIR PORT
#
# Times a new node joining a running ledgerd service: ENDPOINT is its
# primary (https://HOST:PORT), DATADIR0 the founder's data directory (its
# service.pem, admin.pem and member0.pem are used). It starts `ledgerd
# --join` in NEWDIR (client PORT, peer PORT+1), trusts it with `ledgerctl
# nodes trust` as soon as it says it is Pending, and once it listens appends
# an entry on ENDPOINT and waits until the new node serves it (GET
# /app/transactions/{id}, Ready): the new node has caught up and serves reads.
# It prints each phase and the total; the new node keeps running (its pid
# in NEWDIR.pid). Build the service first, e.g. a founder and
# `ledgerctl bench --duration 150s` for ~1M entries.
set -u
B=$(cd "$1" && pwd); EP=$2; A=$3; D=$4; PORT=$5
now() { date +%s.%N; }
curl_a() { curl -s --cacert "$A/service.pem" --cert "$A/admin.pem" --key "$A/admin.pem" "$@"; }
rm -rf "$D"
t0=$(now)
"$B/ledgerd" --data "$D" --listen 127.0.0.1:$PORT --peer-listen 127.0.0.1:$((PORT+1)) --log-level info \
  --join "$EP" --service-cert "$A/service.pem" > "$D.out" 2> "$D.err" &
echo $! > "$D.pid"
until grep -q 'is Pending' "$D.out" 2>/dev/null; do sleep 0.02; done
tp=$(now)
"$B/ledgerctl" nodes trust "$(grep 'is Pending' "$D.out" | awk '{print $2}')" --cert "$A/member0.pem" \
  --endpoint "$EP" --service-cert "$A/service.pem" > /dev/null
tt=$(now)
until grep -q 'listening on' "$D.out" 2>/dev/null; do sleep 0.02; done
tl=$(now)
TX=$(curl_a -D - -o /dev/null -X POST -H 'content-type: application/json' -d '{"contents":"after the join"}' \
  "$EP/app/transactions?api-version=2022-05-13" | awk 'tolower($1)=="x-ms-ccf-transaction-id:" {print $2}' | tr -d '\r')
until [ "$(curl_a -o "$D.read" -w '%{http_code}' "https://127.0.0.1:$PORT/app/transactions/$TX?api-version=2022-05-13")" = 200 ] &&
  grep -q Ready "$D.read"; do sleep 0.02; done
tr=$(now)
grep -o 'installed a snapshot to start from.*' "$D.err" || echo "no snapshot installed: the whole ledger was replayed"
awk -v t0="$t0" -v tp="$tp" -v tt="$tt" -v tl="$tl" -v tr="$tr" 'BEGIN {
  printf "start->Pending %.2fs; trust %.2fs; trusted->listening %.2fs; listening->entry %s served %.2fs\n", tp-t0, tt-tp, tl-tt, "'"$TX"'", tr-tl
  printf "TOTAL ledgerd --join start -> serving reads %.2fs (without the trust step %.2fs)\n", tr-t0, (tr-t0)-(tt-tp) }'
