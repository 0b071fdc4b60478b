#!/usr/bin/env bash
# bench/record-latency.sh: the latency cereplay record adds to a Publish, side
# by side: a paced replay straight into a fresh sim, then the same replay into
# a fresh sim through the recorder. Prints each run's Publish latency per port
# and the recorder's CPU per message. Target: p99 added <= 200 us at 2,000
# messages/s.
#
# Usage: RATE=2000 DUR=30s bench/record-latency.sh [extra replay flags]
source "$(dirname "$0")/replay-common.sh"
RATE=${RATE:-1000}
DUR=${DUR:-30s}
trace default

# publish_latency: the summary's Publish latency per port, in us.
publish_latency() {
	jq -r '.publish_latency | to_entries[] | "  publish \(.key): p50 \(.value.p50_us) us, p99 \(.value.p99_us) us, p99.9 \(.value.p99_9_us) us (n=\(.value.count))"' \
		"$work/run/summary.json"
}

echo "== direct: --rate $RATE for $DUR"
start_sim
replay --rate "$RATE" --duration "$DUR" --create-consumers --run-id "direct-$$" "$@" || true
publish_latency
rm -rf "$work/run"
stop_sim

echo "== through cereplay record: --rate $RATE for $DUR"
start_sim
start_record ${RECORD_FLAGS:-}
replay --rate "$RATE" --duration "$DUR" --create-consumers --run-id "proxied-$$" "$@" || true
publish_latency
stop_record
