//! Closing sessions that cannot finish themselves: runs whose worker was lost, whose job was
//! killed or whose attempt failed, and runs a stopping worker leaves behind.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::*;
use crate::StoreError;
use crate::schema::sync_sessions;

/// Closes, as failed ("worker lost"), every running session whose last heartbeat is older than
/// `timeout`, and returns their ids with the reason recorded. Safe to run from several
/// processes: a session already closed by another is skipped.
pub fn fail_lost_sessions(
    connection: &mut PgConnection,
    timeout: std::time::Duration,
) -> Result<Vec<(i64, String)>, StoreError> {
    let cutoff = Utc::now()
        - chrono::Duration::from_std(timeout)
            .map_err(|_| StoreError::InvalidArgument("session timeout out of range".into()))?;
    let lost: Vec<(i64, Option<String>, Option<DateTime<Utc>>)> = sync_sessions::table
        .filter(sync_sessions::status.eq(SessionStatus::Running.as_str()))
        .filter(
            sync_sessions::heartbeat_at
                .lt(cutoff)
                .or(sync_sessions::heartbeat_at.is_null()),
        )
        .select((
            sync_sessions::id,
            sync_sessions::worker_name,
            sync_sessions::heartbeat_at,
        ))
        .load(connection)?;
    let mut closed = Vec::new();
    for (id, worker, heartbeat) in lost {
        let reason = format!(
            "worker lost: {} sent no heartbeat since {}",
            worker.as_deref().unwrap_or("an unknown worker"),
            heartbeat.map_or("it started".to_owned(), |at| at.to_rfc3339())
        );
        if fail_if_open(connection, id, &reason)? {
            closed.push((id, reason));
        }
    }
    Ok(closed)
}
/// Asks the open sessions of job `job_id` to stop (after the job was killed) and returns their
/// ids.
pub fn cancel_sessions_of_job(
    connection: &mut PgConnection,
    job_id: &str,
) -> Result<Vec<i64>, StoreError> {
    let open = open_sessions_of_job(connection, job_id)?;
    for id in &open {
        request_cancel(connection, *id)?;
    }
    Ok(open)
}

/// Closes, as failed with `reason`, the open (pending or running) sessions of job `job_id`
/// after one of its attempts failed, and returns their ids: the session tells the real error
/// at once instead of staying open until the sweeper takes its worker for lost, and the next
/// attempt records itself in a new session. A session closed meanwhile by its run is skipped.
pub fn fail_open_sessions_of_job(
    connection: &mut PgConnection,
    job_id: &str,
    reason: &str,
) -> Result<Vec<i64>, StoreError> {
    let open = open_sessions_of_job(connection, job_id)?;
    fail_each(connection, open, reason)
}

/// Closes, as failed with `reason`, the sessions running on worker `worker_name`: a worker
/// that stops with runs still in progress (its shutdown timeout passed) says so itself rather
/// than leaving them to look lost.
pub fn fail_running_sessions_of_worker(
    connection: &mut PgConnection,
    worker_name: &str,
    reason: &str,
) -> Result<Vec<i64>, StoreError> {
    let running: Vec<i64> = sync_sessions::table
        .filter(sync_sessions::worker_name.eq(worker_name))
        .filter(sync_sessions::status.eq(SessionStatus::Running.as_str()))
        .select(sync_sessions::id)
        .load(connection)?;
    fail_each(connection, running, reason)
}

/// Fails each of `ids` with `reason`, skipping sessions that ended meanwhile; returns those
/// it closed.
fn fail_each(
    connection: &mut PgConnection,
    ids: Vec<i64>,
    reason: &str,
) -> Result<Vec<i64>, StoreError> {
    let mut closed = Vec::new();
    for id in ids {
        if fail_if_open(connection, id, reason)? {
            closed.push(id);
        }
    }
    Ok(closed)
}

/// [`fail_session`], or `false` when the session has ended meanwhile (its run finished, or
/// another process closed it).
fn fail_if_open(connection: &mut PgConnection, id: i64, reason: &str) -> Result<bool, StoreError> {
    match fail_session(connection, id, reason) {
        Ok(()) => Ok(true),
        Err(StoreError::Transition(_)) => Ok(false),
        Err(error) => Err(error),
    }
}

/// The ids of the open (pending or running) sessions of job `job_id`.
fn open_sessions_of_job(
    connection: &mut PgConnection,
    job_id: &str,
) -> Result<Vec<i64>, StoreError> {
    Ok(sync_sessions::table
        .filter(sync_sessions::job_id.eq(job_id))
        .filter(sync_sessions::status.eq_any([
            SessionStatus::Pending.as_str(),
            SessionStatus::Running.as_str(),
        ]))
        .select(sync_sessions::id)
        .load(connection)?)
}
