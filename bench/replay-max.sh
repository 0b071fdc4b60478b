#!/usr/bin/env bash
# bench/replay-max.sh: the full default trace (3,000 clusters x 50 works,
# 300,000 events) replayed at --max against sim with 3,000 agent streams.
# Target on the 2-core reference machine: <= 60 s wall, every event
# accounted (exit 0), replayer peak RSS <= 512 MB.
# Results over time: bench/RESULTS.md.
#
# Usage: bench/replay-max.sh [extra replay flags]. Takes minutes; the
# trace is generated once into $BENCH_DIR (default /tmp) and reused.
source "$(dirname "$0")/replay-common.sh"
trace default
start_sim
replay --max --create-consumers "$@"
