//! Reading stored aggregates: back as domain records, filtered and paged for the API,
//! summarised, and as series for charts.

use chrono::NaiveDate;
use diesel::prelude::*;

use capstats_capacity_model::{
    AggregationLevel, Completeness, DatabaseSizeAggregate, Decimal, InstanceId,
    InstanceSizeAggregate, Period, PeriodType,
};

use crate::StoreError;
use crate::level_tables::LevelTables;
use crate::schema::{database_size_aggregations, instance_size_aggregations};

#[macro_use]
mod filter;

pub use filter::AggregateFilter;
use filter::{key_condition, matching_condition, period_condition};

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("stored aggregate is inconsistent: {what}"))
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
    yoy_change_mb: Option<i64>,
    yoy_change_percent: Option<bigdecimal::BigDecimal>,
    yoy_data_change_mb: Option<i64>,
    yoy_data_change_percent: Option<bigdecimal::BigDecimal>,
    yoy_log_change_mb: Option<i64>,
    yoy_log_change_percent: Option<bigdecimal::BigDecimal>,
    expected_count: i64,
    is_partial: bool,
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
            yoy_change_mb: row.yoy_change_mb,
            yoy_change_percent: decimal(row.yoy_change_percent)?,
            yoy_data_change_mb: row.yoy_data_change_mb,
            yoy_data_change_percent: decimal(row.yoy_data_change_percent)?,
            yoy_log_change_mb: row.yoy_log_change_mb,
            yoy_log_change_percent: decimal(row.yoy_log_change_percent)?,
            completeness: Completeness {
                expected_count: row.expected_count,
                is_partial: row.is_partial,
            },
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

#[derive(Queryable, Selectable, QueryableByName)]
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
    yoy_change_mb: Option<i64>,
    yoy_change_percent: Option<bigdecimal::BigDecimal>,
    expected_count: i64,
    is_partial: bool,
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
            yoy_change_mb: row.yoy_change_mb,
            yoy_change_percent: decimal(row.yoy_change_percent)?,
            completeness: Completeness {
                expected_count: row.expected_count,
                is_partial: row.is_partial,
            },
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

    /// This page of `items`, a list ranked in memory.
    pub fn of<T>(self, items: Vec<T>) -> Vec<T> {
        let skip = usize::try_from(self.offset()).unwrap_or(usize::MAX);
        let take = usize::try_from(self.limit).unwrap_or(usize::MAX);
        items.into_iter().skip(skip).take(take).collect()
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

/// A row of a level's table with its instance's name and engine.
struct LabelledRow<Row> {
    row: Row,
    instance_name: String,
    instance_db_type: String,
}

// Written out because the derive does not take a type parameter.
impl<Row: QueryableByName<diesel::pg::Pg>> QueryableByName<diesel::pg::Pg> for LabelledRow<Row> {
    fn build<'a>(
        row: &impl diesel::row::NamedRow<'a, diesel::pg::Pg>,
    ) -> diesel::deserialize::Result<Self> {
        use diesel::row::NamedRow;
        use diesel::sql_types::Text;
        Ok(Self {
            row: Row::build(row)?,
            instance_name: NamedRow::get::<Text, String>(row, "instance_name")?,
            instance_db_type: NamedRow::get::<Text, String>(row, "instance_db_type")?,
        })
    }
}

/// A count read in SQL text.
#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    count: i64,
}

