//! Partitions of the size tables.

use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;

/// A partition with its size.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PartitionItem {
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
    /// Months of data kept (0 = everything).
    pub retention_months: u32,
    /// First month kept; older partitions are dropped by cleanup.
    pub keep_from: Option<NaiveDate>,
    /// Partitions older than that.
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
