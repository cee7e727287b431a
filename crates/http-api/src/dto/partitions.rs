//! Partitions of the size tables.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A partition with its size: the reference's fields first, capstats' after them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PartitionItem {
    /// The partition (`<table>_YYYY_MM`).
    pub name: String,
    /// The partitioned table.
    pub table: String,
    /// `stats` (a sample table) or `aggregations`.
    pub table_type: String,
    /// The table and month, for people: `database_size_stats 2026-11`.
    pub display_name: String,
    /// Size on disk, human-readable (`1.05 MB`).
    pub size: String,
    /// Size on disk, bytes.
    pub size_bytes: i64,
    /// Rows (PostgreSQL's estimate; 0 before the first ANALYZE).
    pub record_count: i64,
    /// First day it holds.
    pub date: NaiveDate,
    /// `healthy`, or `past_retention` when cleanup will drop it.
    pub status: String,
    /// The partitioned table.
    pub table_name: String,
    /// The partition.
    pub partition_name: String,
    /// First day it holds.
    pub range_start: NaiveDate,
    /// First day after it.
    pub range_end: NaiveDate,
    /// Size on disk, bytes.
    pub total_bytes: i64,
    /// Row estimate (null before the first ANALYZE).
    pub estimated_rows: Option<i64>,
}

/// Partitions of one table.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PartitionTableStatus {
    /// The table.
    pub table_name: String,
    /// Its partitions.
    pub partitions: i64,
    /// Their size, bytes.
    pub total_bytes: i64,
    /// Their rows (estimate).
    pub estimated_rows: i64,
    /// First month covered.
    pub oldest_month: Option<NaiveDate>,
    /// Last month covered.
    pub newest_month: Option<NaiveDate>,
    /// Months from this one to the look-ahead without a partition yet (created on demand).
    pub missing_ahead: Vec<NaiveDate>,
}

/// The partition overview.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PartitionStatus {
    /// Months of raw samples kept (0 = everything): `CAPSTATS_SAMPLE_RETENTION_MONTHS`.
    pub retention_months: u32,
    /// First month of samples kept; older sample partitions are dropped by cleanup, and older
    /// samples are refused.
    pub keep_from: Option<NaiveDate>,
    /// Months of aggregates kept (0 = everything): `CAPSTATS_AGGREGATE_RETENTION_MONTHS`.
    pub aggregate_retention_months: u32,
    /// First month of aggregates kept (by period start); older aggregation partitions are
    /// dropped by cleanup.
    pub aggregates_kept_from: Option<NaiveDate>,
    /// Partitions past their table's retention.
    pub past_retention: Vec<String>,
    /// Per table.
    pub tables: Vec<PartitionTableStatus>,
}

/// What a cleanup did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CleanupResult {
    /// Partitions created ahead.
    pub created: Vec<String>,
    /// Partitions dropped past the retention.
    pub dropped: Vec<String>,
}

/// `GET /partitions/info`: every partition and the totals.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PartitionOverview {
    /// The partitions, by table and month.
    pub partitions: Vec<PartitionItem>,
    /// How many.
    pub total_partitions: i64,
    /// Their size, bytes.
    pub total_size_bytes: i64,
    /// Their size, human-readable.
    pub total_size: String,
    /// Their rows (estimate).
    pub total_records: i64,
    /// The partitioned tables.
    pub tables: Vec<String>,
    /// `healthy`, or `warning` when partitions of the look-ahead are missing or some are past
    /// the retention.
    pub status: String,
    /// Partitions of the look-ahead months that do not exist yet.
    pub missing_partitions: Vec<String>,
}

/// `GET /partitions/statistics`: the totals and each table's figures.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PartitionStatistics {
    /// Partitions.
    pub total_partitions: i64,
    /// Their size, bytes.
    pub total_size_bytes: i64,
    /// Their size, human-readable.
    pub total_size: String,
    /// Their rows (estimate).
    pub total_records: i64,
    /// Per table.
    pub tables: Vec<PartitionTableStatus>,
}

/// One line of the core-metrics chart.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MetricDataset {
    /// What it counts.
    pub label: String,
    /// One value per label.
    pub data: Vec<i64>,
}

/// `GET /partitions/core-metrics`: samples stored per period, the reference's chart shape
/// (its camel-case keys included).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CoreMetrics {
    /// Period starts, oldest first.
    pub labels: Vec<NaiveDate>,
    /// Database samples and instance totals stored per period.
    pub datasets: Vec<MetricDataset>,
    /// How many labels.
    pub data_point_count: usize,
    /// The window: `7d`.
    pub time_range: String,
    /// The unit of the values.
    pub y_axis_label: String,
    /// A title for the chart.
    pub chart_title: String,
    /// The period type of the labels.
    pub period_type: String,
}

/// `POST /partitions`: the month to create the partitions of.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct PartitionRequest {
    /// Any day of the month (YYYY-MM-DD), this month or later.
    #[schema(example = "2027-01-01")]
    pub date: NaiveDate,
}

/// What `POST /partitions` did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedPartitions {
    /// The month.
    pub month: NaiveDate,
    /// Partitions created (empty when they all existed).
    pub created: Vec<String>,
}
