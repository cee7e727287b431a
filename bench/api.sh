#!/usr/bin/env bash
# `make bench-api`: load the list, summary and series endpoints of a release build with wrk
# (32 connections, 20 s each) on a database holding about one million aggregate rows, and print
# requests per second and latency percentiles (the summaries and series also while the data
# changes every second), then the first read of the capacity pages after a change
# (bench/first_reads.py); then time CSV exports of growing size with the API's memory. Figures
# are recorded in docs/performance.md. CAPSTATS_REMEMBERED_READS_MB=0 measures every read cold.
#
# Environment: DATABASE_URL (server; default postgres://root@127.0.0.1:5432),
# CAPSTATS_BENCH_API_DATABASE (default capstats_bench_api), CAPSTATS_BENCH_KEEP=1 to reuse the
# seeded database, CAPSTATS_BENCH_DURATION (default 20s), CAPSTATS_BENCH_CONNECTIONS (32),
# CAPSTATS_BENCH_POOL_SIZE (the API's pool, default 4), CAPSTATS_BENCH_ONLY (an extended regular
# expression: only the endpoints whose label matches).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
server=${DATABASE_URL:-postgres://root@127.0.0.1:5432}
if [[ "$server" =~ ^(postgres(ql)?://[^/]+)(/.*)?$ ]]; then server=${BASH_REMATCH[1]}; fi
name=${CAPSTATS_BENCH_API_DATABASE:-capstats_bench_api}
duration=${CAPSTATS_BENCH_DURATION:-20s}
connections=${CAPSTATS_BENCH_CONNECTIONS:-32}
port=18181
export DATABASE_URL="$server/$name"
export CAPSTATS_TIMEZONE=UTC CAPSTATS_LOG=warn CAPSTATS_API_BIND="127.0.0.1:$port"

cargo build -q --release -p capstats-api -p capstats-worker
bin=target/release

if [ "${CAPSTATS_BENCH_KEEP:-}" != 1 ] || ! psql -q "$DATABASE_URL" -c 'SELECT 1' >/dev/null 2>&1; then
    psql -q "$server/postgres" -c "DROP DATABASE IF EXISTS $name WITH (FORCE)"
    "$bin/capstats-api" migrate >/dev/null
    # 115 instances × 20 databases × 400 days ≈ 0.9 M samples → ≈ 1 M aggregate rows.
    "$bin/capstats-worker" seed-demo --instances 115 --databases-per-instance 20 --days 400
    from=$(date -u -d '430 days ago' +%F); to=$(date -u +%F)
    for type in daily weekly monthly quarterly yearly; do
        "$bin/capstats-worker" aggregate --period-type "$type" --from "$from" --to "$to"
    done
    # What autovacuum does on a live system: statistics, and a visibility map for index-only
    # scans.
    psql -q "$DATABASE_URL" -c 'VACUUM ANALYZE'
fi
# Capacity limits on every tenth database and instance, as an operator sets them on the keys
# that matter (what the "fewest days until full" card and its forecasts read).
psql -q "$DATABASE_URL" -c "UPDATE instance_databases SET capacity_limit_mb = 4000000 WHERE id % 10 = 0 AND capacity_limit_mb IS NULL" \
    -c "UPDATE instances SET capacity_limit_mb = 80000000 WHERE id % 10 = 0 AND capacity_limit_mb IS NULL"
psql -At "$DATABASE_URL" -c "SELECT 'aggregate rows: ' || ((SELECT count(*) FROM database_size_aggregations) + (SELECT count(*) FROM instance_size_aggregations))"

echo 'bench-password-1' | "$bin/capstats-api" create-user --username bench --role admin --update >/dev/null
# The API's pool sized by PostgreSQL's rule of thumb, about twice the database server's cores
# (docs/configuration.md): more connections only make the backends compete for the two cores.
CAPSTATS_DATABASE_POOL_SIZE=${CAPSTATS_BENCH_POOL_SIZE:-4} "$bin/capstats-api" serve &
api=$!
trap 'kill $api 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$port/api/v1/health/ready" >/dev/null && break; sleep 0.2; done

cookies=$(mktemp)
csrf=$(curl -sf -c "$cookies" -H 'content-type: application/json' \
    -d '{"username":"bench","password":"bench-password-1"}' \
    "http://127.0.0.1:$port/api/v1/auth/login" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["csrf_token"])')
token=$(curl -sf -b "$cookies" -H "X-CSRFToken: $csrf" -H 'content-type: application/json' \
    -d '{"name":"bench","scopes":["read"]}' "http://127.0.0.1:$port/api/v1/auth/tokens" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["token"])')
rm -f "$cookies"

endpoints=(
    "list instances (daily, page 1)|/api/v1/capacity/instances?period_type=daily&limit=20"
    "list databases (daily, page 1)|/api/v1/capacity/databases?period_type=daily&limit=20"
    "list databases (weekly, one instance)|/api/v1/capacity/databases?period_type=weekly&instance_id=7&limit=50"
    "instances summary (31 days)|/api/v1/capacity/instances/summary"
    "databases summary (daily)|/api/v1/capacity/databases/summary?period_type=daily"
    "instances series (30 days, top 10)|/api/v1/capacity/instances/series?period_type=daily&periods=30&top=10"
    "databases series (30 days, top 10)|/api/v1/capacity/databases/series?period_type=daily&periods=30&top=10"
    "instances growth (12 months)|/api/v1/capacity/instances/growth?period_type=monthly&periods=12"
    "databases growth (12 months)|/api/v1/capacity/databases/growth?period_type=monthly&periods=12"
    "databases growth by days until full|/api/v1/capacity/databases/growth?period_type=monthly&periods=12&sort=days_until_full"
    "instances forecast (30 days)|/api/v1/capacity/instances/forecast?horizon_days=30"
    "databases forecast (30 days)|/api/v1/capacity/databases/forecast?horizon_days=30"
)
# Loads `path` with wrk and prints a row labelled `label`.
measure() {
    local label=$1 path=$2 out rps p50 p90 p99 errors
    out=$(wrk -t 2 -c "$connections" -d "$duration" --latency -H "Authorization: Bearer $token" "http://127.0.0.1:$port$path")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1=="50%" {print $2}' <<<"$out"); p90=$(awk '$1=="90%" {print $2}' <<<"$out"); p99=$(awk '$1=="99%" {print $2}' <<<"$out")
    errors=$(grep -E 'Non-2xx|Socket errors' <<<"$out" || true)
    printf '%-40s %10s %9s %9s %9s %s\n' "$label" "$rps" "$p50" "$p90" "$p99" "$errors"
}
printf '\n%-40s %10s %9s %9s %9s\n' endpoint 'req/s' p50 p90 p99
for entry in "${endpoints[@]}"; do
    label=${entry%%|*}; path=${entry#*|}
    [[ "$label" =~ ${CAPSTATS_BENCH_ONLY:-.} ]] || continue
    status=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "http://127.0.0.1:$port$path")
    [ "$status" = 200 ] || { echo "$path answered $status" >&2; exit 1; }
    measure "$label" "$path"
done

# The same reads while the data changes: a statement on a table behind them commits every
# second (as ingest or a run would), so each remembered answer is read again once a second.
changes() {
    while true; do
        psql -q "$DATABASE_URL" -c 'DELETE FROM instances WHERE false' >/dev/null
        sleep 1
    done
}
for entry in "${endpoints[@]}"; do
    label="${entry%%|*}, a change every second"; path=${entry#*|}
    [[ "$label" =~ summary|series ]] || continue
    [[ "$label" =~ ${CAPSTATS_BENCH_ONLY:-.} ]] || continue
    changes & changer=$!
    measure "$label" "$path"
    kill "$changer"; wait "$changer" 2>/dev/null || true
done

# The first read after a change: a statement on a table behind the reads commits, then one
# client opens a capacity page: its calls go out together (bench/first_reads.py).
if [[ "first read" =~ ${CAPSTATS_BENCH_ONLY:-.} ]]; then
    python3 bench/first_reads.py "http://127.0.0.1:$port" "$token" "$DATABASE_URL"
fi

# CSV exports: one client downloads every daily database row of windows of growing length
# (`format=csv`), while the API's resident memory is sampled every 50 ms; rows per second
# should stay flat (linear cost) and memory should not grow with the file.
rss() { awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$api/status"; }
printf '\n%-40s %10s %9s %9s %10s %10s\n' export rows seconds 'rows/s' 'MB' 'RSS MiB'
for days in 40 130 430; do
    label="export databases (daily, $days days)"
    [[ "$label" =~ ${CAPSTATS_BENCH_ONLY:-.} ]] || continue
    path="/api/v1/capacity/databases?period_type=daily&time_range=$days&format=csv"
    before=$(rss); peak=$before
    output=$(mktemp)
    started=$(date +%s.%N)
    curl -sf -H "Authorization: Bearer $token" -o "$output" "http://127.0.0.1:$port$path" &
    download=$!
    while kill -0 "$download" 2>/dev/null; do
        now=$(rss); [ "$now" -gt "$peak" ] && peak=$now
        sleep 0.05
    done
    wait "$download"
    seconds=$(awk -v from="$started" -v to="$(date +%s.%N)" 'BEGIN { print to - from }')
    rows=$(($(wc -l <"$output") - 1))
    megabytes=$(($(stat -c %s "$output") / 1000000))
    rm -f "$output"
    printf '%-40s %10s %9.2f %9.0f %10s %10s\n' "$label" "$rows" "$seconds" "$(awk -v rows="$rows" -v seconds="$seconds" 'BEGIN { print rows / seconds }')" "$megabytes" "$before → $peak"
done
