//! Reading stored aggregates: back as domain records, filtered and paged for the API,
//! summarised, and as series for charts.

use chrono::NaiveDate;
use diesel::prelude::*;

use capstats_capacity_model::{
    AggregationLevel, DatabaseSizeAggregate, Decimal, InstanceId, InstanceSizeAggregate, Period,
    PeriodType,
};

use crate::StoreError;
use crate::schema::{database_size_aggregations, instance_size_aggregations};

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Conflict(format!("stored aggregate is inconsistent: {what}"))
}

fn decimal(value: Option<bigdecimal::BigDecimal>) -> Result<Option<Decimal>, StoreError> {
    value
        .map(|value| value.to_string().parse::<Decimal>().map_err(corrupt))
        .transpose()
}

fn period(period_type: &str, start: NaiveDate, end: NaiveDate) -> Result<Period, StoreError> {
    let period_type: PeriodType = period_type.parse().map_err(corrupt)?;
    let period = Period::starting_on(period_type, start).map_err(corrupt)?;
    if period.end() != end {
        return Err(corrupt(format!("{period} stored with end {end}")));
    }
    Ok(period)
}

#[derive(Queryable, Selectable, QueryableByName)]
#[diesel(table_name = database_size_aggregations)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub(crate) struct DatabaseAggregateRow {
    instance_id: i64,
    database_name: String,
    period_type: String,
    period_start: NaiveDate,
    period_end: NaiveDate,
    avg_size_mb: i64,
    max_size_mb: i64,
    min_size_mb: i64,
    data_count: i64,
    avg_data_size_mb: Option<i64>,
    max_data_size_mb: Option<i64>,
    min_data_size_mb: Option<i64>,
    avg_log_size_mb: Option<i64>,
    max_log_size_mb: Option<i64>,
    min_log_size_mb: Option<i64>,
    size_change_mb: Option<i64>,
    size_change_percent: Option<bigdecimal::BigDecimal>,
    data_size_change_mb: Option<i64>,
    data_size_change_percent: Option<bigdecimal::BigDecimal>,
    log_size_change_mb: Option<i64>,
    log_size_change_percent: Option<bigdecimal::BigDecimal>,
    growth_rate: Option<bigdecimal::BigDecimal>,
}

impl TryFrom<DatabaseAggregateRow> for DatabaseSizeAggregate {
    type Error = StoreError;

    fn try_from(row: DatabaseAggregateRow) -> Result<Self, StoreError> {
        Ok(DatabaseSizeAggregate {
            instance_id: InstanceId(row.instance_id),
            period: period(&row.period_type, row.period_start, row.period_end)?,
            database_name: row.database_name,
            avg_size_mb: row.avg_size_mb,
            max_size_mb: row.max_size_mb,
            min_size_mb: row.min_size_mb,
            data_count: row.data_count,
            avg_data_size_mb: row.avg_data_size_mb,
            max_data_size_mb: row.max_data_size_mb,
            min_data_size_mb: row.min_data_size_mb,
            avg_log_size_mb: row.avg_log_size_mb,
            max_log_size_mb: row.max_log_size_mb,
            min_log_size_mb: row.min_log_size_mb,
            size_change_mb: row.size_change_mb,
            size_change_percent: decimal(row.size_change_percent)?,
            data_size_change_mb: row.data_size_change_mb,
            data_size_change_percent: decimal(row.data_size_change_percent)?,
            log_size_change_mb: row.log_size_change_mb,
            log_size_change_percent: decimal(row.log_size_change_percent)?,
            growth_rate: decimal(row.growth_rate)?,
        })
    }
}

