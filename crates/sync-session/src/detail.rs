//! The versioned JSON detail kept with each record.

use capacity_model::{AggregationLevel, Period};
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

/// The outcome of one level and period for one instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodOutcome {
    /// Database or instance level.
    pub level: AggregationLevel,
    /// The period computed.
    #[serde(flatten)]
    pub period: Period,
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

#[cfg(test)]
mod tests {
    use super::*;
    use capacity_model::PeriodType;

    #[test]
    fn detail_serializes_with_version_and_flat_periods() {
        let day = chrono::NaiveDate::from_ymd_opt(2025, 2, 3).unwrap();
        let period = Period::containing(PeriodType::Daily, day);
        let mut detail = RecordDetail::default();
        detail.push(PeriodOutcome {
            level: AggregationLevel::Database,
            period,
            rows_written: 3,
            rows_deleted: 1,
            duration_ms: 7,
            error: None,
        });
        let json = serde_json::to_value(&detail).unwrap();
        assert_eq!(json["version"], 1);
        assert_eq!(json["rows_written"], 3);
        assert_eq!(json["periods"][0]["period_start"], "2025-02-03");
        assert_eq!(json["periods"][0]["level"], "database");
        let back: RecordDetail = serde_json::from_value(json).unwrap();
        assert_eq!(back, detail);
    }
}
