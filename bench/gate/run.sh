#!/usr/bin/env bash
# Gate benchmark: the Argus gate, stage by stage, against nginx as a plain reverse proxy and HAProxy verifying the
# same ES256 JWT, all in front of one upstream, in one run on this machine.
#
#   bench/gate/run.sh
#   ROUNDS=1 DURATION=2 LAT_ROUNDS=1 LAT_SECONDS=2 bench/gate/run.sh        # a quick try
#   PROFILE=1 bench/gate/run.sh                                               # + perf profile of the full gate
#   PROFILE="gate-proxy gate-events" ROUNDS=1 LAT_ROUNDS=0 bench/gate/run.sh  # profiles of some stages
#
# Environment (all optional): ROUNDS (default 3) of saturation runs, DURATION seconds each (4), WARMUP seconds (2),
# CONNECTIONS of wrk (64); LAT_ROUNDS (2) of fixed-rate runs (0: none), LAT_SECONDS each (4), LAT_CONNECTIONS of
# pace (64); CONTENDERS (all of them, see below, in this order); PROFILE=1 records a `perf` profile of the full gate
# under load at the end (or PROFILE="STAGE ...": of those gate stages); NICE (-10, root only); PROOF_RATE (15000,
# DPoP proofs made per second of a wrk run before the contender's rate is known); ARGUS_BIN (default
# target/release/argus, built by this script; when set, nothing is built).
#
# Contenders (the same request, GET /items/42?verbose=true, to the same upstream):
#   upstream        the upstream itself, no proxy (the ceiling of this set-up, and the latency baseline)
#   nginx           nginx, plain proxy_pass, keep-alive to the upstream
#   haproxy-jwt     HAProxy 2.6 checking the bearer token: alg ES256, jwt_verify with the issuer's key (PEM), exp,
#                   iss, aud
#   gate-proxy      `argus up`, route auth = "none", no OpenAPI spec, rate limits off, watch off
#   gate-jwt        + auth = "argus": a Bearer access token (RFC 9068 JWT, ES256) verified on every call
#   gate-dpop       + the token is DPoP-bound: every call carries a fresh, single-use proof (RFC 9449)
#   gate-openapi    + the route has the API's OpenAPI file: operation match, scopes from `security`, strict
#                   validation of the path and query parameters
#   gate-ratelimit  + rate limits on (per IP, user, client, token; high enough never to refuse)
#   gate-events     + watch on: every call's event audited in the hash-chained log (SQLite) and run through the
#                   detectors, in the same process
#
# Method (see bench/README.md): every contender runs at once, pinned to core 0; wrk, pace (the fixed-rate
# generator, bench/gate/pace.rs) and the upstream (nginx, `return 200`) share core 1; all at nice NICE. Saturation:
# after a warm-up, ROUNDS rounds, each measuring every contender in turn for DURATION s (wrk, 1 thread, CONNECTIONS
# connections); work a contender defers past the run (watch's audit appends) is waited for and counted
# ("sustained"), and the contender's CPU time gives its requests per CPU-second ("per core"). Latency: each
# contender at half its median sustained peak, moved to core 1 for the run (see latency()), then the upstream alone
# at that same rate, LAT_ROUNDS times; added latency = contender - upstream, per pair. Ratios and differences are
# taken within a round, side by side: the machine's speed drifts within minutes. Every run must be error-free: one
# failed request invalidates the run.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-4}
WARMUP=${WARMUP:-2}
CONNECTIONS=${CONNECTIONS:-64}
LAT_ROUNDS=${LAT_ROUNDS:-2}
LAT_SECONDS=${LAT_SECONDS:-4}
LAT_CONNECTIONS=${LAT_CONNECTIONS:-64}
# Niceness of every process of the benchmark (root only): other work on the machine (builds) then gets about a tenth
# of a core while it competes, instead of half.
NICE=${NICE:--10}
ALL_CONTENDERS="upstream nginx haproxy-jwt gate-proxy gate-jwt gate-dpop gate-openapi gate-ratelimit gate-events"
CONTENDERS=${CONTENDERS:-$ALL_CONTENDERS}
PROFILE=${PROFILE:-0}
DRAIN_LIMIT=60
SERVER_CPU=0
LOAD_CPU=1
REQUEST_PATH='/items/42?verbose=true'
SCOPE='items:read'
# wrk cannot reuse a DPoP proof: it gets this many a second of run (or 1.5x the contender's last rate, if more).
PROOF_RATE=${PROOF_RATE:-15000}
BUILD=1
[ -n "${ARGUS_BIN:-}" ] && BUILD=0
ARGUS_BIN=${ARGUS_BIN:-$ROOT/target/release/argus}
PACE=$ROOT/target/bench-tools/pace
BENCH_LUA=$ROOT/bench/token-endpoint
export BENCH_LUA

