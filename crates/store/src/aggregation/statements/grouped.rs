//! The grouped forms of the longer period types: samples grouped by key and period, each
//! group paired with the previous period's and with the same period's a year earlier.

use super::*;

/// What a grouped statement groups by key and period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    /// The samples: for weekly periods, which do not consist of whole months.
    Samples,
    /// The month sums kept with the samples, grouped: for quarterly and yearly periods, whose
    /// read windows (`$2..$5`, `$11..$12`) start and end on month boundaries, so a month lies
    /// in a window exactly when its first day does. Counts, sums, maxima and minima combine
    /// exactly; `sum` of the `bigint` counts is `numeric` and is cast back, so that the means'
    /// divisions stay the integer ones the samples' `count(*)` gives.
    MonthSums,
    /// The month sums taken as they are, for monthly periods: each row is a key's month, so
    /// grouping them changed nothing and cost a hash aggregate over every row read, about a
    /// third of a chunk's monthly statement (docs/performance.md).
    Months,
}

impl Source {
    /// The `grouped` step of the database-level statement: per key and period, the count,
    /// sum, maximum and minimum of each size series.
    fn database_groups(self, shape: Shape) -> String {
        match self {
            Source::Samples => format!(
                "SELECT s.instance_id, s.database_name, {start} AS period_start,
               count(*) AS size_count, sum(s.size_mb) AS size_sum,
               max(s.size_mb) AS size_max, min(s.size_mb) AS size_min,
               count(s.data_size_mb) AS data_count, sum(s.data_size_mb) AS data_sum,
               max(s.data_size_mb) AS data_max, min(s.data_size_mb) AS data_min,
               count(s.log_size_mb) AS log_count, sum(s.log_size_mb) AS log_sum,
               max(s.log_size_mb) AS log_max, min(s.log_size_mb) AS log_min
        FROM database_size_stats s
        WHERE {read_window}
        GROUP BY 1, 2, 3",
                start = period_start("$8", "s.collected_date"),
                read_window = shape.read_window(super::GROUPED_DATES),
            ),
            Source::MonthSums => format!(
                "SELECT s.instance_id, s.database_name, {start} AS period_start,
               sum(s.size_count)::bigint AS size_count, sum(s.size_sum) AS size_sum,
               max(s.size_max) AS size_max, min(s.size_min) AS size_min,
               sum(s.data_count)::bigint AS data_count, sum(s.data_sum) AS data_sum,
               max(s.data_max) AS data_max, min(s.data_min) AS data_min,
               sum(s.log_count)::bigint AS log_count, sum(s.log_sum) AS log_sum,
               max(s.log_max) AS log_max, min(s.log_min) AS log_min
        FROM database_month_sums s
        WHERE {read_window}
        GROUP BY 1, 2, 3",
                start = period_start("$8", "s.month_start"),
                read_window = shape.read_window(super::GROUPED_MONTHS),
            ),
            Source::Months => format!(
                "SELECT s.instance_id, s.database_name, s.month_start AS period_start,
               s.size_count, s.size_sum, s.size_max, s.size_min,
               s.data_count, s.data_sum, s.data_max, s.data_min,
               s.log_count, s.log_sum, s.log_max, s.log_min
        FROM database_month_sums s
        WHERE {read_window}",
                read_window = shape.read_window(super::GROUPED_MONTHS),
            ),
        }
    }

    /// The `grouped` step of the instance-level statement: per instance and period, the
    /// number of days and the sum, maximum and minimum of the totals and database counts.
    fn instance_groups(self, shape: Shape) -> String {
        match self {
            Source::Samples => format!(
                "SELECT s.instance_id, {start} AS period_start,
               count(*) AS day_count,
               sum(s.total_size_mb) AS total_sum,
               max(s.total_size_mb) AS total_max, min(s.total_size_mb) AS total_min,
               sum(s.database_count) AS count_sum,
               max(s.database_count) AS count_max, min(s.database_count) AS count_min
        FROM instance_size_stats s
        WHERE {read_window}
        GROUP BY 1, 2",
                start = period_start("$8", "s.collected_date"),
                read_window = shape.read_window(super::GROUPED_DATES),
            ),
            Source::MonthSums => format!(
                "SELECT s.instance_id, {start} AS period_start,
               sum(s.day_count)::bigint AS day_count,
               sum(s.total_sum) AS total_sum,
               max(s.total_max) AS total_max, min(s.total_min) AS total_min,
               sum(s.count_sum) AS count_sum,
               max(s.count_max) AS count_max, min(s.count_min) AS count_min
        FROM instance_month_sums s
        WHERE {read_window}
        GROUP BY 1, 2",
                start = period_start("$8", "s.month_start"),
                read_window = shape.read_window(super::GROUPED_MONTHS),
            ),
            Source::Months => format!(
                "SELECT s.instance_id, s.month_start AS period_start, s.day_count,
               s.total_sum, s.total_max, s.total_min,
               s.count_sum, s.count_max, s.count_min
        FROM instance_month_sums s
        WHERE {read_window}",
                read_window = shape.read_window(super::GROUPED_MONTHS),
            ),
        }
    }
}

