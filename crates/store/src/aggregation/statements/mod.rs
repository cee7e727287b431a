//! The text of the aggregation statements.
//!
//! There are four: database and instance level, each in a *daily* form and a *grouped* form
//! for the longer period types. A daily period holds exactly one sample per key, so the daily
//! form needs no `GROUP BY`: it reads the samples in key order straight from the primary-key
//! indexes, pairs each with the previous day's through `lag`, and does its arithmetic in
//! `bigint` where the operands are small enough to make that exact, falling back to `numeric`
//! otherwise. The grouped form groups the samples by key and period, pairs each group with the
//! previous period's group through `lag`, and computes on `numeric` integers.
//!
//! Parameters of every statement:
//!
//! | | |
//! |---|---|
//! | `$1` | period type name (`daily`, …) |
//! | `$2` | start of the period before the first one (the read window starts here) |
//! | `$3` | start of the first period |
//! | `$4` | start of the last period |
//! | `$5` | end of the last period |
//! | `$6` | the ids of the active instances to compute |
//!
//! and of the grouped forms only: `$7` the `date_trunc` unit, `$8` one period's length as an
//! interval. Each statement returns per instance the rows deleted because their key has no
//! samples in the period any more (the rows written come from the recount that follows it). `growth_rate` and `trend_direction` are generated columns of
//! the tables, so the statements never compute them.

use crate::sql::{divide_rounded, period_start};

mod key;

pub(crate) use key::text;
pub use key::{PeriodForm, StatementKey};

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
    /// The condition on the samples `s` read by the statement.
    fn read_window(self) -> &'static str {
        match self.filter {
            InstanceFilter::Early => {
                "s.collected_date BETWEEN $2 AND $5 AND s.instance_id = ANY($6)"
            }
            InstanceFilter::Late => "s.collected_date BETWEEN $2 AND $5",
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
    key: &'static [&'static str],
    values: &'static [&'static str],
}

const DATABASE_COLUMNS: Columns = Columns {
    table: "database_size_aggregations",
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
    ],
};

const INSTANCE_COLUMNS: Columns = Columns {
    table: "instance_size_aggregations",
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
    ],
};

impl Columns {
    /// `INSERT … SELECT <expressions> FROM measured [ORDER BY <order>]`, as the `written` CTE
    /// (PostgreSQL runs a data-modifying CTE to completion whether or not it is read). Nothing
    /// is returned: per-instance counts of rows written come from the recount that follows the
    /// statement, which costs less than passing every written row through `RETURNING` (0.5 s
    /// of a 7 s daily statement). `expressions` lists one SQL expression per column, keys
    /// first.
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
        format!(
            "written AS (
        INSERT INTO {table} AS target ({columns})
        SELECT {expressions}
        FROM measured{after_removal}{order}
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
    fn removal(&self, mode: WriteMode) -> String {
        match mode {
            WriteMode::Insert => {
                "removed AS (SELECT NULL::bigint AS instance_id WHERE false)".into()
            }
            WriteMode::Replace => format!(
                "removed AS (
        DELETE FROM {table} stored
        WHERE stored.period_type = $1 AND stored.period_start BETWEEN $3 AND $4
          AND stored.instance_id = ANY($6)
        RETURNING {key}
    )",
                table = self.table,
                key = self.row_key()
            ),
        }
    }