/// One page of the rows of `level` matching `filter`, newest first — by period start,
/// instance id and database name, all descending: the primary key read backwards, so a page
/// costs an index range scan however many rows match — each with its instance's label.
fn page_of<Row, Aggregate>(
    connection: &mut PgConnection,
    level: AggregationLevel,
    filter: &AggregateFilter,
    page: PageRequest,
    instance_of: impl Fn(&Row) -> i64,
) -> Result<Vec<(Aggregate, InstanceLabel)>, StoreError>
where
    LabelledRow<Row>: QueryableByName<diesel::pg::Pg> + 'static,
    Aggregate: TryFrom<Row, Error = StoreError>,
{
    let query = diesel::sql_query(format!("{} LIMIT $8 OFFSET $9", listed_rows(level)));
    let rows: Vec<LabelledRow<Row>> = bind_matching!(query, filter)
        .bind::<diesel::sql_types::BigInt, _>(page.limit)
        .bind::<diesel::sql_types::BigInt, _>(page.offset())
        .load(connection)?;
    rows.into_iter()
        .map(|labelled| labelled.into_pair(&instance_of))
        .collect()
}

/// The rows of `level` matching the filter's parameters, each with its instance's name and
/// engine, in the lists' order (newest first: the primary key read backwards).
fn listed_rows(level: AggregationLevel) -> String {
    let (table, _) = level_table(level);
    let key_order = match level {
        AggregationLevel::Database => "aggregate.instance_id DESC, aggregate.database_name DESC",
        AggregationLevel::Instance => "aggregate.instance_id DESC",
    };
    format!(
        "SELECT aggregate.*, instance.name AS instance_name, instance.db_type AS instance_db_type
         FROM {table} aggregate
         JOIN instances instance ON instance.id = aggregate.instance_id
         WHERE {}
         ORDER BY aggregate.period_start DESC, {key_order}",
        matching_condition(level)
    )
}

impl<Row> LabelledRow<Row> {
    /// The aggregate of the row and its instance's label.
    fn into_pair<Aggregate>(
        self,
        instance_of: impl Fn(&Row) -> i64,
    ) -> Result<(Aggregate, InstanceLabel), StoreError>
    where
        Aggregate: TryFrom<Row, Error = StoreError>,
    {
        let instance = label(
            instance_of(&self.row),
            self.instance_name,
            &self.instance_db_type,
        )?;
        Ok((Aggregate::try_from(self.row)?, instance))
    }
}

/// Hands every row of `level` matching `filter` to `each`, in the lists' order, as the server
/// sends it: libpq's row-by-row mode keeps one row in memory however many match, which is
/// what lets an export of millions of rows run in flat memory. Stops at the first error of
/// `each` (the rest of the result is then read and discarded, which frees the connection).
fn for_each_listed<Row, Aggregate, E>(
    connection: &mut PgConnection,
    level: AggregationLevel,
    filter: &AggregateFilter,
    instance_of: impl Fn(&Row) -> i64,
    mut each: impl FnMut(Aggregate, InstanceLabel) -> Result<(), E>,
) -> Result<(), E>
where
    LabelledRow<Row>: QueryableByName<diesel::pg::Pg> + 'static,
    Aggregate: TryFrom<Row, Error = StoreError>,
    E: From<StoreError>,
{
    let query = diesel::sql_query(listed_rows(level));
    let rows = bind_matching!(query, filter)
        .load_iter::<LabelledRow<Row>, diesel::pg::PgRowByRowLoadingMode>(connection)
        .map_err(StoreError::from)?;
    for row in rows {
        let (aggregate, instance) = row.map_err(StoreError::from)?.into_pair(&instance_of)?;
        each(aggregate, instance)?;
    }
    Ok(())
}

/// Hands every database-level row matching `filter` to `each`, newest first as
/// [`list_database_aggregates`] orders them, one row in memory at a time.
pub fn for_each_database_aggregate<E: From<StoreError>>(
    connection: &mut PgConnection,
    filter: &AggregateFilter,
    each: impl FnMut(DatabaseSizeAggregate, InstanceLabel) -> Result<(), E>,
) -> Result<(), E> {
    for_each_listed(
        connection,
        AggregationLevel::Database,
        filter,
        |row: &DatabaseAggregateRow| row.instance_id,
        each,
    )
}