/// The last day of a group's period.
const PERIOD_END: &str = "(period_start + $9::interval)::date - 1";

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
        previous = period_start("$8", "g.period_start - 1")
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

/// Columns of the `narrowed` step for one series: its sum as `bigint` when small (else NULL),
/// and [`narrowed_other`] against the previous period.
fn narrowed(series: &str, count: &str, previous_count: &str) -> String {
    format!(
        "CASE WHEN g.{series}_sum < {SMALL_SUM} THEN g.{series}_sum::bigint END
             AS {series}_sum_small,
         {}",
        narrowed_other(series, count, "previous", previous_count)
    )
}

/// The name of the change numerator of `series` against `other` (`previous` or `yoy`).
fn delta_small(series: &str, other: &str) -> String {
    match other {
        "previous" => format!("{series}_delta_small"),
        _ => format!("{series}_{other}_delta_small"),
    }
}

/// Columns of the `narrowed` step comparing one series with the period `other` names
/// (`previous`: the period before; `yoy`: the one a year earlier): that period's sum as
/// `bigint` when small (else NULL), and the change numerator in `bigint` when both sums are
/// small.
fn narrowed_other(series: &str, count: &str, other: &str, other_count: &str) -> String {
    format!(
        "CASE WHEN g.{other}_{series}_sum < {SMALL_SUM} THEN g.{other}_{series}_sum::bigint END
             AS {other}_{series}_sum_small,
         CASE WHEN g.{series}_sum < {SMALL_SUM} AND g.{other}_{series}_sum < {SMALL_SUM}
              THEN g.{series}_sum::bigint * g.{other_count}
                   - g.{other}_{series}_sum::bigint * g.{count} END
             AS {delta}",
        delta = delta_small(series, other)
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

/// `(change in whole units, change in percent)` of a series against the period `other` names
/// (`previous` or `yoy`, see [`narrowed_other`]): `mean − other mean = (Σ·n′ − Σ′·n) / (n·n′)`
/// and the same numerator over `Σ′·n`, times 100; NULL without that period (the percentage
/// also when its sum is zero).
fn grouped_changes(series: &str, count: &str, other: &str, other_count: &str) -> [String; 2] {
    let numeric_delta = format!("({series}_sum * {other_count} - {other}_{series}_sum * {count})");
    let delta_small = delta_small(series, other);
    [
        format!(
            "CASE WHEN {count} > 0 AND {other_count} > 0 THEN
                 CASE WHEN {delta_small} IS NOT NULL THEN {small}
                      ELSE {numeric} END END",
            small = bigint_rounded(&delta_small, &format!("{count} * {other_count}")),
            numeric = divide_rounded(
                &numeric_delta,
                &format!("({count} * {other_count})::numeric")
            ),
        ),
        format!(
            "CASE WHEN {count} > 0 AND {other_count} > 0 AND {other}_{series}_sum > 0 THEN
                 CASE WHEN {delta_small} IS NOT NULL THEN {small}::numeric * 0.01
                      ELSE {numeric} * 0.01 END END",
            small = bigint_rounded(
                &format!("{delta_small} * 10000"),
                &format!("{other}_{series}_sum_small * {count}")
            ),
            numeric = divide_rounded(
                &format!("{numeric_delta} * 10000"),
                &format!("{other}_{series}_sum * {count}")
            ),
        ),
    ]
}

/// For the grouped forms: the value of a grouped column in the key's group of the same period
/// a year earlier (`$10` before), else NULL. A `RANGE` frame of exactly that offset shares the
/// sort of the window that pairs the previous period, where a join of the groups with
/// themselves would materialise them and sort them again.
fn year_earlier_group(column: &str) -> String {
    format!("first_value(g.{column}) OVER y AS yoy_{column}")
}

pub(super) fn database_grouped(shape: Shape, source: Source) -> String {
    let mode = shape.mode;
    let late_filter = shape.late_filter("g");
    let mut expressions = owned(&[
        "instance_id",
        "database_name",
        "$1",
        "period_start",
        PERIOD_END,
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
            "previous",
            &format!("previous_{series}_count"),
        ));
    }
    expressions.push("now()".into());
    for series in ["size", "data", "log"] {
        expressions.extend(grouped_changes(
            series,
            &format!("{series}_count"),
            "yoy",
            &format!("yoy_{series}_count"),
        ));
    }
    expressions.extend(completeness_of(PERIOD_END, "size_count"));
    let paired_columns = [
        "size_count",
        "size_sum",
        "data_count",
        "data_sum",
        "log_count",
        "log_sum",
    ];
    let lags: Vec<String> = paired_columns
        .iter()
        .map(|column| format!("{} AS previous_{column}", previous_group(column)))
        .chain(
            paired_columns
                .iter()
                .map(|column| year_earlier_group(column)),
        )
        .collect();
    format!(
        "WITH grouped AS (
        {grouped}
    ),
    paired AS (
        SELECT g.*, {lags}
        FROM {groups} g
        WINDOW w AS (PARTITION BY g.instance_id, g.database_name ORDER BY g.period_start),
               y AS (w RANGE BETWEEN $10::interval PRECEDING AND $10::interval PRECEDING)
    ),
    measured AS (
        SELECT g.*, {size}, {data}, {log},
               {yoy_size}, {yoy_data}, {yoy_log}
        FROM paired g
        WHERE g.period_start >= $3{late_filter}
        OFFSET 0
    ),
    {removal},
    {write}
    {result}",
        grouped = source.database_groups(shape),
        groups = groups_with_previous_start(),
        lags = lags.join(",\n               "),
        size = narrowed("size", "size_count", "previous_size_count"),
        data = narrowed("data", "data_count", "previous_data_count"),
        log = narrowed("log", "log_count", "previous_log_count"),
        yoy_size = narrowed_other("size", "size_count", "yoy", "yoy_size_count"),
        yoy_data = narrowed_other("data", "data_count", "yoy", "yoy_data_count"),
        yoy_log = narrowed_other("log", "log_count", "yoy", "yoy_log_count"),
        write = DATABASE_COLUMNS.write(mode, &expressions, None),
        removal = DATABASE_COLUMNS.removal(shape, super::GROUPED_PERIOD_STARTS),
        result = DATABASE_COLUMNS.outcome(mode),
    )
}

