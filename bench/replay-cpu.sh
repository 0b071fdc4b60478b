#!/usr/bin/env bash
# bench/replay-cpu.sh: CPU per event of the replayer and of sim, paced.
# Plays the default trace at --rate $RATE (default 1000) for $DUR (default
# 20s) against a fresh sim and prints both processes' CPU: the replayer's
# from /usr/bin/time, sim's from /proc during the replay (including the
# consumer creation). Each spec sent is two events (the spec and its
# status reply). Run with RATE=1 for the fixed cost of the run (connect,
# consumers, idle streams) to subtract.
# Results over time: bench/RESULTS.md.
#
# Usage: RATE=N DUR=D bench/replay-cpu.sh [extra replay flags]
source "$(dirname "$0")/replay-common.sh"
trace default
start_sim
sim_cpu() { awk '{print $14 + $15}' "/proc/$sim_pid/stat"; }
ticks=$(getconf CLK_TCK)
t0=$(sim_cpu)
replay --rate "${RATE:-1000}" --duration "${DUR:-20s}" --create-consumers --run-id "cpu-$$" "$@" || true
t1=$(sim_cpu)
echo "sim CPU $(awk -v d=$((t1 - t0)) -v t="$ticks" 'BEGIN{printf "%.2f", d / t}')s during the replay (consumer creation included)"
