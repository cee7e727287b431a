//! `make bench-growth`: how the cost of the nightly windows grows with the fleet.
//!
//! For each fleet size (`CAPSTATS_BENCH_SIZES`, default `100,400,1600` instances, × 20
//! databases × 400 days from `seed-demo`, fixed seed, ending 2026-06-30) it measures, on one
//! connection each and in the same run, the windows a nightly run on 2026-07-01 computes — the
//! last complete daily, weekly, monthly, quarterly and yearly periods, both levels:
//!
//! - **floor** — one hand-written `CREATE TABLE … AS SELECT … GROUP BY` per level and period
//!   type over the window's samples: scratch tables without indexes (avg/max/min and count),
//!   without parallel query, like for like: capstats' statements write (`INSERT`, `DELETE` in
//!   a `WITH`), which PostgreSQL 15 never runs in parallel, while the floor's `CREATE TABLE …
//!   AS` took two parallel workers on the largest windows (a 2-core machine ran three
//!   processes for it). The floor with parallel query is measured and printed beside it;
//! - **first** — `capstats_services::backfill::run_backfill` of each window on empty tables
//!   (the plain-insert form), sessions and ledger included;
//! - **recompute** — the same command again, over the rows it just wrote (the replacing form);
//! - **nightly** — the body of the scheduled `aggregate_capacity` job
//!   (`capstats_services::runs::execute` of a due run on the logical date, chunks of the
//!   default `CAPSTATS_AGGREGATION_CHUNK_SIZE`, catch-up 1 so that it computes the same
//!   windows), with its session, records and ledger.
//!
//! Each measurement starts from a checkpoint, the recompute and the nightly run from aggregate
//! tables vacuumed and analyzed as autovacuum would leave them (`support::settle`); rounds
//! (`CAPSTATS_BENCH_ROUNDS`, default 3) take the median. Cost per source row divides the nightly time by the samples in the windows.
//! The process's resident set is read from `/proc/self/status` after each size: everything a
//! worker does for these runs happens in this process. `CAPSTATS_BENCH_KEEP=1` reuses the
//! seeded databases (`capstats_growth_<size>`).

mod support;

use std::time::{Duration, Instant};

use anyhow::Context;
use capstats_capacity_model::{AggregationLevel, Period, PeriodType};
use capstats_services::NoProgress;
use capstats_services::backfill::{BackfillRequest, run_backfill};
use capstats_services::payloads::{AggregationJob, AggregationWork, PAYLOAD_VERSION, Trigger};
use capstats_services::runs::{RunSettings, execute};
use capstats_services::seed::SeedOptions;
use capstats_store::PgConnection;
use capstats_sync_session::SyncType;
use chrono::{Days, NaiveDate, Utc};
use diesel::RunQueryDsl;
use diesel::connection::SimpleConnection;

use support::{FLOOR_SETTINGS, median, reset, seeded_database, settle};

/// The last day of the seeded history; the nightly run's logical date is the day after.
const END_DATE: NaiveDate = NaiveDate::from_ymd_opt(2026, 6, 30).expect("valid date");

/// The medians of one fleet size.
struct SizeResult {
    instances: u32,
    source_rows: i64,
    floor: Duration,
    parallel_floor: Duration,
    first: Duration,
    recompute: Duration,
    nightly: Duration,
    resident_mb: f64,
}

fn main() -> anyhow::Result<()> {
    let sizes = support::sizes()?;
    let rounds = support::rounds();
    let keep = support::keep();
    let mut results = Vec::new();
    for instances in sizes {
        results.push(measure_size(instances, rounds, keep)?);
    }
    println!();
    println!(
        "| instances | source rows | floor | floor, parallel query | first | recompute | nightly | recompute / first | recompute / floor | nightly / floor | nightly / parallel floor | nightly ns per source row | RSS |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for result in &results {
        let seconds = |duration: Duration| duration.as_secs_f64();
        println!(
            "| {} | {} | {:.3} s | {:.3} s | {:.3} s | {:.3} s | {:.3} s | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} | {:.0} MB |",
            result.instances,
            result.source_rows,
            seconds(result.floor),
            seconds(result.parallel_floor),
            seconds(result.first),
            seconds(result.recompute),
            seconds(result.nightly),
            seconds(result.recompute) / seconds(result.first),
            seconds(result.recompute) / seconds(result.floor),
            seconds(result.nightly) / seconds(result.floor),
            seconds(result.nightly) / seconds(result.parallel_floor),
            seconds(result.nightly) * 1e9 / result.source_rows as f64,
            result.resident_mb,
        );
    }
    Ok(())
}

