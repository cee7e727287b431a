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

/// One value of a series: a key's metric in one period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesPoint {
    /// The instance.
    pub instance: InstanceLabel,
    /// The database, for database-level series.
    pub database_name: Option<String>,
    /// The period start.
    pub period_start: NaiveDate,
    /// The value; `None` when the metric is null for the period (no previous period).
    pub value: Option<Decimal>,
}

#[derive(QueryableByName)]
struct SeriesRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    total_lines: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    instance_id: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    instance_name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    db_type: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    database_name: String,
    #[diesel(sql_type = diesel::sql_types::Date)]
    period_start: NaiveDate,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    value: Option<String>,
}

/// The `WHERE` clause shared by the SQL-text reads of a level's table (aliased `aggregate`):
/// `$1` period type, `$2`..`$3` period starts, `$4` instance ids, `$5` engines, `$6` database
/// name (ignored at instance level, but always bound so the parameter list stays fixed).
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

/// Binds the parameters of [`matching_condition`] to a SQL-text query.
macro_rules! bind_matching {
    ($query:expr, $filter:expr) => {{
        use diesel::sql_types::{Array, BigInt, Date, Nullable, Text};
        let filter: &AggregateFilter = $filter;
        let ids: Vec<i64> = filter.instance_ids.iter().map(|id| id.0).collect();
        let engines = engines_of(filter);
        $query
            .bind::<Text, _>(filter.period_type.as_str())
            .bind::<Date, _>(filter.start)
            .bind::<Date, _>(filter.end)
            .bind::<Array<BigInt>, _>(ids)
            .bind::<Array<Text>, _>(engines)
            .bind::<Nullable<Text>, _>(filter.database_name.clone())
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

/// Common table expressions ending in `latest (instance_id, database_name, <columns>)`: for
/// each key (instance and database) matching [`matching_condition`], its row in its latest
/// period in the window — or, with `valued`, its latest row where that column is not null
/// (some row of the key when none is). `columns` are `aggregate.`-qualified columns to carry.
///
/// Most keys have a row in the window's last period, so those rows come from an index range
/// scan of that one period (`present`); only the other keys' rows are sorted (`older`), which
/// is what makes this cheaper than a `DISTINCT ON` over the whole window. The `NOT IN` is
/// planned as a hashed subplan: run it with a `work_mem` that holds the present keys.
fn latest_per_key(level: AggregationLevel, columns: &str, valued: Option<&str>) -> String {
    let (table, database) = level_table(level);
    let condition = matching_condition(level);
    // PostgreSQL rejects a constant (the instance level's empty name) in ORDER BY.
    let key = match level {
        AggregationLevel::Database => "aggregate.instance_id, aggregate.database_name",
        AggregationLevel::Instance => "aggregate.instance_id",
    };
    let (present_filter, null_last) = match valued {
        Some(column) => (
            format!("AND aggregate.{column} IS NOT NULL"),
            format!("aggregate.{column} IS NULL, "),
        ),
        None => (String::new(), String::new()),
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
         older AS (
             SELECT DISTINCT ON ({key})
                    aggregate.instance_id, {database} AS database_name, {columns}
             FROM {table} aggregate
             WHERE {condition}
               AND (aggregate.instance_id, {database}) NOT IN
                   (SELECT instance_id, database_name FROM present)
             ORDER BY {key}, {null_last} aggregate.period_start DESC),
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

/// The lines of a chart, ranked in SQL so that only the plotted lines leave the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RankedSeries {
    /// The points of the `top` ranked lines: line by line in rank order, each by period.
    pub points: Vec<SeriesPoint>,
    /// How many lines match in all.
    pub total_lines: i64,
}

/// The values of `column` (a numeric or integer column of the level's table, named by the
/// caller from a fixed list) for the rows matching `filter`, one line per instance (or
/// database), keeping the `top` lines with the largest latest non-null value (lines with no
/// value last; ties by instance id and database name).
pub fn series(
    connection: &mut PgConnection,
    level: AggregationLevel,
    column: &'static str,
    filter: &AggregateFilter,
    top: i64,
) -> Result<RankedSeries, StoreError> {
    let (table, database) = level_table(level);
    let latest = latest_per_key(level, &format!("aggregate.{column} AS value"), Some(column));
    // The periods of the window, to fetch the chosen lines' points by primary key.
    let period_starts: Vec<NaiveDate> =
        Period::starting_between(filter.period_type, filter.start, filter.end)
            .map(|period| period.start())
            .collect();
    let query = diesel::sql_query(format!(
        "WITH {latest},
         chosen AS (
             SELECT instance_id, database_name, count(*) OVER () AS total_lines,
                    row_number() OVER (ORDER BY value DESC NULLS LAST, instance_id,
                                                database_name) AS rank
             FROM latest
             ORDER BY rank
             LIMIT $7)
         SELECT chosen.total_lines, chosen.instance_id, instance.name AS instance_name,
                instance.db_type, chosen.database_name, aggregate.period_start,
                aggregate.{column}::text AS value
         FROM chosen
         CROSS JOIN unnest($8::date[]) AS period (start)
         JOIN {table} aggregate
             ON aggregate.period_type = $1 AND aggregate.period_start = period.start
            AND aggregate.instance_id = chosen.instance_id
            AND {database} = chosen.database_name
         JOIN instances instance ON instance.id = chosen.instance_id
         ORDER BY chosen.rank, aggregate.period_start"
    ));
    let rows: Vec<SeriesRow> = with_key_memory(connection, |connection| {
        Ok(bind_matching!(query, filter)
            .bind::<diesel::sql_types::BigInt, _>(top)
            .bind::<diesel::sql_types::Array<diesel::sql_types::Date>, _>(&period_starts)
            .load(connection)?)
    })?;
    let total_lines = rows.first().map_or(0, |row| row.total_lines);
    let points = rows
        .into_iter()
        .map(|row| {
            Ok(SeriesPoint {
                instance: label(row.instance_id, row.instance_name, &row.db_type)?,
                database_name: match level {
                    AggregationLevel::Database => Some(row.database_name),
                    AggregationLevel::Instance => None,
                },
                period_start: row.period_start,
                value: row
                    .value
                    .map(|text| text.parse::<Decimal>().map_err(corrupt))
                    .transpose()?,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(RankedSeries {
        points,
        total_lines,
    })
}

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
    use diesel::sql_types::{Array, BigInt, Date, Text};
    let ids: Vec<i64> = filter.instance_ids.iter().map(|id| id.0).collect();
    let engines = engines_of(filter);
    let rows: Vec<TotalsRow> = diesel::sql_query(
        "SELECT latest.instance_id, instance.name, instance.db_type,
                latest.collected_date AS latest_date, latest.total_size_mb AS latest_total,
                latest.database_count AS latest_count,
                earliest.collected_date AS earliest_date, earliest.total_size_mb AS earliest_total
         FROM (SELECT DISTINCT ON (instance_id) instance_id, collected_date, total_size_mb,
                      database_count
               FROM instance_size_stats
               WHERE collected_date BETWEEN $1 AND $2
                 AND (cardinality($3::bigint[]) = 0 OR instance_id = ANY($3))
               ORDER BY instance_id, collected_date DESC) latest
         JOIN (SELECT DISTINCT ON (instance_id) instance_id, collected_date, total_size_mb
               FROM instance_size_stats
               WHERE collected_date BETWEEN $1 AND $2
                 AND (cardinality($3::bigint[]) = 0 OR instance_id = ANY($3))
               ORDER BY instance_id, collected_date) earliest USING (instance_id)
         JOIN instances instance ON instance.id = latest.instance_id
         WHERE cardinality($4::text[]) = 0 OR instance.db_type = ANY($4)
         ORDER BY latest.instance_id",
    )
    .bind::<Date, _>(filter.start)
    .bind::<Date, _>(filter.end)
    .bind::<Array<BigInt>, _>(&ids)
    .bind::<Array<Text>, _>(&engines)
    .load(connection)?;
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
    /// The largest database by latest mean size (ties: lowest instance id, then name).
    pub largest: Option<(InstanceLabel, String, i64)>,
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
    let latest = latest_per_key(
        AggregationLevel::Database,
        "aggregate.avg_size_mb, aggregate.size_change_mb",
        None,
    );
    let query = diesel::sql_query(format!(
        "WITH {latest}
         SELECT totals.*, largest.instance_id AS largest_instance_id,
                instance.name AS largest_instance_name, instance.db_type AS largest_db_type,
                largest.database_name AS largest_database_name,
                largest.avg_size_mb AS largest_size
         FROM (SELECT count(*) AS database_count,
                      count(DISTINCT instance_id) AS instance_count,
                      coalesce(sum(avg_size_mb), 0)::text AS total_size,
                      coalesce(sum(size_change_mb), 0)::text AS size_change,
                      coalesce(sum(avg_size_mb::numeric - size_change_mb), 0)::text
                          AS size_before
               FROM latest) totals
         LEFT JOIN (SELECT * FROM latest
                    ORDER BY avg_size_mb DESC, instance_id, database_name
                    LIMIT 1) largest ON true
         LEFT JOIN instances instance ON instance.id = largest.instance_id"
    ));
    let row: DatabaseTotalsRow = with_key_memory(connection, |connection| {
        Ok(bind_matching!(query, filter).get_result(connection)?)
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
        largest,
    })
}
