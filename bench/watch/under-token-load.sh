#!/usr/bin/env bash
# Does watch keep up with the issuer? `argus up --demo` under the token-endpoint benchmark's client_credentials load
# (wrk, 64 connections, DURATION seconds), then watch's counters from /healthz: every token issued is an event, and
# each must be audited (`audited`), none lost (`events_lost` 0, no `audit_gap` alert), with no backlog left at the
# end (`drain` is how long watch still had work once the load stopped).
#
#   bench/watch/under-token-load.sh              # 25 s; builds target/release/argus first
#   DURATION=10 ARGUS_BIN=/path/to/argus bench/watch/under-token-load.sh
#
# Argus is pinned to core 0, wrk to core 1, as in bench/token-endpoint/run.sh. Needs wrk, curl, python3, taskset.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
DURATION=${DURATION:-25}
LUA_DIR=$ROOT/bench/token-endpoint
say() { printf '%s\n' "$*" >&2; }
die() { say "under-token-load.sh: $*"; exit 1; }
for tool in wrk curl python3 taskset; do command -v "$tool" >/dev/null || die "$tool is required"; done
if [ -z "${ARGUS_BIN:-}" ]; then
  say "building target/release/argus"
  (cd "$ROOT" && cargo build --release --locked -q -p argus --bin argus)
  ARGUS_BIN=$ROOT/target/release/argus
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/argus-watch-load-XXXXXX")
PID=
cleanup() {
  [ -n "$PID" ] && { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }
  rm -rf "$TMP"
}
trap cleanup EXIT

printf '[issuer]\nlisten = "127.0.0.1:0"\n[gate]\nlisten = "127.0.0.1:0"\n[watch]\nlisten = "127.0.0.1:0"\n[demo]\nlisten = "127.0.0.1:0"\n' \
  >"$TMP/argus.toml"
taskset -c 0 "$ARGUS_BIN" up --demo --config "$TMP/argus.toml" --data-dir "$TMP/data" \
  --demo-password "$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')" >"$TMP/out" 2>"$TMP/err" &
PID=$!
banner() { sed -nE "s#$1#\\1#p" "$TMP/out" 2>/dev/null | head -n1; }
for _ in $(seq 300); do
  [ -n "$(banner '^ +admin +argus-admin .*secret: ([^ ]+)$')" ] && break
  kill -0 "$PID" 2>/dev/null || { cat "$TMP/err" >&2; die "argus exited"; }
  sleep 0.1
done
ISSUER=$(banner '^ +issuer +(http://[^ ]+).*$')
WATCH=$(banner '^ +watch +(http://[^ ]+).*$')
ADMIN_SECRET=$(banner '^ +admin +argus-admin .*secret: ([^ ]+)$')
[ -n "$ISSUER" ] && [ -n "$WATCH" ] && [ -n "$ADMIN_SECRET" ] || die "argus did not start: $(cat "$TMP/err")"
field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
ADMIN_TOKEN=$(curl -sS --max-time 10 -u "argus-admin:$ADMIN_SECRET" \
  -d 'grant_type=client_credentials&scope=argus:admin' "$ISSUER/token" | field access_token)
SECRET=$(curl -sS --max-time 10 -H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/json' \
  -d '{"client_id": "bench-service", "name": "Benchmark service", "allowed_scopes": ["accounts:read"],
       "token_endpoint_auth_method": "client_secret_basic", "grant_types": ["client_credentials"]}' \
  "$ISSUER/admin/v1/clients" | field client_secret)
BASIC=$(printf '%s' "bench-service:$SECRET" | base64 -w0)

health() { curl -sS --max-time 10 "$WATCH/healthz"; }
BEFORE=$(health)
say "client_credentials load for ${DURATION}s"
RESULT=$(BENCH_DIR=$LUA_DIR BENCH_BASIC=$BASIC BENCH_SCOPE=accounts:read taskset -c 1 \
  wrk -t1 -c64 -d"${DURATION}s" --timeout 5s -s "$LUA_DIR/client-credentials.lua" "$ISSUER" | grep '^RESULT')
START=$(date +%s.%N)
AFTER=$(health)
while true; do
  sleep 0.2
  NOW=$(health)
  [ "$NOW" = "$AFTER" ] && break
  AFTER=$NOW
done
DRAIN=$(awk -v s="$START" -v n="$(date +%s.%N)" 'BEGIN { printf "%.1f", n - s - 0.2 }')
# The watch API takes admin tokens, as the admin API does (a fresh one: the first may have expired under load).
ADMIN_TOKEN=$(curl -sS --max-time 10 -u "argus-admin:$ADMIN_SECRET" \
  -d 'grant_type=client_credentials&scope=argus:admin' "$ISSUER/token" | field access_token)
GAPS=$(curl -sS --max-time 10 -H "Authorization: Bearer $ADMIN_TOKEN" "$WATCH/api/alerts?attack=audit_gap")
python3 - "$BEFORE" "$AFTER" "$RESULT" "$DRAIN" "$GAPS" <<'PY'
import json, sys
before, after = (json.loads(s)["consumer"] for s in sys.argv[1:3])
result = dict(kv.split("=") for kv in sys.argv[3].split()[1:])
drain, gaps = float(sys.argv[4]), json.loads(sys.argv[5])
events = after["events"] - before["events"]
print(f"tokens issued {int(result['requests']) - int(result['errors']):,} in {float(result['seconds']):.1f} s "
      f"({float(result['rps']):,.0f}/s); watch: {events:,} events, {after['audited'] - before['audited']:,} audited, "
      f"{after['events_lost']:,} lost, {len(gaps)} audit_gap alerts, "
      f"mean batch {events / max(1, after['batches'] - before['batches']):.1f}, drain {drain:.1f} s")
ok = after["events_lost"] == 0 and not gaps and after["audit_failures"] == 0 and after["audited"] == after["events"]
sys.exit(0 if ok else 1)
PY
