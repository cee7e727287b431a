#!/usr/bin/env bash
# The domain crates must stay free of I/O: none of them may depend, directly or through another
# crate, on diesel, sqlx, actix, apalis or tokio (docs/ARCHITECTURE.md, "Layering").
set -euo pipefail
cd "$(dirname "$0")/.."

status=0
for crate in capacity-model aggregation-core sync-session; do
    # Normal and build dependencies only: test-only tools are allowed. Read the tree first, so
    # that a failing `cargo tree` stops the check instead of looking like a clean crate.
    tree=$(cargo tree --quiet -p "$crate" -e normal,build --prefix none --format '{p}')
    if ! grep -q "^$crate v" <<<"$tree"; then
        echo "cargo tree did not list $crate; cannot check its dependencies" >&2
        exit 1
    fi
    offenders=$(grep -E '^(diesel|sqlx|actix|apalis|tokio)([-_][a-z0-9_-]+)? v' <<<"$tree" \
        | sort -u || true)
    if [ -n "$offenders" ]; then
        echo "domain crate $crate depends on I/O crates:" >&2
        echo "$offenders" | sed 's/^/  /' >&2
        status=1
    fi
done
if [ "$status" -eq 0 ]; then
    echo "domain crates are free of diesel, sqlx, actix, apalis and tokio"
fi
exit "$status"
