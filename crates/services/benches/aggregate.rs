//! `make bench-aggregate`: a full backfill of every period type and level with capstats,
//! against a hand-written plain-SQL floor, on the same seeded dataset in the same run.
//!
//! The dataset is 200 instances × 20 databases × 400 days from `seed-demo` (fixed seed and end
//! date). The floor is one `INSERT … SELECT … GROUP BY` per level and period type computing
//! avg/max/min of every size column and the count into fresh scratch tables without indexes:
//! the grouping work capstats cannot avoid, without its comparison with the previous period,
//! exact rounding, the write into the indexed and partitioned table, ledger and session. Rounds
//! rotate which side runs first and each measurement starts from a checkpoint, so none inherits
//! another's dirty buffers. Both sides run twice per round, like for like: with capstats'
//! default backfill parallelism (one connection per CPU, at most 4; the floor's ten statements
//! spread over as many connections) and on one connection. Environment:
//! `DATABASE_URL` (server), `CAPSTATS_BENCH_DATABASE` (default `capstats_bench`),
//! `CAPSTATS_BENCH_ROUNDS` (default 3), `CAPSTATS_BENCH_PARALLELISM`, `CAPSTATS_BENCH_KEEP=1`
//! to reuse an already seeded database.

#[expect(
    dead_code,
    reason = "one database of a fixed size: no list of fleet sizes"
)]
mod support;

use std::time::{Duration, Instant};

use capstats_capacity_model::{AggregationLevel, Period, PeriodType};
use capstats_services::NoProgress;
use capstats_services::backfill::{BackfillRequest, run_backfill};
use capstats_services::seed::SeedOptions;
use capstats_store::{Connection, PgConnection};
use capstats_sync_session::SyncType;
use chrono::{Days, NaiveDate};
use diesel::connection::SimpleConnection;
use support::{FLOOR_SETTINGS, median, reset, seeded_database};

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; nothing to parse.
    let name = std::env::var("CAPSTATS_BENCH_DATABASE").unwrap_or_else(|_| "capstats_bench".into());
    let rounds = support::rounds();
    let keep = support::keep();
    let options = SeedOptions {
        instances: 200,
        databases_per_instance: 20,
        days: 400,
        end_date: NaiveDate::from_ymd_opt(2026, 6, 30).expect("valid date"),
        seed: 20_261_126,
    };
    let first_date = options.end_date - Days::new(u64::from(options.days - 1));
    let (url, mut connection) = seeded_database(&name, &options, keep)?;

    let parallelism = std::env::var("CAPSTATS_BENCH_PARALLELISM")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map_or(1, std::num::NonZeroUsize::get)
                .min(4)
        });
    let pool = capstats_store::build_pool(
        &url,
        u32::try_from(parallelism + 1)?,
        Duration::from_secs(10),
    )?;
    println!(
        "{rounds} rounds; capstats and the floor each with {parallelism} connections and with 1"
    );

    let mut parallel_runs = Vec::new();
    let mut serial_runs = Vec::new();
    let mut floor_runs = Vec::new();
    let mut parallel_floor_runs = Vec::new();
    for round in 1..=rounds {
        // Rotate the order so that no side always inherits the others' caches.
        let (mut parallel, mut serial, mut floor_run, mut parallel_floor) =
            (None, None, None, None);
        for step in 0..4 {
            match (round + step) % 4 {
                0 => {
                    parallel = Some(capstats(
                        &mut connection,
                        &pool,
                        parallelism,
                        first_date,
                        options.end_date,
                    )?)
                }
                1 => {
                    serial = Some(capstats(
                        &mut connection,
                        &pool,
                        1,
                        first_date,
                        options.end_date,
                    )?)
                }
                2 => floor_run = Some(floor(&mut connection)?),
                _ => parallel_floor = Some(floor_parallel(&mut connection, &url, parallelism)?),
            }
        }
        let (parallel, serial, floor_run, parallel_floor) = (
            parallel.expect("measured"),
            serial.expect("measured"),
            floor_run.expect("measured"),
            parallel_floor.expect("measured"),
        );
        println!(
            "round {round}: capstats ×{parallelism} {} | capstats ×1 {} | floor ×{parallelism} {:.2} s | floor ×1 {} | ratios {:.2} (×{parallelism} to ×{parallelism}) {:.2} (×1 to ×1)",
            describe(&parallel),
            describe(&serial),
            parallel_floor.as_secs_f64(),
            describe(&floor_run),
            total(&parallel).as_secs_f64() / parallel_floor.as_secs_f64(),
            ratio(&serial, &floor_run),
        );
        parallel_runs.push(parallel);
        serial_runs.push(serial);
        floor_runs.push(floor_run);
        parallel_floor_runs.push(parallel_floor);
    }
    // Whole-run times per round, then medians of times and of per-round ratios.
    let totals = |runs: &[Vec<(PeriodType, Duration)>]| -> Vec<Duration> {
        runs.iter().map(|run| total(run)).collect()
    };
    let (parallel, serial, floor_serial) = (
        totals(&parallel_runs),
        totals(&serial_runs),
        totals(&floor_runs),
    );
    let median_ratio = |ours: &[Duration], floor: &[Duration]| {
        let mut ratios: Vec<f64> = ours
            .iter()
            .zip(floor)
            .map(|(ours, floor)| ours.as_secs_f64() / floor.as_secs_f64())
            .collect();
        ratios.sort_by(f64::total_cmp);
        ratios[ratios.len() / 2]
    };
    let parallel_ratio = median_ratio(&parallel, &parallel_floor_runs);
    let serial_ratio = median_ratio(&serial, &floor_serial);
    let shipped_ratio = median_ratio(&parallel, &floor_serial);
    println!(
        "median over {rounds} rounds: capstats ×{parallelism} {:.2} s, floor ×{parallelism} {:.2} s, capstats ×1 {:.2} s, floor ×1 {:.2} s",
        median(&parallel).as_secs_f64(),
        median(&parallel_floor_runs).as_secs_f64(),
        median(&serial).as_secs_f64(),
        median(&floor_serial).as_secs_f64(),
    );
    println!(
        "median ratios: capstats as shipped (×{parallelism}) to the floor's statements one after another {shipped_ratio:.2} (target ≤ 1.50); like for like {parallel_ratio:.2} with {parallelism} connections each, {serial_ratio:.2} with 1 each"
    );
    Ok(())
}

