//! Summary cards: the latest (and earliest) totals per instance and per database.

use chrono::NaiveDate;
use diesel::prelude::*;

use capstats_capacity_model::AggregationLevel;

use super::*;
use crate::StoreError;

/// The instances summary: for each instance, its latest and earliest daily total in the window.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InstanceTotals {
    /// The instance.
    pub instance: InstanceLabel,
    /// Its latest sampled date in the window.
    pub latest_date: NaiveDate,
    /// Its total size on that date.
    pub latest_total_size_mb: i64,
    /// Its database count on that date.
    pub latest_database_count: i64,
    /// Its earliest sampled date in the window.
    pub earliest_date: NaiveDate,
    /// Its total size on that date.
    pub earliest_total_size_mb: i64,
}

#[derive(QueryableByName)]
struct TotalsRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    instance_id: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    db_type: String,
    #[diesel(sql_type = diesel::sql_types::Date)]
    latest_date: NaiveDate,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    latest_total: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    latest_count: i64,
    #[diesel(sql_type = diesel::sql_types::Date)]
    earliest_date: NaiveDate,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    earliest_total: i64,
}

/// Each matching instance's latest and earliest daily total among the samples of
/// `[filter.start, filter.end]` (the period type of `filter` is not used).
pub fn instance_totals(
    connection: &mut PgConnection,
    filter: &AggregateFilter,
) -> Result<Vec<InstanceTotals>, StoreError> {
    // The window is of sample dates here ($2..$3); the period type ($1) is not used.
    let keys = filter::key_condition("instance_id", None);
    let query = diesel::sql_query(format!(
        "SELECT latest.instance_id, instance.name, instance.db_type,
                latest.collected_date AS latest_date, latest.total_size_mb AS latest_total,
                latest.database_count AS latest_count,
                earliest.collected_date AS earliest_date, earliest.total_size_mb AS earliest_total
         FROM (SELECT DISTINCT ON (instance_id) instance_id, collected_date, total_size_mb,
                      database_count
               FROM instance_size_stats
               WHERE collected_date BETWEEN $2 AND $3 AND {keys}
               ORDER BY instance_id, collected_date DESC) latest
         JOIN (SELECT DISTINCT ON (instance_id) instance_id, collected_date, total_size_mb
               FROM instance_size_stats
               WHERE collected_date BETWEEN $2 AND $3 AND {keys}
               ORDER BY instance_id, collected_date) earliest USING (instance_id)
         JOIN instances instance ON instance.id = latest.instance_id
         ORDER BY latest.instance_id"
    ));
    let rows: Vec<TotalsRow> = bind_matching!(query, filter).load(connection)?;
    rows.into_iter()
        .map(|row| {
            Ok(InstanceTotals {
                instance: label(row.instance_id, row.name, &row.db_type)?,
                latest_date: row.latest_date,
                latest_total_size_mb: row.latest_total,
                latest_database_count: row.latest_count,
                earliest_date: row.earliest_date,
                earliest_total_size_mb: row.earliest_total,
            })
        })
        .collect()
}

/// The databases summary: figures over each matching database's latest aggregate in the
/// window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseTotals {
    /// Databases with an aggregate in the window.
    pub database_count: i64,
    /// Instances they belong to.
    pub instance_count: i64,
    /// Σ mean sizes of their latest periods, MB.
    pub total_size_mb: i128,
    /// Σ size changes of those periods, MB (a period without a previous one counts 0).
    pub size_change_mb: i128,
    /// Σ sizes before those changes (mean size − change), over periods with a change, MB.
    pub size_before_mb: i128,
    /// The largest `max_size_mb` of those periods (none without a database).
    pub max_size_mb: Option<i64>,
    /// The largest database by latest mean size (ties: lowest instance id, then name).
    pub largest: Option<(InstanceLabel, String, i64)>,
    /// Whether one of those periods is partial (stored with its row).
    pub includes_partial_periods: bool,
}

#[derive(QueryableByName)]
struct DatabaseTotalsRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    database_count: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    instance_count: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    total_size: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    size_change: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    size_before: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    max_size: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    includes_partial: bool,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    largest_instance_id: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    largest_instance_name: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    largest_db_type: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    largest_database_name: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    largest_size: Option<i64>,
}

/// The databases summary of `filter`, computed in SQL over each matching database's latest
/// aggregate in the window (sums in exact `numeric`).
pub fn database_totals(
    connection: &mut PgConnection,
    filter: &AggregateFilter,
) -> Result<DatabaseTotals, StoreError> {
    let query = |source| {
        let latest = latest_per_key(
            AggregationLevel::Database,
            source,
            "aggregate.avg_size_mb, aggregate.max_size_mb, aggregate.size_change_mb,
             aggregate.is_partial",
            None,
        );
        diesel::sql_query(format!(
            "WITH {latest}
         SELECT totals.*, largest.instance_id AS largest_instance_id,
                instance.name AS largest_instance_name, instance.db_type AS largest_db_type,
                largest.database_name AS largest_database_name,
                largest.avg_size_mb AS largest_size
         FROM (SELECT count(*) AS database_count,
                      count(DISTINCT instance_id) AS instance_count,
                      coalesce(sum(avg_size_mb), 0)::text AS total_size,
                      max(max_size_mb) AS max_size,
                      coalesce(bool_or(is_partial), false) AS includes_partial,
                      coalesce(sum(size_change_mb), 0)::text AS size_change,
                      -- Two sums of bigints (accumulated in 128 bits) rather than one of
                      -- numeric differences: the same value, no numeric arithmetic per row.
                      coalesce(sum(avg_size_mb) FILTER (WHERE size_change_mb IS NOT NULL)
                               - sum(size_change_mb), 0)::text AS size_before
               FROM latest) totals
         LEFT JOIN (SELECT * FROM latest
                    ORDER BY avg_size_mb DESC, instance_id, database_name
                    LIMIT 1) largest ON true
         LEFT JOIN instances instance ON instance.id = largest.instance_id"
        ))
    };
    let row: DatabaseTotalsRow = with_key_memory(connection, |connection| {
        let source = LatestSource::for_filter(connection, AggregationLevel::Database, filter)?;
        Ok(bind_matching!(query(source), filter).get_result(connection)?)
    })?;
    let sum = |text: String| text.parse::<i128>().map_err(corrupt);
    let largest = match (
        row.largest_instance_id,
        row.largest_instance_name,
        row.largest_db_type,
        row.largest_database_name,
        row.largest_size,
    ) {
        (Some(id), Some(name), Some(db_type), Some(database), Some(size)) => {
            Some((label(id, name, &db_type)?, database, size))
        }
        _ => None,
    };
    Ok(DatabaseTotals {
        database_count: row.database_count,
        instance_count: row.instance_count,
        total_size_mb: sum(row.total_size)?,
        size_change_mb: sum(row.size_change)?,
        size_before_mb: sum(row.size_before)?,
        max_size_mb: row.max_size,
        largest,
        includes_partial_periods: row.includes_partial,
    })
}
