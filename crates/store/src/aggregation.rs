//! The set-based aggregation of DESIGN §5.
//!
//! One statement per level, batch of consecutive periods of one type and scope of instances:
//! it groups the samples of the batch (plus the period before the first, for the changes, and
//! for weekly and longer types the same periods a year earlier) by key and period, pairs each
//! group with the previous period's group through `lag` (and with the year-earlier one through
//! a `RANGE` frame of the same window), replaces
//! the scope's stored rows of the batch by the computed ones (delete, then insert, in the one
//! statement), writes the database level's counts per period and instance, and returns per
//! instance the rows written and the rows whose key has no samples any more; the period
//! counts are then recounted from the per-instance ones, which keeps the count tables exact. All
//! arithmetic is exact integer arithmetic rounded once (see [`crate::sql::divide_rounded`]), so
//! the stored digits equal those of `aggregation-core`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Date, Text};

use capstats_capacity_model::{AggregationLevel, InstanceId, Period, PeriodType};

use crate::level_tables::LevelTables;
use crate::partitions::{PartitionedTable, ensure_partitions};
use crate::{StoreError, ledger};

mod latest;
pub mod statements;

pub use crate::sql::CHANGEABLE_COMPLETENESS;
pub use statements::{InstanceFilter, PeriodForm, StatementKey, WriteMode};

/// Which instances a computation covers. Inactive and soft-deleted instances are never
/// aggregated, whatever the scope says; their existing rows are left alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceScope {
    /// Every active, not deleted instance.
    AllActive,
    /// These instances, if active.
    Only(Vec<InstanceId>),
}

impl InstanceScope {
    /// The instance ids to bind, or `None` for all active instances.
    pub fn instance_ids(&self) -> Option<Vec<i64>> {
        match self {
            Self::AllActive => None,
            Self::Only(ids) => Some(ids.iter().map(|id| id.0).collect()),
        }
    }
}

/// Rows written and deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RowCounts {
    /// Rows inserted or updated.
    pub written: u64,
    /// Rows deleted because their key had no samples in the window any more.
    pub deleted: u64,
}

/// What one batch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchOutcome {
    /// The level computed.
    pub level: AggregationLevel,
    /// The periods computed, oldest first.
    pub periods: Vec<Period>,
    /// Counts per instance that had rows written or deleted.
    pub by_instance: BTreeMap<InstanceId, RowCounts>,
    /// Wall time of the whole batch, locks included.
    pub duration: Duration,
}

impl BatchOutcome {
    /// Counts over the whole batch.
    pub fn total(&self) -> RowCounts {
        self.by_instance
            .values()
            .fold(RowCounts::default(), |total, counts| RowCounts {
                written: total.written + counts.written,
                deleted: total.deleted + counts.deleted,
            })
    }
}

/// Session settings of an aggregation transaction (`SET LOCAL`, so the server defaults stay
/// untouched): memory for grouping and sorting before spilling to disk, and no JIT — for these
/// one-shot statements compiling costs more than it saves (measured: 1.5 s of a 15 s daily
/// backfill went to JIT compilation).
const AGGREGATION_SETTINGS: &str = "SET LOCAL work_mem = '256MB'; SET LOCAL jit = off;";