say() { printf '%s\n' "$*" >&2; }

# on_core CPU COMMAND...: run COMMAND pinned to CPU, at the benchmark's niceness when root. It execs, so that
# `on_core ... &` leaves the server's own pid in $! (the function runs in the background subshell it replaces).
on_core() {
  local cpu=$1
  shift
  if [ "$(id -u)" = 0 ]; then exec nice -n "$NICE" taskset -c "$cpu" "$@"; else exec taskset -c "$cpu" "$@"; fi
}
die() { say "run.sh: $*"; exit 1; }

# --- tools -------------------------------------------------------------------------------------------------------

ensure_tools() {
  local tool
  for tool in taskset node python3 curl rustc; do command -v "$tool" >/dev/null || die "$tool is required"; done
  local missing=()
  command -v nginx >/dev/null || missing+=(nginx)
  command -v haproxy >/dev/null || missing+=(haproxy)
  command -v wrk >/dev/null || missing+=(wrk)
  if [ "${#missing[@]}" -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "missing: ${missing[*]} (apt-get install ${missing[*]})"
    say "installing ${missing[*]} (Debian packages)"
    apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 ||
      { apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null; }
  fi
  if [ ! -x "$PACE" ] || [ "$HERE/pace.rs" -nt "$PACE" ]; then
    say "building $PACE (rustc -O, std only)"
    mkdir -p "$(dirname "$PACE")"
    rustc --edition 2024 -O "$HERE/pace.rs" -o "$PACE"
  fi
  if [ "$BUILD" = 1 ]; then
    say "building target/release/argus"
    (cd "$ROOT" && cargo build --release --locked -q -p argus --bin argus)
  fi
  [ -x "$ARGUS_BIN" ] || die "no $ARGUS_BIN"
}

# --- processes -----------------------------------------------------------------------------------------------------

TMP=$(mktemp -d "${TMPDIR:-/tmp}/argus-gate-bench-XXXXXX")
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

# wait_port PORT PID LOG: until something accepts on 127.0.0.1:PORT (10 s), or PID has died (LOG is shown then).
wait_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || { cat "$3" >&2 2>/dev/null; die "process $2 exited before it listened on $1"; }
    sleep 0.1
  done
  die "nothing listens on $1"
}

# Per contender: its port, the pids whose CPU time is its cost, its Authorization scheme and token.
declare -A PORT CPU_PIDS AUTH TOKEN ISSUER DPOP_KEY

# The upstream: nginx answering a fixed JSON body, one worker, on the load generator's core.
start_upstream() {
  local port
  port=$(free_port)
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
  keepalive_timeout 300s;
  client_body_temp_path $TMP/upstream/body;
  proxy_temp_path $TMP/upstream/proxy;
  fastcgi_temp_path $TMP/upstream/fastcgi;
  uwsgi_temp_path $TMP/upstream/uwsgi;
  scgi_temp_path $TMP/upstream/scgi;
  server {
    listen 127.0.0.1:$port;
    default_type application/json;
    location / { return 200 '{"id":42,"name":"bench item","ok":true}'; }
  }
}
EOF
  on_core "$LOAD_CPU" nginx -p "$TMP/upstream" -c "$TMP/upstream/nginx.conf" 2>"$TMP/upstream/stderr" &
  local pid=$!
  PIDS+=("$pid")
  wait_port "$port" "$pid" "$TMP/upstream/stderr"
  PORT[upstream]=$port
  CPU_PIDS[upstream]="$pid $(pgrep -P "$pid" | tr '\n' ' ')"
  AUTH[upstream]=none
}

