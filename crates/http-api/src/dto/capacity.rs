//! Capacity reads (aggregates, summaries, chart series) and writes (sample batches).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use capstats_capacity_model::{
    DatabaseSizeAggregate, DbType, Decimal, InstanceSizeAggregate, PeriodType, TrendDirection,
};

/// An instance as a list item nests it (the reference's shape).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InstanceReference {
    /// Its id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// Its engine.
    pub db_type: DbType,
}

impl From<&capstats_store::aggregates::InstanceLabel> for InstanceReference {
    fn from(instance: &capstats_store::aggregates::InstanceLabel) -> Self {
        Self {
            id: instance.id.0,
            name: instance.name.clone(),
            db_type: instance.db_type,
        }
    }
}

/// An instance-level aggregate with its instance.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InstanceAggregateItem {
    /// A stable identifier of the row, from its key:
    /// `{period_type}:{period_start}:{instance_id}`.
    #[schema(example = "weekly:2026-11-23:7")]
    pub id: String,
    /// The instance.
    pub instance_id: i64,
    /// The instance again, nested as the reference's clients read it.
    pub instance: InstanceReference,
    /// Its name.
    pub instance_name: String,
    /// Its engine.
    pub db_type: DbType,
    /// The period type.
    pub period_type: PeriodType,
    /// First day of the period.
    pub period_start: NaiveDate,
    /// Last day of the period.
    pub period_end: NaiveDate,
    /// Mean daily total size, MB.
    pub total_size_mb: i64,
    /// Mean size per database (Σ totals / Σ database counts), MB.
    pub avg_size_mb: Option<i64>,
    /// Largest daily total, MB.
    pub max_size_mb: i64,
    /// Smallest daily total, MB.
    pub min_size_mb: i64,
    /// Days sampled.
    pub data_count: i64,
    /// Days the period should have samples for: all its days once it has ended, its days up
    /// to today while it runs (stored with the row, refreshed as the days pass).
    pub expected_count: i64,
    /// Whether the period is partial: it has not ended, or it has fewer samples than
    /// `expected_count` (a missed day must not read as zero growth).
    pub is_partial: bool,
    /// Mean daily database count, rounded.
    pub database_count: i64,
    /// Mean daily database count, two decimals.
    #[serde(serialize_with = "crate::dto::numbers::exact")]
    #[schema(value_type = f64)]
    pub avg_database_count: Decimal,
    /// Largest daily database count.
    pub max_database_count: i64,
    /// Smallest daily database count.
    pub min_database_count: i64,
    /// Change of the mean total against the previous period, MB.
    pub total_size_change_mb: Option<i64>,
    /// That change in percent.
    #[serde(serialize_with = "crate::dto::numbers::exact_optional")]
    #[schema(value_type = Option<f64>)]
    pub total_size_change_percent: Option<Decimal>,
    /// Change of the mean database count.
    pub database_count_change: Option<i64>,
    /// That change in percent.
    #[serde(serialize_with = "crate::dto::numbers::exact_optional")]
    #[schema(value_type = Option<f64>)]
    pub database_count_change_percent: Option<Decimal>,
    /// Equal to `total_size_change_percent`.
    #[serde(serialize_with = "crate::dto::numbers::exact_optional")]
    #[schema(value_type = Option<f64>)]
    pub growth_rate: Option<Decimal>,
    /// `growing` above +5 %, `shrinking` below −5 %, else `stable`.
    pub trend_direction: Option<TrendDirection>,
    /// Change of the mean total against the same period a year earlier (52 weeks, or twelve
    /// months), MB; null for daily periods and when that period has no samples.
    pub yoy_change_mb: Option<i64>,
    /// That change in percent.
    #[serde(serialize_with = "crate::dto::numbers::exact_optional")]
    #[schema(value_type = Option<f64>)]
    pub yoy_change_percent: Option<Decimal>,
}

impl InstanceAggregateItem {
    /// From a stored aggregate and its instance.
    pub fn new(
        aggregate: InstanceSizeAggregate,
        instance: capstats_store::aggregates::InstanceLabel,
    ) -> Self {
        let completeness = aggregate.completeness;
        Self {
            id: format!(
                "{}:{}:{}",
                aggregate.period.period_type(),
                aggregate.period.start(),
                instance.id.0
            ),
            instance: InstanceReference::from(&instance),
            instance_id: instance.id.0,
            instance_name: instance.name,
            db_type: instance.db_type,
            period_type: aggregate.period.period_type(),
            period_start: aggregate.period.start(),
            period_end: aggregate.period.end(),
            total_size_mb: aggregate.total_size_mb,
            avg_size_mb: aggregate.avg_size_mb,
            max_size_mb: aggregate.max_size_mb,
            min_size_mb: aggregate.min_size_mb,
            data_count: aggregate.data_count,
            expected_count: completeness.expected_count,
            is_partial: completeness.is_partial,
            database_count: aggregate.database_count,
            avg_database_count: aggregate.avg_database_count,
            max_database_count: aggregate.max_database_count,
            min_database_count: aggregate.min_database_count,
            total_size_change_mb: aggregate.total_size_change_mb,
            total_size_change_percent: aggregate.total_size_change_percent,
            database_count_change: aggregate.database_count_change,
            database_count_change_percent: aggregate.database_count_change_percent,
            growth_rate: aggregate.growth_rate,
            trend_direction: aggregate.trend_direction,
            yoy_change_mb: aggregate.yoy_change_mb,
            yoy_change_percent: aggregate.yoy_change_percent,
        }
    }
}

