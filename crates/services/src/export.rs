//! CSV exports of every capacity view, of the runs and of the samples: one definition of
//! each file's columns, written row by row to any [`Write`], shared by the API's
//! `format=csv` answers and `capstats-worker export`.
//!
//! Every file is UTF-8 with a header row; dates are ISO (`2026-12-06`), instants RFC 3339 in
//! UTC, sizes whole MiB, percents two decimals (`12.30`), and a missing value an empty
//! cell. The lists and the samples are read from the database one row at a time, so an
//! export of millions of rows runs in flat memory; the other views are bounded by the number
//! of keys (or lines and periods) and are ranked in memory as their JSON answers are.

use std::io::Write;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::Serialize;

use capstats_capacity_model::{
    AggregationLevel, DatabaseSizeAggregate, Decimal, InstanceSizeAggregate, Period,
};
use capstats_store::PgConnection;
use capstats_store::aggregates::{
    self, AggregateFilter, InstanceLabel, MetricColumn, RankedSeries,
};
use capstats_store::samples::{self, LabelledSample};
use capstats_store::sessions::{self, Session, SessionFilter, SessionRecord};

use crate::ServiceError;
use crate::planning::{ForecastSummary, GrowthEntry, KeyForecast};

/// Refuses an export of `rows` rows when that is more than `maximum`
/// (`CAPSTATS_EXPORT_MAXIMUM_ROWS`), before anything is written, so that an export always
/// ends complete.
pub fn check_row_count(rows: i64, maximum: i64) -> Result<(), ServiceError> {
    if rows > maximum {
        return Err(ServiceError::ExportTooLarge { rows, maximum });
    }
    Ok(())
}

/// A CSV file being written: its header row first, then one row per record.
struct CsvFile<W: Write> {
    writer: csv::Writer<W>,
    rows: u64,
}

impl<W: Write> CsvFile<W> {
    /// A file of `Record` rows, headed by the record type's field names in their order (as
    /// the CSV writer derives them, so that the header cannot drift from the rows, and is
    /// written even when no row follows).
    fn new<Record: Serialize + Default>(output: W) -> Result<Self, ServiceError> {
        Self::with_header(output, &header_of::<Record>()?)
    }

    /// A file headed by `columns`, for rows that name no fields (tuples).
    fn with_header<I, T>(output: W, columns: I) -> Result<Self, ServiceError>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        let mut writer = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(output);
        writer.write_record(columns).map_err(output_error)?;
        Ok(Self { writer, rows: 0 })
    }

    fn row(&mut self, record: &impl Serialize) -> Result<(), ServiceError> {
        self.writer.serialize(record).map_err(output_error)?;
        self.rows += 1;
        Ok(())
    }

    /// Flushes the file; how many rows it has.
    fn finish(mut self) -> Result<u64, ServiceError> {
        self.writer.flush().map_err(ServiceError::Output)?;
        Ok(self.rows)
    }
}

fn output_error(error: csv::Error) -> ServiceError {
    ServiceError::Output(error.into())
}

/// The header row the CSV writer derives from `Record`'s fields: serialized once with its
/// default value, then read back.
fn header_of<Record: Serialize + Default>() -> Result<csv::StringRecord, ServiceError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.serialize(Record::default()).map_err(output_error)?;
    let written = writer
        .into_inner()
        .map_err(|error| ServiceError::Output(error.into_error()))?;
    let mut reader = csv::Reader::from_reader(written.as_slice());
    Ok(reader.headers().map_err(output_error)?.clone())
}

/// A percent (or another two-decimal figure, such as a mean count) as the files write it: two
/// decimals, halves away from zero (as the SQL's `round` and the engine round).
fn two_decimals(value: Option<Decimal>) -> Option<String> {
    value.map(|value| {
        let rounded =
            value.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
        format!("{rounded:.2}")
    })
}

