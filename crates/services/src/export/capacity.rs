//! Exports of the capacity views: the aggregate lists, chart series, growth and forecasts.

use std::io::Write;

use chrono::NaiveDate;
use serde::Serialize;

use capstats_capacity_model::{
    AggregationLevel, DatabaseSizeAggregate, InstanceSizeAggregate, Period,
};
use capstats_store::PgConnection;
use capstats_store::aggregates::{
    self, AggregateFilter, InstanceLabel, MetricColumn, RankedSeries,
};

use super::check_row_count;
use super::csv_file::{CsvFile, two_decimals};
use crate::ServiceError;
use crate::planning::{ForecastSummary, GrowthEntry, KeyForecast};

/// A row of the instance-level list (`/capacity/instances?format=csv`).
#[derive(Default, Serialize)]
pub(super) struct InstanceAggregateRecord {
    instance_id: i64,
    instance_name: String,
    db_type: &'static str,
    period_type: &'static str,
    period_start: NaiveDate,
    period_end: NaiveDate,
    total_size_mb: i64,
    avg_size_mb: Option<i64>,
    max_size_mb: i64,
    min_size_mb: i64,
    data_count: i64,
    expected_count: i64,
    is_partial: bool,
    database_count: i64,
    avg_database_count: Option<String>,
    max_database_count: i64,
    min_database_count: i64,
    total_size_change_mb: Option<i64>,
    total_size_change_percent: Option<String>,
    database_count_change: Option<i64>,
    database_count_change_percent: Option<String>,
    growth_rate: Option<String>,
    trend_direction: Option<&'static str>,
    yoy_change_mb: Option<i64>,
    yoy_change_percent: Option<String>,
}

impl InstanceAggregateRecord {
    fn new(aggregate: InstanceSizeAggregate, instance: InstanceLabel) -> Self {
        let complete = aggregate.completeness;
        Self {
            instance_id: instance.id.0,
            instance_name: instance.name,
            db_type: instance.db_type.as_str(),
            period_type: aggregate.period.period_type().as_str(),
            period_start: aggregate.period.start(),
            period_end: aggregate.period.end(),
            total_size_mb: aggregate.total_size_mb,
            avg_size_mb: aggregate.avg_size_mb,
            max_size_mb: aggregate.max_size_mb,
            min_size_mb: aggregate.min_size_mb,
            data_count: aggregate.data_count,
            expected_count: complete.expected_count,
            is_partial: complete.is_partial,
            database_count: aggregate.database_count,
            avg_database_count: two_decimals(Some(aggregate.avg_database_count)),
            max_database_count: aggregate.max_database_count,
            min_database_count: aggregate.min_database_count,
            total_size_change_mb: aggregate.total_size_change_mb,
            total_size_change_percent: two_decimals(aggregate.total_size_change_percent),
            database_count_change: aggregate.database_count_change,
            database_count_change_percent: two_decimals(aggregate.database_count_change_percent),
            growth_rate: two_decimals(aggregate.growth_rate),
            trend_direction: aggregate.trend_direction.map(|trend| trend.as_str()),
            yoy_change_mb: aggregate.yoy_change_mb,
            yoy_change_percent: two_decimals(aggregate.yoy_change_percent),
        }
    }
}

/// A row of the database-level list (`/capacity/databases?format=csv`).
#[derive(Default, Serialize)]
pub(super) struct DatabaseAggregateRecord {
    instance_id: i64,
    instance_name: String,
    db_type: &'static str,
    database_name: String,
    period_type: &'static str,
    period_start: NaiveDate,
    period_end: NaiveDate,
    avg_size_mb: i64,
    max_size_mb: i64,
    min_size_mb: i64,
    data_count: i64,
    expected_count: i64,
    is_partial: bool,
    avg_data_size_mb: Option<i64>,
    max_data_size_mb: Option<i64>,
    min_data_size_mb: Option<i64>,
    avg_log_size_mb: Option<i64>,
    max_log_size_mb: Option<i64>,
    min_log_size_mb: Option<i64>,
    size_change_mb: Option<i64>,
    size_change_percent: Option<String>,
    data_size_change_mb: Option<i64>,
    data_size_change_percent: Option<String>,
    log_size_change_mb: Option<i64>,
    log_size_change_percent: Option<String>,
    growth_rate: Option<String>,
    yoy_change_mb: Option<i64>,
    yoy_change_percent: Option<String>,
    yoy_data_change_mb: Option<i64>,
    yoy_data_change_percent: Option<String>,
    yoy_log_change_mb: Option<i64>,
    yoy_log_change_percent: Option<String>,
}

