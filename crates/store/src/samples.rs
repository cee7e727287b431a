//! Writing size samples: the sample rows themselves, the derived instance totals, the
//! database inventory, and staleness marks on periods already aggregated.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;

use capstats_capacity_model::{DatabaseSizeSample, InstanceId, PeriodType};

use crate::StoreError;
use crate::partitions::{PartitionedTable, ensure_partitions};
use crate::sql::period_start;

/// A sample to write and the moment it was collected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDatabaseSample {
    /// The sample (its instance must exist).
    pub sample: DatabaseSizeSample,
    /// When it was collected.
    pub collected_at: DateTime<Utc>,
}

/// What a write changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteSummary {
    /// Sample rows inserted or updated.
    pub samples_written: u64,
    /// `(instance, date)` totals recomputed in `instance_size_stats`.
    pub instance_days_refreshed: u64,
    /// Inventory rows created or updated.
    pub databases_recorded: u64,
    /// Ledger entries marked stale (or created as pending) for the touched periods and the
    /// periods right after them (whose changes compare with them).
    pub ledger_entries_marked: u64,
}

impl std::ops::AddAssign for WriteSummary {
    fn add_assign(&mut self, other: Self) {
        self.samples_written += other.samples_written;
        self.instance_days_refreshed += other.instance_days_refreshed;
        self.databases_recorded += other.databases_recorded;
        self.ledger_entries_marked += other.ledger_entries_marked;
    }
}

/// The temporary staging table samples are copied into; it is created per write and dropped
/// at commit, so it is not part of the generated schema.
mod staging {
    diesel::table! {
        /// Temporary staging table the samples are copied into, dropped at commit.
        incoming_database_size_stats (instance_id, database_name, collected_date) {
            instance_id -> Int8,
            database_name -> Text,
            collected_date -> Date,
            size_mb -> Int8,
            data_size_mb -> Nullable<Int8>,
            log_size_mb -> Nullable<Int8>,
            collected_at -> Timestamptz,
        }
    }
}

use staging::incoming_database_size_stats;

#[derive(Insertable)]
#[diesel(table_name = incoming_database_size_stats)]
#[diesel(treat_none_as_default_value = false)]
struct IncomingRow<'a> {
    instance_id: i64,
    database_name: &'a str,
    collected_date: NaiveDate,
    size_mb: i64,
    data_size_mb: Option<i64>,
    log_size_mb: Option<i64>,
    collected_at: DateTime<Utc>,
}

/// Upserts `samples` (one per instance, database and date: a second sample for the same key
/// replaces the stored one), then in the same transaction recomputes the instance totals of
/// every touched `(instance, date)` from all of that day's rows, records the databases in the
/// inventory, and marks every period containing a touched date — all types, both levels — as
/// stale for the touched instances, together with the already-aggregated period after each
/// (its change columns compare with the changed one). Creates missing partitions first.
///
/// A batch must not contain the same key twice; PostgreSQL refuses such an upsert and nothing
/// is written. Callers validate samples beforehand.
pub fn write_database_samples(
    connection: &mut PgConnection,
    samples: &[NewDatabaseSample],
) -> Result<WriteSummary, StoreError> {
    if samples.is_empty() {
        return Ok(WriteSummary::default());
    }
    // Create partitions in their own short transaction when possible (see `partitions`). When
    // the caller already holds a transaction this is a savepoint, which is still correct.
    ensure_partitions(
        connection,
        &PartitionedTable::SAMPLES,
        samples.iter().map(|new| new.sample.collected_date),
    )?;
    connection.transaction(|connection| write_in_transaction(connection, samples))
}