/// The database-level rows of `period_type` whose period starts in `[from, to]`, ordered by
/// period start, instance and database name.
pub fn database_aggregates_between(
    connection: &mut PgConnection,
    period_type: PeriodType,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<DatabaseSizeAggregate>, StoreError> {
    use database_size_aggregations as table;
    table::table
        .filter(table::period_type.eq(period_type.as_str()))
        .filter(table::period_start.between(from, to))
        .order((
            table::period_start,
            table::instance_id,
            table::database_name,
        ))
        .select(DatabaseAggregateRow::as_select())
        .load(connection)?
        .into_iter()
        .map(DatabaseSizeAggregate::try_from)
        .collect()
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = instance_size_aggregations)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub(crate) struct InstanceAggregateRow {
    instance_id: i64,
    period_type: String,
    period_start: NaiveDate,
    period_end: NaiveDate,
    total_size_mb: i64,
    avg_size_mb: Option<i64>,
    max_size_mb: i64,
    min_size_mb: i64,
    data_count: i64,
    database_count: i64,
    avg_database_count: bigdecimal::BigDecimal,
    max_database_count: i64,
    min_database_count: i64,
    total_size_change_mb: Option<i64>,
    total_size_change_percent: Option<bigdecimal::BigDecimal>,
    database_count_change: Option<i64>,
    database_count_change_percent: Option<bigdecimal::BigDecimal>,
    growth_rate: Option<bigdecimal::BigDecimal>,
    trend_direction: Option<String>,
}

impl TryFrom<InstanceAggregateRow> for InstanceSizeAggregate {
    type Error = StoreError;

    fn try_from(row: InstanceAggregateRow) -> Result<Self, StoreError> {
        Ok(InstanceSizeAggregate {
            instance_id: InstanceId(row.instance_id),
            period: period(&row.period_type, row.period_start, row.period_end)?,
            total_size_mb: row.total_size_mb,
            avg_size_mb: row.avg_size_mb,
            max_size_mb: row.max_size_mb,
            min_size_mb: row.min_size_mb,
            data_count: row.data_count,
            database_count: row.database_count,
            avg_database_count: decimal(Some(row.avg_database_count))?
                .expect("a present value stays present"),
            max_database_count: row.max_database_count,
            min_database_count: row.min_database_count,
            total_size_change_mb: row.total_size_change_mb,
            total_size_change_percent: decimal(row.total_size_change_percent)?,
            database_count_change: row.database_count_change,
            database_count_change_percent: decimal(row.database_count_change_percent)?,
            growth_rate: decimal(row.growth_rate)?,
            trend_direction: row
                .trend_direction
                .map(|text| text.parse().map_err(corrupt))
                .transpose()?,
        })
    }
}

/// The instance-level rows of `period_type` whose period starts in `[from, to]`, ordered by
/// period start and instance.
pub fn instance_aggregates_between(
    connection: &mut PgConnection,
    period_type: PeriodType,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<InstanceSizeAggregate>, StoreError> {
    use instance_size_aggregations as table;
    table::table
        .filter(table::period_type.eq(period_type.as_str()))
        .filter(table::period_start.between(from, to))
        .order((table::period_start, table::instance_id))
        .select(InstanceAggregateRow::as_select())
        .load(connection)?
        .into_iter()
        .map(InstanceSizeAggregate::try_from)
        .collect()
}

/// Which aggregates a read covers: one period type, periods starting in `[start, end]`, and
/// optionally some instances, engines or one database name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregateFilter {
    /// The period type.
    pub period_type: PeriodType,
    /// Earliest period start.
    pub start: NaiveDate,
    /// Latest period start.
    pub end: NaiveDate,
    /// Only these instances (all when empty).
    pub instance_ids: Vec<InstanceId>,
    /// Only instances of these engines (all when empty).
    pub db_types: Vec<capstats_capacity_model::DbType>,
    /// Only databases of this name (database level).
    pub database_name: Option<String>,
}

/// A page request: `page` from 1, at most `limit` items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// 1-based page number.
    pub page: i64,
    /// Items per page.
    pub limit: i64,
}

impl PageRequest {
    fn offset(self) -> i64 {
        (self.page.max(1) - 1) * self.limit
    }
}

/// Which instance a row belongs to, for display.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InstanceLabel {
    /// Its id.
    pub id: InstanceId,
    /// Its name.
    pub name: String,
    /// Its engine.
    pub db_type: capstats_capacity_model::DbType,
}

fn label(id: i64, name: String, db_type: &str) -> Result<InstanceLabel, StoreError> {
    Ok(InstanceLabel {
        id: InstanceId(id),
        name,
        db_type: db_type.parse().map_err(corrupt)?,
    })
}

