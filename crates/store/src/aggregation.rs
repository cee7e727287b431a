//! The set-based aggregation of DESIGN §5.
//!
//! One statement per level, batch of consecutive periods of one type and scope of instances:
//! it groups the samples of the batch (plus the period before the first, for the changes) by
//! key and period, pairs each group with the previous period's group through `lag`, upserts
//! the rows with `INSERT … ON CONFLICT DO UPDATE`, deletes rows whose key has no samples in
//! the window any more, and returns per-instance and per-period counts. All arithmetic is on
//! `numeric` integers with [`crate::sql::divide_rounded`], so the stored digits equal those of
//! `aggregation-core`.

use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Date, Nullable, Text};

use capacity_model::{AggregationLevel, InstanceId, Period};

use crate::partitions::{PartitionedTable, ensure_partitions};
use crate::sql::{divide_rounded, period_start};
use crate::{StoreError, ledger};

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
    /// Counts per period start.
    pub by_period: BTreeMap<NaiveDate, RowCounts>,
    /// Wall time of the whole batch, locks included.
    pub duration: Duration,
}

impl BatchOutcome {
    /// Counts over the whole batch.
    pub fn total(&self) -> RowCounts {
        self.by_period
            .values()
            .fold(RowCounts::default(), |total, counts| RowCounts {
                written: total.written + counts.written,
                deleted: total.deleted + counts.deleted,
            })
    }
}

/// How much memory a batch statement may use for grouping before spilling to disk. Set per
/// transaction (`SET LOCAL`) so the server default stays untouched.
const AGGREGATION_WORK_MEM: &str = "256MB";

/// Computes `level` for `periods` (consecutive, of one type, oldest first) and the instances of
/// `scope`, in one transaction: locks the periods, clears the scope's staleness in the ledger,
/// runs the statement and — for [`InstanceScope::AllActive`] — records the periods as computed
/// by `session_id`. Chunked callers record that themselves with [`ledger::mark_computed`] once
/// every chunk has succeeded.
pub fn aggregate_periods(
    connection: &mut PgConnection,
    level: AggregationLevel,
    periods: &[Period],
    scope: &InstanceScope,
    session_id: Option<i64>,
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
    let rows: Vec<ChangeCount> = connection.transaction(|connection| {
        diesel::sql_query(format!("SET LOCAL work_mem = '{AGGREGATION_WORK_MEM}'"))
            .execute(connection)?;
        ledger::lock_periods(connection, level, periods)?;
        ledger::begin_computation(connection, level, periods, scope)?;
        let statement = match level {
            AggregationLevel::Database => DATABASE_LEVEL_SQL.as_str(),
            AggregationLevel::Instance => INSTANCE_LEVEL_SQL.as_str(),
        };
        let rows = diesel::sql_query(statement)
            .bind::<Text, _>(period_type.truncation_unit())
            .bind::<Date, _>(first.previous().start())
            .bind::<Date, _>(first.start())
            .bind::<Date, _>(last.start())
            .bind::<Date, _>(last.end())
            .bind::<Text, _>(period_type.as_str())
            .bind::<Nullable<Array<BigInt>>, _>(scope.instance_ids())
            .bind::<Text, _>(period_type.interval_literal())
            .load(connection)?;
        if *scope == InstanceScope::AllActive {
            ledger::mark_computed(connection, level, periods, session_id)?;
        }
        Ok::<_, StoreError>(rows)
    })?;

    let mut outcome = BatchOutcome {
        level,
        periods: periods.to_vec(),
        by_instance: BTreeMap::new(),
        by_period: BTreeMap::new(),
        duration: Duration::ZERO,
    };
    for row in rows {
        let counts = RowCounts {
            written: u64::try_from(row.rows_written).unwrap_or_default(),
            deleted: u64::try_from(row.rows_deleted).unwrap_or_default(),
        };
        match (row.instance_id, row.period_start) {
            (Some(instance_id), None) => {
                outcome.by_instance.insert(InstanceId(instance_id), counts);
            }
            (None, Some(period_start)) => {
                outcome.by_period.insert(period_start, counts);
            }
            _ => {}
        }
    }
    outcome.duration = started.elapsed();
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

/// One row of the statements' result: counts per instance (period null) or per period
/// (instance null), from `GROUPING SETS`.
#[derive(QueryableByName)]
struct ChangeCount {
    #[diesel(sql_type = Nullable<BigInt>)]
    instance_id: Option<i64>,
    #[diesel(sql_type = Nullable<Date>)]
    period_start: Option<NaiveDate>,
    #[diesel(sql_type = BigInt)]
    rows_written: i64,
    #[diesel(sql_type = BigInt)]
    rows_deleted: i64,
}

// Parameters shared by both statements:
//   $1 date_trunc unit of the period type      $5 end of the last period
//   $2 start of the period before the first    $6 period type name
//   $3 start of the first period               $7 instance ids, or NULL for all active
//   $4 start of the last period                $8 length of one period as an interval

const SCOPE_CTE: &str = "scope AS MATERIALIZED (
        SELECT id FROM instances
        WHERE is_active AND deleted_at IS NULL AND ($7::bigint[] IS NULL OR id = ANY($7))
    )";

