//! The text of the aggregation statements.
//!
//! There are eight: database and instance level, each in a *daily* form, a *grouped* form for
//! weekly periods, a *month sums* form for quarterly and yearly periods, which groups the exact
//! per-month sums kept with the samples instead of the samples, and a *monthly* form, which
//! takes each month's sums as its group (the rest of both is the grouped form's). A daily period holds exactly one sample per key, so
//! the daily form needs no `GROUP BY`: it reads the samples in key order straight from the
//! primary-key indexes, pairs each with the previous day's through `lag`, and does its
//! arithmetic in `bigint` where the operands are small enough to make that exact, falling back
//! to `numeric` otherwise. The grouped form groups the samples by key and period, pairs each group with the
//! previous period's group through `lag` and with the group of the same period a year earlier
//! through a `RANGE` frame of the same window, and computes on `numeric` integers.
//!
//! Parameters of every statement:
//!
//! | | |
//! |---|---|
//! | `$1` | period type name (`daily`, …) |
//! | `$2` | start of the period before the first one (the daily form's read window starts here; the grouped forms also read `$11..$12`) |
//! | `$3` | start of the first period |
//! | `$4` | start of the last period |
//! | `$5` | end of the last period |
//! | `$6` | the ids of the active instances to compute |
//! | `$7` | the business date the rows' completeness is judged on (today) |
//!
//! and of the grouped forms only: `$8` the `date_trunc` unit, `$9` one period's length as an
//! interval, `$10` the distance to the same period a year earlier as an interval (52 weeks, or
//! a year), `$11` the start of the period a year before the first and `$12` the end of the
//! period a year before the last (the year-over-year changes; the daily form writes NULL).
//! The replacing statements that filter early (a chunk of instances) take one parameter more,
//! after all of these — `$8` in the daily form, `$13` in the grouped forms: the start of each
//! period of the batch, which their deletion looks up one by one.
//!
//! Each statement writes the database level's counts per period and instance
//! (`database_aggregate_counts`, whose rows of the scope the caller deletes first) and returns
//! per instance the rows written and the rows deleted because their key has no samples in the
//! period any more.
//! `growth_rate` and `trend_direction` are generated columns of the tables, so the statements
//! never compute them.

use crate::sql::{divide_rounded, period_start};

/// The parameter holding the business date the rows' completeness is judged on.
const TODAY: &str = "$7::date";

/// The `[expected_count, is_partial]` expressions of a row of `measured` whose period ends at
/// `period_end` and has `data_count` samples, as of [`TODAY`].
fn completeness_of(period_end: &str, data_count: &str) -> [String; 2] {
    crate::sql::completeness("period_start", period_end, data_count, TODAY)
}

mod daily;
mod grouped;
mod key;

pub(crate) use key::text;

/// The parameter of a daily statement holding the start of each period of the batch.
const DAILY_PERIOD_STARTS: &str = "$8::date[]";

/// The parameter of a grouped statement holding the start of each period of the batch.
const GROUPED_PERIOD_STARTS: &str = "$13::date[]";

/// The samples a daily statement reads: its days and the day before them.
const DAILY_DATES: &str = "s.collected_date BETWEEN $2 AND $5";

/// The samples a grouped statement reads: the batch's window and the same periods a year
/// earlier (`$11`..`$12`), which the year-over-year changes compare with.
const GROUPED_DATES: &str =
    "(s.collected_date BETWEEN $2 AND $5 OR s.collected_date BETWEEN $11 AND $12)";
/// The month sums a grouped statement of whole months reads: those of [`GROUPED_DATES`].
const GROUPED_MONTHS: &str =
    "(s.month_start BETWEEN $2 AND $5 OR s.month_start BETWEEN $11 AND $12)";
pub use key::{PeriodForm, StatementKey};

use daily::{database_daily, instance_daily};
use grouped::{Source, database_grouped, instance_grouped};

/// How a statement writes its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WriteMode {
    /// Delete the scope's stored rows of the periods, then insert them afresh, in one
    /// statement: for periods that may already hold rows. Costs about what a first
    /// computation does, where `ON CONFLICT DO UPDATE` cost twice as much and removing vanished
    /// keys with an anti join could turn quadratic (docs/performance.md, "Recomputing stored periods").
    Replace,
    /// A plain `INSERT`: for periods the ledger says were never written, where nothing can be
    /// stored yet. It skips the deletion and the comparison of deleted and computed keys.
    Insert,
}

/// Where a statement restricts the samples to the instances of `$6`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InstanceFilter {
    /// While reading the samples: for a few instances out of many (a chunk), whose samples
    /// the primary-key index finds without reading the others.
    Early,
    /// After grouping: for (nearly) all instances, where checking every sample would cost more
    /// than checking every group.
    Late,
}

/// The shape of one statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shape {
    mode: WriteMode,
    filter: InstanceFilter,
}