    /// The statement's result: per instance, the removed keys that were not written again
    /// (their samples are gone). In [`WriteMode::Replace`] this is a set difference computed
    /// by grouping the removed and the measured keys together, a hash aggregate whatever the
    /// planner estimates, rather than an anti join, which a low estimate once turned into a
    /// nested loop over both sets (quadratic in the fleet size).
    fn vanished_counts(&self, mode: WriteMode) -> String {
        match mode {
            WriteMode::Insert => "SELECT instance_id, count(*)::bigint AS rows_deleted
    FROM removed
    GROUP BY instance_id"
                .into(),
            WriteMode::Replace => format!(
                "SELECT instance_id, count(*)::bigint AS rows_deleted
    FROM (SELECT {key}
          FROM (SELECT {key}, true AS was_stored FROM removed
                UNION ALL
                SELECT {key}, false FROM measured) keys
          GROUP BY {key}
          HAVING bool_and(was_stored)) vanished
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

/// In the daily forms: the previous day's value of a column, when the previous sample of the
/// key is the previous day's, else NULL.
fn previous_day(column: &str) -> String {
    format!("CASE WHEN p.previous_date = p.period_start - 1 THEN p.lag_{column} END")
}

fn database_daily(shape: Shape) -> String {
    let mode = shape.mode;
    let late_filter = shape.late_filter("p");
    let mut expressions = owned(&[
        "instance_id",
        "database_name",
        "$1",
        "period_start",
        "period_start",
        "size_mb",
        "size_mb",
        "size_mb",
        "1",
        "data_size_mb",
        "data_size_mb",
        "data_size_mb",
        "log_size_mb",
        "log_size_mb",
        "log_size_mb",
    ]);
    for series in ["size", "data", "log"] {
        expressions.push(format!("{series}_delta"));
        expressions.push(daily_percent(
            &format!("{series}_delta"),
            &format!("previous_{series}"),
        ));
    }
    expressions.push("now()".into());
    format!(
        "WITH paired AS (
        SELECT s.instance_id, s.database_name, s.collected_date AS period_start,
               s.size_mb, s.data_size_mb, s.log_size_mb,
               lag(s.collected_date) OVER w AS previous_date,
               lag(s.size_mb) OVER w AS lag_size_mb,
               lag(s.data_size_mb) OVER w AS lag_data_size_mb,
               lag(s.log_size_mb) OVER w AS lag_log_size_mb
        FROM database_size_stats s
        WHERE {read_window}
        WINDOW w AS (PARTITION BY s.instance_id, s.database_name ORDER BY s.collected_date)
    ),
    measured AS (
        SELECT p.instance_id, p.database_name, p.period_start,
               p.size_mb, p.data_size_mb, p.log_size_mb,
               {previous_size} AS previous_size,
               {previous_data} AS previous_data,
               {previous_log} AS previous_log,
               p.size_mb - {previous_size} AS size_delta,
               p.data_size_mb - {previous_data} AS data_delta,
               p.log_size_mb - {previous_log} AS log_delta
        FROM paired p
        WHERE p.period_start >= $3{late_filter}
        OFFSET 0
    ),
    {removal},
    {write}
    {result}",
        previous_size = previous_day("size_mb"),
        previous_data = previous_day("data_size_mb"),
        previous_log = previous_day("log_size_mb"),
        read_window = shape.read_window(),
        // In the primary key's order: the index then grows at its right edge instead of
        // taking 1.3 M inserts all over (1 s of a 7 s year of daily rows).
        write = DATABASE_COLUMNS.write(
            mode,
            &expressions,
            Some("period_start, instance_id, database_name")
        ),
        removal = DATABASE_COLUMNS.removal(mode),
        result = DATABASE_COLUMNS.vanished_counts(mode),
    )
}

fn instance_daily(shape: Shape) -> String {
    let mode = shape.mode;
    let late_filter = shape.late_filter("p");
    let size_per_database = format!(
        "CASE WHEN database_count > 0 THEN
             CASE WHEN total_size_mb < 4000000000000000000
                       AND database_count < 1000000000000000000
                  THEN (2 * total_size_mb + database_count) / (2 * database_count)
                  ELSE {} END END",
        divide_rounded("total_size_mb::numeric", "database_count::numeric")
    );
    let mut expressions = owned(&[
        "instance_id",
        "$1",
        "period_start",
        "period_start",
        "total_size_mb",
    ]);
    expressions.push(size_per_database);
    expressions.extend(owned(&[
        "total_size_mb",
        "total_size_mb",
        "1",
        "database_count",
        "database_count",
        "database_count",
        "database_count",
        "total_delta",
    ]));
    expressions.push(daily_percent("total_delta", "previous_total"));
    expressions.push("count_delta".into());
    expressions.push(daily_percent("count_delta", "previous_count"));
    expressions.push("now()".into());
    format!(
        "WITH paired AS (
        SELECT s.instance_id, s.collected_date AS period_start,
               s.total_size_mb, s.database_count,
               lag(s.collected_date) OVER w AS previous_date,
               lag(s.total_size_mb) OVER w AS lag_total_size_mb,
               lag(s.database_count) OVER w AS lag_database_count
        FROM instance_size_stats s
        WHERE {read_window}
        WINDOW w AS (PARTITION BY s.instance_id ORDER BY s.collected_date)
    ),
    measured AS (
        SELECT p.instance_id, p.period_start, p.total_size_mb, p.database_count,
               {previous_total} AS previous_total,
               {previous_count} AS previous_count,
               p.total_size_mb - {previous_total} AS total_delta,
               p.database_count - {previous_count} AS count_delta
        FROM paired p
        WHERE p.period_start >= $3{late_filter}
        OFFSET 0
    ),
    {removal},
    {write}
    {result}",
        previous_total = previous_day("total_size_mb"),
        previous_count = previous_day("database_count"),
        read_window = shape.read_window(),
        write = INSTANCE_COLUMNS.write(mode, &expressions, None),
        removal = INSTANCE_COLUMNS.removal(mode),
        result = INSTANCE_COLUMNS.vanished_counts(mode),
    )
}

/// For the grouped forms: the previous period's value of a grouped column when the previous
/// group is the previous period's, else NULL (`previous_start` is computed once per group).
fn previous_group(column: &str) -> String {
    format!(
        "CASE WHEN lag(g.period_start) OVER w = g.previous_start THEN lag(g.{column}) OVER w END"
    )
}

/// The groups with the start of the period before theirs, computed once per group (the inner
/// `OFFSET 0` keeps PostgreSQL from repeating the expression at every use).
fn groups_with_previous_start() -> String {
    format!(
        "(SELECT g.*, {previous} AS previous_start FROM grouped g OFFSET 0)",
        previous = period_start("$7", "g.period_start - 1")
    )
}

/// Sums below this bound are handled in `bigint`: with at most 366 samples per period, the
/// change numerator `Σ·n′ − Σ′·n` stays below 3.7·10¹⁴, so twice it times 10⁴ (a percentage
/// in hundredths) plus its denominator stays below 2⁶³. Larger sums take the `numeric` path.
const SMALL_SUM: &str = "1000000000000";

/// `round(numerator / denominator)` in `bigint` for a positive `denominator`, half away from
/// zero; the caller guarantees that `2·|numerator| + denominator` fits.
fn bigint_rounded(numerator: &str, denominator: &str) -> String {
    format!(
        "((2 * abs({numerator}) + {denominator}) / (2 * ({denominator}))
          * CASE WHEN {numerator} < 0 THEN -1 ELSE 1 END)"
    )
}

/// Columns of the `narrowed` step for one series: its sum and the previous period's sum as
/// `bigint` when small (else NULL), and the change numerator in `bigint` when both are small.
fn narrowed(series: &str, count: &str, previous_count: &str) -> String {
    format!(
        "CASE WHEN g.{series}_sum < {SMALL_SUM} THEN g.{series}_sum::bigint END
             AS {series}_sum_small,
         CASE WHEN g.previous_{series}_sum < {SMALL_SUM} THEN g.previous_{series}_sum::bigint END
             AS previous_{series}_sum_small,
         CASE WHEN g.{series}_sum < {SMALL_SUM} AND g.previous_{series}_sum < {SMALL_SUM}
              THEN g.{series}_sum::bigint * g.{previous_count}
                   - g.previous_{series}_sum::bigint * g.{count} END
             AS {series}_delta_small"
    )
}

/// The rounded mean of a series: `round(Σ / n)`, NULL without values.
fn grouped_mean(series: &str, count: &str) -> String {
    format!(
        "CASE WHEN {count} > 0 THEN
             CASE WHEN {series}_sum_small IS NOT NULL
                  THEN (2 * {series}_sum_small + {count}) / (2 * {count})
                  ELSE {numeric} END END",
        numeric = divide_rounded(&format!("{series}_sum"), &format!("{count}::numeric"))
    )
}

/// `(change in whole units, change in percent)` of a series against the previous period:
/// `mean − previous mean = (Σ·n′ − Σ′·n) / (n·n′)` and the same numerator over `Σ′·n`, times
/// 100; NULL without a previous period (the percentage also when its sum is zero).
fn grouped_changes(series: &str, count: &str, previous_count: &str) -> [String; 2] {
    let numeric_delta =
        format!("({series}_sum * {previous_count} - previous_{series}_sum * {count})");
    let delta_small = format!("{series}_delta_small");
    [
        format!(
            "CASE WHEN {count} > 0 AND {previous_count} > 0 THEN
                 CASE WHEN {delta_small} IS NOT NULL THEN {small}
                      ELSE {numeric} END END",
            small = bigint_rounded(&delta_small, &format!("{count} * {previous_count}")),
            numeric = divide_rounded(
                &numeric_delta,
                &format!("({count} * {previous_count})::numeric")
            ),
        ),
        format!(
            "CASE WHEN {count} > 0 AND {previous_count} > 0 AND previous_{series}_sum > 0 THEN
                 CASE WHEN {delta_small} IS NOT NULL THEN {small}::numeric * 0.01
                      ELSE {numeric} * 0.01 END END",
            small = bigint_rounded(
                &format!("{delta_small} * 10000"),
                &format!("previous_{series}_sum_small * {count}")
            ),
            numeric = divide_rounded(
                &format!("{numeric_delta} * 10000"),
                &format!("previous_{series}_sum * {count}")
            ),
        ),
    ]
}

fn database_grouped(shape: Shape) -> String {
    let mode = shape.mode;
    let late_filter = shape.late_filter("g");
    let mut expressions = owned(&[
        "instance_id",
        "database_name",
        "$1",
        "period_start",
        "(period_start + $8::interval)::date - 1",
    ]);
    expressions.push(grouped_mean("size", "size_count"));
    expressions.extend(owned(&["size_max", "size_min", "size_count"]));
    for series in ["data", "log"] {
        expressions.push(grouped_mean(series, &format!("{series}_count")));
        expressions.push(format!("{series}_max"));
        expressions.push(format!("{series}_min"));
    }
    for series in ["size", "data", "log"] {
        expressions.extend(grouped_changes(
            series,
            &format!("{series}_count"),
            &format!("previous_{series}_count"),
        ));
    }
    expressions.push("now()".into());
    let lags: Vec<String> = [
        "size_count",
        "size_sum",
        "data_count",
        "data_sum",
        "log_count",
        "log_sum",
    ]
    .iter()
    .map(|column| format!("{} AS previous_{column}", previous_group(column)))
    .collect();
    format!(
        "WITH grouped AS (
        SELECT s.instance_id, s.database_name, {start_of_sample} AS period_start,
               count(*) AS size_count, sum(s.size_mb) AS size_sum,
               max(s.size_mb) AS size_max, min(s.size_mb) AS size_min,
               count(s.data_size_mb) AS data_count, sum(s.data_size_mb) AS data_sum,
               max(s.data_size_mb) AS data_max, min(s.data_size_mb) AS data_min,
               count(s.log_size_mb) AS log_count, sum(s.log_size_mb) AS log_sum,
               max(s.log_size_mb) AS log_max, min(s.log_size_mb) AS log_min
        FROM database_size_stats s
        WHERE {read_window}
        GROUP BY 1, 2, 3
    ),
    paired AS (
        SELECT g.*, {lags}
        FROM {groups} g
        WINDOW w AS (PARTITION BY g.instance_id, g.database_name ORDER BY g.period_start)
    ),
    measured AS (
        SELECT g.*, {size}, {data}, {log}
        FROM paired g
        WHERE g.period_start >= $3{late_filter}
        OFFSET 0
    ),
    {removal},
    {write}
    {result}",
        start_of_sample = period_start("$7", "s.collected_date"),
        groups = groups_with_previous_start(),
        lags = lags.join(",\n               "),
        size = narrowed("size", "size_count", "previous_size_count"),
        data = narrowed("data", "data_count", "previous_data_count"),
        log = narrowed("log", "log_count", "previous_log_count"),
        read_window = shape.read_window(),
        write = DATABASE_COLUMNS.write(mode, &expressions, None),
        removal = DATABASE_COLUMNS.removal(mode),
        result = DATABASE_COLUMNS.vanished_counts(mode),
    )
}

