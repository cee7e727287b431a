#!/usr/bin/env bash
# `make bench-read-change-triggers`: what the read-change triggers (migration
# `…_capacity_read_changes`) cost aggregation. On the database `make bench-api` seeded
# (CAPSTATS_BENCH_API_DATABASE, default capstats_bench_api), recomputes every daily period
# (about 840,000 rows in some 430 statements) with `capstats-worker aggregate`, three rounds,
# with the triggers of both aggregate tables enabled and disabled in turn, and prints the times
# and the records written. Figures are recorded in docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."

server=${DATABASE_URL:-postgres://root@127.0.0.1:5432}
if [[ "$server" =~ ^(postgres(ql)?://[^/]+)(/.*)?$ ]]; then server=${BASH_REMATCH[1]}; fi
export DATABASE_URL="$server/${CAPSTATS_BENCH_API_DATABASE:-capstats_bench_api}"
export CAPSTATS_TIMEZONE=UTC CAPSTATS_LOG=warn
psql -q "$DATABASE_URL" -c 'SELECT 1 FROM capacity_read_changes LIMIT 1' >/dev/null ||
    { echo "run make bench-api first: it seeds $DATABASE_URL" >&2; exit 1; }
cargo build -q --release -p capstats-worker

triggers() {
    psql -q "$DATABASE_URL" -c "ALTER TABLE database_size_aggregations $1 TRIGGER database_size_aggregations_read_change;
                                ALTER TABLE instance_size_aggregations $1 TRIGGER instance_size_aggregations_read_change"
}
trap 'triggers ENABLE' EXIT
records() { psql -At "$DATABASE_URL" -c 'SELECT count(*) FROM capacity_read_changes'; }
from=$(date -u -d '430 days ago' +%F); to=$(date -u +%F)
for round in 1 2 3; do
    for mode in ENABLE DISABLE; do
        triggers "$mode"
        before=$(records)
        started=$(date +%s.%N)
        target/release/capstats-worker aggregate --period-type daily --from "$from" --to "$to" >/dev/null
        seconds=$(awk -v from="$started" -v to="$(date +%s.%N)" 'BEGIN { printf "%.2f", to - from }')
        echo "round $round, triggers ${mode,,}d: $seconds s, $(($(records) - before)) records written"
    done
done
