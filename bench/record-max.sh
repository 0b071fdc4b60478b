#!/usr/bin/env bash
# bench/record-max.sh: the full default trace (3,000 agent streams) replayed
# at --max through cereplay record into sim. Targets: every event accounted
# (replay exit 0), recorder peak RSS <= 512 MB; the recording verifies.
#
# Usage: [RECORD_FLAGS="--upstream-conns 16"] bench/record-max.sh [extra replay flags]
source "$(dirname "$0")/replay-common.sh"
trace default
start_sim
start_record ${RECORD_FLAGS:-}
replay --max --create-consumers "$@" || true
stop_record
