#!/usr/bin/env bash
# Smoke test of the README's quick start: `npm start` on the embedded database (PGlite),
# the newcomer's path over HTTP (/ → /portal → sign-in; sign up, the verification mail as an
# .eml file in the data dir, verify, sign in, an API key from the portal with no scope on the
# empty catalog), scope and client created with the CLI (forwarded to the running server through its control
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
grep -q 'admin account' "$log" && echo "first start printed the admin account and its set-password link (redacted here)"

banner "health, discovery, metrics"
curl -fsS "$base/healthz" >/dev/null || fail "/healthz"
discovery=$(curl -fsS "$base/.well-known/oauth-authorization-server") || fail "discovery"
token_endpoint=$(field token_endpoint <<<"$discovery") || fail "discovery has no token_endpoint"
introspection_endpoint=$(field introspection_endpoint <<<"$discovery") || fail "discovery has no introspection_endpoint"
field revocation_endpoint <<<"$discovery" >/dev/null || fail "discovery has no revocation_endpoint"
jwks_uri=$(field jwks_uri <<<"$discovery") || fail "discovery has no jwks_uri"
echo "token_endpoint=$token_endpoint introspection_endpoint=$introspection_endpoint jwks_uri=$jwks_uri"
curl -fsS "$jwks_uri" | field keys >/dev/null || fail "JWKS has no keys"
# Into a file first: with pipefail, `curl | grep -q` fails when grep stops reading early.
curl -fsS -o "$data_dir/metrics.txt" "$base/metrics" || fail "/metrics"
grep -q '^# HELP' "$data_dir/metrics.txt" || fail "/metrics is not Prometheus text"

