//! Chart series: the lines of a level's metric, ranked in SQL.

use chrono::NaiveDate;
use diesel::prelude::*;

use capstats_capacity_model::{AggregationLevel, Decimal, PeriodType};

use super::*;
use crate::StoreError;

/// A column a chart may plot, named as the API names the metric. The fixed set is what lets
/// [`series`] put the column's name into its SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricColumn {
    /// Instance level: the instance's total size.
    TotalSizeMb,
    /// Instance level: its change versus the previous period.
    TotalSizeChangeMb,
    /// Instance level: that change in percent.
    TotalSizeChangePercent,
    /// Instance level: how many databases it has.
    DatabaseCount,
    /// Both levels: the average size.
    AvgSizeMb,
    /// Database level: the largest size.
    MaxSizeMb,
    /// Database level: the change versus the previous period.
    SizeChangeMb,
    /// Database level: that change in percent.
    SizeChangePercent,
    /// Database level: the average data size.
    AvgDataSizeMb,
    /// Database level: the average log size.
    AvgLogSizeMb,
    /// Both levels: the change of the size (the total at the instance level) against the same
    /// period a year earlier.
    YoyChangeMb,
    /// Both levels: that change in percent.
    YoyChangePercent,
}

impl MetricColumn {
    /// The metrics of the instance level, the default first.
    pub const INSTANCE: [MetricColumn; 7] = [
        Self::TotalSizeMb,
        Self::TotalSizeChangeMb,
        Self::TotalSizeChangePercent,
        Self::DatabaseCount,
        Self::AvgSizeMb,
        Self::YoyChangeMb,
        Self::YoyChangePercent,
    ];

    /// The metrics of the database level, the default first.
    pub const DATABASE: [MetricColumn; 8] = [
        Self::AvgSizeMb,
        Self::MaxSizeMb,
        Self::SizeChangeMb,
        Self::SizeChangePercent,
        Self::AvgDataSizeMb,
        Self::AvgLogSizeMb,
        Self::YoyChangeMb,
        Self::YoyChangePercent,
    ];

    /// The metrics `level` has, the default first.
    pub fn of_level(level: AggregationLevel) -> &'static [MetricColumn] {
        match level {
            AggregationLevel::Instance => &Self::INSTANCE,
            AggregationLevel::Database => &Self::DATABASE,
        }
    }

    /// The metric of `level` called `name`.
    pub fn parse(level: AggregationLevel, name: &str) -> Option<Self> {
        Self::of_level(level)
            .iter()
            .copied()
            .find(|metric| metric.name() == name)
    }

    /// Its name: the API's metric and the table's column.
    pub fn name(self) -> &'static str {
        match self {
            Self::TotalSizeMb => "total_size_mb",
            Self::TotalSizeChangeMb => "total_size_change_mb",
            Self::TotalSizeChangePercent => "total_size_change_percent",
            Self::DatabaseCount => "database_count",
            Self::AvgSizeMb => "avg_size_mb",
            Self::MaxSizeMb => "max_size_mb",
            Self::SizeChangeMb => "size_change_mb",
            Self::SizeChangePercent => "size_change_percent",
            Self::AvgDataSizeMb => "avg_data_size_mb",
            Self::AvgLogSizeMb => "avg_log_size_mb",
            Self::YoyChangeMb => "yoy_change_mb",
            Self::YoyChangePercent => "yoy_change_percent",
        }
    }

    /// Whether its column at `level` may hold nulls. A column that never does needs no search
    /// for a key's latest non-null value: its latest row has it, which spares [`series`] a step
    /// (and the planning of it).
    pub fn may_be_null(self, level: AggregationLevel) -> bool {
        !matches!(
            (level, self),
            (
                AggregationLevel::Database,
                Self::AvgSizeMb | Self::MaxSizeMb
            ) | (
                AggregationLevel::Instance,
                Self::TotalSizeMb | Self::DatabaseCount
            )
        )
    }

    /// Whether rows of `period_type` can hold a value of the metric: the changes against a
    /// year earlier exist for weekly and longer periods only, and the statements write NULL
    /// into daily rows.
    pub fn exists_for(self, period_type: PeriodType) -> bool {
        !(period_type == PeriodType::Daily
            && matches!(self, Self::YoyChangeMb | Self::YoyChangePercent))
    }

    /// The unit of its values: `MB`, `%` or `count`.
    pub fn unit(self) -> &'static str {
        match self {
            Self::TotalSizeChangePercent | Self::SizeChangePercent | Self::YoyChangePercent => "%",
            Self::DatabaseCount => "count",
            _ => "MB",
        }
    }
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
    /// The period's daily samples.
    pub data_count: i64,
    /// How complete the period is (stored with its row).
    pub completeness: Completeness,
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
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    data_count: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    expected_count: i64,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    is_partial: bool,
}

