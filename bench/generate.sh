#!/usr/bin/env bash
# bench/generate.sh: how fast `cereplay generate` makes the default trace
# (3,000 clusters x 50 works), against the physical bound: the zstd CLI
# compressing the same raw records (`zstd -3 -T2`).
#
# Prints wall time, peak RSS and size on disk of the generation, the zstd
# time, and their ratio. Targets on the 2-core reference machine: <= 5 s,
# <= 300 MB RSS, <= 40 MB on disk, ratio <= 1.5.
#
# Usage: bench/generate.sh [extra `cereplay generate` flags]
# Needs /usr/bin/time and zstd. Uses ~2 GB of scratch space in $BENCH_DIR
# (default /tmp) for the raw records. Run it on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/cereplay}
go build -o "$BIN" ./cmd/cereplay
work=$(mktemp -d "${BENCH_DIR:-/tmp}/cereplay-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "== cereplay generate --out $work/trace $*"
/usr/bin/time -f '%e %M %U %S' -o "$work/gen.time" "$BIN" generate --quiet --out "$work/trace" "$@"
read -r gen_wall gen_rss_kb gen_user gen_sys < "$work/gen.time"
disk=$(du -sb "$work/trace" | cut -f1)

# The raw records, exactly: each segment is a plain zstd stream of them.
# Decompress once into a file (it stays in the page cache), then time the
# CLI compressing it.
cat "$work"/trace/*.seg.zst | zstd -q -dc > "$work/raw"
raw=$(stat -c %s "$work/raw")
/usr/bin/time -f '%e %M %U %S' -o "$work/zstd.time" zstd -q -3 -T2 -c "$work/raw" > "$work/raw.zst"
read -r z_wall z_rss_kb z_user z_sys < "$work/zstd.time"
zsize=$(stat -c %s "$work/raw.zst")

load=$(cut -d' ' -f1 /proc/loadavg)
awk -v gw="$gen_wall" -v rss="$gen_rss_kb" -v disk="$disk" -v raw="$raw" -v gc="$gen_user+$gen_sys" \
    -v zw="$z_wall" -v zs="$zsize" -v zc="$z_user+$z_sys" -v load="$load" 'BEGIN {
	split(gc, a, "+"); gcpu = a[1] + a[2]; split(zc, b, "+"); zcpu = b[1] + b[2]
	printf "generate:    %.2f s wall, %.2f s CPU, %.0f MB peak RSS, %.1f MB on disk (%.1f MB raw records)\n", gw, gcpu, rss/1024, disk/1e6, raw/1e6
	printf "zstd -3 -T2: %.2f s wall, %.2f s CPU, %.1f MB\n", zw, zcpu, zs/1e6
	printf "ratio:       %.2f wall, %.2f CPU (generate / zstd); load average %s\n", gw/zw, gcpu/zcpu, load
}'