pub(super) fn instance_grouped(shape: Shape, source: Source) -> String {
    let mode = shape.mode;
    let late_filter = shape.late_filter("g");
    let mut expressions = owned(&["instance_id", "$1", "period_start", PERIOD_END]);
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
    expressions.extend(grouped_changes(
        "total",
        "day_count",
        "previous",
        "previous_day_count",
    ));
    expressions.extend(grouped_changes(
        "count",
        "day_count",
        "previous",
        "previous_day_count",
    ));
    expressions.push("now()".into());
    expressions.extend(grouped_changes(
        "total",
        "day_count",
        "yoy",
        "yoy_day_count",
    ));
    expressions.extend(completeness_of(PERIOD_END, "day_count"));
    let paired_columns = ["day_count", "total_sum", "count_sum"];
    let lags: Vec<String> = paired_columns
        .iter()
        .map(|column| format!("{} AS previous_{column}", previous_group(column)))
        .chain(
            paired_columns
                .iter()
                .map(|column| year_earlier_group(column)),
        )
        .collect();
    format!(
        "WITH grouped AS (
        {grouped}
    ),
    paired AS (
        SELECT g.*, {lags}
        FROM {groups} g
        WINDOW w AS (PARTITION BY g.instance_id ORDER BY g.period_start),
               y AS (w RANGE BETWEEN $10::interval PRECEDING AND $10::interval PRECEDING)
    ),
    measured AS (
        SELECT g.*, {total}, {count}, {yoy_total}
        FROM paired g
        WHERE g.period_start >= $3{late_filter}
        OFFSET 0
    ),
    {removal},
    {write}
    {result}",
        grouped = source.instance_groups(shape),
        groups = groups_with_previous_start(),
        lags = lags.join(",\n               "),
        total = narrowed("total", "day_count", "previous_day_count"),
        count = narrowed("count", "day_count", "previous_day_count"),
        yoy_total = narrowed_other("total", "day_count", "yoy", "yoy_day_count"),
        write = INSTANCE_COLUMNS.write(mode, &expressions, None),
        removal = INSTANCE_COLUMNS.removal(shape, super::GROUPED_PERIOD_STARTS),
        result = INSTANCE_COLUMNS.outcome(mode),
    )
}
