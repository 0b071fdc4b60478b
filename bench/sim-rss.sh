#!/usr/bin/env bash
# Measure `cereplay sim` as its own process at Maestro's scale: resident
# memory with 3,000 agent connections and Subscribe streams, then sim's CPU
# time and throughput for WORKS guestbook spec creates and as many statuses
# (the load runs in a separate process, bench/simload).
#
#   bench/sim-rss.sh                 # 3,000 agents, 30,000 works
#   WORKS=150000 bench/sim-rss.sh    # the full 150,000-work scale test
#   WORKS=0 bench/sim-rss.sh         # streams only
set -euo pipefail
cd "$(dirname "$0")/.."
AGENTS=${AGENTS:-3000}
WORKS=${WORKS:-30000}
go build -o bin/cereplay ./cmd/cereplay
go build -o bin/simload ./bench/simload
# File descriptors: two per agent connection in the load process.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
bin/simload -cereplay bin/cereplay -examples testdata/protocol/examples -agents "$AGENTS" -works "$WORKS" "$@"
