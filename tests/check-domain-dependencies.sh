#!/usr/bin/env bash
# The layering rules of docs/ARCHITECTURE.md, checked on the dependency tree (normal and build
# dependencies only: test-only tools are allowed):
#   - the domain crates depend, directly or through another crate, on none of diesel, sqlx,
#     actix, apalis or tokio;
#   - the use cases (capstats-services) and the HTTP API library (capstats-http-api) do not
#     link the job runtime: no apalis, no sqlx, no capstats-queue;
#   - the test helpers (capstats-test-support) depend on neither the use cases nor the queue.
set -euo pipefail
cd "$(dirname "$0")/.."

status=0

# check CRATE WHAT PATTERN: CRATE's dependency tree has no package matching PATTERN.
check() {
    local crate=$1 what=$2 pattern=$3
    # Read the tree first, so that a failing `cargo tree` stops the check instead of looking
    # like a clean crate.
    local tree
    tree=$(cargo tree --quiet -p "$crate" -e normal,build --prefix none --format '{p}')
    if ! grep -q "^$crate v" <<<"$tree"; then
        echo "cargo tree did not list $crate; cannot check its dependencies" >&2
        exit 1
    fi
    local offenders
    offenders=$(grep -v "^$crate v" <<<"$tree" | grep -E "^($pattern)([-_][a-z0-9_-]+)? v" | sort -u || true)
    if [ -n "$offenders" ]; then
        echo "$crate depends on $what:" >&2
        echo "$offenders" | sed 's/^/  /' >&2
        status=1
    fi
}

for crate in capstats-capacity-model capstats-aggregation-core capstats-sync-session; do
    check "$crate" "I/O crates" 'diesel|sqlx|actix|apalis|tokio'
done
for crate in capstats-services capstats-http-api; do
    check "$crate" "the job runtime" 'apalis|sqlx|capstats-queue'
done
check capstats-test-support "the use cases or the job runtime" 'capstats-services|capstats-queue|apalis'

if [ "$status" -eq 0 ]; then
    echo "layering holds: domain crates free of I/O; services and the HTTP API free of the job runtime; test support free of both"
fi
exit "$status"