/// `CASE WHEN denominator > 0 THEN round(numerator / denominator) END`, scaled by `factor`.
fn rounded_when_positive(numerator: &str, denominator: &str, factor: &str) -> String {
    format!(
        "CASE WHEN {denominator} > 0 THEN {rounded}{factor} END",
        rounded = divide_rounded(numerator, denominator)
    )
}

/// The final part shared by both levels: count the changes per instance and per period.
const COUNT_CHANGES: &str = "changes AS (
        SELECT instance_id, period_start, 1 AS written, 0 AS deleted FROM upserted
        UNION ALL
        SELECT instance_id, period_start, 0, 1 FROM removed
    )
    SELECT instance_id, period_start,
           sum(written)::bigint AS rows_written, sum(deleted)::bigint AS rows_deleted
    FROM changes
    GROUP BY GROUPING SETS ((instance_id), (period_start))";

static DATABASE_LEVEL_SQL: LazyLock<String> = LazyLock::new(|| {
    let start_of_sample = period_start("$1", "s.collected_date");
    let start_of_previous = period_start("$1", "g.period_start - 1");
    let change = |series: &str| {
        format!(
            "{mb} AS {series}_change_mb, {percent} AS {series}_change_percent",
            mb = rounded_when_positive(
                &format!("m.{series}_change_numerator"),
                &format!("m.{series}_change_denominator"),
                ""
            ),
            percent = rounded_when_positive(
                &format!("m.{series}_percent_numerator"),
                &format!("m.{series}_percent_denominator"),
                " * 0.01"
            ),
        )
    };
    let deltas = |series: &str| {
        format!(
            "m.{series}_sum * m.previous_{series}_count - m.previous_{series}_sum * m.{series}_count
                 AS {series}_change_numerator,
             m.{series}_count * m.previous_{series}_count AS {series}_change_denominator,
             (m.{series}_sum * m.previous_{series}_count - m.previous_{series}_sum * m.{series}_count)
                 * 10000 AS {series}_percent_numerator,
             m.previous_{series}_sum * m.{series}_count AS {series}_percent_denominator"
        )
    };
    let previous = |series: &str| {
        format!(
            "CASE WHEN c.follows_previous THEN c.previous_{series}_count END AS previous_{series}_count,
             CASE WHEN c.follows_previous THEN c.previous_{series}_sum END AS previous_{series}_sum"
        )
    };
    format!(
        "WITH {SCOPE_CTE},
    grouped AS MATERIALIZED (
        SELECT s.instance_id, s.database_name, {start_of_sample} AS period_start,
               count(*) AS size_count, sum(s.size_mb) AS size_sum,
               max(s.size_mb) AS size_max, min(s.size_mb) AS size_min,
               count(s.data_size_mb) AS data_count, sum(s.data_size_mb) AS data_sum,
               max(s.data_size_mb) AS data_max, min(s.data_size_mb) AS data_min,
               count(s.log_size_mb) AS log_count, sum(s.log_size_mb) AS log_sum,
               max(s.log_size_mb) AS log_max, min(s.log_size_mb) AS log_min
        FROM database_size_stats s
        WHERE s.collected_date BETWEEN $2 AND $5 AND s.instance_id IN (SELECT id FROM scope)
        GROUP BY 1, 2, 3
    ),
    compared AS (
        SELECT g.*,
               lag(g.period_start) OVER w = {start_of_previous} AS follows_previous,
               lag(g.size_count) OVER w AS previous_size_count,
               lag(g.size_sum) OVER w AS previous_size_sum,
               lag(g.data_count) OVER w AS previous_data_count,
               lag(g.data_sum) OVER w AS previous_data_sum,
               lag(g.log_count) OVER w AS previous_log_count,
               lag(g.log_sum) OVER w AS previous_log_sum
        FROM grouped g
        WINDOW w AS (PARTITION BY g.instance_id, g.database_name ORDER BY g.period_start)
    ),
    paired AS (
        SELECT c.instance_id, c.database_name, c.period_start,
               c.size_count, c.size_sum, c.size_max, c.size_min,
               c.data_count, c.data_sum, c.data_max, c.data_min,
               c.log_count, c.log_sum, c.log_max, c.log_min,
               {previous_size}, {previous_data}, {previous_log}
        FROM compared c
        WHERE c.period_start >= $3
    ),
    measured AS (
        SELECT m.*, {deltas_size}, {deltas_data}, {deltas_log}
        FROM paired m
    ),
    computed AS (
        SELECT m.instance_id, m.database_name, m.period_start,
               (m.period_start + $8::interval)::date - 1 AS period_end,
               {average_size} AS avg_size_mb, m.size_max AS max_size_mb,
               m.size_min AS min_size_mb, m.size_count AS data_count,
               {average_data} AS avg_data_size_mb, m.data_max AS max_data_size_mb,
               m.data_min AS min_data_size_mb,
               {average_log} AS avg_log_size_mb, m.log_max AS max_log_size_mb,
               m.log_min AS min_log_size_mb,
               {change_size}, {change_data}, {change_log}
        FROM measured m
    ),
    upserted AS (
        INSERT INTO database_size_aggregations AS target (
            instance_id, database_name, period_type, period_start, period_end,
            avg_size_mb, max_size_mb, min_size_mb, data_count,
            avg_data_size_mb, max_data_size_mb, min_data_size_mb,
            avg_log_size_mb, max_log_size_mb, min_log_size_mb,
            size_change_mb, size_change_percent, data_size_change_mb, data_size_change_percent,
            log_size_change_mb, log_size_change_percent, growth_rate, calculated_at)
        SELECT instance_id, database_name, $6, period_start, period_end,
               avg_size_mb, max_size_mb, min_size_mb, data_count,
               avg_data_size_mb, max_data_size_mb, min_data_size_mb,
               avg_log_size_mb, max_log_size_mb, min_log_size_mb,
               size_change_mb, size_change_percent, data_change_mb, data_change_percent,
               log_change_mb, log_change_percent, size_change_percent, now()
        FROM computed
        ON CONFLICT (instance_id, database_name, period_type, period_start) DO UPDATE SET
            period_end = excluded.period_end,
            avg_size_mb = excluded.avg_size_mb,
            max_size_mb = excluded.max_size_mb,
            min_size_mb = excluded.min_size_mb,
            data_count = excluded.data_count,
            avg_data_size_mb = excluded.avg_data_size_mb,
            max_data_size_mb = excluded.max_data_size_mb,
            min_data_size_mb = excluded.min_data_size_mb,
            avg_log_size_mb = excluded.avg_log_size_mb,
            max_log_size_mb = excluded.max_log_size_mb,
            min_log_size_mb = excluded.min_log_size_mb,
            size_change_mb = excluded.size_change_mb,
            size_change_percent = excluded.size_change_percent,
            data_size_change_mb = excluded.data_size_change_mb,
            data_size_change_percent = excluded.data_size_change_percent,
            log_size_change_mb = excluded.log_size_change_mb,
            log_size_change_percent = excluded.log_size_change_percent,
            growth_rate = excluded.growth_rate,
            calculated_at = excluded.calculated_at
        RETURNING target.instance_id, target.period_start
    ),
    removed AS (
        DELETE FROM database_size_aggregations stored
        WHERE stored.period_type = $6 AND stored.period_start BETWEEN $3 AND $4
          AND stored.instance_id IN (SELECT id FROM scope)
          AND NOT EXISTS (
              SELECT 1 FROM grouped g
              WHERE g.instance_id = stored.instance_id
                AND g.database_name = stored.database_name
                AND g.period_start = stored.period_start)
        RETURNING stored.instance_id, stored.period_start
    ),
    {COUNT_CHANGES}",
        previous_size = previous("size"),
        previous_data = previous("data"),
        previous_log = previous("log"),
        deltas_size = deltas("size"),
        deltas_data = deltas("data"),
        deltas_log = deltas("log"),
        average_size = divide_rounded("m.size_sum", "m.size_count"),
        average_data = rounded_when_positive("m.data_sum", "m.data_count", ""),
        average_log = rounded_when_positive("m.log_sum", "m.log_count", ""),
        change_size = change("size"),
        change_data = change("data"),
        change_log = change("log"),
    )
});