fn write_in_transaction(
    connection: &mut PgConnection,
    samples: &[NewDatabaseSample],
) -> Result<WriteSummary, StoreError> {
    diesel::sql_query(
        "CREATE TEMPORARY TABLE incoming_database_size_stats (
             instance_id bigint NOT NULL,
             database_name text NOT NULL,
             collected_date date NOT NULL,
             size_mb bigint NOT NULL,
             data_size_mb bigint,
             log_size_mb bigint,
             collected_at timestamptz NOT NULL
         ) ON COMMIT DROP",
    )
    .execute(connection)?;
    let rows: Vec<IncomingRow<'_>> = samples
        .iter()
        .map(|new| IncomingRow {
            instance_id: new.sample.instance_id.0,
            database_name: &new.sample.database_name,
            collected_date: new.sample.collected_date,
            size_mb: new.sample.size_mb,
            data_size_mb: new.sample.data_size_mb,
            log_size_mb: new.sample.log_size_mb,
            collected_at: new.collected_at,
        })
        .collect();
    diesel::copy_from(incoming_database_size_stats::table)
        .from_insertable(&rows)
        .execute(connection)?;
    // Without statistics the planner guesses tiny row counts for the staging table.
    diesel::sql_query("ANALYZE incoming_database_size_stats").execute(connection)?;

    // Ordered by key so that concurrent writers lock rows in the same order.
    let samples_written = diesel::sql_query(
        "INSERT INTO database_size_stats AS stored (
             instance_id, database_name, collected_date, size_mb, data_size_mb, log_size_mb,
             collected_at)
         SELECT instance_id, database_name, collected_date, size_mb, data_size_mb, log_size_mb,
                collected_at
         FROM incoming_database_size_stats
         ORDER BY instance_id, database_name, collected_date
         ON CONFLICT (instance_id, database_name, collected_date) DO UPDATE SET
             size_mb = excluded.size_mb,
             data_size_mb = excluded.data_size_mb,
             log_size_mb = excluded.log_size_mb,
             collected_at = excluded.collected_at,
             updated_at = now()",
    )
    .execute(connection)?;

    let instance_days_refreshed = diesel::sql_query(
        "INSERT INTO instance_size_stats AS stored (
             instance_id, collected_date, total_size_mb, database_count, collected_at)
         SELECT sample.instance_id, sample.collected_date, sum(sample.size_mb), count(*),
                max(sample.collected_at)
         FROM database_size_stats sample
         JOIN (SELECT DISTINCT instance_id, collected_date FROM incoming_database_size_stats)
              AS touched USING (instance_id, collected_date)
         GROUP BY sample.instance_id, sample.collected_date
         ORDER BY sample.instance_id, sample.collected_date
         ON CONFLICT (instance_id, collected_date) DO UPDATE SET
             total_size_mb = excluded.total_size_mb,
             database_count = excluded.database_count,
             collected_at = excluded.collected_at,
             updated_at = now()",
    )
    .execute(connection)?;

    // A sample proves the database exists; it becomes active again unless the sample is
    // older than what the inventory already knows.
    let databases_recorded = diesel::sql_query(
        "INSERT INTO instance_databases AS known (
             instance_id, database_name, first_seen_date, last_seen_date)
         SELECT instance_id, database_name, min(collected_date), max(collected_date)
         FROM incoming_database_size_stats
         GROUP BY instance_id, database_name
         ORDER BY instance_id, database_name
         ON CONFLICT (instance_id, database_name) DO UPDATE SET
             first_seen_date = least(known.first_seen_date, excluded.first_seen_date),
             last_seen_date = greatest(known.last_seen_date, excluded.last_seen_date),
             is_active = known.is_active OR excluded.last_seen_date >= known.last_seen_date,
             deleted_at = CASE WHEN excluded.last_seen_date >= known.last_seen_date
                               THEN NULL ELSE known.deleted_at END,
             updated_at = now()",
    )
    .execute(connection)?;

    let ledger_entries_marked = diesel::sql_query(MARK_STALE_SQL.as_str()).execute(connection)?;

    Ok(WriteSummary {
        samples_written: samples_written as u64,
        instance_days_refreshed: instance_days_refreshed as u64,
        databases_recorded: databases_recorded as u64,
        ledger_entries_marked: ledger_entries_marked as u64,
    })
}

