#!/usr/bin/env bash
# scripts/report-check.sh: the HTML report in a real browser. Makes two runs
# of a small trace against two embedded sims (the second with
# --publish-latency 20ms, a slower target), scraping each sim's metrics;
# draws them with `cereplay report`; opens the page in headless Chromium
# (Debian's package, installed when missing); fails on any console error or
# a missing chart; saves the screenshot to docs/report.png (OUT= to change).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/cereplay}
OUT=${OUT:-docs/report.png}
[ -x "$BIN" ] && [ -n "${NOBUILD:-}" ] || go build -o "$BIN" ./cmd/cereplay
if ! command -v chromium >/dev/null; then
	echo "== installing chromium (Debian package)"
	apt-get install -y chromium >/dev/null || { apt-get update >/dev/null && apt-get install -y chromium >/dev/null; }
fi
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

# start_sim NAME [flags]: a sim on free loopback ports; its addresses in $work/NAME.out.
start_sim() {
	local name=$1
	shift
	"$BIN" sim --source-listen 127.0.0.1:0 --broker-listen 127.0.0.1:0 --rest-listen 127.0.0.1:0 \
		--metrics-listen 127.0.0.1:0 --health-listen 127.0.0.1:0 "$@" > "$work/$name.out" 2> "$work/$name.err" &
	pids+=($!)
	for _ in $(seq 100); do
		grep -q '^health' "$work/$name.out" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "sim $name did not start:"; cat "$work/$name.err"; exit 1
}
addr() { awk -v k="$2" '$1==k{print $2}' "$work/$1.out"; }

echo "== two runs of a 100 x 10 trace at --rate 100, the second against a slower sim"
"$BIN" generate --quiet --out "$work/trace" --clusters 100 --works-per-cluster 10 --subscribe-pause 0s --create-after 0s
start_sim fast
start_sim slow --publish-latency 20ms
for name in fast slow; do
	"$BIN" replay --quiet --rate 100 --create-consumers --source-addr "$(addr $name source)" \
		--broker-addr "$(addr $name broker)" --rest-url "$(addr $name rest)" \
		--target-metrics "http://$(addr $name metrics)/metrics" --out "$work/runs/$name" "$work/trace" | head -1
done

echo "== report"
"$BIN" report "$work/runs/fast" "$work/runs/slow" -o "$work/report.html"
ls -l "$work/report.html"

echo "== headless chromium"
chrome=(chromium --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update
	--disable-sync --no-first-run --user-data-dir="$work/profile" --enable-logging=stderr --v=0)
timeout 120 "${chrome[@]}" --dump-dom "file://$work/report.html" > "$work/dom.html" 2> "$work/dom.err"
timeout 120 "${chrome[@]}" --screenshot="$work/report.png" --window-size=1400,2000 "file://$work/report.html" \
	> /dev/null 2> "$work/shot.err"
fail=0
if grep -hE 'CONSOLE|Uncaught' "$work/dom.err" "$work/shot.err"; then
	echo "FAIL: console messages above"; fail=1
fi
charts=$(grep -o '<svg class="chart"' "$work/dom.html" | wc -l)
if [ "$charts" -lt 10 ]; then
	echo "FAIL: the rendered page has $charts charts, want 10"; fail=1
fi
[ -s "$work/report.png" ] || { echo "FAIL: no screenshot"; fail=1; }
[ "$fail" = 0 ] || exit 1
mkdir -p "$(dirname "$OUT")"
cp "$work/report.png" "$OUT"
echo "ok: $charts charts, no console errors; screenshot in $OUT"
