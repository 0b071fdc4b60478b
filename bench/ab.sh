#!/usr/bin/env bash
# bench/ab.sh: two builds of cereplay side by side in one of the replay
# benchmarks, alternating, the order flipping each round, with the medians
# of each at the end. This VM's timing moves by the hour, so a change is
# judged only against runs of the build before it made in the same
# minutes (README, Performance).
#
# Usage: bench/ab.sh A B SCRIPT [flags for the script]
#   A, B    a git revision (built from a clean export of it) or a binary
#   SCRIPT  bench/replay-cpu.sh or bench/replay-max.sh (anything printing
#           their "wall ..." and "send lateness us: ..." lines)
# Env: ROUNDS (3), and whatever SCRIPT reads (RATE, DUR, SIM_PREFIX,
# REPLAY_PREFIX, ...). Example, the paced CPU and lateness with sim and
# replayer each on a core:
#   SIM_PREFIX="taskset -c 1" REPLAY_PREFIX="taskset -c 0" RATE=500 DUR=30s \
#       bench/ab.sh main HEAD bench/replay-cpu.sh
# Per run it prints the replayer's CPU (user + sys), wall, peak RSS, send
# lateness p99 and p99.9 and reply lateness p99; the medians follow.
# BASE_RATE=1 (with bench/replay-cpu.sh) gives CPU per event: each run is
# followed at once by one of the same build at RATE=$BASE_RATE, whose CPU
# (the run's fixed cost: connecting, consumers, idle streams) is taken
# from the run's before dividing by its events (specs and statuses), so
# that the two runs of a difference come one after the other, not a set apart.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 3 ] || { sed -n '2,20p' "$0"; exit 2; }
a=$1 b=$2 script=$3
shift 3
ROUNDS=${ROUNDS:-3}
tmp=$(mktemp -d "${BENCH_DIR:-/tmp}/cereplay-ab.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# binary REV-OR-FILE NAME: a path to a cereplay binary for it.
binary() {
	if [ -f "$1" ] && [ -x "$1" ]; then
		echo "$1"
		return
	fi
	local src="$tmp/src-$2"
	mkdir -p "$src"
	git archive "$1" | tar -x -C "$src"
	(cd "$src" && go build -o "$tmp/cereplay-$2" ./cmd/cereplay) >&2
	echo "$tmp/cereplay-$2"
}
bin_a=$(binary "$a" a)
bin_b=$(binary "$b" b)

# run NAME BIN FLAGS...: one run of the script (and its BASE_RATE run);
# appends "cpu wall rss p99 p999 reply-p99 per-event" to $tmp/NAME and
# prints it.
run() {
	local name=$1 bin=$2 out w l base events per=-
	shift 2
	out=$(BIN=$bin NOBUILD=1 "$script" "$@" 2>&1 || true)
	if [ -n "${BASE_RATE:-}" ]; then
		base=$(RATE=$BASE_RATE BIN=$bin NOBUILD=1 "$script" "$@" 2>&1 || true)
		base=$(sed -nE 's/^wall [0-9.]+s, CPU ([0-9.]+)s user ([0-9.]+)s sys.*/\1 \2/p' <<< "$base" | tail -n 1)
		# Each spec sent is two events: it and its status.
		events=$(sed -nE 's/^send lateness us: .*\(n=([0-9]+)\)/\1/p' <<< "$out" | tail -n 1)
	fi
	# wall 36.08s, CPU 8.37s user 7.19s sys, peak RSS 366 MiB, exit 0
	w=$(sed -nE 's/^wall ([0-9.]+)s, CPU ([0-9.]+)s user ([0-9.]+)s sys, peak RSS ([0-9]+) MiB, exit ([0-9]+).*/\1 \2 \3 \4 \5/p' <<< "$out" | tail -n 1)
	# send lateness us: p50 1.867 p99 2854.911 p99.9 14827.519 max ...
	l=$(sed -nE 's/^send lateness us: .* p99 ([0-9.]+) p99\.9 ([0-9.]+) .*/\1 \2/p' <<< "$out" | tail -n 1)
	# reply lateness us: p50 36.447 p99 134.143 p99.9 ...
	rl=$(sed -nE 's/^reply lateness us: .* p99 ([0-9.]+) p99\.9 .*/\1/p' <<< "$out" | tail -n 1)
	[ -n "$w" ] || { echo "$name: no result from $script:"; tail -n 20 <<< "$out"; exit 1; }
	read -r wall user sys rss rc <<< "$w"
	read -r p99 p999 <<< "${l:-- -}"
	if [ -n "${base:-}" ] && [ -n "${events:-}" ] && [ "$events" -gt 0 ]; then
		per=$(awk -v u="$user" -v s="$sys" -v b="$base" -v n="$events" 'BEGIN {split(b, c, " ");
			printf "%.0f", (u + s - c[1] - c[2]) * 1e6 / (2 * n)}')
		base=$(awk -v b="$base" 'BEGIN {split(b, c, " "); printf "%.2f", c[1] + c[2]}')
	fi
	echo "$(awk -v u="$user" -v s="$sys" 'BEGIN {printf "%.2f", u + s}') $wall $rss $p99 $p999 ${rl:--} $per" >> "$tmp/$name"
	read -r cpu wall rss p99 p999 rp99 per < <(tail -n 1 "$tmp/$name")
	# A run that did not account for every event (replay exit 1) is
	# still counted, and marked: its CPU is not a finished run's.
	echo "$name round $round: CPU $cpu s, wall $wall s, RSS $rss MiB, lateness p99 $p99 us, p99.9 $p999 us, reply p99 $rp99 us, exit $rc (load $(cut -d' ' -f1 /proc/loadavg))${base:+, at RATE=$BASE_RATE CPU $base s: $per us CPU per event}"
}
for round in $(seq "$ROUNDS"); do
	if (( round % 2 )); then
		run A "$bin_a" "$@"; run B "$bin_b" "$@"
	else
		run B "$bin_b" "$@"; run A "$bin_a" "$@"
	fi
done

# median FILE COLUMN
median() {
	cut -d' ' -f"$2" "$1" | grep -v '^-$' | sort -g | awk '{v[NR] = $1} END {
		if (NR == 0) { print "-"; exit }
		if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
echo "medians of $ROUNDS: CPU s, wall s, RSS MiB, lateness p99 us, p99.9 us, reply lateness p99 us${BASE_RATE:+, CPU per event us}"
for n in A B; do
	label=$a; [ $n = B ] && label=$b
	echo "$n ($label): $(median "$tmp/$n" 1) $(median "$tmp/$n" 2) $(median "$tmp/$n" 3) $(median "$tmp/$n" 4) $(median "$tmp/$n" 5) $(median "$tmp/$n" 6)${BASE_RATE:+ $(median "$tmp/$n" 7)}"
done
