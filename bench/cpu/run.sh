#!/usr/bin/env bash
# CPU per request of one or more `argus` binaries, side by side: the token endpoint (client_credentials) and the
# gate (plain proxy; plain proxy with watch auditing every call). For before/after comparisons of a change on a
# shared, noisy machine, where req/s figures drift too much to compare.
#
#   BINS="/tmp/argus-before target/release/argus" bench/cpu/run.sh
#   MODE=callgrind BINS="..." bench/cpu/run.sh     # instructions per request (valgrind), slower
#
# Environment (all optional): BINS (default target/release/argus), SCENARIOS ("token gate-proxy gate-events"),
# MODE (cpu | callgrind), ROUNDS (3, cpu mode), DURATION seconds per run (4, cpu mode), CONNECTIONS (64 in cpu
# mode, 8 in callgrind mode), CG_SECONDS of load per callgrind run (20), CG_KEEP (a directory: keep the callgrind
# profiles there, for callgrind_annotate).
#
# cpu mode: each binary runs the scenario in turn (A, B, A, B, ...), pinned to core 0, wrk and the upstream on
# core 1, at saturation for DURATION s; the figure is the process's CPU time (user + system, every thread, from
# /proc/PID/stat) over the run and the drain after it (watch's deferred audit appends), divided by the requests
# answered, and its context switches (every thread's /proc/PID/task/*/status) per request.
# callgrind mode: the binary runs under `valgrind --tool=callgrind`, not instrumented; after set-up and a warm-up
# instrumentation is switched on for CG_SECONDS of load and the drain, then dumped: user-space instructions per
# request answered, every thread. Kernel work (syscalls, context switches) is not in that figure.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BINS=${BINS:-$ROOT/target/release/argus}
SCENARIOS=${SCENARIOS:-token gate-proxy gate-events}
MODE=${MODE:-cpu}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-4}
CG_SECONDS=${CG_SECONDS:-20}
if [ "$MODE" = callgrind ]; then CONNECTIONS=${CONNECTIONS:-8}; else CONNECTIONS=${CONNECTIONS:-64}; fi
SERVER_CPU=0
LOAD_CPU=1
SCOPE='items:read'
BENCH_DIR=$ROOT/bench/token-endpoint
export BENCH_DIR

say() { printf '%s\n' "$*" >&2; }
die() { say "run.sh: $*"; exit 1; }

for tool in taskset curl python3 wrk nginx; do command -v "$tool" >/dev/null || die "$tool is required"; done
[ "$MODE" != callgrind ] || command -v valgrind >/dev/null || die "valgrind is required for MODE=callgrind"
for bin in $BINS; do [ -x "$bin" ] || die "no binary $bin"; done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/argus-cpu-bench-XXXXXX")
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

json_field() {
  python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

# The upstream of the gate scenarios: nginx answering a fixed JSON body, one worker, on the load core.
start_upstream() {
  UPSTREAM_PORT=$(free_port)
  mkdir -p "$TMP/upstream"
  cat >"$TMP/upstream/nginx.conf" <<EOF
daemon off;
worker_processes 1;
error_log $TMP/upstream/error.log warn;
pid $TMP/upstream/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 10000000;
  client_body_temp_path $TMP/upstream/body;
  proxy_temp_path $TMP/upstream/proxy;
  fastcgi_temp_path $TMP/upstream/fastcgi;
  uwsgi_temp_path $TMP/upstream/uwsgi;
  scgi_temp_path $TMP/upstream/scgi;
  server {
    listen 127.0.0.1:$UPSTREAM_PORT;
    default_type application/json;
    location / { return 200 '{"id":42,"name":"bench item","ok":true}'; }
  }
}
EOF
  taskset -c "$LOAD_CPU" nginx -p "$TMP/upstream" -c "$TMP/upstream/nginx.conf" 2>"$TMP/upstream/stderr" &
  PIDS+=("$!")
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$UPSTREAM_PORT") 2>/dev/null && return 0
    sleep 0.1
  done
  die "the upstream does not listen"
}

# argus_config SCENARIO: the gate routes everything to the upstream with no token check and no limits; watch is
# on for `token` (as `argus up` by default) and `gate-events`.
argus_config() {
  local watch=false
  case $1 in token | gate-events) watch=true ;; esac
  cat <<EOF