fn instance_grouped(shape: Shape) -> String {
    let mode = shape.mode;
    let late_filter = shape.late_filter("g");
    let mut expressions = owned(&[
        "instance_id",
        "$1",
        "period_start",
        "(period_start + $8::interval)::date - 1",
    ]);
    expressions.push(grouped_mean("total", "day_count"));
    // Σ totals / Σ database counts: the mean size per database.
    expressions.push(format!(
        "CASE WHEN count_sum > 0 THEN
             CASE WHEN total_sum_small IS NOT NULL AND count_sum_small IS NOT NULL
                  THEN (2 * total_sum_small + count_sum_small) / (2 * count_sum_small)
                  ELSE {} END END",
        divide_rounded("total_sum", "count_sum")
    ));
    expressions.extend(owned(&["total_max", "total_min", "day_count"]));
    expressions.push(grouped_mean("count", "day_count"));
    expressions.push(format!(
        "CASE WHEN count_sum_small IS NOT NULL
              THEN ((200 * count_sum_small + day_count) / (2 * day_count))::numeric * 0.01
              ELSE {} * 0.01 END",
        divide_rounded("count_sum * 100", "day_count::numeric")
    ));
    expressions.extend(owned(&["count_max", "count_min"]));
    expressions.extend(grouped_changes("total", "day_count", "previous_day_count"));
    expressions.extend(grouped_changes("count", "day_count", "previous_day_count"));
    expressions.push("now()".into());
    let lags: Vec<String> = ["day_count", "total_sum", "count_sum"]
        .iter()
        .map(|column| format!("{} AS previous_{column}", previous_group(column)))
        .collect();
    format!(
        "WITH grouped AS (
        SELECT s.instance_id, {start_of_sample} AS period_start,
               count(*) AS day_count,
               sum(s.total_size_mb) AS total_sum,
               max(s.total_size_mb) AS total_max, min(s.total_size_mb) AS total_min,
               sum(s.database_count) AS count_sum,
               max(s.database_count) AS count_max, min(s.database_count) AS count_min
        FROM instance_size_stats s
        WHERE {read_window}
        GROUP BY 1, 2
    ),
    paired AS (
        SELECT g.*, {lags}
        FROM {groups} g
        WINDOW w AS (PARTITION BY g.instance_id ORDER BY g.period_start)
    ),
    measured AS (
        SELECT g.*, {total}, {count}
        FROM paired g
        WHERE g.period_start >= $3{late_filter}
        OFFSET 0
    ),
    {removal},
    {write}
    {result}",
        start_of_sample = period_start("$7", "s.collected_date"),
        groups = groups_with_previous_start(),
        lags = lags.join(",\n               "),
        total = narrowed("total", "day_count", "previous_day_count"),
        count = narrowed("count", "day_count", "previous_day_count"),
        read_window = shape.read_window(),
        write = INSTANCE_COLUMNS.write(mode, &expressions, None),
        removal = INSTANCE_COLUMNS.removal(mode),
        result = INSTANCE_COLUMNS.vanished_counts(mode),
    )
}

#[cfg(test)]
mod tests;
