//! The versioned JSON detail kept with each record.

use capstats_capacity_model::{AggregationLevel, Period, PeriodType};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// What happened to one instance in a session, stored as JSON in
/// `sync_instance_records.detail`. The `version` field lets readers handle older rows when
/// the shape changes; this is version 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordDetail {
    /// Format version of this detail.
    pub version: u32,
    /// One entry per level and period processed for the instance.
    pub periods: Vec<PeriodOutcome>,
    /// Aggregate rows written (inserted or updated) for the instance.
    pub rows_written: u64,
    /// Aggregate rows removed because their key had no samples any more.
    pub rows_deleted: u64,
    /// Wall time spent on the instance's statements, in milliseconds.
    pub duration_ms: u64,
}

impl RecordDetail {
    /// The version this build writes.
    pub const CURRENT_VERSION: u32 = 1;

    /// Adds one period's outcome and its counts to the totals.
    pub fn push(&mut self, outcome: PeriodOutcome) {
        self.rows_written += outcome.rows_written;
        self.rows_deleted += outcome.rows_deleted;
        self.duration_ms += outcome.duration_ms;
        self.periods.push(outcome);
    }
}

impl Default for RecordDetail {
    fn default() -> Self {
        Self {
            version: Self::CURRENT_VERSION,
            periods: Vec::new(),
            rows_written: 0,
            rows_deleted: 0,
            duration_ms: 0,
        }
    }
}

/// The outcome of one level and a run of consecutive periods of one type for one instance
/// (a scheduled run has one period per type; a backfill batches many).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodOutcome {
    /// Database or instance level.
    pub level: AggregationLevel,
    /// The type of the periods.
    pub period_type: PeriodType,
    /// Start of the first period.
    pub period_start: NaiveDate,
    /// End of the last period.
    pub period_end: NaiveDate,
    /// How many periods the outcome covers.
    pub period_count: u32,
    /// Rows written for the instance.
    pub rows_written: u64,
    /// Rows removed for the instance.
    pub rows_deleted: u64,
    /// The instance's share of the statement's wall time, in milliseconds.
    pub duration_ms: u64,
    /// The error, when this level and period failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl PeriodOutcome {
    /// An outcome covering the consecutive periods `first ..= last` (of one type) with no rows
    /// counted yet.
    pub fn covering(level: AggregationLevel, first: Period, last: Period) -> Self {
        let mut period_count = 0;
        let mut period = first;
        while period.start() <= last.start() {
            period_count += 1;
            period = period.next();
        }
        Self {
            level,
            period_type: first.period_type(),
            period_start: first.start(),
            period_end: last.end(),
            period_count,
            rows_written: 0,
            rows_deleted: 0,
            duration_ms: 0,
            error: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use capstats_capacity_model::PeriodType;

    #[test]
    fn detail_serializes_with_version_and_flat_periods() {
        let day = chrono::NaiveDate::from_ymd_opt(2025, 2, 3).unwrap();
        let period = Period::containing(PeriodType::Daily, day);
        let mut detail = RecordDetail::default();
        detail.push(PeriodOutcome {
            rows_written: 3,
            rows_deleted: 1,
            duration_ms: 7,
            ..PeriodOutcome::covering(AggregationLevel::Database, period, period.next())
        });
        let json = serde_json::to_value(&detail).unwrap();
        assert_eq!(json["version"], 1);
        assert_eq!(json["rows_written"], 3);
        assert_eq!(json["periods"][0]["period_start"], "2025-02-03");
        assert_eq!(json["periods"][0]["level"], "database");
        assert_eq!(json["periods"][0]["period_end"], "2025-02-04");
        assert_eq!(json["periods"][0]["period_count"], 2);
        let back: RecordDetail = serde_json::from_value(json).unwrap();
        assert_eq!(back, detail);
    }
}