/// Hands every instance-level row matching `filter` to `each`, newest first as
/// [`list_instance_aggregates`] orders them, one row in memory at a time.
pub fn for_each_instance_aggregate<E: From<StoreError>>(
    connection: &mut PgConnection,
    filter: &AggregateFilter,
    each: impl FnMut(InstanceSizeAggregate, InstanceLabel) -> Result<(), E>,
) -> Result<(), E> {
    for_each_listed(
        connection,
        AggregationLevel::Instance,
        filter,
        |row: &InstanceAggregateRow| row.instance_id,
        each,
    )
}

/// How many rows of `level` match `filter`, read from the smallest table that can tell: the
/// per-period counts the aggregation maintains (one small row per period) when no key is
/// narrowed, the per-instance counts of database rows when instances or engines are, and the
/// rows themselves when a database name is (a name leaves a few rows per instance and
/// period).
pub fn matching_row_count(
    connection: &mut PgConnection,
    level: AggregationLevel,
    filter: &AggregateFilter,
) -> Result<i64, StoreError> {
    let (table, _) = level_table(level);
    let sql = if !filter.narrows_keys() {
        format!(
            "SELECT coalesce(sum(counts.row_count), 0)::bigint AS count
             FROM aggregate_period_counts counts
             WHERE counts.level = $8 AND {}",
            period_condition("counts")
        )
    } else if level == AggregationLevel::Database && filter.database_name.is_none() {
        format!(
            "SELECT coalesce(sum(counts.row_count), 0)::bigint AS count
             FROM database_aggregate_counts counts
             WHERE {} AND {}",
            period_condition("counts"),
            key_condition("counts.instance_id", None)
        )
    } else {
        format!(
            "SELECT count(*) AS count FROM {table} aggregate WHERE {}",
            matching_condition(level)
        )
    };
    let count: Count = bind_matching!(diesel::sql_query(sql), filter)
        .bind::<diesel::sql_types::Text, _>(level.as_str())
        .get_result(connection)?;
    Ok(count.count)
}

/// Database-level rows matching `filter`, newest first — by period start, instance id and
/// database name, all descending (the primary key read backwards) — one page of them, and how
/// many match in all.
pub fn list_database_aggregates(
    connection: &mut PgConnection,
    filter: &AggregateFilter,
    page: PageRequest,
) -> Result<(Vec<(DatabaseSizeAggregate, InstanceLabel)>, i64), StoreError> {
    let total = matching_row_count(connection, AggregationLevel::Database, filter)?;
    let rows = page_of(
        connection,
        AggregationLevel::Database,
        filter,
        page,
        |row: &DatabaseAggregateRow| row.instance_id,
    )?;
    Ok((rows, total))
}

/// Instance-level rows matching `filter`, newest first — by period start and instance id,
/// both descending (the primary key read backwards) — one page of them, and how many match in
/// all.
pub fn list_instance_aggregates(
    connection: &mut PgConnection,
    filter: &AggregateFilter,
    page: PageRequest,
) -> Result<(Vec<(InstanceSizeAggregate, InstanceLabel)>, i64), StoreError> {
    let total = matching_row_count(connection, AggregationLevel::Instance, filter)?;
    let rows = page_of(
        connection,
        AggregationLevel::Instance,
        filter,
        page,
        |row: &InstanceAggregateRow| row.instance_id,
    )?;
    Ok((rows, total))
}

/// The aggregation table of a level and the SQL expression of the database name of its row
/// `aggregate` (an empty text at instance level, which keeps line keys one shape).
fn level_table(level: AggregationLevel) -> (&'static str, String) {
    let tables = LevelTables::of(level);
    (tables.aggregates, tables.database_name_of("aggregate"))
}

mod latest_rows;
mod planning;
mod series;
mod totals;

use latest_rows::{LatestSource, latest_per_key, with_key_memory};

pub use planning::{DailyHistory, KeyGrowth, KeySelection, for_each_daily_history, growth};
pub use series::{MetricColumn, RankedSeries, SeriesPoint, series};
pub use totals::{DatabaseTotals, InstanceTotals, database_totals, instance_totals};