start_nginx() {
  local port
  port=$(free_port)
  mkdir -p "$TMP/nginx"
  cat >"$TMP/nginx/nginx.conf" <<EOF
daemon off;
worker_processes 1;
error_log $TMP/nginx/error.log warn;
pid $TMP/nginx/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  client_body_temp_path $TMP/nginx/body;
  proxy_temp_path $TMP/nginx/proxy;
  fastcgi_temp_path $TMP/nginx/fastcgi;
  uwsgi_temp_path $TMP/nginx/uwsgi;
  scgi_temp_path $TMP/nginx/scgi;
  upstream api {
    server 127.0.0.1:${PORT[upstream]};
    keepalive 128;
    keepalive_requests 10000000;
  }
  server {
    listen 127.0.0.1:$port;
    location / {
      proxy_pass http://api;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
  on_core "$SERVER_CPU" nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" 2>"$TMP/nginx/stderr" &
  local pid=$!
  PIDS+=("$pid")
  wait_port "$port" "$pid" "$TMP/nginx/stderr"
  PORT[nginx]=$port
  CPU_PIDS[nginx]="$pid $(pgrep -P "$pid" | tr '\n' ' ')"
  AUTH[nginx]=none
}

# HAProxy checks the token gate-jwt's issuer signed (same key, same claims): the checks an API gateway does with
# jwt_verify, which verifies the signature only, so exp, iss and aud are checked by hand (`Bearer` scheme only).
start_haproxy() {
  local port issuer=${ISSUER[gate-jwt]} audience=${AUDIENCE_OF_JWT}
  port=$(free_port)
  mkdir -p "$TMP/haproxy"
  node "$HERE/dpop.mjs" pem --issuer "$issuer" >"$TMP/haproxy/issuer.pem"
  cat >"$TMP/haproxy/haproxy.cfg" <<EOF
global
  nbthread 1
  maxconn 8000
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 60s
  option http-keep-alive
frontend api
  bind 127.0.0.1:$port
  http-request set-var(txn.bearer) http_auth_bearer
  http-request set-var(txn.alg) var(txn.bearer),jwt_header_query('\$.alg')
  http-request deny status 401 unless { var(txn.alg) -m str ES256 }
  http-request deny status 401 unless { var(txn.bearer),jwt_verify(txn.alg,"$TMP/haproxy/issuer.pem") -m int 1 }
  http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('\$.exp','int')
  http-request set-var(txn.now) date()
  http-request deny status 401 unless { var(txn.exp),sub(txn.now) -m int gt 0 }
  http-request deny status 401 unless { var(txn.bearer),jwt_payload_query('\$.iss') -m str $issuer }
  http-request deny status 401 unless { var(txn.bearer),jwt_payload_query('\$.aud') -m str $audience }
  default_backend api
backend api
  http-reuse always
  server upstream 127.0.0.1:${PORT[upstream]} maxconn 1000
EOF
  haproxy -c -q -f "$TMP/haproxy/haproxy.cfg" || die "haproxy refused its configuration"
  on_core "$SERVER_CPU" haproxy -db -f "$TMP/haproxy/haproxy.cfg" >"$TMP/haproxy/out" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  wait_port "$port" "$pid" "$TMP/haproxy/out"
  PORT[haproxy-jwt]=$port
  CPU_PIDS[haproxy-jwt]=$pid
  AUTH[haproxy-jwt]=bearer
  TOKEN[haproxy-jwt]=${TOKEN[gate-jwt]}
}

# The `argus up` configuration of each gate stage: every stage adds one thing to the one before.
argus_config() {
  local stage=$1 auth=argus openapi=false limits=off watch=false
  case $stage in
    gate-proxy) auth=none ;;
    gate-jwt | gate-dpop) ;;
    gate-openapi) openapi=true ;;
    gate-ratelimit) openapi=true limits=on ;;
    gate-events) openapi=true limits=on watch=true ;;
  esac
  cat <<EOF
[issuer]
listen = "127.0.0.1:0"
# Tokens outlive the run; the gate checks exp all the same.
access_token_ttl_secs = 3600
# Minting only (dpop.mjs retries with a nonce anyway).
dpop_nonce_required = false

[metrics]
listen = "127.0.0.1:0"

[watch]
listen = "127.0.0.1:0"
# Off: no subscriber on the event bus; the gate still builds and publishes every call's event, dropped at once.
enabled = $watch

[gate]
listen = "127.0.0.1:0"
# Server nonces off: with them, a proof needs the gate's current nonce and cannot be made before the run.
dpop_nonce = false

[[gate.routes]]
name = "bench"
prefix = "/"
upstream = "http://127.0.0.1:${PORT[upstream]}"
auth = "$auth"
EOF
  [ "$openapi" = true ] && printf 'openapi = "%s"\n' "$HERE/openapi.yaml"
  printf '\n[gate.rate_limits]\n'
  if [ "$limits" = on ]; then
    # On, at rates no run reaches: every call is counted against its four buckets and none is refused.
    printf 'per_ip = "1000000/s"\nper_user = "1000000/s"\nper_client = "1000000/s"\nper_token = "1000000/s"\n'
  else
    printf 'per_ip = "off"\nper_user = "off"\nper_client = "off"\nper_token = "off"\n'
  fi
}