fn ratio(ours: &[(PeriodType, Duration)], floor: &[(PeriodType, Duration)]) -> f64 {
    total(ours).as_secs_f64() / total(floor).as_secs_f64()
}

fn total(run: &[(PeriodType, Duration)]) -> Duration {
    run.iter().map(|(_, duration)| *duration).sum()
}

fn describe(run: &[(PeriodType, Duration)]) -> String {
    let parts: Vec<String> = run
        .iter()
        .map(|(period_type, duration)| format!("{period_type} {:.2}", duration.as_secs_f64()))
        .collect();
    format!("{:.2} s ({})", total(run).as_secs_f64(), parts.join(", "))
}

fn capstats(
    connection: &mut PgConnection,
    pool: &capstats_store::ConnectionPool,
    parallelism: usize,
    first_date: NaiveDate,
    last_date: NaiveDate,
) -> anyhow::Result<Vec<(PeriodType, Duration)>> {
    reset(connection)?;
    let mut times = Vec::new();
    for period_type in PeriodType::ALL {
        let started = Instant::now();
        let report = run_backfill(
            pool,
            &BackfillRequest {
                period_type,
                // Include the period containing the first sample, as the floor's GROUP BY does.
                from: Period::containing(period_type, first_date).start(),
                to: last_date,
                levels: AggregationLevel::ALL.to_vec(),
                triggered_by: "bench".into(),
                sync_type: SyncType::ManualTask,
                parallelism,
                samples_kept_from: None,
                today: chrono::Utc::now().date_naive(),
            },
            &NoProgress,
        )?;
        anyhow::ensure!(
            report.failures.is_empty(),
            "backfill failed: {:?}",
            report.failures
        );
        times.push((period_type, started.elapsed()));
    }
    Ok(times)
}