impl Shape {
    /// Whether the statement takes the batch's period starts as its last parameter: a
    /// replacing statement of a chunk, whose deletion looks its rows up period by period
    /// ([`Columns::removal`]).
    fn takes_period_starts(self) -> bool {
        self.mode == WriteMode::Replace && self.filter == InstanceFilter::Early
    }

    /// The condition on the samples `s` read by the statement: `dates`, and the instances
    /// unless they are filtered late.
    fn read_window(self, dates: &str) -> String {
        match self.filter {
            InstanceFilter::Early => format!("{dates} AND s.instance_id = ANY($6)"),
            InstanceFilter::Late => dates.to_owned(),
        }
    }

    /// The condition on the rows `alias` after grouping and pairing.
    fn late_filter(self, alias: &str) -> String {
        match self.filter {
            InstanceFilter::Early => String::new(),
            InstanceFilter::Late => format!(" AND {alias}.instance_id = ANY($6)"),
        }
    }
}

/// `round(numerator / denominator)` with two decimals, for a positive `denominator`, when
/// both are `bigint` columns: in `bigint` while `2 · |numerator| · 10⁴ + denominator` cannot
/// overflow, in `numeric` otherwise. `sign()` is avoided on `bigint`: PostgreSQL would resolve
/// it to the double-precision overload.
fn hundredths_of_bigints(numerator: &str, denominator: &str) -> String {
    let exact_numeric = divide_rounded(
        &format!("({numerator})::numeric * 10000"),
        &format!("({denominator})::numeric"),
    );
    format!(
        "CASE WHEN abs({numerator}) < 400000000000000 AND {denominator} < 1000000000000000000
              THEN ((2 * abs({numerator}) * 10000 + {denominator}) / (2 * {denominator})
                    * CASE WHEN {numerator} < 0 THEN -1 ELSE 1 END)::numeric * 0.01
              ELSE {exact_numeric} * 0.01 END"
    )
}

/// The percentage change from `previous` to `current` (both `bigint`, `delta` their
/// difference) with two decimals; NULL without a previous value or when it is zero.
fn daily_percent(delta: &str, previous: &str) -> String {
    format!(
        "CASE WHEN {previous} > 0 THEN {} END",
        hundredths_of_bigints(delta, previous)
    )
}

/// The output columns of one level, in insertion order (the key columns come first).
struct Columns {
    table: &'static str,
    /// The table keeping the rows per period and instance, when the level has one: the
    /// statement writes its counts of the rows it wrote (`counted`).
    counts_table: Option<&'static str>,
    key: &'static [&'static str],
    values: &'static [&'static str],
}

const DATABASE_COLUMNS: Columns = Columns {
    table: "database_size_aggregations",
    counts_table: Some("database_aggregate_counts"),
    key: &[
        "instance_id",
        "database_name",
        "period_type",
        "period_start",
    ],
    values: &[
        "period_end",
        "avg_size_mb",
        "max_size_mb",
        "min_size_mb",
        "data_count",
        "avg_data_size_mb",
        "max_data_size_mb",
        "min_data_size_mb",
        "avg_log_size_mb",
        "max_log_size_mb",
        "min_log_size_mb",
        "size_change_mb",
        "size_change_percent",
        "data_size_change_mb",
        "data_size_change_percent",
        "log_size_change_mb",
        "log_size_change_percent",
        "calculated_at",
        "yoy_change_mb",
        "yoy_change_percent",
        "yoy_data_change_mb",
        "yoy_data_change_percent",
        "yoy_log_change_mb",
        "yoy_log_change_percent",
        "expected_count",
        "is_partial",
    ],
};

const INSTANCE_COLUMNS: Columns = Columns {
    table: "instance_size_aggregations",
    counts_table: None,
    key: &["instance_id", "period_type", "period_start"],
    values: &[
        "period_end",
        "total_size_mb",
        "avg_size_mb",
        "max_size_mb",
        "min_size_mb",
        "data_count",
        "database_count",
        "avg_database_count",
        "max_database_count",
        "min_database_count",
        "total_size_change_mb",
        "total_size_change_percent",
        "database_count_change",
        "database_count_change_percent",
        "calculated_at",
        "yoy_change_mb",
        "yoy_change_percent",
        "expected_count",
        "is_partial",
    ],
};

