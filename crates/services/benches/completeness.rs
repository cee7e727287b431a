//! `make bench-completeness`: what keeping the stored completeness true costs as the fleet
//! grows.
//!
//! For each fleet size (`CAPSTATS_BENCH_SIZES`, default `100,400,1600` instances, × 10
//! databases) it writes the aggregate rows of 400 days ending 2026-06-30 straight into both
//! tables — daily, weekly, monthly, quarterly and yearly, every row judged on 2026-06-30, one
//! row in twenty missing a day (partial for good) — and measures, on one connection,
//! `capstats_store::aggregation::refresh_completeness`:
//!
//! - **midnight** — the refresh on 2026-07-01, the first of the day: June, the second quarter
//!   and 30 June end, the running week and year expect one more day;
//! - **again** — the same refresh once more: nothing changes, only the partial rows are read
//!   (what every stale refresh between two midnights costs).
//!
//! Before each round the rows the midnight refresh changed are judged on 30 June again and a
//! checkpoint is taken; rounds (`CAPSTATS_BENCH_ROUNDS`, default 3) take the median.
//! `CAPSTATS_BENCH_KEEP=1` reuses the databases (`capstats_completeness_<size>`).

#[expect(
    dead_code,
    reason = "the rows are written straight into the tables: no seeded samples"
)]
mod support;

use std::time::{Duration, Instant};

use capstats_capacity_model::{Period, PeriodType};
use capstats_store::aggregation::{
    CHANGEABLE_COMPLETENESS, CompletenessRefresh, refresh_completeness,
};
use capstats_store::partitions::{PartitionedTable, ensure_partitions};
use capstats_store::{Connection, PgConnection};
use chrono::{Days, NaiveDate};
use diesel::connection::SimpleConnection;

/// The last day of the rows' history and the day they are judged on.
const JUDGED_ON: NaiveDate = NaiveDate::from_ymd_opt(2026, 6, 30).expect("valid date");

/// Days of history.
const DAYS: u64 = 400;

/// Databases per instance.
const DATABASES: u32 = 10;

fn main() -> anyhow::Result<()> {
    let rounds = support::rounds();
    let keep = support::keep();
    println!(
        "| instances | rows | partial rows | of which can change | rows changed at midnight | midnight | again | midnight µs per changed row | again µs per row that can change |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for instances in support::sizes()? {
        let name = format!("capstats_completeness_{instances}");
        let mut connection = rows_database(&name, instances, keep)?;
        judge_on_june_30(&mut connection)?;
        let (rows, partial, changeable) = row_counts(&mut connection)?;
        let (mut midnight, mut again) = (Vec::new(), Vec::new());
        let mut changed = CompletenessRefresh::default();
        for _ in 0..rounds {
            judge_on_june_30(&mut connection)?;
            let started = Instant::now();
            changed = refresh_completeness(&mut connection, JUDGED_ON + Days::new(1))?;
            midnight.push(started.elapsed());
            let started = Instant::now();
            let repeated = refresh_completeness(&mut connection, JUDGED_ON + Days::new(1))?;
            again.push(started.elapsed());
            anyhow::ensure!(
                repeated == CompletenessRefresh::default(),
                "a second refresh on the same day changed rows: {repeated:?}"
            );
        }
        let changed_rows = changed.database_rows + changed.instance_rows;
        let (midnight, again) = (support::median(&midnight), support::median(&again));
        let micros =
            |duration: Duration, count: u64| duration.as_secs_f64() * 1e6 / count.max(1) as f64;
        println!(
            "| {instances} | {rows} | {partial} | {changeable} | {changed_rows} | {:.1} ms | {:.1} ms | {:.2} | {:.2} |",
            midnight.as_secs_f64() * 1e3,
            again.as_secs_f64() * 1e3,
            micros(midnight, changed_rows),
            micros(again, changeable),
        );
    }
    Ok(())
}