[issuer]
listen = "127.0.0.1:0"
[metrics]
listen = "127.0.0.1:0"
[watch]
listen = "127.0.0.1:0"
enabled = $watch
[gate]
listen = "127.0.0.1:0"
[[gate.routes]]
name = "bench"
prefix = "/"
upstream = "http://127.0.0.1:$UPSTREAM_PORT"
auth = "none"
[gate.rate_limits]
per_ip = "off"
per_user = "off"
per_client = "off"
per_token = "off"
EOF
}

# start_argus BIN SCENARIO DIR: sets ARGUS_PID, TARGET (the URL wrk loads) and, for `token`, BASIC.
start_argus() {
  local bin=$1 scenario=$2 dir=$3 admin_secret issuer gate
  mkdir -p "$dir"
  argus_config "$scenario" >"$dir/argus.toml"
  admin_secret=$("$bin" admin bootstrap --data-dir "$dir/data" | sed -n '/shown only now/{n;p}')
  [ -n "$admin_secret" ] || die "argus admin bootstrap printed no secret"
  local run=(taskset -c "$SERVER_CPU")
  [ "$MODE" = callgrind ] && run+=(valgrind --tool=callgrind --trace-children=yes --instr-atstart=no --callgrind-out-file="$dir/cg.out")
  RUST_LOG=warn "${run[@]}" "$bin" up --config "$dir/argus.toml" --data-dir "$dir/data" >"$dir/out" 2>"$dir/err" &
  ARGUS_PID=$!
  PIDS+=("$ARGUS_PID")
  for _ in $(seq 1200); do
    issuer=$(sed -nE 's#^ +issuer +(http://[^ ]+).*#\1#p' "$dir/out" 2>/dev/null | head -n1) || true
    gate=$(sed -nE 's#^ +gate +(http://[^ ]+).*#\1#p' "$dir/out" 2>/dev/null | head -n1) || true
    [ -n "$issuer" ] && [ -n "$gate" ] && break
    kill -0 "$ARGUS_PID" 2>/dev/null || { cat "$dir/err" >&2; die "argus exited"; }
    sleep 0.1
  done
  [ -n "$gate" ] || die "argus did not start"
  BASIC=
  if [ "$scenario" = token ]; then
    local token created
    token=$(curl -sS --max-time 60 -u "argus-admin:$admin_secret" \
      -d 'grant_type=client_credentials&scope=argus:admin' "$issuer/token" | json_field access_token)
    created=$(curl -sS --max-time 60 -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
      -d "{\"client_id\": \"bench-service\", \"name\": \"CPU benchmark\", \"allowed_scopes\": [\"$SCOPE\"],
           \"token_endpoint_auth_method\": \"client_secret_basic\", \"grant_types\": [\"client_credentials\"]}" \
      "$issuer/admin/v1/clients")
    BASIC=$(printf '%s' "bench-service:$(json_field client_secret <<<"$created")" | base64 -w0)
    TARGET=$issuer
  else
    TARGET="$gate/items/42?verbose=true"
  fi
}

# The process's CPU time (every thread), in clock ticks, and its context switches (every live thread).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
switches() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/ctxt_switches/ { n += $2 } END { print n }'; }

# drain PID: until the process is idle (under 5% of a core over 200 ms; 20% under valgrind, whose tool threads
# tick), at most 120 s.
drain() {
  local pid=$1 hz limit=5 before after
  hz=$(getconf CLK_TCK)
  [ "$MODE" = callgrind ] && limit=20
  for _ in $(seq 600); do
    before=$(cpu_ticks "$pid")
    sleep 0.2
    after=$(cpu_ticks "$pid")
    [ $(((after - before) * 500)) -le $((hz * limit)) ] && return 0
  done
  die "pid $pid still busy 120 s after the run"
}

# load SECONDS: one wrk run at the scenario's target; prints the requests answered.
load() {
  local seconds=$1 out result errors
  local wrk=(taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d"${seconds}s" --timeout 30s)
  out=$(BENCH_BASIC=$BASIC BENCH_SCOPE=$SCOPE "${wrk[@]}" -s "$HERE/request.lua" "$TARGET")
  result=$(grep '^RESULT ' <<<"$out") || die "no result from wrk: $out"
  errors=$(sed -nE 's/.* errors=([0-9]+).*/\1/p' <<<"$result")
  [ "$errors" = 0 ] || die "$errors failed requests: $result"
  sed -nE 's/.* requests=([0-9]+).*/\1/p' <<<"$result"
}