# json_field NAME: the string member NAME of the JSON object on stdin.
json_field() {
  python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

start_argus() {
  local stage=$1 dir=$TMP/$1
  mkdir -p "$dir"
  argus_config "$stage" >"$dir/argus.toml"
  "$ARGUS_BIN" config check "$dir/argus.toml" >/dev/null
  local admin_secret
  admin_secret=$("$ARGUS_BIN" admin bootstrap --data-dir "$dir/data" | sed -n '/shown only now/{n;p}')
  [ -n "$admin_secret" ] || die "$stage: argus admin bootstrap printed no secret"
  RUST_LOG=warn on_core "$SERVER_CPU" "$ARGUS_BIN" up --config "$dir/argus.toml" --data-dir "$dir/data" \
    >"$dir/out" 2>"$dir/err" &
  local pid=$!
  PIDS+=("$pid")
  local issuer gate
  for _ in $(seq 300); do
    issuer=$(sed -nE 's#^ +issuer +(http://[^ ]+).*#\1#p' "$dir/out" | head -n1)
    gate=$(sed -nE 's#^ +gate +(http://[^ ]+).*#\1#p' "$dir/out" | head -n1)
    [ -n "$issuer" ] && [ -n "$gate" ] && break
    kill -0 "$pid" 2>/dev/null || { cat "$dir/err" >&2; die "$stage: argus exited"; }
    sleep 0.1
  done
  [ -n "$gate" ] || die "$stage: argus did not start"
  PORT[$stage]=${gate##*:}
  CPU_PIDS[$stage]=$pid
  ISSUER[$stage]=$issuer
  [ "$stage" = gate-jwt ] && AUDIENCE_OF_JWT=$gate
  argus_client "$stage" "$admin_secret"
}

# The benchmark's confidential client (client_credentials, scope items:read), created through the admin API, and
# the access token of the stage: none, Bearer, or DPoP-bound to a key of our own.
argus_client() {
  local stage=$1 admin_secret=$2 issuer=${ISSUER[$1]} admin_token created basic
  admin_token=$(curl -sS --max-time 10 -u "argus-admin:$admin_secret" \
    -d 'grant_type=client_credentials&scope=argus:admin' "$issuer/token" | json_field access_token) ||
    die "$stage: no admin token"
  created=$(curl -sS --max-time 10 -H "Authorization: Bearer $admin_token" -H 'Content-Type: application/json' \
    -d "{\"client_id\": \"bench-service\", \"name\": \"Gate benchmark\", \"allowed_scopes\": [\"$SCOPE\"],
         \"token_endpoint_auth_method\": \"client_secret_basic\", \"grant_types\": [\"client_credentials\"]}" \
    "$issuer/admin/v1/clients")
  basic=$(printf '%s' "bench-service:$(json_field client_secret <<<"$created")" | base64 -w0) ||
    die "$stage: cannot create the benchmark client: $created"
  case $stage in
    gate-proxy) AUTH[$stage]=none ;;
    gate-jwt)
      AUTH[$stage]=bearer
      TOKEN[$stage]=$(node "$HERE/dpop.mjs" token --issuer "$issuer" --basic "$basic" --scope "$SCOPE")
      ;;
    *)
      AUTH[$stage]=dpop
      DPOP_KEY[$stage]=$TMP/$stage/dpop-key.json
      node "$HERE/dpop.mjs" key >"${DPOP_KEY[$stage]}"
      TOKEN[$stage]=$(node "$HERE/dpop.mjs" token --issuer "$issuer" --basic "$basic" --scope "$SCOPE" \
        --key "${DPOP_KEY[$stage]}")
      ;;
  esac
}

# --- requests ------------------------------------------------------------------------------------------------------

url_of() { printf 'http://127.0.0.1:%s%s' "${PORT[$1]}" "${2:-$REQUEST_PATH}"; }

# proofs CONTENDER COUNT [PATH]: a file of COUNT fresh proofs for a GET of PATH (default: the benchmark request's)
# at CONTENDER; prints its path.
# Made between measurements by two node processes, one a core (nothing is measured meanwhile).
proofs() {
  local c=$1 count=$2 path=${3:-/items/42} file=$TMP/$1/proofs half
  half=$(((count + 1) / 2))
  local gen=(node "$HERE/dpop.mjs" proofs --key "${DPOP_KEY[$c]}" --token "${TOKEN[$c]}" --htu "$(url_of "$c" "$path")")
  "${gen[@]}" --count "$half" >"$file.0" &
  local first=$!
  "${gen[@]}" --count "$((count - half))" >"$file.1"
  wait "$first" || die "$c: cannot make DPoP proofs"
  cat "$file.0" "$file.1" >"$file"
  rm -f "$file.0" "$file.1"
  printf '%s' "$file"
}

# curl_status CONTENDER [AUTH_HEADER [DPOP_PROOF [PATH]]]: the status of one request.
curl_status() {
  local args=(-s -o /dev/null -w '%{http_code}' --max-time 10)
  [ -n "${2:-}" ] && args+=(-H "Authorization: $2")
  [ -n "${3:-}" ] && args+=(-H "DPoP: $3")
  curl "${args[@]}" "$(url_of "$1" "${4:-}")"
}

expect_status() {
  local want=$1 got=$2 what=$3
  [ "$got" = "$want" ] || die "$what: expected $want, got $got"
  say "  ok  $what: $got"
}