/// The lines of a chart, ranked in SQL so that only the plotted lines leave the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RankedSeries {
    /// The points of the `top` ranked lines: line by line in rank order, each by period.
    pub points: Vec<SeriesPoint>,
    /// How many lines match in all.
    pub total_lines: i64,
}

/// The values of `metric` (one of [`MetricColumn::of_level`]) for the rows matching `filter`, one line per instance (or
/// database), keeping the `top` lines with the largest latest non-null value (lines with no
/// value last; ties by instance id and database name).
pub fn series(
    connection: &mut PgConnection,
    level: AggregationLevel,
    metric: MetricColumn,
    filter: &AggregateFilter,
    top: i64,
) -> Result<RankedSeries, StoreError> {
    if !MetricColumn::of_level(level).contains(&metric) {
        return Err(StoreError::InvalidArgument(format!(
            "{level} aggregates have no metric {}",
            metric.name()
        )));
    }
    let column = metric.name();
    let (table, database) = level_table(level);
    let query = |source| {
        let latest = latest_per_key(
            level,
            source,
            &format!("aggregate.{column} AS value"),
            // With no value in any row (a daily series of a change against a year earlier),
            // each key's latest row ranks it as well as a search for a value would: last.
            (metric.may_be_null(level) && metric.exists_for(filter.period_type)).then_some(column),
        );
        diesel::sql_query(format!(
            "WITH {latest},
         chosen AS (
             SELECT instance_id, database_name, count(*) OVER () AS total_lines,
                    row_number() OVER (ORDER BY value DESC NULLS LAST, instance_id,
                                                database_name) AS rank
             FROM latest
             ORDER BY rank
             LIMIT $8)
         SELECT chosen.total_lines, chosen.instance_id, instance.name AS instance_name,
                instance.db_type, chosen.database_name, point.period_start, point.value,
                point.data_count, point.expected_count, point.is_partial
         FROM chosen
         JOIN instances instance ON instance.id = chosen.instance_id
         CROSS JOIN LATERAL (
             SELECT aggregate.period_start, aggregate.{column}::text AS value,
                    aggregate.data_count, aggregate.expected_count, aggregate.is_partial
             FROM {table} aggregate
             WHERE aggregate.period_type = $1 AND aggregate.period_start BETWEEN $2 AND $3
               AND aggregate.period_start = ANY($7::date[])
               AND aggregate.instance_id = chosen.instance_id
               AND {database} = chosen.database_name
             OFFSET 0) point
         ORDER BY chosen.rank, point.period_start"
        ))
    };
    let rows: Vec<SeriesRow> = with_key_memory(connection, |connection| {
        let source = LatestSource::for_filter(connection, level, filter)?;
        // $7, the window's periods, also fetches the chosen lines' points: one descent of the
        // primary key per period and line (the `BETWEEN` keeps the partitions pruned). The
        // `OFFSET 0` keeps the lookup a subquery run per line with the line's whole key: as a
        // join, PostgreSQL looked the points up by instance alone and filtered the database
        // name afterwards, reading every database of the instance (3.5 of a 10 ms databases
        // series, docs/performance.md).
        Ok(bind_matching!(query(source), filter)
            .bind::<diesel::sql_types::BigInt, _>(top)
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
                data_count: row.data_count,
                completeness: Completeness {
                    expected_count: row.expected_count,
                    is_partial: row.is_partial,
                },
            })
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(RankedSeries {
        points,
        total_lines,
    })
}
