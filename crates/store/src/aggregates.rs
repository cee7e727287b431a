//! Reading stored aggregate rows back as domain records.

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

#[derive(Queryable, Selectable)]
#[diesel(table_name = database_size_aggregations)]
#[diesel(check_for_backend(diesel::pg::Pg))]
struct DatabaseAggregateRow {
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
struct InstanceAggregateRow {
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
