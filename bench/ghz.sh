#!/usr/bin/env bash
# bench/ghz.sh: cereplay `replay --only source --max` side by side with ghz
# v0.120.0 (a general gRPC load tester), both publishing the same spec
# events to the same counting sink (bench/sink) with the same connections
# and concurrency. Target on the 2-core reference machine: cereplay
# reaches >= 2x ghz's Publish throughput at <= 0.5x its CPU per call.
# Results over time: bench/RESULTS.md.
#
# What is the same for both:
# - messages: ghz sends the trace's first spec create as a PublishRequest
#   (bench/onespec); cereplay sends the trace's first CALLS specs, the same
#   guestbook ManifestWork creates for other clusters: the sink's byte
#   count shows the mean size of each (4,666 and about 4,672 bytes);
# - the target: a fresh sink per run, whose count must equal CALLS;
# - one connection (cereplay's source opens one per source address; ghz
#   --connections 1) and CONC calls in flight (ghz --concurrency,
#   cereplay --max-inflight);
# - CALLS calls (ghz --total, cereplay --limit).
# Throughput is calls over the time of sending: ghz's rps (its count over
# its total, from its first call to its last answer); cereplay's
# specs_sent / send_seconds (from T0, after its stream subscribed, to its
# last answer). CPU per call is the whole process's user + sys (from
# /usr/bin/time) over CALLS: start-up included for both; a run of 100
# calls of each, first, says what start-up costs.
# cereplay also reads the trace's statuses (it expects real agents'
# answers, which the sink never sends: they end missing, allowed) and
# writes its run folder; that is in its CPU too.
#
# Usage: bench/ghz.sh. Env: CALLS (50000), CONC (50), ROUNDS (3), GHZ
# (a ghz binary; else v0.120.0 is installed once into $BENCH_DIR).
# Runs alternate, the order flipping each round; medians at the end.
source "$(dirname "$0")/replay-common.sh"
CALLS=${CALLS:-50000}
CONC=${CONC:-50}
ROUNDS=${ROUNDS:-3}
GHZ_VERSION=v0.120.0

# A trace with at least CALLS specs: 50 works per cluster.
trace "$(( (CALLS + 49) / 50 ))x50" --clusters $(( (CALLS + 49) / 50 ))

if [ -z "${GHZ:-}" ]; then
	GHZ=$BENCH_DIR/cereplay-ghz-$GHZ_VERSION/ghz
	if [ ! -x "$GHZ" ]; then
		echo "== go install github.com/bojand/ghz/cmd/ghz@$GHZ_VERSION"
		GOBIN=$(dirname "$GHZ") go install "github.com/bojand/ghz/cmd/ghz@$GHZ_VERSION"
	fi
fi
# The CloudEvent proto ghz reads is the one in the sdk-go module the
# project builds with.
sdk_dir=$(go list -m -f '{{.Dir}}' open-cluster-management.io/sdk-go)
if [ -z "$sdk_dir" ]; then
	go mod download open-cluster-management.io/sdk-go
	sdk_dir=$(go list -m -f '{{.Dir}}' open-cluster-management.io/sdk-go)
fi
proto_dir=$sdk_dir/pkg/cloudevents/generic/options/grpc/protobuf/v1
go build -o "$work/sink" ./bench/sink
go run ./bench/onespec -o "$work/spec.bin" -n "$CALLS" "$TRACE"

sink_pid=
# start_sink: a fresh sink on a free loopback port; sets SINK.
start_sink() {
	# Not the last sink's address: its file goes first (the shell may
	# open the new one after the loop below has read the old).
	rm -f "$work/sink.out"
	"$work/sink" > "$work/sink.out" 2> "$work/sink.err" &
	sink_pid=$!
	await_line "$work/sink.out" sink
	SINK=$(awk '$1=="sink"{print $2}' "$work/sink.out")
	[ -n "$SINK" ] || { echo "sink did not start:"; cat "$work/sink.err"; exit 1; }
}

# stop_sink N: stop the sink and check that it counted N publishes; sets
# SINK_BYTES (per call) and SINK_CPU (seconds).
stop_sink() {
	kill -INT "$sink_pid"
	wait "$sink_pid"
	sink_pid=
	local got
	read -r got SINK_BYTES SINK_CPU < <(awk '$1=="publish"{print $2, $4, $8}' "$work/sink.out")
	if [ "$got" != "$1" ]; then
		echo "the sink counted ${got:-nothing} publishes, want $1:"; cat "$work/sink.out" "$work/sink.err"; exit 1
	fi
	SINK_BYTES=$((SINK_BYTES / $1))
}
trap 'if [ -n "$sink_pid" ]; then kill -INT "$sink_pid"; wait "$sink_pid" || true; fi; cleanup' EXIT

