//! Each key's latest row in a window of aggregates, as SQL the summaries and series build on,
//! and the memory its key set needs.

use diesel::prelude::*;

use capstats_capacity_model::AggregationLevel;

use super::filter::{key_condition, matching_condition};
use super::{AggregateFilter, level_table};
use crate::StoreError;
use crate::level_tables::LevelTables;

/// A query of every key of `level` that may have aggregates in the window of
/// [`matching_condition`]'s parameters, as `(instance_id, database_name)`: the inventory's
/// databases sampled on or after the window's first day (it records every database a sample
/// names and forgets none, and a period's row needs a sample in it), or every instance.
fn candidate_keys(level: AggregationLevel) -> String {
    match level {
        AggregationLevel::Database => format!(
            "SELECT known.instance_id, known.database_name
             FROM instance_databases known
             WHERE known.last_seen_date >= $2 AND {}",
            key_condition("known.instance_id", Some("known.database_name"))
        ),
        AggregationLevel::Instance => format!(
            "SELECT known.id AS instance_id, '' AS database_name
             FROM instances known
             WHERE {}",
            key_condition("known.id", None)
        ),
    }
}

/// Where [`latest_per_key`] finds each key's latest row of a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LatestSource {
    /// The level's latest table (`aggregation::latest`): every stored period of the type starts
    /// on or before the window's end, so a key's latest row in the window is its latest row.
    LatestTable,
    /// The aggregation table, for a window that ends before the newest stored period.
    Window,
}

impl LatestSource {
    /// The source for `filter` at `level`, read in the caller's transaction.
    pub(super) fn for_filter(
        connection: &mut PgConnection,
        level: AggregationLevel,
        filter: &AggregateFilter,
    ) -> Result<Self, StoreError> {
        let reaches: crate::sql::Exists = diesel::sql_query(
            "SELECT coalesce(max(counted.period_start) <= $3, true) AS found
             FROM aggregate_period_counts counted
             WHERE counted.level = $1 AND counted.period_type = $2",
        )
        .bind::<diesel::sql_types::Text, _>(level.as_str())
        .bind::<diesel::sql_types::Text, _>(filter.period_type.as_str())
        .bind::<diesel::sql_types::Date, _>(filter.end)
        .get_result(connection)?;
        Ok(if reaches.found {
            Self::LatestTable
        } else {
            Self::Window
        })
    }
}

/// Common table expressions ending in `latest (instance_id, database_name, <columns>)`: for
/// each key (instance and database) matching [`matching_condition`], its row in its latest
/// period in the window — or, with `valued`, its latest row where that column is not null
/// (some row of the key when none is). `columns` are `aggregate.`-qualified columns to carry.
///
/// No step reads every row of the window. From the latest table the keys' rows are one index
/// range of a small table. From the window, most keys have a row in its last period, so those
/// rows come from an index range scan of that one period (`present`); the other keys come from
/// the inventory ([`candidate_keys`]). Either way a key without a (valued) row there looks its
/// rows up in the primary key, one descent per period of the window (`= ANY($7)`; the
/// `BETWEEN` keeps the partitions pruned) (`older`): a handful of keys where a `DISTINCT ON`
/// over the window read all its rows (30 → 7 ms for a daily window of 2,300 databases). The
/// `NOT IN` is planned as a hashed subplan: run it with a `work_mem` that holds the present
/// keys.
pub(super) fn latest_per_key(
    level: AggregationLevel,
    source: LatestSource,
    columns: &str,
    valued: Option<&str>,
) -> String {
    let (table, database) = level_table(level);
    let condition = matching_condition(level);
    let (present_filter, null_last) = match valued {
        Some(column) => (
            format!("AND aggregate.{column} IS NOT NULL"),
            format!("aggregate.{column} IS NULL, "),
        ),
        None => (String::new(), String::new()),
    };
    let key_match = LevelTables::of(level).same_database("aggregate", "absent");
    let (present, absent) = match source {
        LatestSource::LatestTable => {
            let latest = LevelTables::of(level).latest;
            let absent = match valued {
                None => {
                    return format!(
                        "latest AS (
                         SELECT aggregate.instance_id, {database} AS database_name, {columns}
                         FROM {latest} aggregate
                         WHERE {condition})"
                    );
                }
                Some(column) => format!(
                    "SELECT aggregate.instance_id, {database} AS database_name
                     FROM {latest} aggregate
                     WHERE {condition} AND aggregate.{column} IS NULL"
                ),
            };
            let present = format!(
                "present AS (
                     SELECT aggregate.instance_id, {database} AS database_name, {columns}
                     FROM {latest} aggregate
                     WHERE {condition} {present_filter})"
            );
            (present, absent)
        }
        LatestSource::Window => {
            let present = format!(
                "last_period AS (
                     SELECT max(aggregate.period_start) AS period_start
                     FROM {table} aggregate
                     WHERE {condition}),
                 present AS (
                     SELECT aggregate.instance_id, {database} AS database_name, {columns}
                     FROM {table} aggregate
                     WHERE {condition}
                       AND aggregate.period_start = (SELECT period_start FROM last_period)
                       {present_filter})"
            );
            let absent = format!(
                "SELECT * FROM ({keys}) candidate
                 WHERE (candidate.instance_id, candidate.database_name) NOT IN
                       (SELECT instance_id, database_name FROM present)",
                keys = candidate_keys(level)
            );
            (present, absent)
        }
    };
    format!(
        "{present},
         absent AS ({absent}),
         older AS (
             SELECT found.*
             FROM absent
             CROSS JOIN LATERAL (
                 SELECT aggregate.instance_id, {database} AS database_name, {columns}
                 FROM {table} aggregate
                 WHERE aggregate.period_type = $1 AND aggregate.period_start BETWEEN $2 AND $3
                   AND aggregate.period_start = ANY($7::date[])
                   AND aggregate.instance_id = absent.instance_id {key_match}
                 ORDER BY {null_last} aggregate.period_start DESC
                 LIMIT 1) found),
         latest AS (SELECT * FROM present UNION ALL SELECT * FROM older)"
    )
}

/// Runs `read` in a transaction with a `work_mem` large enough for [`latest_per_key`]'s hashed
/// key set (about 100 bytes per key: 64 MB hold some 600,000 databases).
pub(super) fn with_key_memory<T>(
    connection: &mut PgConnection,
    read: impl FnOnce(&mut PgConnection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    connection.transaction(|connection| {
        diesel::connection::SimpleConnection::batch_execute(
            connection,
            "SET LOCAL work_mem = '64MB'",
        )?;
        read(connection)
    })
}
