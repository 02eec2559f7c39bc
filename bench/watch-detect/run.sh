#!/usr/bin/env bash
# Watch's detectors alone: events per second through all default detectors on one core, and memory per tracked
# key.
#
#   bench/watch-detect/run.sh
#   USERS=20000 DAYS=1 ROUNDS=3 FLOOD=0 bench/watch-detect/run.sh
#
# Environment (all optional): USERS simulated users (default 5000), DAYS of their traffic (1), ROUNDS timed
# (5, after one warm-up), FLOOD calls of the flood run, each from a new IP, user, session and token (300000; 0
# skips it), CPU the core to pin to (0).
#
# Method (see bench/README.md): the harness (crates/argus-detect/benches/detectors.rs, release build) generates
# the detector tests' simulated traffic (crates/argus-detect/tests/sim) before timing, then runs fresh default
# `Detectors` over it once per round in one thread pinned to one core, and prints the median round, the memory
# each detector accounts for and the resident-set growth of the process over the round.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CPU=${CPU:-0}
export USERS=${USERS:-5000} DAYS=${DAYS:-1} ROUNDS=${ROUNDS:-5} FLOOD=${FLOOD:-300000}

command -v taskset >/dev/null || { echo "run.sh: taskset (util-linux) is required" >&2; exit 1; }
cd "$ROOT"
echo "building the harness (release)" >&2
cargo bench --locked -q -p argus-detect --bench detectors --no-run
echo "$(date -u +%Y-%m-%d) commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' + working tree'), $(nproc) cores, pinned to core $CPU"
taskset -c "$CPU" cargo bench --locked -q -p argus-detect --bench detectors
