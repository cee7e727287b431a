//! Housekeeping: partitions ahead and past the retention, and pruning what the store keeps
//! only for a while (claimed ticks, audit events, ended sign-in sessions).

use std::time::Duration;

use chrono::{Months, NaiveDate, Utc};

use capstats_store::partitions::{
    PartitionedTable, drop_partitions_before, ensure_partitions, months_between, retention_start,
};
use capstats_store::{PgConnection, schedules};

use crate::ServiceError;

/// What `maintain_partitions` did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartitionReport {
    /// Partitions created.
    pub created: Vec<String>,
    /// Partitions dropped.
    pub dropped: Vec<String>,
}

/// How long each kind of data is kept, in months back from the month of the day (0: kept
/// forever).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Raw samples (`CAPSTATS_SAMPLE_RETENTION_MONTHS`).
    pub sample_months: u32,
    /// Aggregates (`CAPSTATS_AGGREGATE_RETENTION_MONTHS`), at least as long as the samples.
    pub aggregate_months: u32,
}

impl Retention {
    /// The retention the settings name.
    pub fn of(settings: &capstats_settings::Settings) -> Self {
        Self {
            sample_months: settings.sample_retention_months,
            aggregate_months: settings.aggregate_retention_months,
        }
    }

    /// The first day whose samples are kept on `today` (`None`: all of them): older samples
    /// are refused, and periods starting earlier are not computed any more.
    pub fn samples_kept_from(self, today: NaiveDate) -> Option<NaiveDate> {
        retention_start(today, self.sample_months)
    }

    /// The dates a new sample may have on `today`: not after it, not before the samples' first
    /// kept day.
    pub fn sample_dates(self, today: NaiveDate) -> capstats_capacity_model::SampleDates {
        capstats_capacity_model::SampleDates {
            today,
            kept_from: self.samples_kept_from(today),
        }
    }

    /// The first day whose aggregates (by period start) are kept on `today`.
    pub fn aggregates_kept_from(self, today: NaiveDate) -> Option<NaiveDate> {
        retention_start(today, self.aggregate_months)
    }
}

/// Creates the partitions of every size table from the month of `today` to `ahead_months`
/// later, and drops the sample tables' partitions before the samples' first kept month and
/// the aggregation tables' before the aggregates' (each only when its retention is not 0).
pub fn maintain_partitions(
    connection: &mut PgConnection,
    today: NaiveDate,
    ahead_months: u32,
    retention: Retention,
) -> Result<PartitionReport, ServiceError> {
    let last = today
        .checked_add_months(Months::new(ahead_months))
        .ok_or_else(|| ServiceError::InvalidRequest("partition look-ahead out of range".into()))?;
    let created = ensure_partitions(
        connection,
        &PartitionedTable::ALL,
        months_between(today, last),
    )?;
    let mut dropped = Vec::new();
    for (tables, keep_from) in [
        (
            &PartitionedTable::SAMPLES,
            retention.samples_kept_from(today),
        ),
        (
            &PartitionedTable::AGGREGATES,
            retention.aggregates_kept_from(today),
        ),
    ] {
        if let Some(keep_from) = keep_from {
            dropped.extend(drop_partitions_before(connection, tables, keep_from)?);
        }
    }
    Ok(PartitionReport { created, dropped })
}

/// What [`prune_store`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StorePruneSummary {
    /// Claimed ticks removed.
    pub ticks: usize,
    /// Audit events past their retention removed.
    pub audit_events: usize,
    /// Ended or expired sign-in sessions past the audit retention removed.
    pub sign_in_sessions: usize,
    /// Records of writers older than [`READ_CHANGES_KEPT`] removed.
    pub read_changes: usize,
}

/// How long the records of transactions that changed what the capacity reads show are kept
/// (`capstats_store::read_changes`): far longer than the API remembers a result.
pub const READ_CHANGES_KEPT: Duration = Duration::from_secs(86_400);

fn ago(retention: Duration) -> Result<chrono::DateTime<Utc>, ServiceError> {
    Ok(Utc::now()
        - chrono::Duration::from_std(retention)
            .map_err(|_| ServiceError::InvalidRequest("retention out of range".into()))?)
}

/// Deletes claimed ticks older than `retention` (keeping every schedule's latest tick, its
/// cursor), audit events and ended sign-in sessions older than `audit_retention`, and the
/// records of read changes older than [`READ_CHANGES_KEPT`]. The job runtime prunes its own
/// job store beside it.
pub async fn prune_store(
    store_pool: &capstats_store::ConnectionPool,
    retention: Duration,
    audit_retention: Duration,
) -> Result<StorePruneSummary, ServiceError> {
    let before = ago(retention)?;
    let audit_before = ago(audit_retention)?;
    let read_changes_before = ago(READ_CHANGES_KEPT)?;
    capstats_store::run_blocking(store_pool, move |connection| {
        Ok::<_, ServiceError>(StorePruneSummary {
            ticks: schedules::prune_ticks(connection, before)?,
            audit_events: capstats_store::audit::prune(connection, audit_before)?,
            sign_in_sessions: capstats_store::accounts::prune_sessions(connection, audit_before)?,
            read_changes: capstats_store::read_changes::prune(connection, read_changes_before)?,
        })
    })
    .await
}