static INSTANCE_LEVEL_SQL: LazyLock<String> = LazyLock::new(|| {
    let start_of_sample = period_start("$1", "s.collected_date");
    let start_of_previous = period_start("$1", "g.period_start - 1");
    let change = |series: &str, name: &str| {
        format!(
            "{mb} AS {name}, {percent} AS {name}_percent",
            mb = rounded_when_positive(
                &format!("m.{series}_change_numerator"),
                &format!("m.{series}_change_denominator"),
                ""
            ),
            percent = rounded_when_positive(
                &format!("m.{series}_percent_numerator"),
                &format!("m.{series}_percent_denominator"),
                " * 0.01"
            ),
        )
    };
    let deltas = |series: &str| {
        format!(
            "m.{series}_sum * m.previous_day_count - m.previous_{series}_sum * m.day_count
                 AS {series}_change_numerator,
             m.day_count * m.previous_day_count AS {series}_change_denominator,
             (m.{series}_sum * m.previous_day_count - m.previous_{series}_sum * m.day_count)
                 * 10000 AS {series}_percent_numerator,
             m.previous_{series}_sum * m.day_count AS {series}_percent_denominator"
        )
    };
    format!(
        "WITH {SCOPE_CTE},
    grouped AS MATERIALIZED (
        SELECT s.instance_id, {start_of_sample} AS period_start,
               count(*) AS day_count,
               sum(s.total_size_mb) AS total_sum,
               max(s.total_size_mb) AS total_max, min(s.total_size_mb) AS total_min,
               sum(s.database_count) AS count_sum,
               max(s.database_count) AS count_max, min(s.database_count) AS count_min
        FROM instance_size_stats s
        WHERE s.collected_date BETWEEN $2 AND $5 AND s.instance_id IN (SELECT id FROM scope)
        GROUP BY 1, 2
    ),
    compared AS (
        SELECT g.*,
               lag(g.period_start) OVER w = {start_of_previous} AS follows_previous,
               lag(g.day_count) OVER w AS previous_day_count,
               lag(g.total_sum) OVER w AS previous_total_sum,
               lag(g.count_sum) OVER w AS previous_count_sum
        FROM grouped g
        WINDOW w AS (PARTITION BY g.instance_id ORDER BY g.period_start)
    ),
    paired AS (
        SELECT c.instance_id, c.period_start, c.day_count,
               c.total_sum, c.total_max, c.total_min, c.count_sum, c.count_max, c.count_min,
               CASE WHEN c.follows_previous THEN c.previous_day_count END AS previous_day_count,
               CASE WHEN c.follows_previous THEN c.previous_total_sum END AS previous_total_sum,
               CASE WHEN c.follows_previous THEN c.previous_count_sum END AS previous_count_sum
        FROM compared c
        WHERE c.period_start >= $3
    ),
    measured AS (
        SELECT m.*, {deltas_total}, {deltas_count}
        FROM paired m
    ),
    computed AS (
        SELECT m.instance_id, m.period_start,
               (m.period_start + $8::interval)::date - 1 AS period_end,
               {average_total} AS total_size_mb,
               {size_per_database} AS avg_size_mb,
               m.total_max AS max_size_mb, m.total_min AS min_size_mb,
               m.day_count AS data_count,
               {average_count} AS database_count,
               {average_count_hundredths} AS avg_database_count,
               m.count_max AS max_database_count, m.count_min AS min_database_count,
               {change_total}, {change_count}
        FROM measured m
    ),
    upserted AS (
        INSERT INTO instance_size_aggregations AS target (
            instance_id, period_type, period_start, period_end,
            total_size_mb, avg_size_mb, max_size_mb, min_size_mb, data_count,
            database_count, avg_database_count, max_database_count, min_database_count,
            total_size_change_mb, total_size_change_percent,
            database_count_change, database_count_change_percent,
            growth_rate, trend_direction, calculated_at)
        SELECT instance_id, $6, period_start, period_end,
               total_size_mb, avg_size_mb, max_size_mb, min_size_mb, data_count,
               database_count, avg_database_count, max_database_count, min_database_count,
               total_size_change_mb, total_size_change_mb_percent,
               database_count_change, database_count_change_percent,
               total_size_change_mb_percent,
               CASE WHEN total_size_change_mb_percent > 5 THEN 'growing'
                    WHEN total_size_change_mb_percent < -5 THEN 'shrinking'
                    WHEN total_size_change_mb_percent IS NOT NULL THEN 'stable' END,
               now()
        FROM computed
        ON CONFLICT (instance_id, period_type, period_start) DO UPDATE SET
            period_end = excluded.period_end,
            total_size_mb = excluded.total_size_mb,
            avg_size_mb = excluded.avg_size_mb,
            max_size_mb = excluded.max_size_mb,
            min_size_mb = excluded.min_size_mb,
            data_count = excluded.data_count,
            database_count = excluded.database_count,
            avg_database_count = excluded.avg_database_count,
            max_database_count = excluded.max_database_count,
            min_database_count = excluded.min_database_count,
            total_size_change_mb = excluded.total_size_change_mb,
            total_size_change_percent = excluded.total_size_change_percent,
            database_count_change = excluded.database_count_change,
            database_count_change_percent = excluded.database_count_change_percent,
            growth_rate = excluded.growth_rate,
            trend_direction = excluded.trend_direction,
            calculated_at = excluded.calculated_at
        RETURNING target.instance_id, target.period_start
    ),
    removed AS (
        DELETE FROM instance_size_aggregations stored
        WHERE stored.period_type = $6 AND stored.period_start BETWEEN $3 AND $4
          AND stored.instance_id IN (SELECT id FROM scope)
          AND NOT EXISTS (
              SELECT 1 FROM grouped g
              WHERE g.instance_id = stored.instance_id AND g.period_start = stored.period_start)
        RETURNING stored.instance_id, stored.period_start
    ),
    {COUNT_CHANGES}",
        deltas_total = deltas("total"),
        deltas_count = deltas("count"),
        average_total = divide_rounded("m.total_sum", "m.day_count"),
        size_per_database = rounded_when_positive("m.total_sum", "m.count_sum", ""),
        average_count = divide_rounded("m.count_sum", "m.day_count"),
        average_count_hundredths = format!(
            "{} * 0.01",
            divide_rounded("m.count_sum * 100", "m.day_count")
        ),
        change_total = change("total", "total_size_change_mb"),
        change_count = change("count", "database_count_change"),
    )
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_bind_every_parameter() {
        for statement in [DATABASE_LEVEL_SQL.as_str(), INSTANCE_LEVEL_SQL.as_str()] {
            for parameter in 1..=8 {
                assert!(
                    statement.contains(&format!("${parameter}")),
                    "${parameter} unused"
                );
            }
            assert!(!statement.contains("$9"));
        }
    }
}
