#!/usr/bin/env bash
# make demo: the main job end to end on a fresh machine. Generates a
# 300 x 50 guestbook trace (30,000 events), starts the embedded sim on free
# loopback ports, replays the trace at --max with --create-consumers
# (scraping sim's metrics), prints the summary and draws the run with
# cereplay report. Exits with the replay's status.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/cereplay}
[ -x "$BIN" ] || go build -o "$BIN" ./cmd/cereplay
work=$(mktemp -d)
sim_pid=
cleanup() {
	if [ -n "$sim_pid" ]; then kill -INT "$sim_pid" 2>/dev/null || true; wait "$sim_pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT
"$BIN" version

echo "== generate: 300 clusters x 50 guestbook works"
"$BIN" generate --quiet --out "$work/trace" --clusters 300 --works-per-cluster 50

echo "== sim on free loopback ports"
"$BIN" sim --source-listen 127.0.0.1:0 --broker-listen 127.0.0.1:0 --rest-listen 127.0.0.1:0 \
	--metrics-listen 127.0.0.1:0 --health-listen 127.0.0.1:0 > "$work/sim.out" 2> "$work/sim.err" &
sim_pid=$!
for _ in $(seq 100); do
	grep -q '^health' "$work/sim.out" 2>/dev/null && break
	sleep 0.1
done
cat "$work/sim.out"
source_addr=$(awk '$1=="source"{print $2}' "$work/sim.out")
broker_addr=$(awk '$1=="broker"{print $2}' "$work/sim.out")
rest_url=$(awk '$1=="rest"{print $2}' "$work/sim.out")
metrics_addr=$(awk '$1=="metrics"{print $2}' "$work/sim.out")
[ -n "$source_addr" ] || { echo "sim did not start:"; cat "$work/sim.err"; exit 1; }

echo "== replay at --max with --create-consumers"
out=runs/demo-$(date -u +%Y%m%dT%H%M%SZ)
status=0
"$BIN" replay --max --create-consumers --source-addr "$source_addr" --broker-addr "$broker_addr" \
	--rest-url "$rest_url" --target-metrics "http://$metrics_addr/metrics" --out "$out" "$work/trace" || status=$?

echo "== report"
"$BIN" report "$out" -o "$out/report.html" && echo "charts of the run in $out/report.html"
exit "$status"