# tamper JWT: the same token with one bit of its signature flipped.
tamper() {
  python3 -c 'import base64, sys
h, p, s = sys.argv[1].split(".")
sig = bytearray(base64.urlsafe_b64decode(s + "=="))
sig[10] ^= 1
print(h + "." + p + "." + base64.urlsafe_b64encode(bytes(sig)).decode().rstrip("="))' "$1"
}

# Before anything is measured: every contender answers the benchmark request, and those that check tokens refuse
# a bad one; the DPoP stages refuse a replayed proof; the OpenAPI stages refuse a bad parameter.
check_contenders() {
  local c good bad proof tampered
  for c in $CONTENDERS; do
    case ${AUTH[$c]} in
      none) expect_status 200 "$(curl_status "$c")" "$c: the request" ;;
      bearer)
        good="Bearer ${TOKEN[$c]}"
        tampered=$(tamper "${TOKEN[$c]}")
        expect_status 200 "$(curl_status "$c" "$good")" "$c: the request with its token"
        expect_status 401 "$(curl_status "$c")" "$c: no token"
        expect_status 401 "$(curl_status "$c" "Bearer $tampered")" "$c: a token with a broken signature"
        ;;
      dpop)
        proof=$(sed -n 1p "$(proofs "$c" 1)")
        tampered=$(tamper "${TOKEN[$c]}")
        expect_status 200 "$(curl_status "$c" "DPoP ${TOKEN[$c]}" "$proof")" "$c: the request with token and proof"
        expect_status 401 "$(curl_status "$c" "DPoP ${TOKEN[$c]}" "$proof")" "$c: the same proof again (replay)"
        expect_status 401 "$(curl_status "$c" "Bearer ${TOKEN[$c]}")" "$c: the DPoP-bound token as a Bearer token"
        proof=$(sed -n 1p "$(proofs "$c" 1)")
        expect_status 401 "$(curl_status "$c" "DPoP $tampered" "$proof")" "$c: a token with a broken signature"
        ;;
    esac
    case $c in
      gate-openapi | gate-ratelimit | gate-events)
        proof=$(sed -n 1p "$(proofs "$c" 1 /items/forty-two)")
        expect_status 400 "$(curl_status "$c" "DPoP ${TOKEN[$c]}" "$proof" '/items/forty-two?verbose=true')" \
          "$c: a path parameter that is not an integer"
        ;;
    esac
  done
  if [[ " $CONTENDERS " == *" gate-ratelimit "* ]]; then
    proof=$(sed -n 1p "$(proofs gate-ratelimit 1)")
    curl -s -D - -o /dev/null -H "Authorization: DPoP ${TOKEN[gate-ratelimit]}" -H "DPoP: $proof" \
      "$(url_of gate-ratelimit)" | grep -qi '^ratelimit-policy:' || die "gate-ratelimit: no RateLimit-Policy header"
    say "  ok  gate-ratelimit: RateLimit-Policy header (limits on)"
  fi
}