fn measure_size(instances: u32, rounds: usize, keep: bool) -> anyhow::Result<SizeResult> {
    let name = format!("capstats_growth_{instances}");
    let options = SeedOptions {
        instances,
        databases_per_instance: 20,
        days: 400,
        end_date: END_DATE,
        seed: 20_261_203,
    };
    let (url, mut connection) = seeded_database(&name, &options, keep)?;
    let pool = capstats_store::build_pool(&url, 3, Duration::from_secs(10))?;
    let windows: Vec<Period> = PeriodType::ALL
        .into_iter()
        .map(|period_type| Period::last_complete(period_type, logical_date()))
        .collect();
    let source_rows = source_rows(&mut connection, &windows)?;

    let (mut floors, mut parallel_floors, mut firsts, mut recomputes, mut nightlies) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 1..=rounds {
        let floor_time = floor(&mut connection, &windows, ParallelQuery::Off)?;
        let parallel_floor = floor(&mut connection, &windows, ParallelQuery::On)?;
        reset(&mut connection)?;
        let first = backfill_windows(&pool, &windows)?;
        settle(&mut connection)?;
        let recompute = backfill_windows(&pool, &windows)?;
        settle(&mut connection)?;
        let nightly = nightly(&mut connection)?;
        println!(
            "{instances} instances, round {round}: floor {:.3} s (parallel query {:.3} s), first {:.3} s, recompute {:.3} s, nightly {:.3} s",
            floor_time.as_secs_f64(),
            parallel_floor.as_secs_f64(),
            first.as_secs_f64(),
            recompute.as_secs_f64(),
            nightly.as_secs_f64()
        );
        floors.push(floor_time);
        parallel_floors.push(parallel_floor);
        firsts.push(first);
        recomputes.push(recompute);
        nightlies.push(nightly);
    }
    Ok(SizeResult {
        instances,
        source_rows,
        floor: median(&floors),
        parallel_floor: median(&parallel_floors),
        first: median(&firsts),
        recompute: median(&recomputes),
        nightly: median(&nightlies),
        resident_mb: resident_megabytes()?,
    })
}

fn logical_date() -> NaiveDate {
    END_DATE + Days::new(1)
}

/// The resident set of this process, from `/proc/self/status`.
fn resident_megabytes() -> anyhow::Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kilobytes: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .context("VmRSS in /proc/self/status")?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kilobytes / 1024.0)
}

/// The database samples and instance-days in the windows.
fn source_rows(connection: &mut PgConnection, windows: &[Period]) -> anyhow::Result<i64> {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        rows: i64,
    }
    let mut total = 0;
    for window in windows {
        for table in ["database_size_stats", "instance_size_stats"] {
            let count: Count = diesel::sql_query(format!(
                "SELECT count(*) AS rows FROM {table} WHERE collected_date BETWEEN $1 AND $2"
            ))
            .bind::<diesel::sql_types::Date, _>(window.start())
            .bind::<diesel::sql_types::Date, _>(window.end())
            .get_result(connection)?;
            total += count.rows;
        }
    }
    Ok(total)
}