# cpu_run BIN SCENARIO ROUND: one saturation run; appends "scenario bin round requests us_per_req switches_per_req".
cpu_run() {
  local bin=$1 scenario=$2 round=$3 dir=$TMP/$scenario-$round-$(basename "$bin")
  start_argus "$bin" "$scenario" "$dir"
  load 2 >/dev/null
  drain "$ARGUS_PID"
  local t0 s0 t1 s1 requests hz
  hz=$(getconf CLK_TCK)
  t0=$(cpu_ticks "$ARGUS_PID") s0=$(switches "$ARGUS_PID")
  requests=$(load "$DURATION")
  drain "$ARGUS_PID"
  t1=$(cpu_ticks "$ARGUS_PID") s1=$(switches "$ARGUS_PID")
  kill "$ARGUS_PID"
  wait "$ARGUS_PID" 2>/dev/null || true
  awk -v sc="$scenario" -v b="$bin" -v r="$round" -v n="$requests" -v t=$((t1 - t0)) -v s=$((s1 - s0)) -v hz="$hz" \
    'BEGIN { printf "%s\t%s\t%s\t%d\t%.1f\t%.3f\n", sc, b, r, n, t / hz * 1e6 / n, s / n }' | tee -a "$TMP/rows.tsv" >&2
}

# cg_run BIN SCENARIO: CG_SECONDS of load under callgrind; appends "scenario bin 1 requests instructions_per_req -".
cg_run() {
  local bin=$1 scenario=$2 dir=$TMP/$scenario-cg-$(basename "$bin") requests total
  start_argus "$bin" "$scenario" "$dir"
  load 2 >/dev/null
  drain "$ARGUS_PID"
  callgrind_control -i on "$ARGUS_PID" >/dev/null
  requests=$(load "$CG_SECONDS")
  drain "$ARGUS_PID"
  callgrind_control -d "$ARGUS_PID" >/dev/null
  callgrind_control -i off "$ARGUS_PID" >/dev/null
  kill "$ARGUS_PID"
  wait "$ARGUS_PID" 2>/dev/null || true
  # Every dump file of the run (one per thread with --separate-threads, else one): the sum of their totals.
  total=$(cat "$dir"/cg.out* | awk '/^totals:/ { n += $2 } END { printf "%.0f", n }')
  # Kept for callgrind_annotate when CG_KEEP names a directory.
  [ -z "${CG_KEEP:-}" ] || cat "$dir"/cg.out* >"$CG_KEEP/$scenario-$(basename "$bin").callgrind"
  awk -v sc="$scenario" -v b="$bin" -v n="$requests" -v t="$total" \
    'BEGIN { printf "%s\t%s\tcg\t%d\t%.0f\t-\n", sc, b, n, t / n }' | tee -a "$TMP/rows.tsv" >&2
}

main() {
  say "MODE=$MODE SCENARIOS=\"$SCENARIOS\" CONNECTIONS=$CONNECTIONS $(uptime)"
  start_upstream
  for scenario in $SCENARIOS; do
    if [ "$MODE" = callgrind ]; then
      for bin in $BINS; do cg_run "$bin" "$scenario"; done
    else
      for round in $(seq "$ROUNDS"); do
        for bin in $BINS; do cpu_run "$bin" "$scenario" "$round"; done
      done
    fi
  done
  python3 - "$TMP/rows.tsv" "$MODE" <<'EOF'
import statistics, sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1])]
unit = "instructions/req" if sys.argv[2] == "callgrind" else "CPU us/req"
print(f"\n{'scenario':<13}{'binary':<40}{unit:>18}{'ctx switches/req':>18}   runs")
seen = []
for sc, b, *_ in rows:
    if (sc, b) not in seen:
        seen.append((sc, b))
for sc, b in seen:
    mine = [r for r in rows if r[0] == sc and r[1] == b]
    per = [float(r[4]) for r in mine]
    sw = [float(r[5]) for r in mine if r[5] != "-"]
    sw_text = f"{statistics.median(sw):.2f}" if sw else "-"
    print(f"{sc:<13}{b[-39:]:<40}{statistics.median(per):>18,.1f}{sw_text:>18}   "
          f"{len(per)} ({min(per):,.1f}..{max(per):,.1f})")
EOF
}

main