/// `$query` (boxed, over `$table` — an aggregation table or a row-count table — possibly
/// joined to `instances`) narrowed to the rows matching `$filter` (its database name aside).
/// An engine filter is a semi-join on `instances`, so that a count reads `$table` alone.
macro_rules! filtered {
    // A query over `$table` alone: engines through a semi-join.
    ($query:expr, $table:ident, $filter:expr) => {{
        use crate::schema::instances;
        let filter: &AggregateFilter = $filter;
        let engines = engines_of(filter);
        let query = filtered!(@common $query, $table, filter);
        if engines.is_empty() {
            query
        } else {
            query.filter(
                $table::instance_id.eq_any(
                    instances::table
                        .filter(instances::db_type.eq_any(engines))
                        .select(instances::id),
                ),
            )
        }
    }};
    // A query over `$table` joined to `instances`: engines on the joined row.
    (joined $query:expr, $table:ident, $filter:expr) => {{
        use crate::schema::instances;
        let filter: &AggregateFilter = $filter;
        let engines = engines_of(filter);
        let query = filtered!(@common $query, $table, filter);
        if engines.is_empty() {
            query
        } else {
            query.filter(instances::db_type.eq_any(engines))
        }
    }};
    (@common $query:expr, $table:ident, $filter:expr) => {{
        let filter: &AggregateFilter = $filter;
        let query = $query
            .filter($table::period_type.eq(filter.period_type.as_str()))
            .filter($table::period_start.between(filter.start, filter.end));
        if filter.instance_ids.is_empty() {
            query
        } else {
            let ids: Vec<i64> = filter.instance_ids.iter().map(|id| id.0).collect();
            query.filter($table::instance_id.eq_any(ids))
        }
    }};
}

/// The engine names of a filter.
fn engines_of(filter: &AggregateFilter) -> Vec<&'static str> {
    filter
        .db_types
        .iter()
        .map(|db_type| db_type.as_str())
        .collect()
}

/// Pairs each row with its instance's label.
fn labelled<Row, Aggregate>(
    rows: Vec<(Row, String, String)>,
    instance_of: impl Fn(&Row) -> i64,
) -> Result<Vec<(Aggregate, InstanceLabel)>, StoreError>
where
    Aggregate: TryFrom<Row, Error = StoreError>,
{
    rows.into_iter()
        .map(|(row, name, db_type)| {
            let instance = label(instance_of(&row), name, &db_type)?;
            Ok((Aggregate::try_from(row)?, instance))
        })
        .collect()
}

/// Database-level rows matching `filter`, newest first — by period start, instance id and
/// database name, all descending: the primary key read backwards, so a page costs an index range
/// scan however many rows match — one page of them, and how many match in all.
pub fn list_database_aggregates(
    connection: &mut PgConnection,
    filter: &AggregateFilter,
    page: PageRequest,
) -> Result<(Vec<(DatabaseSizeAggregate, InstanceLabel)>, i64), StoreError> {
    use crate::schema::instances;
    use database_size_aggregations as table;
    let total = if let Some(name) = &filter.database_name {
        // A name narrows the rows to a few per instance and period: count them.
        filtered!(table::table.into_boxed(), table, filter)
            .filter(table::database_name.eq(name))
            .count()
            .get_result(connection)?
    } else if filter.instance_ids.is_empty() && filter.db_types.is_empty() {
        counted_rows(connection, AggregationLevel::Database, filter)?
    } else {
        use crate::schema::database_aggregate_counts as counts;
        let total: Option<bigdecimal::BigDecimal> =
            filtered!(counts::table.into_boxed(), counts, filter)
                .select(diesel::dsl::sum(counts::row_count))
                .get_result(connection)?;
        whole(total)?
    };
    let mut page_query = filtered!(
        joined table::table.inner_join(instances::table).into_boxed(),
        table,
        filter
    );
    if let Some(name) = &filter.database_name {
        page_query = page_query.filter(table::database_name.eq(name));
    }
    let rows: Vec<(DatabaseAggregateRow, String, String)> = page_query
        .order((
            table::period_start.desc(),
            table::instance_id.desc(),
            table::database_name.desc(),
        ))
        .limit(page.limit)
        .offset(page.offset())
        .select((
            DatabaseAggregateRow::as_select(),
            instances::name,
            instances::db_type,
        ))
        .load(connection)?;
    Ok((labelled(rows, |row| row.instance_id)?, total))
}

