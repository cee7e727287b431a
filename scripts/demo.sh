#!/usr/bin/env bash
# `make demo` (which bundles the web UI first): the whole product on one machine. Migrates
# the demo database (creating it if missing), creates a demo admin, seeds 400 days of demo
# data for 20 instances, aggregates every period type, then runs the worker (in the
# background, scheduler on) and the API with the web UI (in the foreground) until Ctrl-C.
#
# Environment: DATABASE_URL (default postgres://root@127.0.0.1:5432; a URL without a database
# name gets the database `capstats`), CAPSTATS_API_BIND (default 127.0.0.1:8080),
# CAPSTATS_DEMO_PASSWORD (default capstats-demo).
set -euo pipefail
cd "$(dirname "$0")/.."

url=${DATABASE_URL:-postgres://root@127.0.0.1:5432}
if [[ "$url" =~ ^postgres(ql)?://[^/]+/?$ ]]; then url="${url%/}/capstats"; fi
export DATABASE_URL=$url
export CAPSTATS_API_BIND=${CAPSTATS_API_BIND:-127.0.0.1:8080}
password=${CAPSTATS_DEMO_PASSWORD:-capstats-demo}
bin=target/release

cargo build --release -p capstats-api -p capstats-worker
"$bin/capstats-api" migrate
echo "$password" | "$bin/capstats-api" create-user --username admin --role admin --update
# The generator is deterministic: a second `make demo` rewrites the same samples.
"$bin/capstats-worker" seed-demo
from=$(date -u -d '400 days ago' +%F)
to=$(date -u +%F)
for type in daily weekly monthly quarterly yearly; do
    "$bin/capstats-worker" aggregate --period-type "$type" --from "$from" --to "$to"
done

"$bin/capstats-worker" run &
worker=$!
trap 'kill "$worker" 2>/dev/null || true; wait "$worker" 2>/dev/null || true' EXIT

cat <<MESSAGE

capstats is running
  web UI        http://$CAPSTATS_API_BIND/
  API           http://$CAPSTATS_API_BIND/api/v1/   (Swagger UI: http://$CAPSTATS_API_BIND/api/v1/docs/)
  sign in as    admin / $password
  worker        pid $worker (schedules run on their cron; see \`capstats-worker schedules list\`)
Ctrl-C stops both.

MESSAGE
"$bin/capstats-api" serve