# cpu_ticks CONTENDER: user + system CPU time of the contender's processes (every thread), in clock ticks.
cpu_ticks() {
  local pid total=0
  for pid in ${CPU_PIDS[$1]}; do
    total=$((total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat")))
  done
  printf '%s' "$total"
}

# drain CONTENDER: wait until its processes are idle (under 5% of a core over 200 ms); prints the seconds it took,
# the idle window not counted.
drain() {
  local c=$1 hz start now before after
  hz=$(getconf CLK_TCK)
  start=$(date +%s.%N)
  while true; do
    before=$(cpu_ticks "$c")
    sleep 0.2
    after=$(cpu_ticks "$c")
    now=$(date +%s.%N)
    if [ $(((after - before) * 100)) -le "$hz" ]; then
      awk -v s="$start" -v n="$now" 'BEGIN { d = n - s - 0.2; printf "%.2f", d < 0 ? 0 : d }'
      return
    fi
    awk -v s="$start" -v n="$now" -v l="$DRAIN_LIMIT" 'BEGIN { exit !(n - s > l) }' &&
      die "$c still busy ${DRAIN_LIMIT}s after the run"
  done
}

declare -A LAST_RPS

# saturate CONTENDER ROUND SECONDS: one wrk run, then the drain; appends a row to sat.tsv unless ROUND is warmup.
saturate() {
  local c=$1 round=$2 seconds=$3 out args=()
  local wrk=(on_core "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d"${seconds}s" --timeout 5s)
  case ${AUTH[$c]} in
    none) args=(-s "$BENCH_LUA/report.lua") ;;
    bearer) args=(-s "$BENCH_LUA/report.lua" -H "Authorization: Bearer ${TOKEN[$c]}") ;;
    dpop)
      local rate=${LAST_RPS[$c]:-0} count
      count=$(awk -v r="$rate" -v g="$PROOF_RATE" -v s="$seconds" \
        'BEGIN { r *= 1.5; printf "%d", (r > g ? r : g) * s }')
      args=(-s "$HERE/dpop.lua")
      local file
      file=$(proofs "$c" "$count")
      args+=("$(url_of "$c")" -- "$file" "${TOKEN[$c]}")
      ;;
  esac
  [ "${AUTH[$c]}" = dpop ] || args+=("$(url_of "$c")")
  drain "$c" >/dev/null
  local t0 t1 drained
  t0=$(cpu_ticks "$c")
  out=$("${wrk[@]}" "${args[@]}")
  drained=$(drain "$c")
  t1=$(cpu_ticks "$c")
  local result
  result=$(grep '^RESULT ' <<<"$out") || die "no result from wrk: $out"
  field() { sed -nE "s/.* $1=([^ ]+).*/\1/p" <<<" $result"; }
  local rps requests secs errors lost p50 p99 sustained busy per_core hz
  rps=$(field rps) requests=$(field requests) secs=$(field seconds) errors=$(field errors) lost=$(field lost)
  p50=$(field p50_ms) p99=$(field p99_ms)
  hz=$(getconf CLK_TCK)
  sustained=$(awk -v r="$requests" -v s="$secs" -v d="$drained" 'BEGIN { printf "%.1f", r / (s + d) }')
  # Share of a core the contender used over run + drain, and its requests per second of CPU.
  busy=$(awk -v t=$((t1 - t0)) -v hz="$hz" -v s="$secs" -v d="$drained" 'BEGIN { printf "%.2f", t / hz / (s + d) }')
  per_core=$(awk -v r="$requests" -v t=$((t1 - t0)) -v hz="$hz" 'BEGIN { printf "%.1f", (t > 0 ? r / (t / hz) : 0) }')
  printf '  %-15s %-6s %9s req/s %9s sustained (drain %4s s)  core %4s  per core %9s  p50 %6s ms  p99 %6s ms\n' \
    "$c" "$round" "$rps" "$sustained" "$drained" "$busy" "$per_core" "$p50" "$p99" >&2
  [ "$errors" = 0 ] && [ "$lost" = 0 ] || die "$c: $errors failed requests, lost=$lost (out of DPoP proofs?)"
  LAST_RPS[$c]=$rps
  [ "$round" = warmup ] || printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$round" "$rps" "$sustained" "$busy" \
    "$per_core" "$drained" >>"$TMP/sat.tsv"
}

# pace_run CONTENDER TARGET RATE: one fixed-rate run of pace against TARGET with CONTENDER's request; prints RESULT.
pace_run() {
  local c=$1 target=$2 rate=$3 args=()
  case ${AUTH[$c]} in
    bearer) args+=(--header "Authorization: Bearer ${TOKEN[$c]}") ;;
    dpop)
      args+=(--header "Authorization: DPoP ${TOKEN[$c]}")
      local count
      count=$(awk -v r="$rate" -v s="$LAT_SECONDS" 'BEGIN { printf "%d", r * s * 1.05 + 1000 }')
      args+=(--dpop-file "$(proofs "$c" "$count")")
      ;;
  esac
  drain "$c" >/dev/null
  on_core "$LOAD_CPU" "$PACE" --addr "127.0.0.1:${PORT[$target]}" --path "$REQUEST_PATH" --rate "$rate" \
    --seconds "$LAT_SECONDS" --connections "$LAT_CONNECTIONS" "${args[@]}"
}

# repin CONTENDER CPU: move every thread of the contender's processes to CPU.
repin() {
  local pid
  for pid in ${CPU_PIDS[$1]}; do taskset -a -p -c "$2" "$pid" >/dev/null; done
}

# latency CONTENDER ROUND: the contender at half its median peak, then the upstream at the same rate. Both runs
# have everything on one core (the contender is moved to the load generator's core for the run): on this VM a
# round trip between the two cores costs ~0.4-0.8 ms when they are not saturated (wrk, one connection, to nginx
# on the other core: ~790 us; on the same core: ~35 us), which would drown what is measured here.
latency() {
  local c=$1 round=$2 rate
  rate=$(python3 - "$TMP/sat.tsv" "$c" <<'EOF'
import statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]) if l.split("\t")[0] == sys.argv[2]]
print(round(statistics.median(float(r[3]) for r in rows) / 2))
EOF
)
  local mine base
  repin "$c" "$LOAD_CPU"
  mine=$(pace_run "$c" "$c" "$rate")
  repin "$c" "$SERVER_CPU"
  base=$(pace_run upstream upstream "$rate")
  field() { sed -nE "s/.* $2=([^ ]+).*/\1/p" <<<" $1"; }
  local e1 e2
  e1=$(field "$mine" errors) e2=$(field "$base" errors)
  printf '  %-15s %-6s at %6s/s: p50 %5s us  p99 %6s us (late %s) | upstream alone p50 %5s us  p99 %6s us (late %s)\n' \
    "$c" "$round" "$rate" "$(field "$mine" p50_us)" "$(field "$mine" p99_us)" "$(field "$mine" late)" \
    "$(field "$base" p50_us)" "$(field "$base" p99_us)" "$(field "$base" late)" >&2
  [ "$e1" = 0 ] && [ "$e2" = 0 ] || die "$c: failed requests in the fixed-rate run ($e1, upstream $e2)"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$round" "$rate" "$(field "$mine" achieved)" \
    "$(field "$mine" p50_us)" "$(field "$mine" p99_us)" "$(field "$base" p50_us)" "$(field "$base" p99_us)" \
    "$(field "$mine" late)" >>"$TMP/lat.tsv"
}