/// A `sum` of counts as a count.
fn whole(sum: Option<bigdecimal::BigDecimal>) -> Result<i64, StoreError> {
    sum.map(|sum| sum.to_string().parse::<i64>().map_err(corrupt))
        .transpose()
        .map(Option::unwrap_or_default)
}

/// How many rows of `level` have the period type of `filter` and start in its window, from
/// the per-period counts the aggregation maintains (one small row per period). Only for
/// filters without instances, engines or a database name.
fn counted_rows(
    connection: &mut PgConnection,
    level: AggregationLevel,
    filter: &AggregateFilter,
) -> Result<i64, StoreError> {
    use crate::schema::aggregate_period_counts as counts;
    let total: Option<bigdecimal::BigDecimal> = counts::table
        .filter(counts::level.eq(level.as_str()))
        .filter(counts::period_type.eq(filter.period_type.as_str()))
        .filter(counts::period_start.between(filter.start, filter.end))
        .select(diesel::dsl::sum(counts::row_count))
        .get_result(connection)?;
    whole(total)
}

/// Instance-level rows matching `filter`, newest first — by period start and instance id,
/// both descending (the primary key read backwards) — one page of them, and how many match in
/// all.
pub fn list_instance_aggregates(
    connection: &mut PgConnection,
    filter: &AggregateFilter,
    page: PageRequest,
) -> Result<(Vec<(InstanceSizeAggregate, InstanceLabel)>, i64), StoreError> {
    use crate::schema::instances;
    use instance_size_aggregations as table;
    let total = if filter.instance_ids.is_empty() && filter.db_types.is_empty() {
        counted_rows(connection, AggregationLevel::Instance, filter)?
    } else {
        filtered!(table::table.into_boxed(), table, filter)
            .count()
            .get_result(connection)?
    };
    let rows: Vec<(InstanceAggregateRow, String, String)> = filtered!(
        joined table::table.inner_join(instances::table).into_boxed(),
        table,
        filter
    )
    .order((table::period_start.desc(), table::instance_id.desc()))
    .limit(page.limit)
    .offset(page.offset())
    .select((
        InstanceAggregateRow::as_select(),
        instances::name,
        instances::db_type,
    ))
    .load(connection)?;
    Ok((labelled(rows, |row| row.instance_id)?, total))
}

/// The `WHERE` clause shared by the SQL-text reads of a level's table (aliased `aggregate`):
/// `$1` period type, `$2`..`$3` period starts, `$4` instance ids, `$5` engines, `$6` database
/// name (ignored at instance level, but always bound so the parameter list stays fixed); `$7`,
/// the starts of the window's periods, is bound beside them for [`latest_per_key`].
fn matching_condition(level: AggregationLevel) -> String {
    let name_condition = match level {
        AggregationLevel::Database => "($6::text IS NULL OR aggregate.database_name = $6)",
        AggregationLevel::Instance => "($6::text IS NULL OR true)",
    };
    format!(
        "aggregate.period_type = $1 AND aggregate.period_start BETWEEN $2 AND $3
           AND (cardinality($4::bigint[]) = 0 OR aggregate.instance_id = ANY($4))
           AND (cardinality($5::text[]) = 0 OR aggregate.instance_id IN
                (SELECT id FROM instances WHERE db_type = ANY($5)))
           AND {name_condition}"
    )
}

/// Binds the parameters of [`matching_condition`] (and `$7`) to a SQL-text query.
macro_rules! bind_matching {
    ($query:expr, $filter:expr) => {{
        use diesel::sql_types::{Array, BigInt, Date, Nullable, Text};
        let filter: &AggregateFilter = $filter;
        let ids: Vec<i64> = filter.instance_ids.iter().map(|id| id.0).collect();
        let engines = engines_of(filter);
        let period_starts: Vec<chrono::NaiveDate> =
            capstats_capacity_model::Period::starting_between(
                filter.period_type,
                filter.start,
                filter.end,
            )
            .map(|period| period.start())
            .collect();
        $query
            .bind::<Text, _>(filter.period_type.as_str())
            .bind::<Date, _>(filter.start)
            .bind::<Date, _>(filter.end)
            .bind::<Array<BigInt>, _>(ids)
            .bind::<Array<Text>, _>(engines)
            .bind::<Nullable<Text>, _>(filter.database_name.clone())
            .bind::<Array<Date>, _>(period_starts)
    }};
}

