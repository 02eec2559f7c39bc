#!/usr/bin/env bash
# Token-endpoint benchmark: Argus against node oidc-provider (npm, v9) on this machine, in one run.
#
#   bench/token-endpoint/run.sh
#
# Environment (all optional): ROUNDS (default 5), DURATION seconds per measurement (5), WARMUP seconds (3),
# DRAIN_LIMIT seconds (60), CONNECTIONS (64), GRANTS ("client_credentials refresh_token"), ARGUS_BIN (default
# target/release/argus, built by this script; when set, nothing is built).
#
# Method (see bench/README.md): both servers, and the floor (crates/argus/examples/token_floor.rs: HTTP and one
# signature per request, nothing else), run at once, each pinned to core 0; the load generator (wrk) and the
# token minting run on core 1. For each grant (client_credentials, refresh_token), every round measures Argus, then
# oidc-provider, back to back, and the ratio of that pair is the round's figure: the machine's speed drifts within
# minutes, so only figures taken side by side are compared. Work a server defers past the end of a run (Argus
# appends every event to its audit log in the background) is waited for before the next measurement and counted:
# "sustained" = requests / (run + time until the server is idle again); the ratio is taken on sustained figures.
# Everything listens on 127.0.0.1; every wrk run is bounded by DURATION and every drain by DRAIN_LIMIT seconds.
# A run with any failed request, or a server still busy after DRAIN_LIMIT, is invalid and the script exits non-zero.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-3}
DRAIN_LIMIT=${DRAIN_LIMIT:-60}
CONNECTIONS=${CONNECTIONS:-64}
GRANTS=${GRANTS:-client_credentials refresh_token}
SERVER_CPU=0
LOAD_CPU=1
SCOPE='accounts:read'
# Each refresh chain is one connection's; wrk takes one extra token before the run (see refresh-token.lua).
CHAINS=$((CONNECTIONS + 8))
BUILD=1
[ -n "${ARGUS_BIN:-}" ] && BUILD=0
ARGUS_BIN=${ARGUS_BIN:-$ROOT/target/release/argus}
SIGN_BIN=${SIGN_BIN:-$(dirname "$ARGUS_BIN")/examples/sign_rate}
FLOOR_BIN=${FLOOR_BIN:-$(dirname "$ARGUS_BIN")/examples/token_floor}

say() { printf '%s\n' "$*" >&2; }
die() { say "run.sh: $*"; exit 1; }

# --- tools -------------------------------------------------------------------------------------------------------