/// Computes `level` for `periods` (consecutive, of one type, oldest first) and the instances of
/// `scope`, in one transaction, each row complete or partial as of business date `today`:
/// locks the periods, clears the scope's staleness in the ledger,
/// runs the statement and — for [`InstanceScope::AllActive`] — records the periods as computed
/// by `session_id`. Chunked callers record that themselves with [`ledger::mark_computed`] once
/// every chunk has succeeded.
pub fn aggregate_periods(
    connection: &mut PgConnection,
    level: AggregationLevel,
    periods: &[Period],
    scope: &InstanceScope,
    session_id: Option<i64>,
    today: NaiveDate,
) -> Result<BatchOutcome, StoreError> {
    let started = Instant::now();
    let (first, last) = match (periods.first(), periods.last()) {
        (Some(first), Some(last)) => (*first, *last),
        _ => {
            return Err(StoreError::InvalidArgument(
                "no periods to aggregate".into(),
            ));
        }
    };
    if periods.windows(2).any(|pair| pair[0].next() != pair[1]) {
        return Err(StoreError::InvalidArgument(
            "periods of a batch must be consecutive and of one type".into(),
        ));
    }
    let table = match level {
        AggregationLevel::Database => PartitionedTable::DatabaseSizeAggregations,
        AggregationLevel::Instance => PartitionedTable::InstanceSizeAggregations,
    };
    ensure_partitions(connection, &[table], periods.iter().map(Period::start))?;

    let period_type = first.period_type();
    let outcomes = connection.transaction(|connection| {
        connection.batch_execute(AGGREGATION_SETTINGS)?;
        ledger::lock_periods(connection, level, periods)?;
        let never_written = ledger::begin_computation(connection, level, periods, scope)?;
        let instance_ids = active_instance_ids(connection, scope)?;
        // Filter early for an explicit list of instances (a chunk), late for all of them.
        let filter = match scope {
            InstanceScope::AllActive => InstanceFilter::Late,
            InstanceScope::Only(_) => InstanceFilter::Early,
        };
        // The statement writes the scope's counts per period and instance afresh.
        clear_counts_per_instance(connection, level, periods, &instance_ids)?;
        let run = |connection: &mut PgConnection, mode: WriteMode| {
            run_statement(
                connection,
                level,
                periods,
                &instance_ids,
                today,
                mode,
                filter,
            )
        };
        let outcomes = if never_written {
            // In a savepoint: should rows exist after all (the ledger was reset by hand, say),
            // the unique key stops the insert and the replacing form takes over.
            match connection.transaction(|connection| run(connection, WriteMode::Insert)) {
                Err(error) if error.is_unique_violation() => {
                    tracing::warn!(
                        level = %level,
                        period_type = %period_type,
                        first = %first.start(),
                        "rows exist for periods the ledger has never seen written; replacing them"
                    );
                    run(connection, WriteMode::Replace)?
                }
                other => other?,
            }
        } else {
            run(connection, WriteMode::Replace)?
        };
        recount_periods(connection, level, periods)?;
        let lost_keys_of: Vec<i64> = outcomes
            .iter()
            .filter(|row| row.rows_deleted > 0)
            .map(|row| row.instance_id)
            .collect();
        latest::refresh_latest(connection, level, periods, &instance_ids, &lost_keys_of)?;
        if *scope == InstanceScope::AllActive {
            ledger::mark_computed(connection, level, periods, session_id)?;
        }
        Ok::<_, StoreError>(outcomes)
    })?;

    let by_instance: BTreeMap<InstanceId, RowCounts> = outcomes
        .into_iter()
        .map(|row| {
            let counts = RowCounts {
                written: u64::try_from(row.rows_written).unwrap_or_default(),
                deleted: u64::try_from(row.rows_deleted).unwrap_or_default(),
            };
            (InstanceId(row.instance_id), counts)
        })
        .collect();
    let outcome = BatchOutcome {
        level,
        periods: periods.to_vec(),
        by_instance,
        duration: started.elapsed(),
    };
    tracing::debug!(
        level = %level,
        period_type = %period_type,
        first = %first.start(),
        last = %last.start(),
        rows_written = outcome.total().written,
        rows_deleted = outcome.total().deleted,
        elapsed_ms = outcome.duration.as_millis() as u64,
        "aggregated batch"
    );
    Ok(outcome)
}

/// The text of the statement computing `level` for periods of `period_type` in `mode`, with
/// the parameters described in [`statements`]; for diagnostics such as `EXPLAIN ANALYZE`.
pub fn statement_text(
    level: AggregationLevel,
    period_type: PeriodType,
    mode: WriteMode,
    filter: InstanceFilter,
) -> &'static str {
    statements::text(statement_key(level, period_type, mode, filter))
}

fn statement_key(
    level: AggregationLevel,
    period_type: PeriodType,
    mode: WriteMode,
    filter: InstanceFilter,
) -> StatementKey {
    StatementKey {
        level,
        form: PeriodForm::of(period_type),
        mode,
        filter,
    }
}

