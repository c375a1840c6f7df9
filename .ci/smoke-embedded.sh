#!/usr/bin/env bash
# Smoke test of the README's quick start: `npm start` on the embedded database (PGlite),
# scope and client created with the CLI (forwarded to the running server through its control
# socket in LATCHKEY_DATA_DIR), a token by client_secret_basic, introspection of it, and a
# graceful SIGTERM stop that exits 0.
#
# Usage: bash .ci/smoke-embedded.sh   (from anywhere; SMOKE_PORT picks the port, else a free one)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

banner() { printf '\n==== smoke: %s ====\n' "$*"; }

data_dir=$(mktemp -d "${TMPDIR:-/tmp}/latchkey-smoke.XXXXXX")
log="$data_dir/server.log"
server_pid=

dump_log() {
  if [ -f "$log" ]; then
    echo '---- server output (last 80 lines) ----' >&2
    tail -n 80 "$log" >&2 || true
    echo '---------------------------------------' >&2
  fi
}
fail() {
  echo "smoke: FAIL: $*" >&2
  dump_log
  exit 1
}
cleanup() {
  if [ -n "$server_pid" ]; then
    # The whole process group started below: npm, and the server if npm left it behind.
    kill -KILL -- "-$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$data_dir"
}
trap cleanup EXIT

# A JSON field from stdin, with node (jq may be absent on a fresh machine).
field() {
  node -e '
    let s = ""; process.stdin.on("data", (c) => (s += c)).on("end", () => {
      const v = JSON.parse(s)[process.argv[1]];
      if (v === undefined || v === null) { console.error(`missing field ${process.argv[1]} in ${s}`); process.exit(1); }
      process.stdout.write(typeof v === "string" ? v : JSON.stringify(v));
    });' "$1"
}

port=${SMOKE_PORT:-$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')}
base="http://127.0.0.1:$port"

# The embedded database (no DATABASE_URL) in a fresh data directory, on loopback only.
unset DATABASE_URL NODE_ENV LATCHKEY_SECRET REDIS_URL SMTP_URL LATCHKEY_DEFAULT_AUDIENCE
export LATCHKEY_DATA_DIR="$data_dir/data" PORT="$port" HOST=127.0.0.1 LATCHKEY_ISSUER="$base"
mkdir -p "$LATCHKEY_DATA_DIR"

banner "npm start (embedded database in $LATCHKEY_DATA_DIR, port $port)"
# In a process group of its own (setsid), so that cleanup can reach whatever npm started.
setsid npm start >"$log" 2>&1 </dev/null &
server_pid=$!

ready=
for _ in $(seq 1 120); do
  kill -0 "$server_pid" 2>/dev/null || fail "npm start exited before it was ready"
  if curl -fsS -o /dev/null --max-time 2 "$base/readyz" 2>/dev/null; then ready=1; break; fi
  sleep 0.5
done
[ -n "$ready" ] || fail "/readyz did not answer 200 within 60 s"
echo "ready: $(curl -fsS "$base/readyz")"
grep -q 'admin account' "$log" && echo "first start printed the admin account (password redacted here)"

banner "health, discovery, metrics"
curl -fsS "$base/healthz" >/dev/null || fail "/healthz"
discovery=$(curl -fsS "$base/.well-known/oauth-authorization-server") || fail "discovery"
token_endpoint=$(field token_endpoint <<<"$discovery") || fail "discovery has no token_endpoint"
introspection_endpoint=$(field introspection_endpoint <<<"$discovery") || fail "discovery has no introspection_endpoint"
field revocation_endpoint <<<"$discovery" >/dev/null || fail "discovery has no revocation_endpoint"
jwks_uri=$(field jwks_uri <<<"$discovery") || fail "discovery has no jwks_uri"
echo "token_endpoint=$token_endpoint introspection_endpoint=$introspection_endpoint jwks_uri=$jwks_uri"
curl -fsS "$jwks_uri" | field keys >/dev/null || fail "JWKS has no keys"
curl -fsS "$base/metrics" | grep -q '^# HELP' || fail "/metrics is not Prometheus text"

banner "CLI through the control socket: scope create, client create"
scope_out=$(npx --no-install latchkey scope create smoke.read --description "Smoke test scope" --json </dev/null) \
  || fail "latchkey scope create"
echo "$scope_out"
client_out=$(npx --no-install latchkey client create --name smoke --scopes smoke.read --json </dev/null) \
  || fail "latchkey client create"
client_id=$(field client_id <<<"$client_out") || fail "client create printed no client_id: $client_out"
client_secret=$(field client_secret <<<"$client_out") || fail "client create printed no client_secret"
echo "client_id=$client_id (secret redacted)"

banner "token by client_secret_basic"
headers="$data_dir/token.headers"
token_out=$(curl -sS -D "$headers" -u "$client_id:$client_secret" -d grant_type=client_credentials -d scope=smoke.read "$token_endpoint") \
  || fail "token request"
access_token=$(field access_token <<<"$token_out") || fail "no access_token in: $token_out"
grep -qi '^cache-control: *no-store' "$headers" || fail "token answer lacks Cache-Control: no-store"
echo "token_type=$(field token_type <<<"$token_out") expires_in=$(field expires_in <<<"$token_out") scope=$(field scope <<<"$token_out")"

banner "introspection of that token"
introspection=$(curl -fsS -u "$client_id:$client_secret" -d "token=$access_token" "$introspection_endpoint") || fail "introspection request"
[ "$(field active <<<"$introspection")" = true ] || fail "token is not active: $introspection"
echo "active=true client_id=$(field client_id <<<"$introspection") scope=$(field scope <<<"$introspection")"

banner "SIGTERM stops the server with exit 0 within 15 s"
kill -TERM "$server_pid"
for _ in $(seq 1 30); do
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.5
done
kill -0 "$server_pid" 2>/dev/null && fail "still running 15 s after SIGTERM"
code=0
wait "$server_pid" || code=$?
[ "$code" -eq 0 ] || fail "npm start exited $code after SIGTERM"
# npm forwards SIGTERM to its script's process only; a server left running would keep the
# embedded database locked (the start script must exec the server).
sleep 0.5
kill -0 -- "-$server_pid" 2>/dev/null && fail "npm exited but the server it started is still running"
server_pid=
echo "exited 0"

banner "passed"