ensure_tools() {
  command -v taskset >/dev/null || die "taskset (util-linux) is required"
  command -v node >/dev/null || die "node (>= 20) is required"
  command -v python3 >/dev/null || die "python3 is required (for the summary)"
  command -v curl >/dev/null || die "curl is required"
  if ! command -v wrk >/dev/null; then
    [ "$(id -u)" = 0 ] || die "wrk is missing: apt-get install wrk"
    say "installing wrk (Debian package)"
    apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
  fi
  (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  if [ "$BUILD" = 1 ]; then
    say "building target/release/argus"
    (cd "$ROOT" && cargo build --release --locked -q -p argus --bin argus)
    (cd "$ROOT" && cargo build --release --locked -q -p argus-jose --example sign_rate)
    (cd "$ROOT" && cargo build --release --locked -q -p argus --example token_floor)
  fi
  [ -x "$ARGUS_BIN" ] || die "no $ARGUS_BIN"
  [ -x "$SIGN_BIN" ] || die "no $SIGN_BIN (cargo build --release -p argus-jose --example sign_rate)"
  [ -x "$FLOOR_BIN" ] || die "no $FLOOR_BIN (cargo build --release -p argus --example token_floor)"
}

# --- servers -------------------------------------------------------------------------------------------------------

TMP=$(mktemp -d "${TMPDIR:-/tmp}/argus-bench-XXXXXX")
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

# wait_for FILE REGEX: print the first capture group of the first line of FILE matching REGEX (within 30 s).
wait_for() {
  local file=$1 regex=$2 pid=$3
  for _ in $(seq 300); do
    local found
    found=$(sed -nE "s#${regex}#\\1#p" "$file" 2>/dev/null | head -n1)
    if [ -n "$found" ]; then printf '%s' "$found"; return 0; fi
    kill -0 "$pid" 2>/dev/null || { cat "$file" "$file.err" >&2 2>/dev/null; die "server exited before it was up"; }
    sleep 0.1
  done
  die "timed out waiting for ${regex} in ${file}"
}

start_oidc_provider() {
  NODE_ENV=production taskset -c "$SERVER_CPU" node "$HERE/oidc-provider-server.mjs" \
    >"$TMP/oidc-provider.out" 2>"$TMP/oidc-provider.out.err" &
  OP_PID=$!
  PIDS+=("$OP_PID")
  OP_URL=$(wait_for "$TMP/oidc-provider.out" '^listening (http://[^ ]+)$' "$OP_PID")
  OP_BASIC=$(printf '%s' 'bench-service:bench-service-secret' | base64 -w0)
}

# The floor (crates/argus/examples/token_floor.rs): HTTP + one ES256 signature per request, nothing stored.
start_floor() {
  taskset -c "$SERVER_CPU" "$FLOOR_BIN" "bench-service:bench-service-secret" >"$TMP/floor.out" 2>"$TMP/floor.out.err" &
  FLOOR_PID=$!
  PIDS+=("$FLOOR_PID")
  FLOOR_URL=$(wait_for "$TMP/floor.out" '^listening (http://[^ ]+)$' "$FLOOR_PID")
  FLOOR_BASIC=$(printf '%s' 'bench-service:bench-service-secret' | base64 -w0)
}

start_argus() {
  ARGUS_PASSWORD=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
  cat >"$TMP/argus.toml" <<EOF
[issuer]
listen = "127.0.0.1:0"
[gate]
listen = "127.0.0.1:0"
[watch]
listen = "127.0.0.1:0"
[demo]
listen = "127.0.0.1:0"
[metrics]
listen = "127.0.0.1:0"
EOF
  taskset -c "$SERVER_CPU" "$ARGUS_BIN" up --demo --config "$TMP/argus.toml" \
    --data-dir "$TMP/argus-data" --demo-password "$ARGUS_PASSWORD" >"$TMP/argus.out" 2>"$TMP/argus.out.err" &
  ARGUS_PID=$!
  PIDS+=("$ARGUS_PID")
  ARGUS_URL=$(wait_for "$TMP/argus.out" '^ +issuer +(http://[^ ]+).*$' "$ARGUS_PID")
  argus_service_client
}

# The confidential client of the client_credentials runs (`bench-service`, client_secret_basic, scope
# accounts:read), created through Argus's admin API with the admin client `argus up --demo` prints in its banner.
argus_service_client() {
  local admin_secret admin_token created secret
  admin_secret=$(wait_for "$TMP/argus.out" '^ +admin +argus-admin .*secret: ([^ ]+)$' "$ARGUS_PID")
  admin_token=$(curl -sS --max-time 10 -u "argus-admin:$admin_secret" \
    -d 'grant_type=client_credentials&scope=argus:admin' "$ARGUS_URL/token" | json_field access_token) ||
    die "no admin token"
  created=$(curl -sS --max-time 10 -H "Authorization: Bearer $admin_token" -H 'Content-Type: application/json' \
    -d '{"client_id": "bench-service", "name": "Benchmark service", "allowed_scopes": ["accounts:read"],
         "token_endpoint_auth_method": "client_secret_basic", "grant_types": ["client_credentials"]}' \
    "$ARGUS_URL/admin/v1/clients")
  secret=$(json_field client_secret <<<"$created") || die "cannot create the benchmark client: $created"
  ARGUS_BASIC=$(printf '%s' "bench-service:$secret" | base64 -w0)
}

# json_field NAME: the string member NAME of the JSON object on stdin.
json_field() {
  python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

# --- measurements --------------------------------------------------------------------------------------------------

# One token request with curl, to check that the grant works and gives an ES256 JWT before it is measured.
check_grant() {
  local name=$1 url=$2 body=$3 basic=${4:-}
  local args=(-sS --max-time 10 -d "$body" "$url/token")
  [ -n "$basic" ] && args+=(-H "Authorization: Basic $basic")
  local reply
  reply=$(curl "${args[@]}")
  python3 - "$name" "$reply" <<'EOF' || die "$name: the token request failed: $reply"
import base64, json, sys
name, reply = sys.argv[1], json.loads(sys.argv[2])
header = json.loads(base64.urlsafe_b64decode(reply["access_token"].split(".")[0] + "=="))
assert header["alg"] == "ES256", header
print(f"  {name}: {reply['token_type']} token, {header['alg']} {header.get('typ')}, expires_in {reply['expires_in']}",
      file=sys.stderr)
EOF
}

# mint SERVER URL FILE: CHAINS fresh refresh tokens, one per line. (The floor takes any token.)
mint() {
  local server=$1 url=$2 file=$3
  if [ "$server" = floor ]; then
    for i in $(seq "$CHAINS"); do echo "floor-chain-$i"; done >"$file"
    return
  fi
  taskset -c "$LOAD_CPU" node "$HERE/mint-refresh.mjs" --server "$server" --issuer "$url" \
    --password "${ARGUS_PASSWORD:-}" --count "$CHAINS" >"$file"
}

# cpu_ticks PID: user + system CPU time of the whole process (every thread), in clock ticks.
cpu_ticks() {
  awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# drain PID: wait until the process is idle (under 5% of a core over 200 ms); print the seconds it took, the idle
# window not counted. Dies after DRAIN_LIMIT seconds.
drain() {
  local pid=$1 hz start now before after
  hz=$(getconf CLK_TCK)
  start=$(date +%s.%N)
  while true; do
    before=$(cpu_ticks "$pid")
    sleep 0.2
    after=$(cpu_ticks "$pid")
    now=$(date +%s.%N)
    # Idle: at most 5% of 200 ms of CPU, i.e. ticks * 100 <= hz.
    if [ $(((after - before) * 100)) -le "$hz" ]; then
      awk -v s="$start" -v n="$now" 'BEGIN { d = n - s - 0.2; printf "%.2f", d < 0 ? 0 : d }'
      return
    fi
    if awk -v s="$start" -v n="$now" -v l="$DRAIN_LIMIT" 'BEGIN { exit !(n - s > l) }'; then
      die "pid $pid still busy ${DRAIN_LIMIT}s after the run"
    fi
  done
}

# measure GRANT SERVER ROUND SECONDS: one wrk run and the drain after it; appends a row to results.tsv unless ROUND
# is "warmup".
measure() {
  local grant=$1 server=$2 round=$3 seconds=$4 url basic client pid out
  case $server in
    argus) url=$ARGUS_URL basic=$ARGUS_BASIC client=demo-app pid=$ARGUS_PID ;;
    oidc-provider) url=$OP_URL basic=$OP_BASIC client=bench-app pid=$OP_PID ;;
    floor) url=$FLOOR_URL basic=$FLOOR_BASIC client=bench-app pid=$FLOOR_PID ;;
  esac
  local wrk=(taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d"${seconds}s" --timeout 5s)
  if [ "$grant" = client_credentials ]; then
    out=$(BENCH_DIR=$HERE BENCH_BASIC=$basic BENCH_SCOPE=$SCOPE "${wrk[@]}" -s "$HERE/client-credentials.lua" "$url")
  else
    mint "$server" "$url" "$TMP/chains"
    drain "$pid" >/dev/null
    out=$(BENCH_DIR=$HERE "${wrk[@]}" -s "$HERE/refresh-token.lua" "$url" -- "$TMP/chains" "$client")
  fi
  local result drained
  drained=$(drain "$pid")
  result=$(grep '^RESULT ' <<<"$out") || die "no result from wrk: $out"
  # RESULT rps=.. requests=.. seconds=.. errors=.. lost=.. p50_ms=.. p99_ms=..
  field() { sed -nE "s/.* $1=([^ ]+).*/\1/p" <<<" $result"; }
  local rps requests secs errors lost p50 p99 sustained
  rps=$(field rps) requests=$(field requests) secs=$(field seconds) errors=$(field errors) lost=$(field lost)
  p50=$(field p50_ms) p99=$(field p99_ms)
  sustained=$(awk -v r="$requests" -v s="$secs" -v d="$drained" 'BEGIN { printf "%.1f", r / (s + d) }')
  printf '  %-18s %-13s %-6s %8s req/s answered %8s sustained (drain %5s s)  p50 %6s ms  p99 %7s ms\n' \
    "$grant" "$server" "$round" "$rps" "$sustained" "$drained" "$p50" "$p99" >&2
  [ "$errors" = 0 ] && [ "$lost" = 0 ] || die "$grant on $server: $errors failed requests, $lost lost chains"
  [ "$round" = warmup ] || printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$grant" "$round" "$server" "$rps" \
    "$sustained" "$drained" "$p50" "$p99" >>"$TMP/results.tsv"
}