impl DatabaseAggregateRecord {
    fn new(aggregate: DatabaseSizeAggregate, instance: InstanceLabel) -> Self {
        let complete = aggregate.completeness;
        Self {
            instance_id: instance.id.0,
            instance_name: instance.name,
            db_type: instance.db_type.as_str(),
            database_name: aggregate.database_name,
            period_type: aggregate.period.period_type().as_str(),
            period_start: aggregate.period.start(),
            period_end: aggregate.period.end(),
            avg_size_mb: aggregate.avg_size_mb,
            max_size_mb: aggregate.max_size_mb,
            min_size_mb: aggregate.min_size_mb,
            data_count: aggregate.data_count,
            expected_count: complete.expected_count,
            is_partial: complete.is_partial,
            avg_data_size_mb: aggregate.avg_data_size_mb,
            max_data_size_mb: aggregate.max_data_size_mb,
            min_data_size_mb: aggregate.min_data_size_mb,
            avg_log_size_mb: aggregate.avg_log_size_mb,
            max_log_size_mb: aggregate.max_log_size_mb,
            min_log_size_mb: aggregate.min_log_size_mb,
            size_change_mb: aggregate.size_change_mb,
            size_change_percent: two_decimals(aggregate.size_change_percent),
            data_size_change_mb: aggregate.data_size_change_mb,
            data_size_change_percent: two_decimals(aggregate.data_size_change_percent),
            log_size_change_mb: aggregate.log_size_change_mb,
            log_size_change_percent: two_decimals(aggregate.log_size_change_percent),
            growth_rate: two_decimals(aggregate.growth_rate),
            yoy_change_mb: aggregate.yoy_change_mb,
            yoy_change_percent: two_decimals(aggregate.yoy_change_percent),
            yoy_data_change_mb: aggregate.yoy_data_change_mb,
            yoy_data_change_percent: two_decimals(aggregate.yoy_data_change_percent),
            yoy_log_change_mb: aggregate.yoy_log_change_mb,
            yoy_log_change_percent: two_decimals(aggregate.yoy_log_change_percent),
        }
    }
}

/// Writes every aggregate of `level` matching `filter`, newest first (the list's order),
/// with their stored completeness; how many rows were written. Refused past `maximum_rows`.
pub fn aggregates(
    connection: &mut PgConnection,
    level: AggregationLevel,
    filter: &AggregateFilter,
    maximum_rows: i64,
    output: impl Write,
) -> Result<u64, ServiceError> {
    check_row_count(
        aggregates::matching_row_count(connection, level, filter)?,
        maximum_rows,
    )?;
    match level {
        AggregationLevel::Instance => {
            let mut file = CsvFile::new::<InstanceAggregateRecord>(output)?;
            aggregates::for_each_instance_aggregate(connection, filter, |aggregate, instance| {
                file.row(&InstanceAggregateRecord::new(aggregate, instance))
            })?;
            file.finish()
        }
        AggregationLevel::Database => {
            let mut file = CsvFile::new::<DatabaseAggregateRecord>(output)?;
            aggregates::for_each_database_aggregate(connection, filter, |aggregate, instance| {
                file.row(&DatabaseAggregateRecord::new(aggregate, instance))
            })?;
            file.finish()
        }
    }
}

/// A point of a chart series: one line's value in one period.
#[derive(Default, Serialize)]
pub(super) struct SeriesRecord {
    rank: usize,
    instance_id: i64,
    instance_name: String,
    db_type: &'static str,
    database_name: Option<String>,
    period_type: &'static str,
    period_start: NaiveDate,
    period_end: NaiveDate,
    metric: &'static str,
    unit: &'static str,
    value: Option<String>,
    data_count: i64,
    expected_count: i64,
    is_partial: bool,
}

