//! The daily forms: one sample per key and day, read in key order, no `GROUP BY`.

use super::*;

/// In the daily forms: the previous day's value of a column, when the previous sample of the
/// key is the previous day's, else NULL.
fn previous_day(column: &str) -> String {
    format!("CASE WHEN p.previous_date = p.period_start - 1 THEN p.lag_{column} END")
}

pub(super) fn database_daily(shape: Shape) -> String {
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
    // Daily periods have no year-over-year change.
    expressions.extend(owned(&["NULL"; 6]));
    expressions.extend(completeness_of("period_start", "1"));
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
        read_window = shape.read_window(super::DAILY_DATES),
        // In the primary key's order: the index then grows at its right edge instead of
        // taking 1.3 M inserts all over (1 s of a 7 s year of daily rows).
        write = DATABASE_COLUMNS.write(
            mode,
            &expressions,
            Some("period_start, instance_id, database_name")
        ),
        removal = DATABASE_COLUMNS.removal(shape, super::DAILY_PERIOD_STARTS),
        result = DATABASE_COLUMNS.outcome(mode),
    )
}

pub(super) fn instance_daily(shape: Shape) -> String {
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
    expressions.extend(owned(&["NULL"; 2]));
    expressions.extend(completeness_of("period_start", "1"));
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
        read_window = shape.read_window(super::DAILY_DATES),
        write = INSTANCE_COLUMNS.write(mode, &expressions, None),
        removal = INSTANCE_COLUMNS.removal(shape, super::DAILY_PERIOD_STARTS),
        result = INSTANCE_COLUMNS.outcome(mode),
    )
}