# measure_signing ROUND: ES256 signatures per second on the servers' core, while both servers are idle: the ceiling
# of any token endpoint that signs one token per request, taken in the same run as the figures it bounds.
measure_signing() {
  local round=$1 rate
  rate=$(taskset -c "$SERVER_CPU" "$SIGN_BIN" 1 | sed -nE 's/^ES256 ([0-9]+)$/\1/p')
  [ -n "$rate" ] || die "sign_rate printed nothing"
  say "  ES256 signing alone (core $SERVER_CPU)   $round  $rate signatures/s"
  printf 'signing\t%s\tES256\t%s\t%s\t0\t0\t0\n' "$round" "$rate" "$rate" >>"$TMP/results.tsv"
}

summarise() {
  python3 - "$TMP/results.tsv" <<'EOF'
import statistics, sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1])]
print()
print("Medians over the rounds, req/s. Ratio: Argus / oidc-provider, sustained, per round; median (min..max).")
print("Floor: crates/argus/examples/token_floor.rs (HTTP + one ES256 signature, nothing stored or checked), the same")
print("rounds; its ratio to oidc-provider is the most any server on this HTTP stack and signature could reach here.")
print(f"{'grant':<19}{'rounds':>7}{'Argus answered':>16}{'sustained':>11}{'oidc-provider':>15}   ratio"
      f"{'floor':>16}   floor ratio   Argus / floor")