/// A database-level aggregate with its instance.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DatabaseAggregateItem {
    /// A stable identifier of the row, from its key:
    /// `{period_type}:{period_start}:{instance_id}:{database_name}`.
    #[schema(example = "weekly:2026-11-23:7:orders")]
    pub id: String,
    /// The instance.
    pub instance_id: i64,
    /// The instance again, nested as the reference's clients read it.
    pub instance: InstanceReference,
    /// Its name.
    pub instance_name: String,
    /// Its engine.
    pub db_type: DbType,
    /// The database.
    pub database_name: String,
    /// The period type.
    pub period_type: PeriodType,
    /// First day of the period.
    pub period_start: NaiveDate,
    /// Last day of the period.
    pub period_end: NaiveDate,
    /// Mean size, MB.
    pub avg_size_mb: i64,
    /// Largest size, MB.
    pub max_size_mb: i64,
    /// Smallest size, MB.
    pub min_size_mb: i64,
    /// Samples (days).
    pub data_count: i64,
    /// Days the period should have samples for: all its days once it has ended, its days up
    /// to today while it runs (stored with the row, refreshed as the days pass).
    pub expected_count: i64,
    /// Whether the period is partial: it has not ended, or it has fewer samples than
    /// `expected_count` (a missed day must not read as zero growth).
    pub is_partial: bool,
    /// Mean data size, MB.
    pub avg_data_size_mb: Option<i64>,
    /// Largest data size, MB.
    pub max_data_size_mb: Option<i64>,
    /// Smallest data size, MB.
    pub min_data_size_mb: Option<i64>,
    /// Mean log size, MB.
    pub avg_log_size_mb: Option<i64>,
    /// Largest log size, MB.
    pub max_log_size_mb: Option<i64>,
    /// Smallest log size, MB.
    pub min_log_size_mb: Option<i64>,
    /// Change of the mean size against the previous period, MB.
    pub size_change_mb: Option<i64>,
    /// That change in percent.
    #[serde(serialize_with = "crate::dto::numbers::exact_optional")]
    #[schema(value_type = Option<f64>)]
    pub size_change_percent: Option<Decimal>,
    /// Change of the mean data size, MB.
    pub data_size_change_mb: Option<i64>,
    /// That change in percent.
    #[serde(serialize_with = "crate::dto::numbers::exact_optional")]
    #[schema(value_type = Option<f64>)]
    pub data_size_change_percent: Option<Decimal>,
    /// Change of the mean log size, MB.
    pub log_size_change_mb: Option<i64>,
    /// That change in percent.
    #[serde(serialize_with = "crate::dto::numbers::exact_optional")]
    #[schema(value_type = Option<f64>)]
    pub log_size_change_percent: Option<Decimal>,
    /// Equal to `size_change_percent`.
    #[serde(serialize_with = "crate::dto::numbers::exact_optional")]
    #[schema(value_type = Option<f64>)]
    pub growth_rate: Option<Decimal>,
    /// Change of the mean size against the same period a year earlier (52 weeks, or twelve
    /// months), MB; null for daily periods and when that period has no samples.
    pub yoy_change_mb: Option<i64>,
    /// That change in percent.
    #[serde(serialize_with = "crate::dto::numbers::exact_optional")]
    #[schema(value_type = Option<f64>)]
    pub yoy_change_percent: Option<Decimal>,
    /// Change of the mean data size against a year earlier, MB.
    pub yoy_data_change_mb: Option<i64>,
    /// That change in percent.
    #[serde(serialize_with = "crate::dto::numbers::exact_optional")]
    #[schema(value_type = Option<f64>)]
    pub yoy_data_change_percent: Option<Decimal>,
    /// Change of the mean log size against a year earlier, MB.
    pub yoy_log_change_mb: Option<i64>,
    /// That change in percent.
    #[serde(serialize_with = "crate::dto::numbers::exact_optional")]
    #[schema(value_type = Option<f64>)]
    pub yoy_log_change_percent: Option<Decimal>,
}

