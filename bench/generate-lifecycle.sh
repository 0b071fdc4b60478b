#!/usr/bin/env bash
# bench/generate-lifecycle.sh: what the lifecycle phases cost `cereplay
# generate`: the default trace (3,000 clusters x 50 works, creates and
# their statuses), then the same with one update and one delete per work
# (--updates-per-work 1 --delete: three times the spec events and the
# statuses). Target on the 2-core reference machine: the lifecycle trace
# takes at most 2 times the default's wall time.
#
# Each side runs $RUNS times (default 3), alternating, and the fastest run
# counts, which keeps the ratio meaningful on a machine shared with other
# work.
#
# Usage: bench/generate-lifecycle.sh [extra `cereplay generate` flags for both]
# Needs /usr/bin/time.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/cereplay}
RUNS=${RUNS:-3}
go build -o "$BIN" ./cmd/cereplay
work=$(mktemp -d "${BENCH_DIR:-/tmp}/cereplay-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

# run NAME FLAGS...: one timed generation, appended to $work/NAME.times.
run() {
	local name=$1
	shift
	rm -rf "$work/trace"
	/usr/bin/time -f '%e %U %S %M' -o "$work/t" "$BIN" generate --quiet --out "$work/trace" "$@" > "$work/$name.summary"
	awk '{ printf "%s %.2f %s\n", $1, $2 + $3, $4 }' "$work/t" >> "$work/$name.times"
}
best() { sort -n -k1,1 "$1" | head -1; }

for _ in $(seq "$RUNS"); do
	run default "$@"
	run lifecycle --updates-per-work 1 --delete "$@"
done
cat "$work/default.summary" "$work/lifecycle.summary"
read -r dw dc drss < <(best "$work/default.times")
read -r lw lc lrss < <(best "$work/lifecycle.times")
load=$(cut -d' ' -f1 /proc/loadavg)
awk -v dw="$dw" -v dc="$dc" -v drss="$drss" -v lw="$lw" -v lc="$lc" -v lrss="$lrss" -v load="$load" -v runs="$RUNS" 'BEGIN {
	printf "default:   %.2f s wall, %.2f s CPU, %.0f MB peak RSS\n", dw, dc, drss/1024
	printf "lifecycle: %.2f s wall, %.2f s CPU, %.0f MB peak RSS (--updates-per-work 1 --delete)\n", lw, lc, lrss/1024
	printf "ratio:     %.2f wall, %.2f CPU (lifecycle / default; fastest of %d runs each); load average %s\n", lw/dw, lc/dc, runs, load
}'
