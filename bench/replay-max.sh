#!/usr/bin/env bash
# bench/replay-max.sh: the full default trace (3,000 clusters x 50 works,
# 300,000 events) replayed at --max against sim with 3,000 agent streams.
# Target on the 2-core reference machine: <= 60 s wall, every event
# accounted (exit 0), replayer peak RSS <= 512 MB.
#
# Measured 2026-11-28 (2 cores shared with other jobs): 318 s before the
# source connection got static 16 MiB windows, 149 s after; 68 s (peak RSS
# 427 MB) with --memory-limit-mib 400, now the default: at 320 MiB the live
# heap sat at the soft limit and the replayer spent most of its CPU in GC.
# 60 s once the replayer stopped copying events (reused receive buffers,
# pooled send buffers, trace segments decompressed into recycled buffers);
# then 40.0, 46.7 and 48.0 s (387 MiB) with --max-inflight 256, now the
# default: the replayer's CPU fell from 68 s to 33 s. With the pacer
# goroutine and the fine-sleep clock: 38.0, 43.3, 52.1 s, 386 MiB.
#
# Usage: bench/replay-max.sh [extra replay flags]. Takes minutes; the
# trace is generated once into $BENCH_DIR (default /tmp) and reused.
source "$(dirname "$0")/replay-common.sh"
trace default
start_sim
replay --max --create-consumers "$@"
