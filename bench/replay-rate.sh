#!/usr/bin/env bash
# bench/replay-rate.sh: send-lateness of the scheduler against sim.
#   1. --rate 2000 for 30 s: target p99 <= 250 us, p99.9 <= 2 ms;
#   2. the scale test's 20 works/s (--rate 20) for 30 s, against a fresh
#      sim (an empty Maestro, as the scale test starts): target p99 <= 100 us.
# Uses the default trace (generated once into $BENCH_DIR, default /tmp).
# Results over time: bench/RESULTS.md.
#
# Usage: bench/replay-rate.sh [extra replay flags]
source "$(dirname "$0")/replay-common.sh"
trace default
start_sim
replay --rate 2000 --duration 30s --create-consumers --run-id "rate2000-$$" "$@" || true
rm -rf "$work/run"
stop_sim
start_sim
replay --rate 20 --duration 30s --create-consumers --run-id "rate20-$$" "$@" || true
