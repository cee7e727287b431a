#!/usr/bin/env bash
# `make schemathesis`: schemathesis, pinned in requirements.txt and installed into
# target/schemathesis-venv, generates requests from openapi/openapi.json and checks the answers
# of a spawned capstats-api on a fresh seeded database: no 5xx, statuses, content types and
# bodies as the spec says, valid requests accepted, invalid ones refused, undeclared methods
# answered 405 (every phase). It signs in with an admin session (cookie and CSRF token) and an
# admin API token, each used where the operation's security scheme names it; signing out and
# changing the own password are left out, since they end that session.
# schemathesis.toml lists the operations whose cross-field rules allow a 400 for a request the
# spec accepts field by field. Any failure fails the run.
#
# Environment: DATABASE_URL (server; default postgres://root@127.0.0.1:5432),
# CAPSTATS_SCHEMATHESIS_EXAMPLES (examples per operation, default 50); further arguments go
# to `st run`.
set -euo pipefail
cd "$(dirname "$0")/../.."

server=${DATABASE_URL:-postgres://root@127.0.0.1:5432}
if [[ "$server" =~ ^(postgres(ql)?://[^/]+)(/.*)?$ ]]; then server=${BASH_REMATCH[1]}; fi
name=capstats_schemathesis_$$
port=$((20000 + $$ % 10000))
venv=target/schemathesis-venv
# Errors only: the fuzzer sends forged cookies by design, each a warning.
export DATABASE_URL="$server/$name" CAPSTATS_TIMEZONE=UTC CAPSTATS_LOG=error
# The session cookie as production names it (`__Host-capstats_session`, what the spec
# documents), although this server listens on plain HTTP on loopback.
export CAPSTATS_API_BIND="127.0.0.1:$port" CAPSTATS_LOGIN_ATTEMPTS_PER_MINUTE=1000 CAPSTATS_COOKIE_SECURE=true
# A credential key, so that collector passwords and alert channels are stored, not refused.
export CAPSTATS_CREDENTIAL_KEY=5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a

if [ ! -x "$venv/bin/st" ] || ! cmp -s tests/schemathesis/requirements.txt "$venv/requirements.txt"; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q -r tests/schemathesis/requirements.txt
    cp tests/schemathesis/requirements.txt "$venv/requirements.txt"
fi

cargo build -q --workspace --bins
bin=target/debug
api=
cleanup() {
    if [ -n "$api" ]; then kill "$api" 2>/dev/null || true; wait "$api" 2>/dev/null || true; fi
    psql -q "$server/postgres" -c "DROP DATABASE IF EXISTS $name WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

"$bin/capstats-api" migrate >/dev/null
"$bin/capstats-worker" seed-demo --instances 3 --databases-per-instance 3 --days 40 >/dev/null
from=$(date -u -d '45 days ago' +%F); to=$(date -u +%F)
for type in daily weekly monthly; do
    "$bin/capstats-worker" aggregate --period-type "$type" --from "$from" --to "$to" >/dev/null
done
# User 1 is the one the user operations change (schemathesis.toml fixes their id); the
# fuzzer's own account stays signed in.
echo 'schemathesis-password-1' | "$bin/capstats-api" create-user --username target --role viewer --update >/dev/null
echo 'schemathesis-password-1' | "$bin/capstats-api" create-user --username fuzz --role admin --update >/dev/null
"$bin/capstats-api" serve &
api=$!
base="http://127.0.0.1:$port"
for _ in $(seq 1 100); do curl -sf "$base/api/v1/health/ready" >/dev/null && break; sleep 0.2; done

login=$(curl -sS -D - -H 'content-type: application/json' \
    -d '{"username":"fuzz","password":"schemathesis-password-1"}' "$base/api/v1/auth/login" | tr -d '\r')
csrf=$(printf '%s\n' "$login" | sed -n 's/.*"csrf_token":"\([^"]*\)".*/\1/p')
session=$(printf '%s\n' "$login" | sed -n 's/^[Ss]et-[Cc]ookie: __Host-capstats_session=\([^;]*\).*/\1/p')
if [ -z "$csrf" ] || [ -z "$session" ]; then echo "sign-in failed: $login" >&2; exit 1; fi
token=$(curl -sS -H "Cookie: __Host-capstats_session=$session" -H "X-CSRFToken: $csrf" \
    -H 'content-type: application/json' -d '{"name":"schemathesis","scopes":["admin"]}' \
    "$base/api/v1/auth/tokens" | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
if [ -z "$token" ]; then echo "no API token" >&2; exit 1; fi
# schemathesis.toml hands them to the operations by their security schemes.
export CAPSTATS_SCHEMATHESIS_SESSION=$session CAPSTATS_SCHEMATHESIS_TOKEN=$token

"$venv/bin/st" --config-file tests/schemathesis/schemathesis.toml run openapi/openapi.json \
    --url "$base" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,positive_data_acceptance,negative_data_rejection,unsupported_method \
    --phases examples,coverage,fuzzing,stateful \
    --max-examples "${CAPSTATS_SCHEMATHESIS_EXAMPLES:-50}" \
    --header "X-CSRFToken: $csrf" \
    --exclude-path /api/v1/auth/logout --exclude-path /api/v1/auth/password \
    --no-color "$@"