# cpu_of FILE: user + sys seconds from /usr/bin/time's last line.
cpu_of() { tail -n 1 "$1" | awk '{print $2 + $3}'; }

# run_ghz N: ghz with N calls against a fresh sink; sets RATE and CPU.
run_ghz() {
	start_sink
	/usr/bin/time -f "%e %U %S" -o "$work/ghz.time" "$GHZ" --insecure \
		--proto "$proto_dir/cloudevent.proto" --import-paths "$proto_dir" \
		--call io.cloudevents.v1.CloudEventService.Publish --binary-file "$work/spec.bin" \
		--connections 1 --concurrency "$CONC" --total "$1" -O json "$SINK" > "$work/ghz.json"
	stop_sink "$1"
	local ok
	ok=$(jq '.statusCodeDistribution.OK // 0' "$work/ghz.json")
	[ "$ok" = "$1" ] || { echo "ghz: $ok of $1 calls OK:"; jq -c '.statusCodeDistribution, .errorDistribution' "$work/ghz.json"; exit 1; }
	RATE=$(jq '.rps' "$work/ghz.json")
	CPU=$(cpu_of "$work/ghz.time")
}

# run_cereplay N: cereplay replay --only source --max of N specs against a
# fresh sink; sets RATE and CPU.
run_cereplay() {
	start_sink
	rm -rf "$work/run"
	/usr/bin/time -f "%e %U %S" -o "$work/cereplay.time" "$BIN" replay --quiet --out "$work/run" \
		--only source --max --max-inflight "$CONC" --limit "$1" --settle 1ms --allow-missing "$1" \
		--source-addr "$SINK" "$TRACE" > "$work/cereplay.out"
	stop_sink "$1"
	local sent
	sent=$(jq '.outcomes_by_flow["source>server"].sent // 0' "$work/run/summary.json")
	[ "$sent" = "$1" ] || { echo "cereplay: $sent of $1 specs sent:"; cat "$work/cereplay.out"; exit 1; }
	RATE=$(jq '.specs_sent / .send_seconds' "$work/run/summary.json")
	CPU=$(cpu_of "$work/cereplay.time")
}

load() { awk '{print $1}' /proc/loadavg; }
us_per_call() { echo "$1 $2" | awk '{printf "%.0f", $1 * 1e6 / $2}'; }

echo "== $CALLS Publish calls of each, 1 connection, $CONC in flight, $ROUNDS rounds; $(uptime)"
run_ghz 100
echo "start-up (100 calls): ghz $CPU s CPU"
run_cereplay 100
echo "start-up (100 calls): cereplay $CPU s CPU"

rows=$work/rows
printf '%-6s %-9s %10s %12s %14s %10s %6s\n' round tool calls/s "CPU µs/call" "sink µs/call" "bytes/call" load
for round in $(seq "$ROUNDS"); do
	order="ghz cereplay"
	[ $((round % 2)) = 0 ] && order="cereplay ghz"
	for tool in $order; do
		l=$(load)
		"run_$tool" "$CALLS"
		printf '%-6s %-9s %10.0f %12s %14s %10s %6s\n' "$round" "$tool" "$RATE" "$(us_per_call "$CPU" "$CALLS")" \
			"$(us_per_call "$SINK_CPU" "$CALLS")" "$SINK_BYTES" "$l"
		echo "$tool $RATE $(us_per_call "$CPU" "$CALLS")" >> "$rows"
	done
done

median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
g_rate=$(awk '$1=="ghz"{print $2}' "$rows" | median)
c_rate=$(awk '$1=="cereplay"{print $2}' "$rows" | median)
g_cpu=$(awk '$1=="ghz"{print $3}' "$rows" | median)
c_cpu=$(awk '$1=="cereplay"{print $3}' "$rows" | median)
printf '%-6s %-9s %10.0f %12s\n' median ghz "$g_rate" "$g_cpu"
printf '%-6s %-9s %10.0f %12s\n' median cereplay "$c_rate" "$c_cpu"
echo "cereplay ÷ ghz: throughput $(echo "$c_rate $g_rate" | awk '{printf "%.2f", $1 / $2}')x (target >= 2)," \
	"CPU per call $(echo "$c_cpu $g_cpu" | awk '{printf "%.2f", $1 / $2}')x (target <= 0.5); $(uptime)"
