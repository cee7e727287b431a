//! Reading stored aggregates: back as domain records, filtered and paged for the API,
//! summarised, and as series for charts.

use std::collections::{BTreeSet, HashMap};

use chrono::NaiveDate;
use diesel::prelude::*;

use capacity_model::{
    DatabaseSizeAggregate, Decimal, InstanceId, InstanceSizeAggregate, Period, PeriodType,
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
    pub db_types: Vec<capacity_model::DbType>,
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
    pub db_type: capacity_model::DbType,
}

fn label(id: i64, name: String, db_type: &str) -> Result<InstanceLabel, StoreError> {
    Ok(InstanceLabel {
        id: InstanceId(id),
        name,
        db_type: db_type.parse().map_err(corrupt)?,
    })
}

/// The matching rows of `$table` as a boxed query without a join: an engine filter is a
/// semi-join on `instances`, so that counting the matches reads the aggregate table alone.
macro_rules! filtered {
    ($table:ident, $filter:expr) => {{
        use crate::schema::instances;
        let filter = $filter;
        let mut query = $table::table
            .filter($table::period_type.eq(filter.period_type.as_str()))
            .filter($table::period_start.between(filter.start, filter.end))
            .into_boxed();
        if !filter.instance_ids.is_empty() {
            let ids: Vec<i64> = filter.instance_ids.iter().map(|id| id.0).collect();
            query = query.filter($table::instance_id.eq_any(ids));
        }
        if !filter.db_types.is_empty() {
            let engines: Vec<&'static str> = filter
                .db_types
                .iter()
                .map(|db_type| db_type.as_str())
                .collect();
            query = query.filter(
                $table::instance_id.eq_any(
                    instances::table
                        .filter(instances::db_type.eq_any(engines))
                        .select(instances::id),
                ),
            );
        }
        query
    }};
}

/// The display labels of these instances, by id.
fn labels(
    connection: &mut PgConnection,
    ids: impl IntoIterator<Item = i64>,
) -> Result<HashMap<i64, InstanceLabel>, StoreError> {
    use crate::schema::instances;
    let ids: BTreeSet<i64> = ids.into_iter().collect();
    let rows: Vec<(i64, String, String)> = instances::table
        .filter(instances::id.eq_any(ids))
        .select((instances::id, instances::name, instances::db_type))
        .load(connection)?;
    rows.into_iter()
        .map(|(id, name, db_type)| Ok((id, label(id, name, &db_type)?)))
        .collect()
}

/// Pairs each row with its instance's label.
fn labelled<Row, Aggregate>(
    connection: &mut PgConnection,
    rows: Vec<Row>,
    instance_of: impl Fn(&Row) -> i64,
) -> Result<Vec<(Aggregate, InstanceLabel)>, StoreError>
where
    Aggregate: TryFrom<Row, Error = StoreError>,
{
    let labels = labels(connection, rows.iter().map(&instance_of))?;
    rows.into_iter()
        .map(|row| {
            let id = instance_of(&row);
            let instance = labels
                .get(&id)
                .cloned()
                .ok_or_else(|| corrupt(format!("instance {id} is missing")))?;
            Ok((Aggregate::try_from(row)?, instance))
        })
        .collect()
}

/// Database-level rows matching `filter`, newest period first, then by instance and database
/// name, one page of them, and how many match in all.
pub fn list_database_aggregates(
    connection: &mut PgConnection,
    filter: &AggregateFilter,
    page: PageRequest,
) -> Result<(Vec<(DatabaseSizeAggregate, InstanceLabel)>, i64), StoreError> {
    use database_size_aggregations as table;
    let with_name = |query: database_query::Boxed<'static>| match &filter.database_name {
        Some(name) => query.filter(table::database_name.eq(name.clone())),
        None => query,
    };
    let total: i64 = with_name(filtered!(table, filter))
        .count()
        .get_result(connection)?;
    let rows: Vec<DatabaseAggregateRow> = with_name(filtered!(table, filter))
        .order((
            table::period_start.desc(),
            table::instance_id,
            table::database_name,
        ))
        .limit(page.limit)
        .offset(page.offset())
        .select(DatabaseAggregateRow::as_select())
        .load(connection)?;
    Ok((labelled(connection, rows, |row| row.instance_id)?, total))
}

/// The boxed query type of database-level reads.
mod database_query {
    use crate::schema::database_size_aggregations;
    use diesel::pg::Pg;

    /// A boxed query over database aggregations.
    pub(super) type Boxed<'a> = diesel::dsl::IntoBoxed<'a, database_size_aggregations::table, Pg>;
}