/// `VALUES` rows `(period type, period start, length, distance to the same period a year
/// later)` of the periods of every type that contain `touched.collected_date` (the distance is
/// NULL for daily periods, which have no year-over-year change).
fn touched_periods() -> String {
    PeriodType::ALL
        .iter()
        .map(|period_type| {
            let year_later = period_type.year_over_year_interval().map_or_else(
                || "NULL::interval".to_owned(),
                |gap| format!("interval '{gap}'"),
            );
            format!(
                "('{name}', {start}, interval '{length}', {year_later})",
                name = period_type.as_str(),
                start = period_start(
                    &format!("'{}'", period_type.truncation_unit()),
                    "touched.collected_date"
                ),
                length = period_type.interval_literal(),
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Marks stale, for the staged instances, at both levels and for every period type: every
/// period containing a staged date, the period right after each (its change columns compare
/// it with the period the samples changed, so they are wrong until it is recomputed too) and,
/// for weekly and longer types, the same period a year later (its year-over-year change
/// compares with the changed one). Entries that do not exist yet are created without `computed_at`: they tell a
/// computation that starts concurrently that it may have missed these samples (see `ledger`),
/// and count as "not computed" for the skip rule. The following period is marked even when
/// it has no entry yet, because "no entry" may be the uncommitted entry of its first
/// computation, which has read the samples as they were: the upsert waits for that
/// computation and then marks its period.
///
/// One statement taking its row locks in `(level, period_type, period_start)` order, the order
/// computations lock their ledger rows in (`ledger::begin_computation`): marking the containing
/// and the following periods in two statements could deadlock with a computation of the
/// periods in between.
static MARK_STALE_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "INSERT INTO aggregation_ledger AS ledger (
             level, period_type, period_start, period_end, stale_instance_ids, stale_since)
         SELECT level.name, marked.period_type, marked.period_start, marked.period_end,
                array_agg(DISTINCT marked.instance_id ORDER BY marked.instance_id), now()
         FROM (
             SELECT touched.instance_id, period.period_type,
                    (period.period_start + shift.offset_length)::date AS period_start,
                    (period.period_start + shift.offset_length + period.length)::date - 1
                        AS period_end
             FROM (SELECT DISTINCT instance_id, collected_date
                   FROM incoming_database_size_stats) AS touched
             CROSS JOIN LATERAL (VALUES {periods})
                 AS period (period_type, period_start, length, year_later)
             CROSS JOIN LATERAL (VALUES (interval '0 days'), (period.length), (period.year_later))
                 AS shift (offset_length)
             WHERE shift.offset_length IS NOT NULL
         ) AS marked
         CROSS JOIN (VALUES ('database'), ('instance')) AS level (name)
         GROUP BY level.name, marked.period_type, marked.period_start, marked.period_end
         ORDER BY level.name, marked.period_type, marked.period_start
         ON CONFLICT (level, period_type, period_start) DO UPDATE SET
             stale_instance_ids = ARRAY(
                 SELECT DISTINCT stale_id
                 FROM unnest(ledger.stale_instance_ids || excluded.stale_instance_ids) AS stale_id
                 ORDER BY 1),
             stale_since = coalesce(ledger.stale_since, excluded.stale_since),
             updated_at = now()",
        periods = touched_periods()
    )
});

/// The earliest collected date of any database sample, if there is one.
pub fn earliest_sample_date(
    connection: &mut PgConnection,
) -> Result<Option<NaiveDate>, StoreError> {
    use crate::schema::database_size_stats;
    Ok(database_size_stats::table
        .select(diesel::dsl::min(database_size_stats::collected_date))
        .first(connection)?)
}

/// Every database sample, ordered by instance, database and date (for exports and for checking
/// stored aggregates against `aggregation-core`).
pub fn load_database_samples(
    connection: &mut PgConnection,
) -> Result<Vec<DatabaseSizeSample>, StoreError> {
    use crate::schema::database_size_stats as stats;
    /// A sample row: instance, database, date, size, data size, log size.
    type Row = (i64, String, NaiveDate, i64, Option<i64>, Option<i64>);
    let rows: Vec<Row> = stats::table
        .order((
            stats::instance_id,
            stats::database_name,
            stats::collected_date,
        ))
        .select((
            stats::instance_id,
            stats::database_name,
            stats::collected_date,
            stats::size_mb,
            stats::data_size_mb,
            stats::log_size_mb,
        ))
        .load(connection)?;
    Ok(rows
        .into_iter()
        .map(
            |(instance, name, date, size, data, log)| DatabaseSizeSample {
                instance_id: capstats_capacity_model::InstanceId(instance),
                database_name: name,
                collected_date: date,
                size_mb: size,
                data_size_mb: data,
                log_size_mb: log,
            },
        )
        .collect())
}