impl DatabaseAggregateItem {
    /// From a stored aggregate and its instance.
    pub fn new(
        aggregate: DatabaseSizeAggregate,
        instance: capstats_store::aggregates::InstanceLabel,
    ) -> Self {
        let completeness = aggregate.completeness;
        Self {
            id: format!(
                "{}:{}:{}:{}",
                aggregate.period.period_type(),
                aggregate.period.start(),
                instance.id.0,
                aggregate.database_name
            ),
            instance: InstanceReference::from(&instance),
            instance_id: instance.id.0,
            instance_name: instance.name,
            db_type: instance.db_type,
            database_name: aggregate.database_name,
            period_type: aggregate.period.period_type(),
            period_start: aggregate.period.start(),
            period_end: aggregate.period.end(),
            avg_size_mb: aggregate.avg_size_mb,
            max_size_mb: aggregate.max_size_mb,
            min_size_mb: aggregate.min_size_mb,
            data_count: aggregate.data_count,
            expected_count: completeness.expected_count,
            is_partial: completeness.is_partial,
            avg_data_size_mb: aggregate.avg_data_size_mb,
            max_data_size_mb: aggregate.max_data_size_mb,
            min_data_size_mb: aggregate.min_data_size_mb,
            avg_log_size_mb: aggregate.avg_log_size_mb,
            max_log_size_mb: aggregate.max_log_size_mb,
            min_log_size_mb: aggregate.min_log_size_mb,
            size_change_mb: aggregate.size_change_mb,
            size_change_percent: aggregate.size_change_percent,
            data_size_change_mb: aggregate.data_size_change_mb,
            data_size_change_percent: aggregate.data_size_change_percent,
            log_size_change_mb: aggregate.log_size_change_mb,
            log_size_change_percent: aggregate.log_size_change_percent,
            growth_rate: aggregate.growth_rate,
            yoy_change_mb: aggregate.yoy_change_mb,
            yoy_change_percent: aggregate.yoy_change_percent,
            yoy_data_change_mb: aggregate.yoy_data_change_mb,
            yoy_data_change_percent: aggregate.yoy_data_change_percent,
            yoy_log_change_mb: aggregate.yoy_log_change_mb,
            yoy_log_change_percent: aggregate.yoy_log_change_percent,
        }
    }
}

/// The date window a read covered.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Window {
    /// First day.
    pub start_date: NaiveDate,
    /// Last day.
    pub end_date: NaiveDate,
}

/// An instance named in a summary.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NamedSize {
    /// The instance.
    pub instance_id: i64,
    /// Its name.
    pub instance_name: String,
    /// The database, for database summaries.
    pub database_name: Option<String>,
    /// Its size, MB.
    pub size_mb: i64,
}

/// `data` of a summary: the reference's shape, the figures under `summary`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Summary<T> {
    /// The figures.
    pub summary: T,
}

/// The cards of the instances page: each instance's latest daily sample in the window, summed,
/// and the growth from each instance's earliest sample in the window. The reference's keys
/// first, capstats' cards after them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InstancesSummary {
    /// Instances with samples in the window, deactivated and deleted ones included unless
    /// `include_inactive=false`.
    pub total_instances: i64,
    /// Σ latest database counts.
    pub total_databases: i64,
    /// Σ latest total sizes, MB.
    pub total_size_mb: i64,
    /// The mean of the latest total sizes, MB (two decimals; 0 without instances).
    #[serde(serialize_with = "crate::dto::numbers::exact")]
    #[schema(value_type = f64)]
    pub avg_size_mb: Decimal,
    /// The largest latest total size, MB (0 without instances).
    pub max_size_mb: i64,
    /// The growth in percent of Σ earliest (two decimals; null when Σ earliest is 0).
    #[serde(serialize_with = "crate::dto::numbers::exact_optional")]
    #[schema(value_type = Option<f64>)]
    pub growth_rate: Option<Decimal>,
    /// The period type asked for (the figures come from daily samples whatever it is).
    pub period_type: PeriodType,
    /// Where the figures come from: `instance_size_stats`, the daily instance totals.
    pub source: String,
    /// The window.
    pub window: Window,
    /// Σ latest − Σ earliest total sizes, MB.
    pub growth_mb: i64,
    /// Whether the window reaches today, whose samples may still be coming: its figures may
    /// include a partial day.
    pub includes_partial_periods: bool,
    /// The instance with the largest latest total.
    pub largest: Option<NamedSize>,
}

