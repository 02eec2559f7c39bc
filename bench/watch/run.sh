#!/usr/bin/env bash
# Watch benchmark: how many events per second watch audits and runs through its detectors, on one core.
#
#   bench/watch/run.sh
#   EVENTS=50000 ROUNDS=3 MIXES="api login" bench/watch/run.sh
#
# Environment (all optional): EVENTS per pipeline run (default 200000), ROUNDS per figure (5), MIXES ("api mixed
# login"), LONE (lone events timed for latency, 200), REFERENCE (events appended one transaction each, the previous
# watch path, 3000; 0 skips it), CPU (the core to pin to, 0).
#
# Method (see bench/README.md): the harness (crates/argus-watch/benches/pipeline.rs, built in release mode) queues
# EVENTS synthetic events on an in-process bus, then times the real consumer (Watch::start over a temp-file SQLite
# store opened as `argus up` opens it) until every event is audited, run through the detectors and their alerts
# stored. The whole process (the tokio thread and sqlx's SQLite thread) is pinned to one core. Separately it times the
# detectors alone over the same events, and a lone event's latency on an idle bus. A run that loses an event, fails
# a write or leaves a chain that does not verify is invalid and the harness exits non-zero.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CPU=${CPU:-0}
export EVENTS=${EVENTS:-200000} ROUNDS=${ROUNDS:-5} MIXES=${MIXES:-api mixed login} LONE=${LONE:-200}
export REFERENCE=${REFERENCE:-3000}

command -v taskset >/dev/null || { echo "run.sh: taskset (util-linux) is required" >&2; exit 1; }
cd "$ROOT"
echo "building the harness (release)" >&2
cargo bench --locked -q -p argus-watch --bench pipeline --no-run
echo "$(date -u +%Y-%m-%d) commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' + working tree'), $(nproc) cores, pinned to core $CPU"
taskset -c "$CPU" cargo bench --locked -q -p argus-watch --bench pipeline