/// Writes the points of a chart's lines (as [`aggregates::series`] ranks them: line by line
/// in rank order, each by period) of `metric` for `period_type` periods, with their stored
/// completeness; how many rows were written. A percent has two decimals, a size or a count is
/// whole.
pub fn series(
    ranked: RankedSeries,
    metric: MetricColumn,
    period_type: capstats_capacity_model::PeriodType,
    output: impl Write,
) -> Result<u64, ServiceError> {
    let mut file = CsvFile::new::<SeriesRecord>(output)?;
    let mut rank = 0;
    let mut line: Option<(i64, Option<String>)> = None;
    for point in ranked.points {
        let key = (point.instance.id.0, point.database_name.clone());
        if line.as_ref() != Some(&key) {
            rank += 1;
            line = Some(key);
        }
        let period = Period::starting_on(period_type, point.period_start)
            .map_err(|error| ServiceError::InvalidRequest(error.to_string()))?;
        let complete = point.completeness;
        let value = if metric.unit() == "%" {
            two_decimals(point.value)
        } else {
            point.value.map(|value| value.round().to_string())
        };
        file.row(&SeriesRecord {
            rank,
            instance_id: point.instance.id.0,
            instance_name: point.instance.name,
            db_type: point.instance.db_type.as_str(),
            database_name: point.database_name,
            period_type: period_type.as_str(),
            period_start: period.start(),
            period_end: period.end(),
            metric: metric.name(),
            unit: metric.unit(),
            value,
            data_count: point.data_count,
            expected_count: complete.expected_count,
            is_partial: complete.is_partial,
        })?;
    }
    file.finish()
}

/// The key columns of the growth and forecast files.
#[derive(Default, Serialize)]
pub(super) struct KeyColumns {
    instance_id: i64,
    instance_name: String,
    db_type: &'static str,
    database_name: Option<String>,
}

impl KeyColumns {
    fn new(instance: InstanceLabel, database_name: Option<String>) -> Self {
        Self {
            instance_id: instance.id.0,
            instance_name: instance.name,
            db_type: instance.db_type.as_str(),
            database_name,
        }
    }
}

/// The growth columns of the growth file, between the key and the forecast.
#[derive(Default, Serialize)]
pub(super) struct GrowthColumns {
    period_type: &'static str,
    first_period_start: NaiveDate,
    first_size_mb: i64,
    last_period_start: NaiveDate,
    last_size_mb: i64,
    growth_mb: i64,
    growth_percent: Option<String>,
    last_data_count: i64,
    last_expected_count: i64,
    is_partial: bool,
}

/// Writes the ranked entries of the growth leaderboard, their forecasts made on `as_of` for
/// `horizon_days` ahead; how many rows were written.
pub fn growth(
    entries: Vec<GrowthEntry>,
    as_of: NaiveDate,
    horizon_days: u32,
    output: impl Write,
) -> Result<u64, ServiceError> {
    let mut file = CsvFile::new::<(KeyColumns, GrowthColumns, ForecastSummary)>(output)?;
    for entry in entries {
        let key = entry.key;
        let forecast = ForecastSummary::new(
            entry.forecast.as_ref(),
            key.capacity_limit_mb,
            as_of,
            horizon_days,
        );
        let growth = GrowthColumns {
            period_type: key.last_period.period_type().as_str(),
            first_period_start: key.first_period.start(),
            first_size_mb: key.first_size_mb,
            last_period_start: key.last_period.start(),
            last_size_mb: key.last_size_mb,
            growth_mb: entry.growth_mb,
            growth_percent: two_decimals(entry.growth_percent),
            last_data_count: key.last_data_count,
            last_expected_count: entry.last_period_completeness.expected_count,
            is_partial: entry.last_period_completeness.is_partial,
        };
        file.row(&(
            KeyColumns::new(key.instance, key.database_name),
            growth,
            forecast,
        ))?;
    }
    file.finish()
}

/// Writes the forecasts, in their order, made on `as_of` for `horizon_days` ahead; how many
/// rows were written.
pub fn forecasts(
    found: Vec<KeyForecast>,
    as_of: NaiveDate,
    horizon_days: u32,
    output: impl Write,
) -> Result<u64, ServiceError> {
    let mut file = CsvFile::new::<(KeyColumns, ForecastSummary)>(output)?;
    for found in found {
        let forecast = ForecastSummary::new(Some(&found.forecast), None, as_of, horizon_days);
        file.row(&(
            KeyColumns::new(found.instance, found.database_name),
            forecast,
        ))?;
    }
    file.finish()
}