summarise() {
  python3 - "$TMP/sat.tsv" "$TMP/lat.tsv" "$CONTENDERS" "$LAT_SECONDS" <<'EOF'
import statistics, sys
sat = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
lat = [l.rstrip("\n").split("\t") for l in open(sys.argv[2])]
order = sys.argv[3].split()
by = {}
for c, rnd, rps, sustained, busy, per_core, _drain in sat:
    by.setdefault(rnd, {})[c] = (float(sustained), float(busy), float(per_core))

def ratio(c, peer, i):
    rs = [r[c][i] / r[peer][i] for r in by.values() if c in r and peer in r and r[peer][i] > 0]
    if not rs:
        return "-"
    return f"{statistics.median(rs):.2f}x ({min(rs):.2f}..{max(rs):.2f})"

def med(values, fmt="{:,.0f}"):
    values = list(values)
    return fmt.format(statistics.median(values)) if values else "-"

print()
print("Saturation (wrk): sustained req/s, median over rounds (min..max); core = share of a core the contender used;")
print("per core = requests per CPU-second of the contender (req/s per core); ratios within each round,")
print("median (min..max), of req/s and of per-core figures.")
print(f"{'contender':<16}{'req/s':>9} {'(range)':<17}{'core':>6}{'per core':>10}  {'vs nginx':<19}{'per core':<19}"
      f"{'vs haproxy-jwt':<19}{'per core':<19}")
for c in order:
    rows = [r[c] for r in by.values() if c in r]
    if not rows:
        continue
    s = [r[0] for r in rows]
    rng = f"({min(s):,.0f}..{max(s):,.0f})"
    print(f"{c:<16}{med(s):>9} {rng:<17}{med((r[1] for r in rows), '{:.2f}'):>6}{med(r[2] for r in rows):>10}  "
          f"{ratio(c, 'nginx', 0):<19}{ratio(c, 'nginx', 2):<19}{ratio(c, 'haproxy-jwt', 0):<19}"
          f"{ratio(c, 'haproxy-jwt', 2):<19}")
if lat:
    print()
    print("Fixed rate (pace) at half of each contender's median peak; the upstream alone at the same rate right after;")
    print("added = contender - upstream, per pair; median over rounds (us); late = share of requests sent over 1 ms")
    print("after their slot (the contender could not keep the pace), worst round.")
    print(f"{'contender':<16}{'rate/s':>8}{'p50':>9}{'p99':>9}{'up p50':>9}{'up p99':>9}{'added p50':>11}"
          f"{'added p99':>11}{'late':>7}")
    for c in order:
        rows = [r for r in lat if r[0] == c]
        if not rows:
            continue
        f = lambda i: [float(r[i]) for r in rows]
        added50 = [a - b for a, b in zip(f(4), f(6))]
        added99 = [a - b for a, b in zip(f(5), f(7))]
        late = max(float(r[8]) / max(float(r[3]) * 1.0, 1.0) for r in rows)
        print(f"{c:<16}{med(f(2)):>8}{med(f(4)):>9}{med(f(5)):>9}{med(f(6)):>9}{med(f(7)):>9}"
              f"{med(added50):>11}{med(added99):>11}{late / float(sys.argv[4]):>7.1%}")
EOF
}

