# capstats — common tasks. `make test` is what CI runs (.ci/run).

# Tests create their databases on this server (DATABASE_URL may name a database; the server
# part is used).
DATABASE_URL ?= postgres://root@127.0.0.1:5432
export DATABASE_URL
CARGO ?= cargo

.PHONY: test test-deps schemathesis lint fmt check-dependencies check-schema schema sql-snapshots clean-test-databases \
        bench-aggregate bench-alerts bench-api bench-completeness bench-forecast bench-ingest bench-pickup bench-read-change-triggers build demo openapi client-deps browser-deps web \
        screenshots

## test: formatting, lints, architecture and schema checks, then every test against PostgreSQL
## (the browser tests included) and the schemathesis run; installs what it needs first
## (test-deps)
test: test-deps web lint check-dependencies check-schema clean-test-databases client-deps browser-deps
	$(CARGO) test --workspace --lib --bins --tests --examples
	$(CARGO) test --workspace --doc
	$(CARGO) run -q -p capstats-aggregation-core --example embed > /dev/null
	./tests/schemathesis/run.sh

## schemathesis: generated requests from openapi/openapi.json against a spawned API, every
## check and phase, zero failures allowed (tests/schemathesis; part of test)
schemathesis: test-deps web
	./tests/schemathesis/run.sh

## test-deps: install what the tests need and is missing (diesel_cli, Node.js/npm, Chromium,
## MariaDB with root over TCP, systemd-analyze, libpq, promtool); does nothing when all is there
test-deps:
	./scripts/test-deps.sh

## lint: rustfmt and clippy with warnings as errors
lint: web
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## client-deps: the npm packages of the generated-client test (tests/client, from its lockfile)
client-deps:
	cd tests/client && npm ci --no-audit --no-fund --loglevel=error

## browser-deps: playwright-core for the browser tests (tests/browser, from its lockfile)
browser-deps:
	cd tests/browser && npm ci --no-audit --no-fund --loglevel=error

## web: bundle the web UI (web/src, npm packages from web/package-lock.json) into web/dist,
## which capstats-api embeds
web:
	cd web && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent

## screenshots: run the browser tests and save a screenshot of every page in docs/screenshots
screenshots: web browser-deps
	CAPSTATS_SCREENSHOT_DIR=$(CURDIR)/docs/screenshots $(CARGO) test -p capstats-api --test integration browser::

fmt:
	$(CARGO) fmt --all

## check-dependencies: the domain crates depend on no database, HTTP, job or async crate
check-dependencies:
	./tests/check-domain-dependencies.sh

## check-schema: crates/store/src/schema.rs is what diesel generates from migrations/
check-schema: test-deps
	./tests/check-schema.sh

## sql-snapshots: rewrite crates/store/sql/aggregation/*.sql from the statement builder (a test
## fails when they are stale); review the diff
sql-snapshots:
	CAPSTATS_BLESS_SQL=1 $(CARGO) test -q -p capstats-store --lib statements_match_their_committed_snapshots

## schema: regenerate crates/store/src/schema.rs from migrations/
schema: test-deps
	./tests/check-schema.sh --write

## clean-test-databases: drop PostgreSQL and MariaDB test databases left behind by interrupted runs
clean-test-databases:
	./tests/clean-test-databases.sh

## openapi: regenerate openapi/openapi.json from the code (a test fails when it is stale)
openapi: web
	$(CARGO) run -q -p capstats-api -- openapi > openapi/openapi.json

## bench-forecast: the forecasts' back-test on generated histories, 30 and 90 days held out (docs/forecasting.md)
bench-forecast:
	$(CARGO) bench -p capstats-aggregation-core --bench forecast_backtest

## bench-aggregate: full backfill with capstats against the plain-SQL floor (docs/performance.md)
bench-aggregate: web
	$(CARGO) bench -p capstats-services --bench aggregate

## bench-growth: nightly windows on 100, 400 and 1,600 instances: floor, first computation, recompute, nightly run (docs/performance.md)
bench-growth: web
	$(CARGO) bench -p capstats-services --bench growth

## bench-alerts: evaluating one rule per metric after a session on 100, 400 and 1,600 instances × 10 databases: first and steady evaluation, each rule alone (docs/performance.md)
bench-alerts: web
	$(CARGO) bench -p capstats-services --bench alerts

## bench-completeness: refreshing the stored completeness at midnight and again on 100, 400 and 1,600 instances × 10 databases (docs/performance.md)
bench-completeness: web
	$(CARGO) bench -p capstats-services --bench completeness

## bench-ingest: samples per second posted to POST /api/v1/capacity/stats in batches of 5,000
bench-ingest: web
	$(CARGO) bench -p capstats-api --bench ingest

## bench-pickup: an idle worker's pickup of queued jobs (p99 over 50) and "aggregate now" of the
## current daily period for 200 instances, POST to completed (docs/performance.md)
bench-pickup: web
	$(CARGO) build --release -p capstats-worker
	$(CARGO) bench -p capstats-api --bench pickup

## bench-api: wrk against list, summary and series endpoints on ~1 M aggregate rows (docs/performance.md)
bench-api: web
	./bench/api.sh

## bench-read-change-triggers: what the read-change triggers cost a recompute of every daily
## period, on the database bench-api seeded (docs/performance.md)
bench-read-change-triggers: web
	./bench/read-change-triggers.sh

build: web
	$(CARGO) build --workspace --release

## demo: migrate, seed and aggregate demo data, then run the API and the worker (Ctrl-C stops)
demo: web
	./scripts/demo.sh
