//! Housekeeping: partitions ahead and past the retention, and pruning what the store keeps
//! only for a while (claimed ticks, audit events, ended sign-in sessions).

use std::time::Duration;

use chrono::{Months, NaiveDate, Utc};

use capstats_store::partitions::{
    PartitionedTable, drop_partitions_before, ensure_partitions, months_between,
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

/// Creates the partitions of every size table from the month of `today` to `ahead_months`
/// later, and — when `retention_months` is not 0 — drops those entirely before the first month
/// kept (`retention_months` back from the month of `today`).
pub fn maintain_partitions(
    connection: &mut PgConnection,
    today: NaiveDate,
    ahead_months: u32,
    retention_months: u32,
) -> Result<PartitionReport, ServiceError> {
    let last = today
        .checked_add_months(Months::new(ahead_months))
        .ok_or_else(|| ServiceError::InvalidRequest("partition look-ahead out of range".into()))?;
    let created = ensure_partitions(
        connection,
        &PartitionedTable::ALL,
        months_between(today, last),
    )?;
    let dropped = match capstats_store::partitions::retention_start(today, retention_months) {
        Some(keep_from) => drop_partitions_before(connection, keep_from)?,
        None => Vec::new(),
    };
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
}

fn ago(retention: Duration) -> Result<chrono::DateTime<Utc>, ServiceError> {
    Ok(Utc::now()
        - chrono::Duration::from_std(retention)
            .map_err(|_| ServiceError::InvalidRequest("retention out of range".into()))?)
}

/// Deletes claimed ticks older than `retention` (keeping every schedule's latest tick, its
/// cursor), and audit events and ended sign-in sessions older than `audit_retention`. The job
/// runtime prunes its own job store beside it.
pub async fn prune_store(
    store_pool: &capstats_store::ConnectionPool,
    retention: Duration,
    audit_retention: Duration,
) -> Result<StorePruneSummary, ServiceError> {
    let before = ago(retention)?;
    let audit_before = ago(audit_retention)?;
    let (ticks, audit_events, sign_in_sessions) =
        capstats_store::run_blocking(store_pool, move |connection| {
            Ok::<_, ServiceError>((
                schedules::prune_ticks(connection, before)?,
                capstats_store::audit::prune(connection, audit_before)?,
                capstats_store::accounts::prune_sessions(connection, audit_before)?,
            ))
        })
        .await?;
    Ok(StorePruneSummary {
        ticks,
        audit_events,
        sign_in_sessions,
    })
}
