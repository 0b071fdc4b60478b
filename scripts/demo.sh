#!/usr/bin/env bash
# make demo: runs the main job end to end on the embedded default.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/cereplay}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$BIN" version
echo "demo: no pipeline yet"
