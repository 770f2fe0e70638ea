#!/bin/bash
# Usage: scripts/bench-three-vs-one.sh BINDIR [ROUNDS] [bench flags...]
#
# Issue 11's first speed target, measured as docs/benchmarks.md reports it:
# ROUNDS times (default 3), alternating, `ledgerctl bench` against the
# primary of a three-node network on loopback (scripts/bench-network.sh) and
# against a single node (`ledgerctl bench --start`), with the same flags
# (default --duration 5s --warmup 1s). One line per run: appends/s, p99
# append->Committed, the errors / unresolved / invalid counts, and each
# process's CPU (utime+stime from /proc) per append over a 3 s window that
# starts 2 s into the append phase (three: primary, follower, follower,
# load generator; one: server, load generator; processes under 2 us per
# append, such as wrapper shells, are left out), so give a --warmup plus
# --duration of at least 5 s; then three / one per round.
# Needs jq and curl; BINDIR holds ledgerd and ledgerctl. PORT (default
# 36740) is passed to bench-network.sh.
set -eu
B=$(cd "$1" && pwd); R=${2:-3}; shift; [ $# -gt 0 ] && shift
FLAGS=("$@"); [ ${#FLAGS[@]} -gt 0 ] || FLAGS=(--duration 5s --warmup 1s)
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/three-vs-one.XXXXXX"); trap 'rm -rf "$T"' EXIT
# cpuwin OUT PATTERN...: CPU ticks of each process matching a pattern, 2 s to 5 s from now.
cat >"$T/cpuwin.sh" <<'W'
#!/bin/bash
out=$1; shift; sleep 2
pids=(); for pat in "$@"; do pids+=($(pgrep -f -- "$pat" || true)); done
ticks() { for p in "${pids[@]}"; do awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null || echo 0; done; }
a=($(ticks)); sleep 3; b=($(ticks)); : >"$out"
for i in "${!pids[@]}"; do [ $(( b[i]-a[i] )) -gt 0 ] && echo "$(( b[i]-a[i] ))" >>"$out"; done; true
W
chmod +x "$T/cpuwin.sh"
hz=$(getconf CLK_TCK)
line() { # KIND JSON CPUFILE
  local aps; aps=$(jq -r .appends.per_second "$2")
  echo "$1 $(jq -r '[.appends.per_second, .committed.latency.p99_ms, .appends.errors, .committed.unresolved, .committed.invalid] | @tsv' "$2")" \
    "cpu_us/append:$(awk -v a="$aps" -v hz="$hz" '{v=$1*1e6/hz/(a*3); if (v >= 2) printf " %.0f", v}' "$3")"
}
for r in $(seq "$R"); do
  PORT=${PORT:-36740} BENCH_HOOK="'$T/cpuwin.sh' '$T/cpu3' 'ledgerd --data ${TMPDIR:-/tmp}/ledgerd-net' 'ledgerctl bench --endpoint'" \
    "$HERE/bench-network.sh" "$B" "$T/three.json" "${FLAGS[@]}" >/dev/null 2>"$T/three.err" || { cat "$T/three.err" >&2; exit 1; }
  echo "$r $(line three "$T/three.json" "$T/cpu3")"
  "$T/cpuwin.sh" "$T/cpu1" "$B/ledgerd --data" "ledgerctl bench --start" &
  "$B/ledgerctl" bench --start --ledgerd "$B/ledgerd" --json "${FLAGS[@]}" >"$T/one.json" 2>"$T/one.err" || { cat "$T/one.err" >&2; exit 1; }
  wait
  echo "$r $(line one "$T/one.json" "$T/cpu1")"
  echo "$r three/one $(jq -n --slurpfile a "$T/three.json" --slurpfile b "$T/one.json" '$a[0].appends.per_second / $b[0].appends.per_second * 100 | round / 100')"
done
