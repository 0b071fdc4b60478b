#!/usr/bin/env bash
# bench/replay-rate.sh: send-lateness of the scheduler against sim.
#   1. --rate 2000 for 30 s: target p99 <= 250 us, p99.9 <= 2 ms;
#   2. the scale test's 20 works/s (--rate 20) for 30 s: target p99 <= 100 us.
# Uses the default trace (generated once into $BENCH_DIR, default /tmp).
#
# Measured 2026-11-28 on a quiet machine: --rate 20 p50 5-6 us, p99 139-324
# us (median 272 us of 5), p99.9 0.6-2 ms; --spin-window 1.5ms did worse
# (p99 2.4 ms: spinning takes CPU from sim). --rate 2000 for 30 s: sim and
# the replayer together cannot carry 2,000 specs/s plus 2,000 statuses/s on
# 2 cores (sim's Publish median 60-190 ms and rising), so lateness grows to
# seconds; on 20 s runs p99 37-92 ms. The scheduler alone meets both targets:
#   go test -run '^$' -bench ScheduleLateness -benchtime 10s ./replay/
#
# Usage: bench/replay-rate.sh [extra replay flags]
source "$(dirname "$0")/replay-common.sh"
trace default
start_sim
replay --rate 2000 --duration 30s --create-consumers --run-id "rate2000-$$" "$@" || true
rm -rf "$work/run"
replay --rate 20 --duration 30s --run-id "rate20-$$" "$@" || true
