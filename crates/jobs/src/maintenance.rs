//! Housekeeping: partitions ahead and past the retention, and pruning the job store.

use std::time::Duration;

use chrono::{Months, NaiveDate, Utc};
use sqlx::PgPool;

use store::partitions::{
    PartitionedTable, drop_partitions_before, ensure_partitions, months_between,
};
use store::{PgConnection, schedules};

use crate::JobError;
use crate::job_store;

/// What `maintain_partitions` did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartitionReport {
    /// Partitions created.
    pub created: Vec<String>,
    /// Partitions dropped.
    pub dropped: Vec<String>,
}

/// Creates the partitions of every size table from the month of `today` to `ahead_months`
/// later, and — when `retention_months` is not 0 — drops those entirely before the first month
/// kept (`retention_months` back from the month of `today`).
pub fn maintain_partitions(
    connection: &mut PgConnection,
    today: NaiveDate,
    ahead_months: u32,
    retention_months: u32,
) -> Result<PartitionReport, JobError> {
    let last = today
        .checked_add_months(Months::new(ahead_months))
        .ok_or_else(|| JobError::InvalidRequest("partition look-ahead out of range".into()))?;
    let created = ensure_partitions(
        connection,
        &PartitionedTable::ALL,
        months_between(today, last),
    )?;
    let dropped = match store::partitions::retention_start(today, retention_months) {
        Some(keep_from) => drop_partitions_before(connection, keep_from)?,
        None => Vec::new(),
    };
    Ok(PartitionReport { created, dropped })
}

/// What `prune_job_store` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PruneSummary {
    /// Jobs and workers removed from the job store.
    pub job_store: job_store::PruneReport,
    /// Claimed ticks removed.
    pub ticks: usize,
    /// Audit events past their retention removed.
    pub audit_events: usize,
    /// Ended or expired sign-in sessions past the audit retention removed.
    pub sign_in_sessions: usize,
}

fn ago(retention: Duration) -> Result<chrono::DateTime<Utc>, JobError> {
    Ok(Utc::now()
        - chrono::Duration::from_std(retention)
            .map_err(|_| JobError::InvalidRequest("retention out of range".into()))?)
}

/// Deletes finished jobs, gone workers and claimed ticks older than `retention` (keeping every
/// schedule's latest tick, its cursor), and audit events and ended sign-in sessions older than
/// `audit_retention`.
pub async fn prune_job_store(
    pool: &PgPool,
    store_pool: &store::ConnectionPool,
    retention: Duration,
    audit_retention: Duration,
) -> Result<PruneSummary, JobError> {
    let job_store = job_store::prune(pool, retention).await?;
    let before = ago(retention)?;
    let audit_before = ago(audit_retention)?;
    let (ticks, audit_events, sign_in_sessions) =
        store::run_blocking(store_pool, move |connection| {
            Ok((
                schedules::prune_ticks(connection, before)?,
                store::audit::prune(connection, audit_before)?,
                store::accounts::prune_sessions(connection, audit_before)?,
            ))
        })
        .await?;
    Ok(PruneSummary {
        job_store,
        ticks,
        audit_events,
        sign_in_sessions,
    })
}
