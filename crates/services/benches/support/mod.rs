//! What the aggregation benchmarks share: the seeded database, the reset between
//! measurements and the floor's settings.

use std::time::{Duration, Instant};

use anyhow::Context;
use capstats_services::NoProgress;
use capstats_services::seed::{SeedOptions, seed_demo};
use capstats_store::{Connection, PgConnection};
use diesel::connection::SimpleConnection;

/// The floor runs with the settings capstats' aggregation transactions use.
pub const FLOOR_SETTINGS: &str = "SET work_mem = '256MB'; SET jit = off;";

/// A connection to database `name` seeded with `options` and analysed, created afresh unless
/// `keep` and it exists; with its URL.
pub fn seeded_database(
    name: &str,
    options: &SeedOptions,
    keep: bool,
) -> anyhow::Result<(String, PgConnection)> {
    let url = capstats_test_support::database_url(name);
    if keep && let Ok(connection) = PgConnection::establish(&url) {
        println!("reusing {name}");
        return Ok((url, connection));
    }
    let mut connection = migrated_database(name)?;
    let started = Instant::now();
    let report = seed_demo(&mut connection, options, &NoProgress)?;
    connection.batch_execute("ANALYZE")?;
    println!(
        "{name}: seeded {} samples ({} instance-days) in {:.1} s",
        report.samples,
        report.written.instance_days_refreshed,
        started.elapsed().as_secs_f64()
    );
    Ok((url, connection))
}

/// A connection to database `name`, dropped if it exists, created and migrated.
pub fn migrated_database(name: &str) -> anyhow::Result<PgConnection> {
    let mut admin = PgConnection::establish(&capstats_test_support::database_url("postgres"))
        .context("connecting to the server")?;
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))?;
    admin.batch_execute(&format!("CREATE DATABASE {name}"))?;
    let mut connection = PgConnection::establish(&capstats_test_support::database_url(name))?;
    capstats_store::migrations::run_pending(&mut connection)?;
    Ok(connection)
}

/// Empties the aggregates, the ledger and the sessions, from a checkpoint, so that the next
/// computation starts from nothing.
pub fn reset(connection: &mut PgConnection) -> anyhow::Result<()> {
    connection.batch_execute(
        "TRUNCATE database_size_aggregations, instance_size_aggregations, aggregation_ledger,
                  aggregate_period_counts, database_aggregate_counts,
                  database_latest_aggregations, instance_latest_aggregations,
                  sync_instance_records, sync_sessions CASCADE;
         CHECKPOINT;",
    )?;
    Ok(())
}

/// What autovacuum would have done since the last computation — vacuumed the dead row
/// versions a recompute leaves and analyzed the new rows — then a checkpoint. The
/// development server runs with `autovacuum = off`, which a production server does not: without
/// this, every round of a benchmark plans on partitions that were never analyzed and scans
/// the dead rows of all the rounds before it.
pub fn settle(connection: &mut PgConnection) -> anyhow::Result<()> {
    // One statement per call: a batch of several runs as one transaction, and VACUUM
    // refuses to run in one.
    connection.batch_execute(
        "VACUUM ANALYZE database_size_aggregations, instance_size_aggregations,
                        aggregation_ledger, aggregate_period_counts, database_aggregate_counts,
                        database_latest_aggregations, instance_latest_aggregations",
    )?;
    connection.batch_execute("CHECKPOINT")?;
    Ok(())
}

/// The median of `times`.
pub fn median(times: &[Duration]) -> Duration {
    let mut times = times.to_vec();
    times.sort();
    times[times.len() / 2]
}

/// The fleet sizes to measure: `CAPSTATS_BENCH_SIZES` (instances, comma-separated), default
/// 100, 400 and 1,600.
pub fn sizes() -> anyhow::Result<Vec<u32>> {
    std::env::var("CAPSTATS_BENCH_SIZES")
        .unwrap_or_else(|_| "100,400,1600".into())
        .split(',')
        .map(|size| {
            size.trim()
                .parse()
                .context("CAPSTATS_BENCH_SIZES: a list of numbers")
        })
        .collect()
}

/// Rounds per measurement, of which the median counts: `CAPSTATS_BENCH_ROUNDS`, default 3.
pub fn rounds() -> usize {
    std::env::var("CAPSTATS_BENCH_ROUNDS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(3)
}

/// Whether seeded databases are reused: `CAPSTATS_BENCH_KEEP=1`.
pub fn keep() -> bool {
    std::env::var("CAPSTATS_BENCH_KEEP").is_ok_and(|value| value == "1")
}