banner "newcomer: / leads to /portal, signed out /portal leads to /portal/sign-in"
jar="$data_dir/cookies.txt"
page="$data_dir/page.html"
email="newcomer@example.com"
password="smoke test lantern orbit maple 47"
# status and Location of a GET that is not followed
head_of() { curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' -b "$jar" -c "$jar" "$base$1"; }
# GET a page into $page with the cookie jar; prints the status
get_page() { curl -sS -o "$page" -w '%{http_code}' -b "$jar" -c "$jar" "$base$1"; }
# POST a form (from this origin, as a browser would) into $page; prints status and Location
post_page() {
  local path=$1; shift
  curl -sS -o "$page" -w '%{http_code} %{redirect_url}' -b "$jar" -c "$jar" -H "Origin: $base" "$@" "$base$path"
}
# the CSRF token of the last page read
csrf() { grep -o 'name="_csrf" value="[^"]*"' "$page" | head -n 1 | sed 's/.*value="\([^"]*\)"/\1/'; }

read -r status location <<<"$(head_of /)"
[[ "$status" =~ ^30[1278]$ && "$location" == "$base/portal"* ]] || fail "GET / answered $status $location, expected a redirect to /portal"
read -r status location <<<"$(head_of /portal)"
[[ "$status" =~ ^30[1278]$ && "$location" == "$base/portal/sign-in"* ]] || fail "GET /portal (signed out) answered $status $location, expected a redirect to /portal/sign-in"
echo "/ → /portal → /portal/sign-in"

banner "newcomer: sign up, the verification mail in $LATCHKEY_DATA_DIR/mail/, verify"
status=$(get_page /portal/sign-up)
[ "$status" = 200 ] || fail "GET /portal/sign-up answered $status"
token=$(csrf)
[ -n "$token" ] || fail "no CSRF token on the sign-up form"
read -r status location <<<"$(post_page /portal/sign-up --data-urlencode "_csrf=$token" --data-urlencode "email=$email" --data-urlencode "password=$password")"
[ "$status" = 200 ] || fail "sign-up answered $status: $(head -c 400 "$page")"
grep -q 'Check your inbox' "$page" || fail "sign-up did not say to check the inbox"
eml=
for _ in $(seq 1 40); do
  eml=$(ls -t "$LATCHKEY_DATA_DIR/mail/"*.eml 2>/dev/null | head -n 1 || true)
  [ -n "$eml" ] && break
  sleep 0.25
done
[ -n "$eml" ] || fail "no .eml file in $LATCHKEY_DATA_DIR/mail/ after sign-up"
grep -qi "^To: .*$email" "$eml" || fail "$eml is not addressed to $email"
# The server writes its log in batches, flushed at least every 250 ms.
for _ in $(seq 1 20); do
  grep -q "$(basename "$eml")" "$log" && break
  sleep 0.25
done
grep -q "$(basename "$eml")" "$log" || fail "the server log does not name the mail file $(basename "$eml")"
grep -q 'verify-email?token=' "$log" && fail "the server log holds the verification link"
# Quoted-printable: join soft line breaks (=CRLF), then =3D back to =.
verify_link=$(tr -d '\r' <"$eml" | sed -e ':a' -e '/=$/{N;s/=\n//;ba' -e '}' | sed 's/=3D/=/g' \
  | grep -o "$base/portal/verify-email?token=[A-Za-z0-9._~-]*" | head -n 1 || true)
[ -n "$verify_link" ] || fail "no $base/portal/verify-email link in $eml"
echo "mail $(basename "$eml") has the verification link (redacted here)"
status=$(get_page "${verify_link#"$base"}")
[ "$status" = 200 ] || fail "GET of the verification link answered $status"
read -r status location <<<"$(post_page /portal/verify-email --data-urlencode "_csrf=$(csrf)" --data-urlencode "token=${verify_link#*token=}")"
[ "$status" = 303 ] || fail "verification answered $status (expected 303): $(head -c 400 "$page")"
echo "verified"

banner "newcomer: sign in, create an API key with no scope (the catalog is empty)"
status=$(get_page /portal/sign-in)
[ "$status" = 200 ] || fail "GET /portal/sign-in answered $status"
read -r status location <<<"$(post_page /portal/sign-in --data-urlencode "_csrf=$(csrf)" --data-urlencode "email=$email" --data-urlencode "password=$password")"
[ "$status" = 303 ] || fail "sign-in answered $status (expected 303): $(head -c 400 "$page")"
echo "signed in → ${location#"$base"}"
status=$(get_page /portal/keys/new)
[ "$status" = 200 ] || fail "GET /portal/keys/new answered $status"
grep -q 'No scopes are defined yet' "$page" || fail "the key form does not say that no scope is defined yet"
read -r status location <<<"$(post_page /portal/keys --data-urlencode "_csrf=$(csrf)" --data-urlencode "name=smoke key" --data-urlencode "expires=30d")"
[ "$status" = 200 ] || fail "POST /portal/keys answered $status (expected the shown-once page): $(grep -o 'field-error[^<]*<' "$page" | head -n 3)"
portal_key=$(grep -o 'value="lk_[0-9A-Za-z]*_[0-9A-Za-z]*"' "$page" | head -n 1 | sed 's/value="\(.*\)"/\1/')
[ -n "$portal_key" ] || fail "the shown-once page has no lk_… key"
echo "key ${portal_key:0:15}… created in the portal (secret redacted)"

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

banner "introspection of the portal's key (the CLI's client as the resource server)"
introspection=$(curl -fsS -u "$client_id:$client_secret" --data-urlencode "token=$portal_key" "$introspection_endpoint") || fail "introspection request for the portal's key"
[ "$(field active <<<"$introspection")" = true ] || fail "the portal's key is not active: $introspection"
echo "active=true token_type=$(field token_type <<<"$introspection") sub=$(field sub <<<"$introspection")"

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
# The server may still be finishing its shutdown (flushing audit, usage and mail) when npm is
# gone: give it the same 15 s.
for _ in $(seq 1 30); do
  kill -0 -- "-$server_pid" 2>/dev/null || break
  sleep 0.5
done
kill -0 -- "-$server_pid" 2>/dev/null && fail "npm exited but the server it started is still running 15 s later"
server_pid=
echo "exited 0"

banner "passed"