/// An instant as the files write it: RFC 3339 in UTC, to the second.
fn instant(value: Option<DateTime<Utc>>) -> Option<String> {
    value.map(|at| at.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// A row of the instance-level list (`/capacity/instances?format=csv`).
#[derive(Default, Serialize)]
struct InstanceAggregateRecord {
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
struct DatabaseAggregateRecord {
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
struct SeriesRecord {
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
struct KeyColumns {
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
struct GrowthColumns {
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

/// A row of the sessions file.
#[derive(Default, Serialize)]
struct SessionRecordRow {
    id: i64,
    sync_category: &'static str,
    sync_type: &'static str,
    status: &'static str,
    triggered_by: String,
    total_instances: u64,
    successful_instances: u64,
    failed_instances: u64,
    cancelled_instances: u64,
    progress_percentage: Option<String>,
    error_message: Option<String>,
    worker_name: Option<String>,
    job_id: Option<String>,
    created_at: Option<String>,
    started_at: Option<String>,
    completed_at: Option<String>,
    parameters: String,
}

impl From<Session> for SessionRecordRow {
    fn from(session: Session) -> Self {
        Self {
            id: session.id,
            sync_category: session.sync_category.as_str(),
            sync_type: session.sync_type.as_str(),
            status: session.status.as_str(),
            triggered_by: session.triggered_by,
            total_instances: session.total_instances,
            successful_instances: session.successful_instances,
            failed_instances: session.failed_instances,
            cancelled_instances: session.cancelled_instances,
            progress_percentage: two_decimals(Some(session.progress_percentage)),
            error_message: session.error_message,
            worker_name: session.worker_name,
            job_id: session.job_id,
            created_at: instant(Some(session.created_at)),
            started_at: instant(session.started_at),
            completed_at: instant(session.completed_at),
            parameters: session.parameters.to_string(),
        }
    }
}

/// Writes every session matching `filter`, newest first; how many rows were written.
/// Refused past `maximum_rows`.
pub fn sessions(
    connection: &mut PgConnection,
    filter: &SessionFilter,
    maximum_rows: i64,
    output: impl Write,
) -> Result<u64, ServiceError> {
    check_row_count(sessions::count_sessions(connection, filter)?, maximum_rows)?;
    let mut file = CsvFile::new::<SessionRecordRow>(output)?;
    sessions::for_each_session(connection, filter, |session| {
        file.row(&SessionRecordRow::from(session))
    })?;
    file.finish()
}

/// A row of a session's records file.
#[derive(Default, Serialize)]
struct InstanceRecordRow {
    session_id: i64,
    instance_id: i64,
    instance_name: String,
    status: &'static str,
    items_synced: i64,
    error_message: Option<String>,
    started_at: Option<String>,
    completed_at: Option<String>,
    detail: Option<String>,
}

/// Writes the per-instance records of session `session_id`, by instance; how many rows were
/// written. An unknown session is [`ServiceError::NotFound`].
pub fn session_records(
    connection: &mut PgConnection,
    session_id: i64,
    output: impl Write,
) -> Result<u64, ServiceError> {
    // Answers not found for an unknown id, as the session's JSON does.
    sessions::get_session(connection, session_id)?;
    let records: Vec<SessionRecord> = sessions::session_records(connection, session_id)?;
    let mut file = CsvFile::new::<InstanceRecordRow>(output)?;
    for record in records {
        let detail = record
            .detail
            .map(|detail| serde_json::to_string(&detail))
            .transpose()
            .map_err(|error| ServiceError::Output(error.into()))?;
        file.row(&InstanceRecordRow {
            session_id,
            instance_id: record.instance_id.0,
            instance_name: record.instance_name,
            status: record.status.as_str(),
            items_synced: record.items_synced,
            error_message: record.error_message,
            started_at: instant(record.started_at),
            completed_at: instant(record.completed_at),
            detail,
        })?;
    }
    file.finish()
}

/// Writes the database samples collected from `from` to `to` (of `instance_ids`, or of every
/// instance when empty) as a file `capstats-worker import-stats` reads back (its columns,
/// [`crate::import::COLUMNS`]); how many rows were written. Refused past `maximum_rows`.
pub fn samples(
    connection: &mut PgConnection,
    from: NaiveDate,
    to: NaiveDate,
    instance_ids: &[capstats_capacity_model::InstanceId],
    maximum_rows: i64,
    output: impl Write,
) -> Result<u64, ServiceError> {
    check_row_count(
        samples::count_samples_between(connection, from, to, instance_ids)?,
        maximum_rows,
    )?;
    let mut file = CsvFile::with_header(output, crate::import::COLUMNS)?;
    samples::for_each_labelled_sample(connection, from, to, instance_ids, |sample| {
        let LabelledSample {
            instance_name,
            db_type,
            database_name,
            collected_date,
            size_mb,
            data_size_mb,
            log_size_mb,
        } = sample;
        file.row(&(
            instance_name,
            db_type,
            database_name,
            collected_date,
            size_mb,
            data_size_mb,
            log_size_mb,
        ))
    })?;
    file.finish()
}

/// The file name of a list's export: the level's aggregates, the period type and the
/// window (`capstats-database-aggregates-daily-2026-11-01_2026-11-30.csv`).
pub fn aggregates_file_name(level: AggregationLevel, filter: &AggregateFilter) -> String {
    file_name(&[
        &format!("{level}-aggregates"),
        filter.period_type.as_str(),
        &window(filter),
    ])
}

/// The file name of a series' export: the level, the metric, the period type and the window.
pub fn series_file_name(
    level: AggregationLevel,
    metric: MetricColumn,
    filter: &AggregateFilter,
) -> String {
    file_name(&[
        &format!("{level}-series"),
        metric.name(),
        filter.period_type.as_str(),
        &window(filter),
    ])
}

/// The file name of a growth leaderboard's export: the level, the period type and the window.
pub fn growth_file_name(level: AggregationLevel, filter: &AggregateFilter) -> String {
    file_name(&[
        &format!("{level}-growth"),
        filter.period_type.as_str(),
        &window(filter),
    ])
}

/// The file name of a forecasts' export: the level, the forecasts' day and the horizon.
pub fn forecast_file_name(level: AggregationLevel, as_of: NaiveDate, horizon_days: u32) -> String {
    file_name(&[
        &format!("{level}-forecast"),
        &as_of.to_string(),
        &format!("{horizon_days}d"),
    ])
}

/// The file name of the sessions' export, made on `today`.
pub fn sessions_file_name(today: NaiveDate) -> String {
    file_name(&["sync-sessions", &today.to_string()])
}

/// The file name of a session's records.
pub fn session_records_file_name(session_id: i64) -> String {
    file_name(&["sync-session", &session_id.to_string(), "records"])
}

/// The file name of the samples' export from `from` to `to`.
pub fn samples_file_name(from: NaiveDate, to: NaiveDate) -> String {
    file_name(&["samples", &format!("{from}_{to}")])
}

/// A filter's window of period starts, as file names show it.
fn window(filter: &AggregateFilter) -> String {
    format!("{}_{}", filter.start, filter.end)
}

/// The file name of an export: `capstats-` and the view's parts joined by `-`, with
/// anything but ASCII letters, digits, `-`, `_` and `.` replaced by `_`, so that it is safe in a
/// `Content-Disposition` header and on every file system.
fn file_name(parts: &[&str]) -> String {
    let joined: Vec<String> = parts
        .iter()
        .map(|part| {
            part.chars()
                .map(|character| {
                    if character.is_ascii_alphanumeric() || matches!(character, '_' | '.' | '-') {
                        character
                    } else {
                        '_'
                    }
                })
                .collect()
        })
        .collect();
    format!("capstats-{}.csv", joined.join("-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percents_have_two_decimals_and_instants_are_utc() {
        let decimal = |text: &str| Some(text.parse::<Decimal>().unwrap());
        assert_eq!(two_decimals(decimal("12.3")).as_deref(), Some("12.30"));
        assert_eq!(two_decimals(decimal("-0.005")).as_deref(), Some("-0.01"));
        assert_eq!(two_decimals(decimal("0.125")).as_deref(), Some("0.13"));
        assert_eq!(two_decimals(decimal("-0.001")).as_deref(), Some("0.00"));
        assert_eq!(two_decimals(decimal("7")).as_deref(), Some("7.00"));
        assert_eq!(two_decimals(None), None);
        let at = DateTime::parse_from_rfc3339("2026-12-06T14:30:05+01:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(instant(Some(at)).as_deref(), Some("2026-12-06T13:30:05Z"));
    }

    #[test]
    fn file_names_name_the_view_and_window_and_keep_only_safe_characters() {
        let day = |text: &str| text.parse::<NaiveDate>().unwrap();
        let filter = AggregateFilter {
            period_type: capstats_capacity_model::PeriodType::Daily,
            start: day("2026-11-01"),
            end: day("2026-11-30"),
            instance_ids: Vec::new(),
            db_types: Vec::new(),
            database_name: None,
        };
        assert_eq!(
            aggregates_file_name(AggregationLevel::Database, &filter),
            "capstats-database-aggregates-daily-2026-11-01_2026-11-30.csv"
        );
        assert_eq!(
            series_file_name(
                AggregationLevel::Instance,
                MetricColumn::TotalSizeMb,
                &filter
            ),
            "capstats-instance-series-total_size_mb-daily-2026-11-01_2026-11-30.csv"
        );
        assert_eq!(
            forecast_file_name(AggregationLevel::Database, day("2026-12-06"), 30),
            "capstats-database-forecast-2026-12-06-30d.csv"
        );
        assert_eq!(
            session_records_file_name(7),
            "capstats-sync-session-7-records.csv"
        );
        assert_eq!(file_name(&["a\"b/c\r\n"]), "capstats-a_b_c__.csv");
    }

    /// The header of `Record`'s files, joined as the file writes it.
    fn header<Record: Serialize + Default>() -> String {
        header_of::<Record>()
            .unwrap()
            .iter()
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The columns are the files' contract with their readers: any change in name
    /// or order shows here.
    #[test]
    fn every_file_has_its_columns_in_order() {
        assert_eq!(
            header::<InstanceAggregateRecord>(),
            "instance_id,instance_name,db_type,period_type,period_start,period_end,total_size_mb,avg_size_mb,max_size_mb,min_size_mb,data_count,expected_count,is_partial,database_count,avg_database_count,max_database_count,min_database_count,total_size_change_mb,total_size_change_percent,database_count_change,database_count_change_percent,growth_rate,trend_direction,yoy_change_mb,yoy_change_percent"
        );
        assert_eq!(
            header::<DatabaseAggregateRecord>(),
            "instance_id,instance_name,db_type,database_name,period_type,period_start,period_end,avg_size_mb,max_size_mb,min_size_mb,data_count,expected_count,is_partial,avg_data_size_mb,max_data_size_mb,min_data_size_mb,avg_log_size_mb,max_log_size_mb,min_log_size_mb,size_change_mb,size_change_percent,data_size_change_mb,data_size_change_percent,log_size_change_mb,log_size_change_percent,growth_rate,yoy_change_mb,yoy_change_percent,yoy_data_change_mb,yoy_data_change_percent,yoy_log_change_mb,yoy_log_change_percent"
        );
        assert_eq!(
            header::<SeriesRecord>(),
            "rank,instance_id,instance_name,db_type,database_name,period_type,period_start,period_end,metric,unit,value,data_count,expected_count,is_partial"
        );
        let forecast = "as_of,horizon_days,points,window_start,window_end,slope_mb_per_day,fitted_size_mb,r_squared,projected_size_mb,lower_mb,upper_mb,capacity_limit_mb,days_until_full,published,withheld_reason";
        assert_eq!(
            header::<(KeyColumns, GrowthColumns, ForecastSummary)>(),
            format!(
                "instance_id,instance_name,db_type,database_name,period_type,first_period_start,first_size_mb,last_period_start,last_size_mb,growth_mb,growth_percent,last_data_count,last_expected_count,is_partial,{forecast}"
            )
        );
        assert_eq!(
            header::<(KeyColumns, ForecastSummary)>(),
            format!("instance_id,instance_name,db_type,database_name,{forecast}")
        );
        assert_eq!(
            header::<SessionRecordRow>(),
            "id,sync_category,sync_type,status,triggered_by,total_instances,successful_instances,failed_instances,cancelled_instances,progress_percentage,error_message,worker_name,job_id,created_at,started_at,completed_at,parameters"
        );
        assert_eq!(
            header::<InstanceRecordRow>(),
            "session_id,instance_id,instance_name,status,items_synced,error_message,started_at,completed_at,detail"
        );
    }

    #[test]
    fn an_export_past_the_bound_is_refused_before_it_starts() {
        assert!(check_row_count(5_000_000, 5_000_000).is_ok());
        let refused = check_row_count(5_000_001, 5_000_000).unwrap_err();
        assert!(
            refused.to_string().contains("5000001"),
            "names the count: {refused}"
        );
    }
}