/// A connection to database `name` holding the rows of `instances` instances, created afresh
/// unless `keep` and it exists.
fn rows_database(name: &str, instances: u32, keep: bool) -> anyhow::Result<PgConnection> {
    let url = capstats_test_support::database_url(name);
    if keep && let Ok(connection) = PgConnection::establish(&url) {
        return Ok(connection);
    }
    let mut connection = support::migrated_database(name)?;
    let first_day = JUDGED_ON - Days::new(DAYS - 1);
    let started = Instant::now();
    for period_type in PeriodType::ALL {
        let periods: Vec<Period> = Period::starting_between(
            period_type,
            Period::containing(period_type, first_day).start(),
            JUDGED_ON,
        )
        .collect();
        ensure_partitions(
            &mut connection,
            &[
                PartitionedTable::DatabaseSizeAggregations,
                PartitionedTable::InstanceSizeAggregations,
            ],
            periods.iter().map(Period::start),
        )?;
        let starts: Vec<String> = periods
            .iter()
            .map(|period| format!("('{}'::date, '{}'::date)", period.start(), period.end()))
            .collect();
        // Days sampled: the period's days within the history, one fewer for one key in twenty.
        let sampled = format!(
            "least(period.period_end, date '{JUDGED_ON}') - greatest(period.period_start, date '{first_day}') + 1
             - CASE WHEN (key.instance_id * 7 + key.database_number + extract(doy FROM period.period_start)::int) % 20 = 0
                         AND least(period.period_end, date '{JUDGED_ON}') - greatest(period.period_start, date '{first_day}') > 0
                    THEN 1 ELSE 0 END"
        );
        let completeness = format!(
            "CASE WHEN period.period_end < date '{JUDGED_ON}' THEN period.period_end - period.period_start + 1
                  ELSE date '{JUDGED_ON}' - period.period_start + 1 END,
             period.period_end >= date '{JUDGED_ON}' OR {sampled} < period.period_end - period.period_start + 1"
        );
        connection.batch_execute(&format!(
            "WITH period (period_start, period_end) AS (VALUES {starts}),
                  key AS (SELECT instance_id, database_number
                          FROM generate_series(1, {instances}) AS instance_id,
                               generate_series(1, {DATABASES}) AS database_number)
             INSERT INTO database_size_aggregations
                 (instance_id, database_name, period_type, period_start, period_end, avg_size_mb,
                  max_size_mb, min_size_mb, data_count, expected_count, is_partial)
             SELECT key.instance_id, 'database_' || key.database_number, '{period_type}',
                    period.period_start, period.period_end, 1000, 1000, 1000, {sampled},
                    {completeness}
             FROM period, key;
             WITH period (period_start, period_end) AS (VALUES {starts}),
                  key AS (SELECT instance_id, 0 AS database_number
                          FROM generate_series(1, {instances}) AS instance_id)
             INSERT INTO instance_size_aggregations
                 (instance_id, period_type, period_start, period_end, total_size_mb, max_size_mb,
                  min_size_mb, data_count, database_count, avg_database_count,
                  max_database_count, min_database_count, expected_count, is_partial)
             SELECT key.instance_id, '{period_type}', period.period_start, period.period_end,
                    10000, 10000, 10000, {sampled}, {DATABASES}, {DATABASES}, {DATABASES},
                    {DATABASES}, {completeness}
             FROM period, key;",
            starts = starts.join(", "),
        ))?;
    }
    connection.batch_execute("VACUUM ANALYZE")?;
    println!(
        "{name}: rows written in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(connection)
}

/// `(rows, partial rows, partial rows whose figures can still change)` of both tables, the
/// last as the refresh selects them.
fn row_counts(connection: &mut PgConnection) -> anyhow::Result<(i64, i64, u64)> {
    #[derive(diesel::QueryableByName)]
    struct Counts {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        rows: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        partial: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        changeable: i64,
    }
    let columns = "is_partial, expected_count, data_count, period_start, period_end";
    let counts: Counts = diesel::RunQueryDsl::get_result(
        diesel::sql_query(format!(
            "SELECT count(*) AS rows, count(*) FILTER (WHERE is_partial) AS partial,
                    count(*) FILTER (WHERE {CHANGEABLE_COMPLETENESS}) AS changeable
             FROM (SELECT {columns} FROM database_size_aggregations
                   UNION ALL SELECT {columns} FROM instance_size_aggregations) all_rows"
        )),
        connection,
    )?;
    Ok((
        counts.rows,
        counts.partial,
        u64::try_from(counts.changeable)?,
    ))
}

/// Judges the rows a midnight refresh changed on 30 June again, then takes a checkpoint.
fn judge_on_june_30(connection: &mut PgConnection) -> anyhow::Result<()> {
    for table in ["database_size_aggregations", "instance_size_aggregations"] {
        connection.batch_execute(&format!(
            "UPDATE {table}
             SET expected_count = date '{JUDGED_ON}' - period_start + 1, is_partial = true
             WHERE period_end >= date '{JUDGED_ON}'"
        ))?;
    }
    connection.batch_execute("CHECKPOINT")?;
    Ok(())
}