for grant in ("client_credentials", "refresh_token"):
    by_round = {}
    for g, rnd, server, rps, sustained, _drain, _p50, _p99 in rows:
        if g == grant:
            by_round.setdefault(rnd, {})[server] = (float(rps), float(sustained))
    pairs = [r for r in by_round.values() if "argus" in r and "oidc-provider" in r]
    if not pairs:
        continue
    ratios = [p["argus"][1] / p["oidc-provider"][1] for p in pairs]
    answered = statistics.median(p["argus"][0] for p in pairs)
    sustained = statistics.median(p["argus"][1] for p in pairs)
    peer = statistics.median(p["oidc-provider"][1] for p in pairs)
    line = (f"{grant:<19}{len(pairs):>7}{answered:>16.0f}{sustained:>11.0f}{peer:>15.0f}   "
            f"{statistics.median(ratios):.1f}x ({min(ratios):.1f}..{max(ratios):.1f})")
    trios = [r for r in pairs if "floor" in r]
    if trios:
        floor_ratios = [p["floor"][1] / p["oidc-provider"][1] for p in trios]
        shares = [p["argus"][1] / p["floor"][1] for p in trios]
        line += (f"{statistics.median(p['floor'][1] for p in trios):>9.0f}   "
                 f"{statistics.median(floor_ratios):.1f}x ({min(floor_ratios):.1f}..{max(floor_ratios):.1f})   "
                 f"{statistics.median(shares):.0%} ({min(shares):.0%}..{max(shares):.0%})")
    print(line)
signing = [float(r[3]) for r in rows if r[0] == "signing"]
peers = {g: statistics.median(float(r[4]) for r in rows if r[0] == g and r[2] == "oidc-provider")
         for g in ("client_credentials", "refresh_token") if any(r[0] == g for r in rows)}
if signing:
    rate = statistics.median(signing)
    print()
    print(f"ES256 signing alone on the servers' core: {rate:.0f} signatures/s (median of {len(signing)}; "
          f"{min(signing):.0f}..{max(signing):.0f}).")
    for g, peer in peers.items():
        print(f"  ceiling for {g}: a server doing nothing but sign one token per request would reach "
              f"{rate / peer:.1f}x oidc-provider")
EOF
}

main() {
  ensure_tools
  say "machine: $(nproc) cores, $(sed -nE 's/^model name\s*: //p' /proc/cpuinfo | head -n1)"
  say "node $(node --version), oidc-provider $(node -p "require('$HERE/node_modules/oidc-provider/package.json').version"), wrk $(wrk -v 2>&1 | head -n1 | cut -d' ' -f2)"
  say "argus $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')$(cd "$ROOT" && git diff --quiet 2>/dev/null || echo '+changes')"
  start_oidc_provider
  start_argus
  start_floor
  say "argus $ARGUS_URL, oidc-provider $OP_URL, floor $FLOOR_URL (all on core $SERVER_CPU; wrk on core $LOAD_CPU)"
  if [[ " $GRANTS " == *" client_credentials "* ]]; then
    check_grant "argus client_credentials" "$ARGUS_URL" "grant_type=client_credentials&scope=$SCOPE" "$ARGUS_BASIC"
    check_grant "oidc-provider client_credentials" "$OP_URL" "grant_type=client_credentials&scope=$SCOPE" "$OP_BASIC"
    check_grant "floor client_credentials" "$FLOOR_URL" "grant_type=client_credentials&scope=$SCOPE" "$FLOOR_BASIC"
  fi
  : >"$TMP/results.tsv"
  say "rounds: $ROUNDS x ${DURATION}s per server and grant, $CONNECTIONS connections, after ${WARMUP}s warm-up each"
  for grant in $GRANTS; do
    measure "$grant" argus warmup "$WARMUP"
    measure "$grant" oidc-provider warmup "$WARMUP"
    measure "$grant" floor warmup "$WARMUP"
    for round in $(seq "$ROUNDS"); do
      measure "$grant" argus "$round" "$DURATION"
      measure "$grant" oidc-provider "$round" "$DURATION"
      measure "$grant" floor "$round" "$DURATION"
      measure_signing "$round"
    done
  done
  summarise
}

main "$@"