/// `capstats-worker aggregate` of each window, both levels, on one connection.
fn backfill_windows(
    pool: &capstats_store::ConnectionPool,
    windows: &[Period],
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    for window in windows {
        let report = run_backfill(
            pool,
            &BackfillRequest {
                period_type: window.period_type(),
                from: window.start(),
                to: window.start(),
                levels: AggregationLevel::ALL.to_vec(),
                triggered_by: "bench".into(),
                sync_type: SyncType::ManualTask,
                parallelism: 1,
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
    }
    Ok(started.elapsed())
}

/// The scheduled job's body for the logical date, recomputing the last complete periods.
fn nightly(connection: &mut PgConnection) -> anyhow::Result<Duration> {
    let job = AggregationJob {
        version: PAYLOAD_VERSION,
        work: AggregationWork::Due {
            logical_date: logical_date(),
            skip_up_to_date: false,
        },
        trigger: Trigger::Schedule {
            schedule_name: "aggregate_capacity".into(),
            tick_at: Utc::now(),
        },
        session_id: None,
    };
    // The default chunk size; one period of each type, every sample kept.
    let settings = RunSettings {
        chunk_pause: Duration::ZERO,
        catch_up_periods: 1,
        sample_retention_months: 0,
        period_types: PeriodType::ALL.to_vec(),
        time_zone: chrono_tz::UTC,
        ..RunSettings::from_settings(&capstats_settings::Settings::default())
    };
    let started = Instant::now();
    let report = execute(connection, &job, "", "bench", &settings)?;
    let elapsed = started.elapsed();
    anyhow::ensure!(
        report.status == capstats_sync_session::SessionStatus::Completed && report.items == 10,
        "the nightly run should complete five period types at two levels: {}",
        report.summary()
    );
    Ok(elapsed)
}

/// Whether the floor may use PostgreSQL's parallel query (the server's default allows it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ParallelQuery {
    On,
    Off,
}

/// The floor of the windows on one connection: one grouping statement per level and type into
/// fresh scratch tables, from a checkpoint.
fn floor(
    connection: &mut PgConnection,
    windows: &[Period],
    parallel_query: ParallelQuery,
) -> anyhow::Result<Duration> {
    connection
        .batch_execute("DROP SCHEMA IF EXISTS floor CASCADE; CREATE SCHEMA floor; CHECKPOINT;")?;
    connection.batch_execute(FLOOR_SETTINGS)?;
    if parallel_query == ParallelQuery::Off {
        connection.batch_execute("SET max_parallel_workers_per_gather = 0;")?;
    }
    let started = Instant::now();
    for window in windows {
        let (name, unit) = (
            window.period_type().as_str(),
            window.period_type().truncation_unit(),
        );
        let (start, end) = (window.start(), window.end());
        connection.batch_execute(&format!(
            "CREATE TABLE floor.database_{name} AS
             SELECT instance_id, database_name,
                    date_trunc('{unit}', collected_date::timestamp)::date AS period_start,
                    avg(size_mb) AS avg_size, max(size_mb) AS max_size, min(size_mb) AS min_size,
                    avg(data_size_mb) AS avg_data, max(data_size_mb) AS max_data,
                    min(data_size_mb) AS min_data, avg(log_size_mb) AS avg_log,
                    max(log_size_mb) AS max_log, min(log_size_mb) AS min_log,
                    count(*) AS sample_count
             FROM database_size_stats
             WHERE collected_date BETWEEN '{start}' AND '{end}'
             GROUP BY 1, 2, 3;
             CREATE TABLE floor.instance_{name} AS
             SELECT instance_id, date_trunc('{unit}', collected_date::timestamp)::date AS period_start,
                    avg(total_size_mb) AS avg_total, max(total_size_mb) AS max_total,
                    min(total_size_mb) AS min_total, avg(database_count) AS avg_count,
                    max(database_count) AS max_count, min(database_count) AS min_count,
                    count(*) AS day_count
             FROM instance_size_stats
             WHERE collected_date BETWEEN '{start}' AND '{end}'
             GROUP BY 1, 2;"
        ))?;
    }
    let elapsed = started.elapsed();
    connection
        .batch_execute("RESET work_mem; RESET jit; RESET max_parallel_workers_per_gather;")?;
    Ok(elapsed)
}
