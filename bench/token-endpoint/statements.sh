#!/usr/bin/env bash
# Database statements per token request, from sqlx's query log (RUST_LOG=sqlx::query=debug).
#
#   bench/token-endpoint/statements.sh                     # uses target/release/argus (build it first)
#   ARGUS_BIN=/path/to/argus LOAD_SECONDS=6 bench/token-endpoint/statements.sh
#
# Starts `argus up --demo` on 127.0.0.1 (ephemeral ports, a temp data dir), creates the benchmark's client through
# the admin API, then:
# 1. on the idle server, sends two client_credentials and two refresh_token requests one at a time and lists the
#    statements logged while each was answered (watch's audit append of the request's event included; BEGIN and
#    COMMIT are not logged by sqlx). Background statements can fall in a window: the issuer rereads its signing keys
#    and the clients every key_reload_secs (5 s), and its registry rereads a client or user after
#    registry_cache_secs (5 s).
# 2. unless LOAD_SECONDS=0, refreshes under load (wrk, 64 connections, LOAD_SECONDS seconds, the benchmark's
#    refresh-token.lua) and counts the refresh-token lookups and rotations the store ran for them: under load both are
#    batched, many requests per statement. Logging slows the server, so these are not throughput figures.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ARGUS_BIN=${ARGUS_BIN:-$ROOT/target/release/argus}
LOAD_SECONDS=${LOAD_SECONDS:-6}
[ -x "$ARGUS_BIN" ] || { echo "statements.sh: no $ARGUS_BIN (cargo build --release -p argus)" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/argus-statements-XXXXXX")
PID=
cleanup() {
  [ -n "$PID" ] && { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }
  rm -rf "$TMP"
}
trap cleanup EXIT

cat >"$TMP/argus.toml" <<EOF
[issuer]
listen = "127.0.0.1:0"
[gate]
listen = "127.0.0.1:0"
[watch]
listen = "127.0.0.1:0"
[demo]
listen = "127.0.0.1:0"
EOF
PASSWORD=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
RUST_LOG=sqlx::query=debug,info NO_COLOR=1 "$ARGUS_BIN" up --demo --config "$TMP/argus.toml" \
  --data-dir "$TMP/data" --demo-password "$PASSWORD" >"$TMP/out" 2>"$TMP/log" &
PID=$!
for _ in $(seq 300); do grep -q 'argus-admin' "$TMP/out" 2>/dev/null && break; sleep 0.1; done
URL=$(sed -nE 's#^ +issuer +(http://[^ ]+).*$#\1#p' "$TMP/out" | head -n1)
ADMIN=$(sed -nE 's#^ +admin +argus-admin .*secret: ([^ ]+)$#\1#p' "$TMP/out" | head -n1)
[ -n "$URL" ] && [ -n "$ADMIN" ] || { cat "$TMP/out" "$TMP/log" >&2; echo "statements.sh: argus did not start" >&2; exit 1; }

json_field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
admin_token=$(curl -sS --max-time 10 -u "argus-admin:$ADMIN" -d 'grant_type=client_credentials&scope=argus:admin' \
  "$URL/token" | json_field access_token)
secret=$(curl -sS --max-time 10 -H "Authorization: Bearer $admin_token" -H 'Content-Type: application/json' \
  -d '{"client_id": "bench-service", "name": "Benchmark service", "allowed_scopes": ["accounts:read"],
       "token_endpoint_auth_method": "client_secret_basic", "grant_types": ["client_credentials"]}' \
  "$URL/admin/v1/clients" | json_field client_secret)
(cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
node "$HERE/mint-refresh.mjs" --server argus --issuer "$URL" --password "$PASSWORD" --count 80 >"$TMP/chains"

# statements LABEL: run the request on stdin's command, then list what was logged meanwhile.
logged_since() { tail -n +$(($1 + 1)) "$TMP/log" | grep 'sqlx::query' | sed -E 's/.*summary="([^"]*)".*/    \1/' || true; }
one_request() {
  local label=$1; shift
  sleep 1 # let background work settle
  local mark; mark=$(wc -l <"$TMP/log")
  "$@"
  sleep 1 # watch appends the event's audit row after the answer
  local lines; lines=$(logged_since "$mark")
  echo "$label: $(grep -c . <<<"$lines" || true) statements"
  [ -n "$lines" ] && echo "$lines"
}

echo "Idle server, one request at a time:"
cc() { curl -sS -o /dev/null --max-time 10 -u "bench-service:$secret" \
  -d 'grant_type=client_credentials&scope=accounts:read' "$URL/token"; }
refresh_token=$(sed -n 1p "$TMP/chains")
refresh() { refresh_token=$(curl -sS --max-time 10 -d "grant_type=refresh_token&client_id=demo-app" \
  --data-urlencode "refresh_token=$refresh_token" "$URL/token" | json_field refresh_token); }
for i in 1 2; do one_request "  client_credentials #$i" cc; done
for i in 1 2; do one_request "  refresh_token #$i" refresh; done

if [ "$LOAD_SECONDS" != 0 ]; then
  command -v wrk >/dev/null || { echo "statements.sh: wrk is needed for the load part" >&2; exit 1; }
  sed -n '2,$p' "$TMP/chains" >"$TMP/load-chains"
  mark=$(wc -l <"$TMP/log")
  out=$(BENCH_DIR=$HERE wrk -t1 -c64 -d"${LOAD_SECONDS}s" --timeout 5s -s "$HERE/refresh-token.lua" "$URL" -- \
    "$TMP/load-chains" demo-app)
  sleep 1
  requests=$(sed -nE 's/.* requests=([0-9]+).*/\1/p' <<<"$(grep '^RESULT' <<<"$out")")
  since=$(tail -n +$((mark + 1)) "$TMP/log")
  lookups=$(grep -c 'sqlx::query.*summary="SELECT t\.\*' <<<"$since" || true)
  rotations=$(grep -c 'sqlx::query.*summary="INSERT INTO refresh_tokens' <<<"$since" || true)
  echo "Under load (${LOAD_SECONDS}s, 64 connections): $requests refreshes; $lookups lookup statements" \
    "($(awk -v r="$requests" -v n="$lookups" 'BEGIN { printf "%.1f", n ? r / n : 0 }') refreshes each)," \
    "$rotations rotation statements ($(awk -v r="$requests" -v n="$rotations" 'BEGIN { printf "%.1f", n ? r / n : 0 }') each)"
fi
