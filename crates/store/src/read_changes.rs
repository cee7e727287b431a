//! Whether what the capacity reads show has changed since a snapshot: reads that remember
//! their result ask this instead of reading again.
//!
//! Every transaction that writes a table those reads use (aggregates and their row counts,
//! instance totals, the inventory, instances) records its id in `capacity_read_changes`
//! through a statement-level trigger (migration `…_capacity_read_changes`); dropping a
//! partition, which fires no trigger, records it here ([`record_change`]). A reader runs its
//! queries in one `REPEATABLE READ` snapshot ([`consistent_read`]) and keeps that snapshot
//! with the result. The result is still
//! the one the database would give while no transaction the snapshot did not see has committed
//! a change ([`changed_since`]). This holds whatever order writers commit in: a transaction
//! that began writing before the snapshot and committed after it is invisible to the snapshot
//! and committed now, so it counts — a version counter would need every writer to take one
//! row lock, or could be read ahead of a commit.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Text, Timestamptz};

use crate::StoreError;

/// The snapshot a [`consistent_read`] read in (PostgreSQL's `pg_snapshot`, as text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadSnapshot(String);

impl ReadSnapshot {
    /// The snapshot as PostgreSQL writes it (`xmin:xmax:xip,…`).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(QueryableByName)]
struct SnapshotRow {
    #[diesel(sql_type = Text)]
    snapshot: String,
}

/// Why a [`consistent_read`] failed: its transaction, or the read.
enum Failure<E> {
    Transaction(diesel::result::Error),
    Read(E),
}

impl<E> From<diesel::result::Error> for Failure<E> {
    fn from(error: diesel::result::Error) -> Self {
        Self::Transaction(error)
    }
}

/// Runs `read` in one read-only `REPEATABLE READ` transaction and returns its result with the
/// snapshot every one of its queries saw.
pub fn consistent_read<T, E>(
    connection: &mut PgConnection,
    read: impl FnOnce(&mut PgConnection) -> Result<T, E>,
) -> Result<(ReadSnapshot, T), E>
where
    E: From<StoreError>,
{
    connection
        .build_transaction()
        .repeatable_read()
        .read_only()
        .run(|connection| {
            // The transaction's first query fixes its snapshot; this one reads it.
            let row: SnapshotRow =
                diesel::sql_query("SELECT pg_current_snapshot()::text AS snapshot")
                    .get_result(connection)?;
            let found = read(connection).map_err(Failure::Read)?;
            Ok((ReadSnapshot(row.snapshot), found))
        })
        .map_err(|failure| match failure {
            Failure::Transaction(error) => E::from(StoreError::from(error)),
            Failure::Read(error) => error,
        })
}

/// Whether a transaction that `snapshot` did not see has since committed a change to what the
/// capacity reads show. One index range of the writers since the snapshot's oldest running
/// transaction.
pub fn changed_since(
    connection: &mut PgConnection,
    snapshot: &ReadSnapshot,
) -> Result<bool, StoreError> {
    let row: crate::sql::Exists = diesel::sql_query(
        "SELECT EXISTS (
             SELECT 1 FROM capacity_read_changes
             WHERE transaction_id >= pg_snapshot_xmin($1::pg_snapshot)::text::bigint
               AND NOT pg_visible_in_snapshot(transaction_id::text::xid8, $1::pg_snapshot)
         ) AS found",
    )
    .bind::<Text, _>(&snapshot.0)
    .get_result(connection)?;
    Ok(row.found)
}

/// Records that the current transaction changes what the capacity reads show, for a change
/// no trigger sees (dropping a partition).
pub fn record_change(connection: &mut PgConnection) -> Result<(), StoreError> {
    diesel::sql_query(
        "INSERT INTO capacity_read_changes (transaction_id)
         VALUES (pg_current_xact_id()::text::bigint)
         ON CONFLICT (transaction_id) DO NOTHING",
    )
    .execute(connection)?;
    Ok(())
}

/// Deletes the records of transactions that began writing before `before` (and have
/// committed: others' uncommitted records are not visible here), and returns how many.
///
/// A remembered result must be much younger than that: it could miss a record deleted after
/// it was taken, that is the commit, after the result's snapshot, of a transaction that had
/// been writing since before `before`. The API keeps results for minutes and the worker
/// prunes records a day old.
pub fn prune(connection: &mut PgConnection, before: DateTime<Utc>) -> Result<usize, StoreError> {
    Ok(
        diesel::sql_query("DELETE FROM capacity_read_changes WHERE recorded_at < $1")
            .bind::<Timestamptz, _>(before)
            .execute(connection)?,
    )
}
