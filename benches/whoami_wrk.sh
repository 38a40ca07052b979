#!/usr/bin/env bash
# whoami vs /health/alive measured by an external load generator (wrk) against the release
# binary, so client and server do not share one process. Needs wrk (Debian package `wrk`),
# curl and python3. Uses PostgreSQL when DATABASE_URL is set, else a SQLite file.
#   benches/whoami_wrk.sh [connections=64] [seconds=10]
set -euo pipefail
cd "$(dirname "$0")/.."
conns="${1:-64}"
secs="${2:-10}"
target="${CARGO_TARGET_DIR:-target}"
cargo build --release --quiet --bin tessera
bin="$target/release/tessera"
dir="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
if [ -n "${DATABASE_URL:-}" ]; then
  schema="wrk_$$"
  psql "$DATABASE_URL" -q -c "CREATE SCHEMA $schema"
  sep='?'; case "$DATABASE_URL" in *\?*) sep='&';; esac
  dsn="${DATABASE_URL}${sep}options=-csearch_path%3D${schema}"
else
  dsn="sqlite://$dir/wrk.sqlite?_fk=true"
fi
public=$((20000 + RANDOM % 20000)); admin=$((public + 1))
DSN="$dsn" TESSERA__SERVE__PUBLIC__PORT=$public TESSERA__SERVE__PUBLIC__HOST='"127.0.0.1"' \
  TESSERA__SERVE__ADMIN__PORT=$admin TESSERA__LOG__LEVEL='"error"' \
  TESSERA__SELFSERVICE__METHODS__PASSWORD__CONFIG__HAVEIBEENPWNED_ENABLED=false \
  "$bin" serve --dev --migrate >"$dir/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$admin/admin/health/ready" >/dev/null && break; sleep 0.1; done
# A user and a session token through the self-service API.
curl -sf -X POST "http://127.0.0.1:$admin/admin/identities" -H 'Content-Type: application/json' \
  -d '{"traits":{"email":"wrk@example.org"},"credentials":{"password":{"config":{"password":"wrk-password-123"}}}}' >/dev/null
flow=$(curl -sf "http://127.0.0.1:$public/self-service/login/api" | python3 -c 'import json,sys;print(json.load(sys.stdin)["id"])')
token=$(curl -sf -X POST "http://127.0.0.1:$public/self-service/login?flow=$flow" -H 'Content-Type: application/json' \
  -d '{"method":"password","identifier":"wrk@example.org","password":"wrk-password-123"}' \
  | python3 -c 'import json,sys;print(json.load(sys.stdin)["session_token"])')
run() { wrk -t1 -c"$conns" -d"${secs}s" --latency "$@"; }
curl -sf -H "X-Session-Token: $token" "http://127.0.0.1:$public/sessions/whoami" >/dev/null
alive=$(run "http://127.0.0.1:$public/health/alive")
whoami=$(run -H "X-Session-Token: $token" "http://127.0.0.1:$public/sessions/whoami")
rps() { awk '/Requests\/sec/ {print $2}'; }
p99() { awk '$1=="99%" {print $2}'; }
non2xx() { awk '/Non-2xx/ {print $4}'; }
a=$(echo "$alive" | rps); w=$(echo "$whoami" | rps)
echo "wrk, 1 thread, $conns connections, ${secs}s each, release binary (server and wrk share the machine)"
echo "GET /health/alive:   $a req/s  p99 $(echo "$alive" | p99)"
echo "GET /sessions/whoami: $w req/s  p99 $(echo "$whoami" | p99)  non-2xx: $(echo "$whoami" | non2xx)"
python3 -c "print('ratio whoami / alive: %.2f' % ($w / $a))"