impl Columns {
    /// `INSERT … SELECT <expressions> FROM measured [ORDER BY <order>]`, as the `written` CTE
    /// (PostgreSQL runs a data-modifying CTE to completion whether or not it is read), and the
    /// `counted` CTE: the rows written per period and instance, counted from `measured` —
    /// every measured row is written, and in [`WriteMode::Replace`] every stored row of the
    /// scope's instances in the batch was deleted first, so these are the rows there now. For
    /// the database level it inserts them into the counts table, whose rows of the scope the
    /// caller deleted before the statement; re-reading the rows just written to count them took
    /// a statement of its own, 10 ms per chunk of 200 instances and period type at 1,600
    /// instances (docs/performance.md). Nothing is returned from `written`: passing every
    /// written row through `RETURNING` cost 0.5 s of a 7 s daily statement. `expressions`
    /// lists one SQL expression per column, keys first.
    ///
    /// In [`WriteMode::Replace`] the rows are inserted only once `removed` has deleted the
    /// stored ones: the sub-statements of a `WITH` run in no defined order, and an insertion
    /// before the deletion of the same key would hit its still-live row in the unique index.
    /// An init plan reading `removed` to the end runs before the first row is produced.
    fn write(&self, mode: WriteMode, expressions: &[String], order: Option<&str>) -> String {
        assert_eq!(
            expressions.len(),
            self.key.len() + self.values.len(),
            "one expression per column of {}",
            self.table
        );
        let columns: Vec<&str> = self.key.iter().chain(self.values).copied().collect();
        let after_removal = match mode {
            WriteMode::Replace => "\n        WHERE (SELECT count(*) FROM removed) >= 0",
            WriteMode::Insert => "",
        };
        let order = order.map_or(String::new(), |order| format!("\n        ORDER BY {order}"));
        let counted = match self.counts_table {
            Some(counts_table) => format!(
                "INSERT INTO {counts_table} (period_type, period_start, instance_id, row_count)
        SELECT $1, period_start, instance_id, count(*)
        FROM measured
        GROUP BY period_start, instance_id
        RETURNING instance_id, row_count"
            ),
            None => "SELECT instance_id, count(*) AS row_count
        FROM measured
        GROUP BY instance_id"
                .into(),
        };
        format!(
            "written AS (
        INSERT INTO {table} AS target ({columns})
        SELECT {expressions}
        FROM measured{after_removal}{order}
    ),
    counted AS (
        {counted}
    )",
            table = self.table,
            columns = columns.join(", "),
            expressions = expressions.join(",\n               "),
        )
    }

    /// The columns telling the rows of one period type apart (the key without `period_type`).
    fn row_key(&self) -> String {
        self.key
            .iter()
            .filter(|column| **column != "period_type")
            .copied()
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The `removed` CTE: in [`WriteMode::Replace`] it deletes the stored rows of the computed
    /// periods and instances, returning their keys; empty in [`WriteMode::Insert`], where
    /// there is nothing to remove.
    ///
    /// With [`InstanceFilter::Early`] (a chunk of a larger fleet) it also names each period
    /// start (`period_starts`, the batch's starts as a `date[]` parameter): with an equality on
    /// the period the primary key (period type, period start, instance, …) finds the chunk's
    /// rows with one descent per instance and period, where a range of periods let it only
    /// read the whole period — every instance's rows, for each chunk: quadratic in the fleet
    /// (docs/performance.md, "Growth with the fleet"). The range stays: it prunes the
    /// partitions at planning time.
    fn removal(&self, shape: Shape, period_starts: &str) -> String {
        let periods = if shape.takes_period_starts() {
            format!(
                "stored.period_start BETWEEN $3 AND $4
          AND stored.period_start = ANY({period_starts})"
            )
        } else {
            "stored.period_start BETWEEN $3 AND $4".into()
        };
        match shape.mode {
            WriteMode::Insert => {
                "removed AS (SELECT NULL::bigint AS instance_id WHERE false)".into()
            }
            WriteMode::Replace => format!(
                "removed AS (
        DELETE FROM {table} stored
        WHERE stored.period_type = $1 AND {periods}
          AND stored.instance_id = ANY($6)
        RETURNING {key}
    )",
                table = self.table,
                key = self.row_key()
            ),
        }
    }

    /// The statement's result: per instance, the rows written (`counted`) and the removed keys
    /// that were not written again (their samples are gone). In [`WriteMode::Replace`] the
    /// latter is a set difference computed by grouping the removed and the measured keys
    /// together, a hash aggregate whatever the planner estimates, rather than an anti join,
    /// which a low estimate once turned into a nested loop over both sets (quadratic in the
    /// fleet size).
    fn outcome(&self, mode: WriteMode) -> String {
        match mode {
            WriteMode::Insert => "SELECT instance_id, sum(row_count)::bigint AS rows_written,
           0::bigint AS rows_deleted
    FROM counted
    GROUP BY instance_id"
                .into(),
            WriteMode::Replace => format!(
                "SELECT instance_id, sum(rows_written)::bigint AS rows_written,
           sum(rows_deleted)::bigint AS rows_deleted
    FROM (SELECT instance_id, row_count AS rows_written, 0 AS rows_deleted FROM counted
          UNION ALL
          SELECT instance_id, 0, 1
          FROM (SELECT {key}, true AS was_stored FROM removed
                UNION ALL
                SELECT {key}, false FROM measured) keys
          GROUP BY {key}
          HAVING bool_and(was_stored)) outcome
    GROUP BY instance_id",
                key = self.row_key()
            ),
        }
    }
}

fn owned(expressions: &[&str]) -> Vec<String> {
    expressions
        .iter()
        .map(|expression| (*expression).to_owned())
        .collect()
}

#[cfg(test)]
mod tests;