/// Deletes the database level's counts per period and instance of `instance_ids` for
/// `periods`, before the statement writes them afresh (inside one statement its insert would
/// not see a deletion of the same keys). The instance level keeps no such table.
fn clear_counts_per_instance(
    connection: &mut PgConnection,
    level: AggregationLevel,
    periods: &[Period],
    instance_ids: &[i64],
) -> Result<(), StoreError> {
    if level != AggregationLevel::Database {
        return Ok(());
    }
    let (first, last) = (periods[0], periods[periods.len() - 1]);
    let starts: Vec<NaiveDate> = periods.iter().map(Period::start).collect();
    // The period starts ($4) besides the range: with only a range before the instance column
    // the primary key cannot seek to an instance, and each chunk read every instance's
    // counts of the batch — quadratic in the fleet (docs/performance.md).
    diesel::sql_query(
        "DELETE FROM database_aggregate_counts
         WHERE period_type = $1 AND period_start BETWEEN $2 AND $3
           AND period_start = ANY($4) AND instance_id = ANY($5)",
    )
    .bind::<Text, _>(first.period_type().as_str())
    .bind::<Date, _>(first.start())
    .bind::<Date, _>(last.start())
    .bind::<Array<Date>, _>(starts)
    .bind::<Array<BigInt>, _>(instance_ids)
    .execute(connection)?;
    Ok(())
}

/// Recounts `aggregate_period_counts` of `level` for `periods` (consecutive) as they are now in
/// this transaction, from the counts per instance (database level) or the rows (instance
/// level, one row per instance and period). Counting what is there, rather than adding up
/// what the statement reports, keeps them exact whatever the statement wrote or deleted.
fn recount_periods(
    connection: &mut PgConnection,
    level: AggregationLevel,
    periods: &[Period],
) -> Result<(), StoreError> {
    let (first, last) = (periods[0], periods[periods.len() - 1]);
    // Separate statements: within one, an INSERT does not see a CTE's DELETE of the same keys.
    let in_batch = "period_type = $1 AND period_start BETWEEN $2 AND $3";
    let period_rows = match level {
        AggregationLevel::Database => {
            "SELECT period_type, period_start, sum(row_count) FROM database_aggregate_counts"
        }
        AggregationLevel::Instance => {
            "SELECT period_type, period_start, count(*) FROM instance_size_aggregations"
        }
    };
    for statement in [
        format!("DELETE FROM aggregate_period_counts WHERE level = $4 AND {in_batch}"),
        format!(
            "INSERT INTO aggregate_period_counts (level, period_type, period_start, row_count)
             SELECT $4, counted.* FROM ({period_rows} WHERE {in_batch} GROUP BY 1, 2) counted"
        ),
    ] {
        diesel::sql_query(statement)
            .bind::<Text, _>(first.period_type().as_str())
            .bind::<Date, _>(first.start())
            .bind::<Date, _>(last.start())
            .bind::<Text, _>(level.as_str())
            .execute(connection)?;
    }
    Ok(())
}

/// The active, not deleted instances of `scope`, in ascending order.
fn active_instance_ids(
    connection: &mut PgConnection,
    scope: &InstanceScope,
) -> Result<Vec<i64>, StoreError> {
    use crate::schema::instances;
    let mut query = instances::table
        .filter(instances::is_active.eq(true))
        .filter(instances::deleted_at.is_null())
        .select(instances::id)
        // Sorted: callers search it.
        .order(instances::id)
        .into_boxed();
    if let Some(ids) = scope.instance_ids() {
        query = query.filter(instances::id.eq_any(ids));
    }
    Ok(query.load(connection)?)
}

fn run_statement(
    connection: &mut PgConnection,
    level: AggregationLevel,
    periods: &[Period],
    instance_ids: &[i64],
    today: NaiveDate,
    mode: WriteMode,
    filter: InstanceFilter,
) -> Result<Vec<InstanceOutcome>, StoreError> {
    let (first, last) = (periods[0], periods[periods.len() - 1]);
    let period_type = first.period_type();
    let key = statement_key(level, period_type, mode, filter);
    let mut query = diesel::sql_query(statements::text(key))
        .into_boxed()
        .bind::<Text, _>(period_type.as_str())
        .bind::<Date, _>(first.previous().start())
        .bind::<Date, _>(first.start())
        .bind::<Date, _>(last.start())
        .bind::<Date, _>(last.end())
        .bind::<Array<BigInt>, _>(instance_ids)
        .bind::<Date, _>(today);
    if let (Some(first_earlier), Some(last_earlier), Some(year_over_year)) = (
        first.year_earlier(),
        last.year_earlier(),
        period_type.year_over_year_interval(),
    ) {
        query = query
            .bind::<Text, _>(period_type.truncation_unit())
            .bind::<Text, _>(period_type.interval_literal())
            .bind::<Text, _>(year_over_year)
            .bind::<Date, _>(first_earlier.start())
            .bind::<Date, _>(last_earlier.end());
    } else if period_type != PeriodType::Daily {
        // Periods in the first representable year have no year before them.
        return Err(StoreError::InvalidArgument(format!(
            "{first} has no period a year earlier to compare with"
        )));
    }
    if key.takes_period_starts() {
        let starts: Vec<NaiveDate> = periods.iter().map(Period::start).collect();
        query = query.bind::<Array<Date>, _>(starts);
    }
    Ok(query.load(connection)?)
}

