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
        // Re-read under the row's lock: a heartbeat that committed since the read above keeps
        // its run (the lock waits for one in flight, and the condition is checked again on
        // the row as it then is).
        let still_lost = connection.transaction(|connection| {
            let lost: Option<i64> = sync_sessions::table
                .find(id)
                .filter(sync_sessions::status.eq(SessionStatus::Running.as_str()))
                .filter(
                    sync_sessions::heartbeat_at
                        .lt(cutoff)
                        .or(sync_sessions::heartbeat_at.is_null()),
                )
                .select(sync_sessions::id)
                .for_update()
                .first(connection)
                .optional()?;
            match lost {
                Some(_) => fail_if_open(connection, id, &reason),
                None => Ok(false),
            }
        })?;
        if still_lost {
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

/// What [`fail_attempt_sessions`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FailedAttempt {
    /// The sessions the attempt left open, now failed with the reason.
    pub closed: Vec<i64>,
    /// The pending session queued for the retry.
    pub queued: Option<i64>,
}

/// After an attempt of job `job_id` failed: closes its open (pending or running) sessions as
/// failed with `reason` — the session tells the real error at once instead of staying open
/// until the sweeper takes its worker for lost (a session closed meanwhile by its run is
/// skipped) — and, when the job will `retry`, queues the next attempt in a new pending session
/// like the job's latest one (kind, trigger, parameters, instances), which the retry adopts.
/// One transaction, under the lock equal requests take: while the job waits for its retry an
/// equal request finds the queued session instead of starting a second run.
pub fn fail_attempt_sessions(
    connection: &mut PgConnection,
    job_id: &str,
    reason: &str,
    retry: bool,
) -> Result<FailedAttempt, StoreError> {
    connection.transaction(|connection| {
        let latest = lock_latest_session_of_job(connection, job_id)?;
        let open = open_sessions_of_job(connection, job_id)?;
        let closed = fail_each(connection, open, reason)?;
        let queued = match latest {
            Some(latest) if retry => Some(queue_copy(connection, latest, job_id)?),
            _ => None,
        };
        Ok(FailedAttempt { closed, queued })
    })
}

/// Queues the next run of job `job_id` (an operator's retry of a finished job) in a pending
/// session like the job's latest one, unless one of its sessions is open; returns it. Call it
/// before the job is released to the workers, so that its first attempt runs in this session
/// rather than finding the last one (cancelled, if the job was killed while queued).
pub fn queue_session_for_job(
    connection: &mut PgConnection,
    job_id: &str,
) -> Result<Option<i64>, StoreError> {
    connection.transaction(|connection| {
        let Some(latest) = lock_latest_session_of_job(connection, job_id)? else {
            return Ok(None);
        };
        if !open_sessions_of_job(connection, job_id)?.is_empty() {
            return Ok(None);
        }
        queue_copy(connection, latest, job_id).map(Some)
    })
}

/// The newest session of job `job_id`, after taking the lock equal requests take on its work.
fn lock_latest_session_of_job(
    connection: &mut PgConnection,
    job_id: &str,
) -> Result<Option<Session>, StoreError> {
    let latest: Option<i64> = sync_sessions::table
        .filter(sync_sessions::job_id.eq(job_id))
        .order(sync_sessions::id.desc())
        .select(sync_sessions::id)
        .first(connection)
        .optional()?;
    let latest = latest
        .map(|id| super::get_session(connection, id))
        .transpose()?;
    if let Some(work) = latest
        .as_ref()
        .and_then(|session| session.parameters.get("work"))
    {
        super::lock_work(connection, work)?;
    }
    Ok(latest)
}

/// A new pending session of job `job_id` like `latest`: kind, trigger, parameters, instances.
fn queue_copy(
    connection: &mut PgConnection,
    latest: Session,
    job_id: &str,
) -> Result<i64, StoreError> {
    let instances: Vec<(InstanceId, String)> = super::session_records(connection, latest.id)?
        .into_iter()
        .map(|record| (record.instance_id, record.instance_name))
        .collect();
    let next = NewSession {
        sync_category: latest.sync_category,
        sync_type: latest.sync_type,
        triggered_by: latest.triggered_by,
        parameters: latest.parameters,
        job_id: Some(job_id.to_owned()),
        requested_by_token_id: latest.requested_by_token_id,
    };
    create_session(connection, &next, &instances)
}

/// The newest session of job `job_id` that no attempt has started: the one queued for its
/// next attempt — pending, or cancelled while it waited.
pub fn queued_session_of_job(
    connection: &mut PgConnection,
    job_id: &str,
) -> Result<Option<i64>, StoreError> {
    Ok(sync_sessions::table
        .filter(sync_sessions::job_id.eq(job_id))
        .filter(sync_sessions::started_at.is_null())
        .order(sync_sessions::id.desc())
        .select(sync_sessions::id)
        .first(connection)
        .optional()?)
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
