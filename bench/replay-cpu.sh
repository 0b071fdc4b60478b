#!/usr/bin/env bash
# bench/replay-cpu.sh: CPU per event of the replayer and of sim, paced.
# Plays the default trace at --rate $RATE (default 1000) for $DUR (default
# 20s) against a fresh sim and prints both processes' CPU: the replayer's
# from /usr/bin/time, sim's from /proc during the replay (including the
# consumer creation). Each spec sent is two events (the spec and its
# status reply). Run with RATE=1 for the fixed cost of the run (connect,
# consumers, idle streams) to subtract.
#
# Measured 2026-11-28 on a quiet machine:
#   RATE=1 (one run): replayer 3.1 s, sim 2.1 s over 25 s (the fixed cost);
#   RATE=1000 (3 runs): 20,001 specs, 40,002 events in 24 s: replayer
#              19.0-20.4 s (sys 7.2-7.9 s), sim 17.0-18.4 s: about 420 and
#              370-410 us of CPU per event after the fixed cost, against
#              about 105 us for the replayer at --max (bench/replay-max.sh),
#              where calls share writes and wake-ups. The pair takes 1.5 of
#              the 2 cores at 1,000 specs/s, and send lateness p99 is
#              already 8-14 ms.
#   GOGC=100 for both (sim's default is 400), 2 runs alternating with 2 of
#              the above: no different (sim 17.4 and 18.4 s).
# A profile at 1,000/s (replayer): write syscalls in gRPC's writer 17%,
# scheduler park/wake (futex) 17%, per-call stream setup 11%, GC 6%,
# the pacer's and dispatcher's kernel sleeps 6%, and 4% starting the
# thread their goroutine is locked to (for the sleep's timer slack).
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