/// The floor's statements for one period type: `(level, SQL)` creating and filling a scratch
/// table in schema `floor`.
fn floor_statements(period_type: PeriodType) -> [(AggregationLevel, String); 2] {
    let unit = period_type.truncation_unit();
    let name = period_type.as_str();
    [
        (
            AggregationLevel::Database,
            format!(
                "CREATE TABLE floor.database_{name} (
                     instance_id bigint, database_name text, period_start date,
                     avg_size numeric, max_size bigint, min_size bigint,
                     avg_data_size numeric, max_data_size bigint, min_data_size bigint,
                     avg_log_size numeric, max_log_size bigint, min_log_size bigint,
                     sample_count bigint);
                 INSERT INTO floor.database_{name}
                 SELECT instance_id, database_name,
                        date_trunc('{unit}', collected_date::timestamp)::date,
                        avg(size_mb), max(size_mb), min(size_mb),
                        avg(data_size_mb), max(data_size_mb), min(data_size_mb),
                        avg(log_size_mb), max(log_size_mb), min(log_size_mb), count(*)
                 FROM database_size_stats GROUP BY 1, 2, 3;"
            ),
        ),
        (
            AggregationLevel::Instance,
            format!(
                "CREATE TABLE floor.instance_{name} (
                     instance_id bigint, period_start date,
                     avg_total_size numeric, max_total_size bigint, min_total_size bigint,
                     avg_database_count numeric, max_database_count bigint,
                     min_database_count bigint, day_count bigint);
                 INSERT INTO floor.instance_{name}
                 SELECT instance_id, date_trunc('{unit}', collected_date::timestamp)::date,
                        avg(total_size_mb), max(total_size_mb), min(total_size_mb),
                        avg(database_count), max(database_count), min(database_count), count(*)
                 FROM instance_size_stats GROUP BY 1, 2;"
            ),
        ),
    ]
}

/// A fresh, empty `floor` schema, from a checkpoint.
fn reset_floor(connection: &mut PgConnection) -> anyhow::Result<()> {
    connection
        .batch_execute("DROP SCHEMA IF EXISTS floor CASCADE; CREATE SCHEMA floor; CHECKPOINT;")?;
    Ok(())
}

/// The floor on one connection, timed per period type.
fn floor(connection: &mut PgConnection) -> anyhow::Result<Vec<(PeriodType, Duration)>> {
    reset_floor(connection)?;
    connection.batch_execute(FLOOR_SETTINGS)?;
    let mut times = Vec::new();
    for period_type in PeriodType::ALL {
        let started = Instant::now();
        for (_, statement) in floor_statements(period_type) {
            connection.batch_execute(&statement)?;
        }
        times.push((period_type, started.elapsed()));
    }
    connection.batch_execute("RESET work_mem; RESET jit;")?;
    Ok(times)
}

/// The floor's ten statements spread over `parallelism` connections (each takes the next
/// statement when it is free, the biggest first), timed as a whole: what PostgreSQL itself
/// does with as many connections as capstats' parallel backfill uses.
fn floor_parallel(
    connection: &mut PgConnection,
    url: &str,
    parallelism: usize,
) -> anyhow::Result<Duration> {
    reset_floor(connection)?;
    let mut connections = (0..parallelism)
        .map(|_| {
            let mut connection = PgConnection::establish(url)?;
            connection.batch_execute(FLOOR_SETTINGS)?;
            Ok(connection)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    // Daily first: the queue is taken from the back.
    let mut queue: Vec<String> = PeriodType::ALL
        .into_iter()
        .flat_map(floor_statements)
        .map(|(_, statement)| statement)
        .collect();
    queue.reverse();
    let queue = std::sync::Mutex::new(queue);
    let started = Instant::now();
    std::thread::scope(|scope| {
        let workers: Vec<_> = connections
            .iter_mut()
            .map(|connection| {
                let queue = &queue;
                scope.spawn(move || -> anyhow::Result<()> {
                    loop {
                        let next = queue.lock().expect("not poisoned").pop();
                        match next {
                            Some(statement) => connection.batch_execute(&statement)?,
                            None => return Ok(()),
                        }
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .try_for_each(|worker| worker.join().expect("no panic"))
    })?;
    Ok(started.elapsed())
}
