# Sourced by bench/replay-*.sh: build, a cached trace, a sim on free ports.
# SIM_PREFIX and REPLAY_PREFIX go before the sim and replay commands, e.g.
# SIM_PREFIX="taskset -c 1" REPLAY_PREFIX="taskset -c 0" to give each a core.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/cereplay}
BENCH_DIR=${BENCH_DIR:-/tmp}
# NOBUILD=1 with BIN=path runs a binary built before (to compare two builds
# side by side, in alternating runs).
[ -n "${NOBUILD:-}" ] || go build -o "$BIN" ./cmd/cereplay
work=$(mktemp -d "$BENCH_DIR/cereplay-replay.XXXXXX")
sim_pid=
# stop_sim: stop the sim started by start_sim, if any.
stop_sim() {
	if [ -n "$sim_pid" ]; then kill -INT "$sim_pid" 2>/dev/null || true; wait "$sim_pid" 2>/dev/null || true; fi
	sim_pid=
}
cleanup() {
	if [ -n "${record_pid:-}" ]; then kill -INT "$(pgrep -P "$record_pid")" 2>/dev/null || true; wait "$record_pid" 2>/dev/null || true; fi
	stop_sim
	rm -rf "$work"
}
trap cleanup EXIT

# trace NAME GENERATE-FLAGS...: generate once, reuse from $BENCH_DIR.
trace() {
	local name=$1; shift
	local dir="$BENCH_DIR/cereplay-trace-$name"
	if [ ! -f "$dir/manifest.json" ]; then
		rm -rf "$dir"
		echo "== cereplay generate --out $dir $*"
		"$BIN" generate --quiet --out "$dir" "$@"
	fi
	TRACE=$dir
}

# await_line FILE WORD: wait (up to 10 s) for a line starting with WORD
# in FILE, where a server started in the background prints its address.
await_line() {
	for _ in $(seq 100); do
		grep -q "^$2" "$1" 2>/dev/null && return
		sleep 0.1
	done
}

# start_sim: a sim on free loopback ports; sets SOURCE, BROKER, REST.
start_sim() {
	${SIM_PREFIX:-} "$BIN" sim --source-listen 127.0.0.1:0 --broker-listen 127.0.0.1:0 --rest-listen 127.0.0.1:0 \
		--metrics-listen 127.0.0.1:0 --health-listen 127.0.0.1:0 "$@" > "$work/sim.out" 2> "$work/sim.err" &
	sim_pid=$!
	await_line "$work/sim.out" health
	SOURCE=$(awk '$1=="source"{print $2}' "$work/sim.out")
	BROKER=$(awk '$1=="broker"{print $2}' "$work/sim.out")
	REST=$(awk '$1=="rest"{print $2}' "$work/sim.out")
	[ -n "$SOURCE" ] && [ -n "$BROKER" ] || { echo "sim did not start:"; cat "$work/sim.err"; exit 1; }
}

# replay FLAGS...: run the replay under /usr/bin/time, print wall, RSS and
# the summary's key numbers.
replay() {
	local rc=0
	echo "== cereplay replay $* $TRACE"
	/usr/bin/time -f "%e %M %U %S" -o "$work/replay.time" ${REPLAY_PREFIX:-} "$BIN" replay --quiet --out "$work/run" \
		--source-addr "$SOURCE" --broker-addr "$BROKER" --rest-url "$REST" "$@" "$TRACE" || rc=$?
	# GNU time writes "Command exited with non-zero status N" first.
	read -r wall rss_kb cpu_u cpu_s < <(tail -n 1 "$work/replay.time")
	echo "wall ${wall}s, CPU ${cpu_u}s user ${cpu_s}s sys, peak RSS $((rss_kb / 1024)) MiB, exit $rc"
	jq -r '"records \(.records), outcomes \(.outcomes), \(.events_per_second|floor) events/s over \(.send_seconds|floor)s of sending",
		"send lateness us: p50 \(.send_lateness.p50_us) p99 \(.send_lateness.p99_us) p99.9 \(.send_lateness.p99_9_us) max \(.send_lateness.max_us) (n=\(.send_lateness.count))",
		"reply lateness us: p50 \(.reply_lateness.p50_us) p99 \(.reply_lateness.p99_us) p99.9 \(.reply_lateness.p99_9_us) max \(.reply_lateness.max_us) (n=\(.reply_lateness.count))",
		"spec delivery ms: p50 \(.spec_delivery_latency.p50_us/1000) p99 \(.spec_delivery_latency.p99_us/1000)",
		"status forward ms: p50 \(.status_forward_latency.p50_us/1000) p99 \(.status_forward_latency.p99_us/1000)"' \
		"$work/run/summary.json"
	return $rc
}

# start_record: cereplay record in front of the sim started by start_sim,
# under /usr/bin/time; points SOURCE and BROKER at the recorder.
record_pid=
start_record() {
	/usr/bin/time -f "%e %M %U %S" -o "$work/record.time" ${RECORD_PREFIX:-} "$BIN" record --quiet --out "$work/rec" \
		--source-listen 127.0.0.1:0 --source-upstream "$SOURCE" \
		--broker-listen 127.0.0.1:0 --broker-upstream "$BROKER" "$@" > "$work/record.out" 2> "$work/record.err" &
	record_pid=$!
	await_line "$work/record.out" broker
	SOURCE=$(awk '$1=="source"{print $2}' "$work/record.out")
	BROKER=$(awk '$1=="broker"{print $2}' "$work/record.out")
	[ -n "$SOURCE" ] && [ -n "$BROKER" ] || { echo "record did not start:"; cat "$work/record.err"; exit 1; }
}

# stop_record: SIGINT to the recorder (/usr/bin/time ignores it, so to its
# child), then its CPU, peak RSS and CPU per message, and verify.
stop_record() {
	kill -INT "$(pgrep -P "$record_pid")"
	wait "$record_pid" || true
	record_pid=
	local wall rss_kb cpu_u cpu_s msgs
	read -r wall rss_kb cpu_u cpu_s < <(tail -n 1 "$work/record.time")
	msgs=$(awk '$3 == "messages" {n += $2} END {print n+0}' "$work/record.out")
	echo "recorder: ${msgs} messages, CPU ${cpu_u}s user ${cpu_s}s sys, peak RSS $((rss_kb / 1024)) MiB," \
		"$(echo "($cpu_u + $cpu_s) * 1000000 / ($msgs + 1)" | bc) us CPU per message"
	grep -E '^(recorded|digest|RECORDING)' "$work/record.out"
	"$BIN" verify "$work/rec"
}