/// The table of a level and the SQL expression of a row's database name in it (an empty name
/// at instance level, which keeps line keys hashable and comparable).
fn level_table(level: AggregationLevel) -> (&'static str, &'static str) {
    match level {
        AggregationLevel::Database => ("database_size_aggregations", "aggregate.database_name"),
        AggregationLevel::Instance => ("instance_size_aggregations", "''"),
    }
}

/// A query of every key of `level` that may have aggregates in the window of
/// [`matching_condition`]'s parameters, as `(instance_id, database_name)`: the inventory's
/// databases sampled on or after the window's first day (it records every database a sample
/// names and forgets none, and a period's row needs a sample in it), or every instance.
fn candidate_keys(level: AggregationLevel) -> &'static str {
    match level {
        AggregationLevel::Database => {
            "SELECT known.instance_id, known.database_name
             FROM instance_databases known
             WHERE known.last_seen_date >= $2
               AND (cardinality($4::bigint[]) = 0 OR known.instance_id = ANY($4))
               AND (cardinality($5::text[]) = 0 OR known.instance_id IN
                    (SELECT id FROM instances WHERE db_type = ANY($5)))
               AND ($6::text IS NULL OR known.database_name = $6)"
        }
        AggregationLevel::Instance => {
            "SELECT known.id AS instance_id, '' AS database_name
             FROM instances known
             WHERE (cardinality($4::bigint[]) = 0 OR known.id = ANY($4))
               AND (cardinality($5::text[]) = 0 OR known.db_type = ANY($5))"
        }
    }
}

/// Common table expressions ending in `latest (instance_id, database_name, <columns>)`: for
/// each key (instance and database) matching [`matching_condition`], its row in its latest
/// period in the window — or, with `valued`, its latest row where that column is not null
/// (some row of the key when none is). `columns` are `aggregate.`-qualified columns to carry.
///
/// No step reads every row of the window. Most keys have a row in the window's last period,
/// so those rows come from an index range scan of that one period (`present`). The other keys
/// come from the inventory ([`candidate_keys`]) and each looks its rows up in the primary key,
/// one descent per period of the window (`= ANY($7)`; the `BETWEEN` keeps the partitions
/// pruned) (`older`): a handful of keys where a `DISTINCT ON` over the window read all its
/// rows (30 → 7 ms for a daily window of 2,300 databases). The `NOT IN` is planned as a
/// hashed subplan: run it with a `work_mem` that holds the present keys.
fn latest_per_key(level: AggregationLevel, columns: &str, valued: Option<&str>) -> String {
    let (table, database) = level_table(level);
    let condition = matching_condition(level);
    let keys = candidate_keys(level);
    let (present_filter, null_last) = match valued {
        Some(column) => (
            format!("AND aggregate.{column} IS NOT NULL"),
            format!("aggregate.{column} IS NULL, "),
        ),
        None => (String::new(), String::new()),
    };
    let key_match = match level {
        AggregationLevel::Database => "AND aggregate.database_name = absent.database_name",
        AggregationLevel::Instance => "",
    };
    format!(
        "last_period AS (
             SELECT max(aggregate.period_start) AS period_start
             FROM {table} aggregate
             WHERE {condition}),
         present AS (
             SELECT aggregate.instance_id, {database} AS database_name, {columns}
             FROM {table} aggregate
             WHERE {condition}
               AND aggregate.period_start = (SELECT period_start FROM last_period)
               {present_filter}),
         absent AS (
             SELECT * FROM ({keys}) candidate
             WHERE (candidate.instance_id, candidate.database_name) NOT IN
                   (SELECT instance_id, database_name FROM present)),
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
fn with_key_memory<T>(
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

mod series;
mod totals;

pub use series::{MetricColumn, RankedSeries, SeriesPoint, series};
pub use totals::{DatabaseTotals, InstanceTotals, database_totals, instance_totals};