/// How long [`refresh_completeness`] waits for a row another transaction holds: shorter than
/// PostgreSQL's default `deadlock_timeout` (1 s), so that should a run's statement and the
/// refresh wait for each other, the refresh gives way before the server picks a victim.
const REFRESH_LOCK_TIMEOUT: &str = "SET LOCAL lock_timeout = '500ms'";

/// Rows whose stored completeness changed in a [`refresh_completeness`], per level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CompletenessRefresh {
    /// Database-level rows updated.
    pub database_rows: u64,
    /// Instance-level rows updated.
    pub instance_rows: u64,
}

/// Brings the stored completeness of every partial row up to business date `today`: a running
/// period expects one more day each day, and once it has ended it is complete unless it misses
/// days. Only rows judged before their period ended can change
/// ([`crate::sql::CHANGEABLE_COMPLETENESS`]), so only they are read, through the partial
/// indexes; only rows whose figures differ are written, so a second refresh on the same day
/// writes nothing — it does not even run an update, which would make the API read its
/// remembered answers again. The scheduled runs call it before they compute anything.
///
/// Both tables change in one transaction that waits at most [`REFRESH_LOCK_TIMEOUT`] for a row
/// another transaction holds (a run rewriting it); past that it fails with the lock timeout and
/// changes nothing, and the next call refreshes what it left.
pub fn refresh_completeness(
    connection: &mut PgConnection,
    today: NaiveDate,
) -> Result<CompletenessRefresh, StoreError> {
    let [expected_count, is_partial] =
        crate::sql::completeness("period_start", "period_end", "data_count", "$1::date");
    let stale = format!(
        "{changeable}
         AND (expected_count, is_partial) IS DISTINCT FROM ({expected_count}, {is_partial})",
        changeable = crate::sql::CHANGEABLE_COMPLETENESS,
    );
    let mut updated = [0u64; 2];
    connection.transaction(|connection| {
        connection.batch_execute(REFRESH_LOCK_TIMEOUT)?;
        for (count, level) in updated
            .iter_mut()
            .zip([AggregationLevel::Database, AggregationLevel::Instance])
        {
            let LevelTables {
                aggregates: table,
                latest,
                ..
            } = LevelTables::of(level);
            // An update, even of no row, records a change of what the capacity reads show
            // (`read_changes`) and the API reads its remembered answers again: ask first.
            let found: crate::sql::Exists = diesel::sql_query(format!(
                "SELECT EXISTS (SELECT 1 FROM {table} WHERE {stale}) AS found"
            ))
            .bind::<Date, _>(today)
            .get_result(connection)?;
            if !found.found {
                continue;
            }
            let refresh = |table: &str| {
                diesel::sql_query(format!(
                    "UPDATE {table}
                     SET expected_count = {expected_count}, is_partial = {is_partial}
                     WHERE {stale}"
                ))
                .bind::<Date, _>(today)
            };
            let rows = refresh(table).execute(connection)?;
            *count = u64::try_from(rows).unwrap_or_default();
            // The latest table holds copies of some of these rows; with none of them stale,
            // none of the copies is.
            refresh(latest).execute(connection)?;
        }
        Ok::<_, StoreError>(())
    })?;
    Ok(CompletenessRefresh {
        database_rows: updated[0],
        instance_rows: updated[1],
    })
}

/// One row of the statements' result: what the statement did to one instance's rows.
#[derive(QueryableByName)]
struct InstanceOutcome {
    #[diesel(sql_type = BigInt)]
    instance_id: i64,
    /// Rows written: every row of the instance in the batch's periods now.
    #[diesel(sql_type = BigInt)]
    rows_written: i64,
    /// Rows deleted because their key had no samples in the period any more.
    #[diesel(sql_type = BigInt)]
    rows_deleted: i64,
}
