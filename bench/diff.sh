#!/usr/bin/env bash
# bench/diff.sh: how long `cereplay diff A B` takes on the full default
# trace (3,000 clusters x 50 works, 303,001 records, 1.8 GiB of raw
# records) against a copy of it, next to `cereplay verify` of both: diff
# reads and compares every record, verify reads and checks every byte.
#
# The two run alternately $RUNS times (default 3) and the fastest run of
# each counts, which keeps the ratio meaningful on a machine shared with
# other work. Target: diff <= 2 x (verify A + verify B).
#
# Usage: bench/diff.sh
#        RUNS=5 TRACE=/data/scale bench/diff.sh   # an existing trace as A
# Needs /usr/bin/time. Uses ~70 MB of scratch space in $BENCH_DIR (default
# /tmp).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/cereplay}
RUNS=${RUNS:-3}
[ -n "${NOBUILD:-}" ] || go build -o "$BIN" ./cmd/cereplay
work=$(mktemp -d "${BENCH_DIR:-/tmp}/cereplay-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

a=${TRACE:-$work/a}
[ -n "${TRACE:-}" ] || "$BIN" generate --quiet --out "$a" > /dev/null
cp -r "$a" "$work/b"

# best FILE: the line of FILE (wall cpu rss) with the smallest wall time.
best() { sort -n -k1,1 "$1" | head -1; }
# timed FILE CMD...: runs CMD, appends "wall cpu rss_kb" to FILE.
timed() {
	local out=$1
	shift
	/usr/bin/time -f '%e %U %S %M' -o "$work/t" "$@" > /dev/null
	awk '{ printf "%s %.2f %s\n", $1, $2 + $3, $4 }' "$work/t" >> "$out"
}

echo "== $RUNS x (cereplay verify A; cereplay verify B) and cereplay diff A B, alternating"
for _ in $(seq "$RUNS"); do
	timed "$work/verify.times" sh -c "'$BIN' verify '$a' && '$BIN' verify '$work/b'"
	timed "$work/diff.times" "$BIN" diff "$a" "$work/b"
done
read -r v_wall v_cpu v_rss < <(best "$work/verify.times")
read -r d_wall d_cpu d_rss < <(best "$work/diff.times")
load=$(cut -d' ' -f1 /proc/loadavg)
awk -v vw="$v_wall" -v vc="$v_cpu" -v vr="$v_rss" -v dw="$d_wall" -v dc="$d_cpu" -v dr="$d_rss" \
	-v load="$load" -v runs="$RUNS" 'BEGIN {
	printf "verify A and B: %.2f s wall, %.2f s CPU, %.0f MB peak RSS\n", vw, vc, vr/1024
	printf "diff A B:       %.2f s wall, %.2f s CPU, %.0f MB peak RSS\n", dw, dc, dr/1024
	printf "ratio:          %.2f wall, %.2f CPU (diff / verify of both; fastest of %d runs each); load average %s\n", dw/vw, dc/vc, runs, load
}'