/// A database sample with its instance's name and engine: a line of an import file.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct LabelledSample {
    /// The instance's name.
    pub instance_name: String,
    /// Its engine, as stored.
    pub db_type: String,
    /// The database.
    pub database_name: String,
    /// The business date.
    pub collected_date: NaiveDate,
    /// Size, MB.
    pub size_mb: i64,
    /// Data size, MB, when reported.
    pub data_size_mb: Option<i64>,
    /// Log size, MB, when reported.
    pub log_size_mb: Option<i64>,
}

/// How many database samples were collected from `from` to `to` (of `instance_ids`, or of
/// every instance when empty).
pub fn count_samples_between(
    connection: &mut PgConnection,
    from: NaiveDate,
    to: NaiveDate,
    instance_ids: &[InstanceId],
) -> Result<i64, StoreError> {
    use crate::schema::database_size_stats as stats;
    let ids: Vec<i64> = instance_ids.iter().map(|id| id.0).collect();
    let mut query = stats::table
        .filter(stats::collected_date.between(from, to))
        .into_boxed();
    if !ids.is_empty() {
        query = query.filter(stats::instance_id.eq_any(ids));
    }
    Ok(query.count().get_result(connection)?)
}

/// Hands every database sample collected from `from` to `to` (of `instance_ids`, or of every
/// instance when empty) to `each` with its instance's name and engine, by date, instance name
/// and database name, one row in memory at a time (libpq's row-by-row mode).
pub fn for_each_labelled_sample<E: From<StoreError>>(
    connection: &mut PgConnection,
    from: NaiveDate,
    to: NaiveDate,
    instance_ids: &[InstanceId],
    mut each: impl FnMut(LabelledSample) -> Result<(), E>,
) -> Result<(), E> {
    use crate::schema::{database_size_stats as stats, instances};
    let ids: Vec<i64> = instance_ids.iter().map(|id| id.0).collect();
    let mut query = stats::table
        .inner_join(instances::table.on(instances::id.eq(stats::instance_id)))
        .filter(stats::collected_date.between(from, to))
        .into_boxed();
    if !ids.is_empty() {
        query = query.filter(stats::instance_id.eq_any(ids));
    }
    let rows = query
        .order((stats::collected_date, instances::name, stats::database_name))
        .select((
            instances::name,
            instances::db_type,
            stats::database_name,
            stats::collected_date,
            stats::size_mb,
            stats::data_size_mb,
            stats::log_size_mb,
        ))
        .load_iter::<LabelledSample, diesel::pg::PgRowByRowLoadingMode>(connection)
        .map_err(StoreError::from)?;
    for row in rows {
        each(row.map_err(StoreError::from)?)?;
    }
    Ok(())
}

/// Samples stored on one business date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, QueryableByName)]
pub struct DailySampleCount {
    /// The date.
    #[diesel(sql_type = diesel::sql_types::Date)]
    pub collected_date: NaiveDate,
    /// Database samples of that date.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub database_samples: i64,
    /// Instance totals of that date.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub instance_samples: i64,
}

/// How many samples each date from `from` to `to` holds, every date listed (0 where none);
/// reads only the partitions of those months.
pub fn daily_sample_counts(
    connection: &mut PgConnection,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<DailySampleCount>, StoreError> {
    use diesel::sql_types::Date;
    Ok(diesel::sql_query(
        "SELECT day::date AS collected_date,
                coalesce(databases.count, 0) AS database_samples,
                coalesce(instances.count, 0) AS instance_samples
         FROM generate_series($1::date, $2::date, interval '1 day') AS day
         LEFT JOIN (SELECT collected_date, count(*) AS count FROM database_size_stats
                    WHERE collected_date BETWEEN $1 AND $2 GROUP BY collected_date) databases
                ON databases.collected_date = day::date
         LEFT JOIN (SELECT collected_date, count(*) AS count FROM instance_size_stats
                    WHERE collected_date BETWEEN $1 AND $2 GROUP BY collected_date) instances
                ON instances.collected_date = day::date
         ORDER BY day",
    )
    .bind::<Date, _>(from)
    .bind::<Date, _>(to)
    .load(connection)?)
}