/// The cards of the databases page: each database's latest period in the window, summed. The
/// reference's keys first, capstats' cards after them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DatabasesSummary {
    /// Databases with an aggregate in the window.
    pub total_databases: i64,
    /// Instances they belong to, deactivated and deleted ones included unless
    /// `include_inactive=false`.
    pub total_instances: i64,
    /// Σ mean sizes of their latest periods, MB.
    pub total_size_mb: i64,
    /// The mean of those mean sizes, MB (two decimals; 0 without databases).
    #[serde(serialize_with = "crate::dto::numbers::exact")]
    #[schema(value_type = f64)]
    pub avg_size_mb: Decimal,
    /// The largest `max_size_mb` of those periods, MB (0 without databases).
    pub max_size_mb: i64,
    /// Σ size changes of those periods in percent of the sizes before them (two decimals;
    /// null when those sum to 0).
    #[serde(serialize_with = "crate::dto::numbers::exact_optional")]
    #[schema(value_type = Option<f64>)]
    pub growth_rate: Option<Decimal>,
    /// The period type.
    pub period_type: PeriodType,
    /// Where the figures come from: `database_size_aggregations`.
    pub source: String,
    /// The window.
    pub window: Window,
    /// Σ size changes of their latest periods, MB (databases without a previous period count 0).
    pub size_change_mb: i64,
    /// Whether one of the latest periods summed is partial (`is_partial` of the list items:
    /// it has not ended, or it misses days).
    pub includes_partial_periods: bool,
    /// The largest database by its latest mean size.
    pub largest: Option<NamedSize>,
}

/// One line of a chart.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SeriesLine {
    /// The instance.
    pub instance_id: i64,
    /// Its name.
    pub instance_name: String,
    /// Its engine.
    pub db_type: DbType,
    /// The database, for database series.
    pub database_name: Option<String>,
    /// One value per label; null where the period has no aggregate (a gap, not a zero).
    #[serde(serialize_with = "crate::dto::numbers::exact_values")]
    #[schema(value_type = Vec<Option<f64>>)]
    pub values: Vec<Option<Decimal>>,
    /// One flag per label: whether that point is partial (its period has not ended, or it has
    /// fewer samples than days so far); false where there is no point.
    pub partial: Vec<bool>,
    /// One count per label: the point's daily samples; null where there is no point.
    pub data_counts: Vec<Option<i64>>,
}

/// A chart's data: the periods as labels and one line per key, ranked by the last value.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Series {
    /// The period type.
    pub period_type: PeriodType,
    /// The metric plotted.
    pub metric: String,
    /// Its unit: `MB`, `%` or `count`.
    pub unit: String,
    /// Period starts, oldest first.
    pub labels: Vec<NaiveDate>,
    /// Per label, the days a complete point of that period has (so far, for the current
    /// period): a point with fewer `data_counts` is partial.
    pub expected_counts: Vec<i64>,
    /// The top lines, largest latest value first.
    pub series: Vec<SeriesLine>,
    /// How many lines were asked for.
    pub top: i64,
    /// How many keys had data in the window.
    pub total_series: i64,
    /// Whether lines were left out (more keys than `top`).
    pub truncated: bool,
}

/// `POST /capacity/stats`: a batch of database samples.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct IngestRequest {
    /// The samples, 1 to 10,000; no instance, database and date twice.
    #[schema(min_items = 1, max_items = 10000)]
    pub items: Vec<IngestSample>,
}

/// One database's size on one business date.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct IngestSample {
    /// The instance (must exist and be active).
    pub instance_id: i64,
    /// The database's name on that instance (1–255 characters, not only spaces, no control
    /// characters).
    #[schema(min_length = 1, max_length = 255, pattern = "{name}")]
    pub database_name: String,
    /// The business date the size describes (not after today in the business time zone).
    pub collected_date: NaiveDate,
    /// Total size in MiB (0 to 2^40).
    #[schema(minimum = 0, maximum = 1099511627776_i64)]
    pub size_mb: i64,
    /// Data files in MiB (≥ 0, at most `size_mb`), if known.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1099511627776_i64)]
    pub data_size_mb: Option<i64>,
    /// Log files in MiB (≥ 0, at most `size_mb`), if known.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1099511627776_i64)]
    pub log_size_mb: Option<i64>,
    /// When it was measured; the time of the request when absent.
    #[serde(default)]
    pub collected_at: Option<DateTime<Utc>>,
}

/// What an accepted batch changed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IngestResult {
    /// Items in the batch.
    pub items: i64,
    /// Sample rows inserted or replaced.
    pub samples_written: i64,
    /// `(instance, date)` totals recomputed.
    pub instance_days_refreshed: i64,
    /// Inventory rows created or updated.
    pub databases_recorded: i64,
    /// Ledger entries (level, period type, period) marked for recomputation.
    pub periods_marked_stale: i64,
}