/// Instance-level rows matching `filter`, newest period first, then by instance, one page of
/// them, and how many match in all.
pub fn list_instance_aggregates(
    connection: &mut PgConnection,
    filter: &AggregateFilter,
    page: PageRequest,
) -> Result<(Vec<(InstanceSizeAggregate, InstanceLabel)>, i64), StoreError> {
    use instance_size_aggregations as table;
    let total: i64 = filtered!(table, filter).count().get_result(connection)?;
    let rows: Vec<InstanceAggregateRow> = filtered!(table, filter)
        .order((table::period_start.desc(), table::instance_id))
        .limit(page.limit)
        .offset(page.offset())
        .select(InstanceAggregateRow::as_select())
        .load(connection)?;
    Ok((labelled(connection, rows, |row| row.instance_id)?, total))
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
fn matching_condition(level: capacity_model::AggregationLevel) -> String {
    let name_condition = match level {
        capacity_model::AggregationLevel::Database => {
            "($6::text IS NULL OR aggregate.database_name = $6)"
        }
        capacity_model::AggregationLevel::Instance => "($6::text IS NULL OR true)",
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
        let engines: Vec<&'static str> = filter
            .db_types
            .iter()
            .map(|db_type| db_type.as_str())
            .collect();
        $query
            .bind::<Text, _>(filter.period_type.as_str())
            .bind::<Date, _>(filter.start)
            .bind::<Date, _>(filter.end)
            .bind::<Array<BigInt>, _>(ids)
            .bind::<Array<Text>, _>(engines)
            .bind::<Nullable<Text>, _>(filter.database_name.clone())
    }};
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
    level: capacity_model::AggregationLevel,
    column: &'static str,
    filter: &AggregateFilter,
    top: i64,
) -> Result<RankedSeries, StoreError> {
    let (table, database) = match level {
        capacity_model::AggregationLevel::Database => {
            ("database_size_aggregations", "aggregate.database_name")
        }
        // An empty name instead of NULL keeps the line key hashable in the join below.
        capacity_model::AggregationLevel::Instance => ("instance_size_aggregations", "''"),
    };
    let condition = matching_condition(level);
    let query = diesel::sql_query(format!(
        "WITH matching AS (
             SELECT aggregate.instance_id, {database} AS database_name, aggregate.period_start,
                    aggregate.{column} AS value
             FROM {table} aggregate
             WHERE {condition}),
         latest AS (
             SELECT DISTINCT ON (instance_id, database_name) instance_id, database_name, value
             FROM matching
             ORDER BY instance_id, database_name, value IS NULL, period_start DESC),
         chosen AS (
             SELECT instance_id, database_name, count(*) OVER () AS total_lines,
                    row_number() OVER (ORDER BY value DESC NULLS LAST, instance_id,
                                                database_name) AS rank
             FROM latest
             ORDER BY rank
             LIMIT $7)
         SELECT chosen.total_lines, chosen.instance_id, instance.name AS instance_name,
                instance.db_type, chosen.database_name, matching.period_start,
                matching.value::text AS value
         FROM chosen
         JOIN matching USING (instance_id, database_name)
         JOIN instances instance ON instance.id = chosen.instance_id
         ORDER BY chosen.rank, matching.period_start"
    ));
    let rows: Vec<SeriesRow> = bind_matching!(query, filter)
        .bind::<diesel::sql_types::BigInt, _>(top)
        .load(connection)?;
    let total_lines = rows.first().map_or(0, |row| row.total_lines);
    let points = rows
        .into_iter()
        .map(|row| {
            Ok(SeriesPoint {
                instance: label(row.instance_id, row.instance_name, &row.db_type)?,
                database_name: match level {
                    capacity_model::AggregationLevel::Database => Some(row.database_name),
                    capacity_model::AggregationLevel::Instance => None,
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
    let engines: Vec<&str> = filter
        .db_types
        .iter()
        .map(|db_type| db_type.as_str())
        .collect();
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
    let condition = matching_condition(capacity_model::AggregationLevel::Database);
    let query = diesel::sql_query(format!(
        "WITH latest AS (
             SELECT DISTINCT ON (aggregate.instance_id, aggregate.database_name)
                    aggregate.instance_id, aggregate.database_name, aggregate.avg_size_mb,
                    aggregate.size_change_mb
             FROM database_size_aggregations aggregate
             WHERE {condition}
             ORDER BY aggregate.instance_id, aggregate.database_name,
                      aggregate.period_start DESC)
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
    let row: DatabaseTotalsRow = bind_matching!(query, filter).get_result(connection)?;
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