# profile CONTENDER: a perf profile (software clock; this VM has no hardware counters) of a gate stage under wrk
# load, if perf works here: the symbols that take over 1.5% of its samples, and its threads.
profile() {
  command -v perf >/dev/null || { say "no perf: profile skipped"; return; }
  local c=$1 pid=${CPU_PIDS[$1]} args=()
  case ${AUTH[$c]} in
    none) args=("$(url_of "$c")") ;;
    bearer) args=(-H "Authorization: Bearer ${TOKEN[$c]}" "$(url_of "$c")") ;;
    dpop) args=(-s "$HERE/dpop.lua" "$(url_of "$c")" -- "$(proofs "$c" $((PROOF_RATE * 8)))" "${TOKEN[$c]}") ;;
  esac
  say ""
  say "perf record of $c for 6 s under wrk load"
  (on_core "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d8s --timeout 5s "${args[@]}") >/dev/null &
  local wrk_pid=$!
  sleep 1
  (on_core "$LOAD_CPU" perf record -q -e cpu-clock -F 2000 -g -p "$pid" -o "$TMP/perf.data" -- sleep 6) \
    >/dev/null 2>&1 || { say "perf record failed: profile skipped"; wait "$wrk_pid" || true; return; }
  wait "$wrk_pid" || true
  local report=(perf report -i "$TMP/perf.data" --no-children --stdio -g none)
  say "by thread:"
  "${report[@]}" --sort comm 2>/dev/null | grep -E '^ +[0-9]' | sed -E 's/ +$//; s/ {2,}/  /g' | head -8 >&2
  say "by object:"
  "${report[@]}" --sort dso 2>/dev/null | grep -E '^ +[0-9]' | sed -E 's/ +$//; s/ {2,}/  /g' | head -8 >&2
  say "by symbol (over 1%):"
  "${report[@]}" --sort dso,sym --percent-limit 1 2>/dev/null | grep -E '^ +[0-9]' |
    sed -E 's/ +$//; s/ {2,}/  /g' | head -40 >&2
  say "argus's own code, by symbol (over 0.4% of all samples):"
  "${report[@]}" --sort sym --dsos "$(basename "$ARGUS_BIN")" --percent-limit 0.4 2>/dev/null | grep -E '^ +[0-9]' |
    sed -E 's/ +$//; s/ {2,}/  /g' | head -30 >&2
}

main() {
  ensure_tools
  local c
  for c in $CONTENDERS; do [[ " $ALL_CONTENDERS " == *" $c "* ]] || die "unknown contender $c"; done
  local cpu commit
  cpu=$(sed -nE 's/^model name\s*: //p' /proc/cpuinfo | head -n1)
  commit="$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')"
  commit+="$(cd "$ROOT" && git diff --quiet 2>/dev/null || echo '+changes')"
  say "machine: $(nproc) cores, $cpu, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u '+%Y-%m-%d %H:%M UTC')"
  say "argus $commit, $(nginx -v 2>&1 | cut -d' ' -f3), HAProxy $(haproxy -v | head -n1 | cut -d' ' -f3)," \
    "wrk $(wrk -v 2>&1 | head -n1 | cut -d' ' -f2), node $(node --version)"
  start_upstream
  # Every stage's process is started even if not measured when a later one needs it (haproxy needs gate-jwt).
  for c in gate-proxy gate-jwt gate-dpop gate-openapi gate-ratelimit gate-events; do
    if [[ " $CONTENDERS " == *" $c "* ]] || { [ "$c" = gate-jwt ] && [[ " $CONTENDERS " == *" haproxy-jwt "* ]]; }; then
      start_argus "$c"
    fi
  done
  [[ " $CONTENDERS " == *" nginx "* ]] && start_nginx
  [[ " $CONTENDERS " == *" haproxy-jwt "* ]] && start_haproxy
  for c in $CONTENDERS; do say "  $c on 127.0.0.1:${PORT[$c]} (pids ${CPU_PIDS[$c]})"; done
  say "checks"
  check_contenders
  : >"$TMP/sat.tsv"
  : >"$TMP/lat.tsv"
  say "saturation: warm-up ${WARMUP}s each, then $ROUNDS rounds x ${DURATION}s, $CONNECTIONS connections"
  for c in $CONTENDERS; do saturate "$c" warmup "$WARMUP"; done
  local round
  for round in $(seq "$ROUNDS"); do
    for c in $CONTENDERS; do saturate "$c" "$round" "$DURATION"; done
  done
  if [ "$LAT_ROUNDS" -gt 0 ]; then
    say "fixed rate: $LAT_ROUNDS rounds x ${LAT_SECONDS}s per contender and its upstream baseline," \
      "$LAT_CONNECTIONS connections"
    for round in $(seq "$LAT_ROUNDS"); do
      for c in $CONTENDERS; do [ "$c" = upstream ] || latency "$c" "$round"; done
    done
  fi
  if [[ " $CONTENDERS " == *" gate-events "* ]]; then
    local health
    health=$(sed -nE 's#^ +watch +(http://[^ ]+).*#\1#p' "$TMP/gate-events/out" | head -n1)
    say "gate-events watch: $(curl -sS --max-time 10 "$health/healthz")"
  fi
  summarise
  [ "$PROFILE" = 1 ] && PROFILE=gate-events
  for c in $PROFILE; do
    [ "$c" = 0 ] || [[ " $CONTENDERS " != *" $c "* ]] || [[ $c != gate-* ]] || profile "$c"
  done
  return 0
}

main "$@"
