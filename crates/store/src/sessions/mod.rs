//! Run history: sync sessions and their per-instance records, changed only along the
//! transitions `sync-session` allows. Every status update is guarded by the allowed
//! predecessor statuses, so a late or repeated writer cannot undo a final status, and the
//! session's counters and progress are recomputed from the records after every change.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Jsonb, Nullable, Text};

use capstats_capacity_model::{Decimal, InstanceId};
use capstats_sync_session::{
    Counters, RecordDetail, RecordStatus, SessionStatus, SyncCategory, SyncType, share_done,
};

use crate::StoreError;
use crate::schema::{sync_instance_records, sync_sessions};

/// A session to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSession {
    /// Aggregation or capacity collection.
    pub sync_category: SyncCategory,
    /// Scheduled or manual.
    pub sync_type: SyncType,
    /// Who or what started it: a schedule name, `cli`, `api:<user>`.
    pub triggered_by: String,
    /// The run's parameters as JSON.
    pub parameters: serde_json::Value,
    /// The job-store id of the job executing it, if any.
    pub job_id: Option<String>,
    /// The API token the run was requested with, if any.
    pub requested_by_token_id: Option<i64>,
}

/// A session as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Session {
    /// Its id.
    pub id: i64,
    /// Aggregation or capacity collection.
    pub sync_category: SyncCategory,
    /// Scheduled or manual.
    pub sync_type: SyncType,
    /// Its status.
    pub status: SessionStatus,
    /// Who or what started it.
    pub triggered_by: String,
    /// The API token it was requested with, if any.
    pub requested_by_token_id: Option<i64>,
    /// The run's parameters.
    pub parameters: serde_json::Value,
    /// Records in the session.
    pub total_instances: u64,
    /// Records completed.
    pub successful_instances: u64,
    /// Records failed.
    pub failed_instances: u64,
    /// Records cancelled.
    pub cancelled_instances: u64,
    /// Finished records in percent.
    pub progress_percentage: Decimal,
    /// Why it failed, when it failed as a whole.
    pub error_message: Option<String>,
    /// The worker executing it.
    pub worker_name: Option<String>,
    /// The job executing it.
    pub job_id: Option<String>,
    /// Last sign of life from its worker.
    pub heartbeat_at: Option<DateTime<Utc>>,
    /// When a cancellation was requested.
    pub cancel_requested_at: Option<DateTime<Utc>>,
    /// When a worker started it.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub completed_at: Option<DateTime<Utc>>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// One instance's record.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SessionRecord {
    /// The instance.
    pub instance_id: InstanceId,
    /// Its name when the session was created.
    pub instance_name: String,
    /// Its status.
    pub status: RecordStatus,
    /// Rows written for it.
    pub items_synced: i64,
    /// Why it failed.
    pub error_message: Option<String>,
    /// What was done, as versioned JSON.
    pub detail: Option<RecordDetail>,
    /// When work on it started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub completed_at: Option<DateTime<Utc>>,
}

/// The final outcome of one record.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordOutcome {
    /// The instance.
    pub instance_id: InstanceId,
    /// Completed or failed.
    pub status: RecordStatus,
    /// Rows written for it.
    pub items_synced: i64,
    /// The error, for a failed record.
    pub error_message: Option<String>,
    /// What was done.
    pub detail: RecordDetail,
}

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("sync session data is inconsistent: {what}"))
}

fn names<T: Copy>(values: &[T], as_str: impl Fn(T) -> &'static str) -> Vec<&'static str> {
    values.iter().map(|value| as_str(*value)).collect()
}

/// Creates a pending session with one pending record per instance and returns its id.
pub fn create_session(
    connection: &mut PgConnection,
    new: &NewSession,
    instances: &[(InstanceId, String)],
) -> Result<i64, StoreError> {
    connection.transaction(|connection| {
        let id: i64 = diesel::insert_into(sync_sessions::table)
            .values((
                sync_sessions::sync_category.eq(new.sync_category.as_str()),
                sync_sessions::sync_type.eq(new.sync_type.as_str()),
                sync_sessions::triggered_by.eq(&new.triggered_by),
                sync_sessions::parameters.eq(&new.parameters),
                sync_sessions::job_id.eq(&new.job_id),
                sync_sessions::requested_by_token_id.eq(new.requested_by_token_id),
                sync_sessions::total_instances.eq(instances.len() as i64),
            ))
            .returning(sync_sessions::id)
            .get_result(connection)?;
        let records: Vec<_> = instances
            .iter()
            .map(|(instance_id, name)| {
                (
                    sync_instance_records::session_id.eq(id),
                    sync_instance_records::instance_id.eq(instance_id.0),
                    sync_instance_records::instance_name.eq(name),
                )
            })
            .collect();
        // Chunked to stay below PostgreSQL's 65535 bind parameters per statement.
        for chunk in records.chunks(10_000) {
            diesel::insert_into(sync_instance_records::table)
                .values(chunk)
                .execute(connection)?;
        }
        Ok(id)
    })
}

/// What [`create_session_unless_open`] found or made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestedSession {
    /// A session of the same work was pending or running: its id and job id.
    Existing(i64, Option<String>),
    /// No such session was open; this one was created.
    Created(i64),
}

/// Creates the pending session `new` (as [`create_session`]) unless an aggregation session
/// of the same `work` is pending or running, which is returned instead. Atomic across
/// processes: the check and the insert happen under a transaction-scoped advisory lock keyed
/// by the work, so equal requests arriving at once through several API processes make one
/// session, and only its creator enqueues a job.
pub fn create_session_unless_open(
    connection: &mut PgConnection,
    new: &NewSession,
    instances: &[(InstanceId, String)],
    work: &serde_json::Value,
) -> Result<RequestedSession, StoreError> {
    connection.transaction(|connection| {
        lock_work(connection, work)?;
        if let Some((id, job_id)) = open_session_with_work(connection, work)? {
            return Ok(RequestedSession::Existing(id, job_id));
        }
        create_session(connection, new, instances).map(RequestedSession::Created)
    })
}

/// Serialises, until the transaction ends, everything that opens a session of `work`: equal
/// requests, and the session queued for a failed attempt's retry.
fn lock_work(connection: &mut PgConnection, work: &serde_json::Value) -> Result<(), StoreError> {
    diesel::sql_query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind::<diesel::sql_types::Integer, _>(crate::sql::RUN_REQUEST_LOCK_KEY)
        .bind::<Text, _>(work.to_string())
        .execute(connection)?;
    Ok(())
}

/// A worker picks the session up: `pending` → `running`.
pub fn start_session(
    connection: &mut PgConnection,
    id: i64,
    worker_name: &str,
) -> Result<(), StoreError> {
    let updated = diesel::update(sync_sessions::table.find(id))
        .filter(sync_sessions::status.eq_any(names(
            SessionStatus::predecessors(SessionStatus::Running),
            SessionStatus::as_str,
        )))
        .set((
            sync_sessions::status.eq(SessionStatus::Running.as_str()),
            sync_sessions::worker_name.eq(worker_name),
            sync_sessions::started_at.eq(diesel::dsl::now),
            sync_sessions::heartbeat_at.eq(diesel::dsl::now),
            sync_sessions::updated_at.eq(diesel::dsl::now),
        ))
        .execute(connection)?;
    if updated == 0 {
        let status = session_status(connection, id)?;
        return Err(capstats_sync_session::TransitionError::Session {
            from: status,
            to: SessionStatus::Running,
        }
        .into());
    }
    Ok(())
}

/// What a worker found when it came to start the session created for its job at enqueue time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobSessionStart {
    /// The session was pending (or interrupted) and is now running on this worker.
    Started,
    /// Somebody cancelled the session while its job was queued: the job must not run.
    Cancelled,
    /// The session ended otherwise (an earlier attempt of the job closed it): a retry records
    /// itself in a new session.
    Ended(SessionStatus),
    /// The session no longer exists (deleted by hand): the job records itself anew.
    Missing,
}

/// Starts the session a job was enqueued with, telling a cancelled session apart from one an
/// earlier attempt ended, because only the latter may be re-run.
pub fn start_job_session(
    connection: &mut PgConnection,
    id: i64,
    worker_name: &str,
) -> Result<JobSessionStart, StoreError> {
    match start_session(connection, id, worker_name) {
        Ok(()) => Ok(JobSessionStart::Started),
        Err(StoreError::Transition(capstats_sync_session::TransitionError::Session {
            from: SessionStatus::Cancelled,
            ..
        })) => Ok(JobSessionStart::Cancelled),
        Err(StoreError::Transition(capstats_sync_session::TransitionError::Session {
            from,
            ..
        })) => Ok(JobSessionStart::Ended(from)),
        Err(StoreError::NotFound(_)) => Ok(JobSessionStart::Missing),
        Err(error) => Err(error),
    }
}

/// The status of a session, locking its row until the end of the transaction so that status
/// changes of concurrent writers (worker, sweeper, cancel) are serialised.
fn session_status(connection: &mut PgConnection, id: i64) -> Result<SessionStatus, StoreError> {
    let status: Option<String> = sync_sessions::table
        .find(id)
        .select(sync_sessions::status)
        .for_update()
        .first(connection)
        .optional()?;
    status
        .ok_or_else(|| StoreError::NotFound(format!("sync session {id}")))?
        .parse()
        .map_err(corrupt)
}

/// The id of session `session_id` while it is running: records change only then (the rule of
/// `capstats_sync_session::SyncSession`, which `tests/sessions_match_machine.rs` holds this
/// module to).
#[diesel::dsl::auto_type]
fn while_running(session_id: i64) -> _ {
    let running: &'static str = SessionStatus::Running.as_str();
    sync_sessions::table
        .select(sync_sessions::id)
        .filter(sync_sessions::id.eq(session_id))
        .filter(sync_sessions::status.eq(running))
}

/// Marks the records of `instance_ids` as running (while the session runs).
pub fn start_records(
    connection: &mut PgConnection,
    session_id: i64,
    instance_ids: &[InstanceId],
) -> Result<Counters, StoreError> {
    let ids: Vec<i64> = instance_ids.iter().map(|id| id.0).collect();
    diesel::update(sync_instance_records::table)
        .filter(sync_instance_records::session_id.eq_any(while_running(session_id)))
        .filter(sync_instance_records::instance_id.eq_any(&ids))
        .filter(sync_instance_records::status.eq_any(names(
            RecordStatus::predecessors(RecordStatus::Running),
            RecordStatus::as_str,
        )))
        .set((
            sync_instance_records::status.eq(RecordStatus::Running.as_str()),
            sync_instance_records::started_at.eq(diesel::dsl::now),
            sync_instance_records::updated_at.eq(diesel::dsl::now),
        ))
        .execute(connection)?;
    refresh_counters(connection, session_id)
}

/// Stores the final outcome of records (each `completed`, `failed` or `cancelled`) and
/// refreshes the session's counters. Records whose status no longer allows the change (already
/// final), and records of a session that is not running, are left alone.
///
/// One statement per final status (at most three), not one per record: a run over 1,600
/// instances paid 1,600 round trips here (docs/performance.md, "Growth with the fleet").
pub fn finish_records(
    connection: &mut PgConnection,
    session_id: i64,
    outcomes: &[RecordOutcome],
) -> Result<Counters, StoreError> {
    let mut by_status: BTreeMap<&'static str, FinishedRecords> = BTreeMap::new();
    for outcome in outcomes {
        let records = by_status
            .entry(outcome.status.as_str())
            .or_insert_with(|| FinishedRecords::new(outcome.status));
        records.instance_ids.push(outcome.instance_id.0);
        records.items_synced.push(outcome.items_synced);
        records.error_messages.push(outcome.error_message.clone());
        records
            .details
            .push(serde_json::to_value(&outcome.detail).map_err(corrupt)?);
    }
    connection.transaction(|connection| {
        for records in by_status.values() {
            diesel::sql_query(
                "UPDATE sync_instance_records record
                 SET status = $2, items_synced = finished.items_synced,
                     error_message = finished.error_message, detail = finished.detail,
                     completed_at = now(), updated_at = now()
                 FROM unnest($4::bigint[], $5::bigint[], $6::text[], $7::jsonb[])
                      AS finished (instance_id, items_synced, error_message, detail)
                 WHERE record.session_id IN (SELECT id FROM sync_sessions
                                             WHERE id = $1 AND status = $8)
                   AND record.instance_id = finished.instance_id
                   AND record.status = ANY($3)",
            )
            .bind::<BigInt, _>(session_id)
            .bind::<Text, _>(records.status.as_str())
            .bind::<Array<Text>, _>(names(
                RecordStatus::predecessors(records.status),
                RecordStatus::as_str,
            ))
            .bind::<Array<BigInt>, _>(&records.instance_ids)
            .bind::<Array<BigInt>, _>(&records.items_synced)
            .bind::<Array<Nullable<Text>>, _>(&records.error_messages)
            .bind::<Array<Jsonb>, _>(&records.details)
            .bind::<Text, _>(SessionStatus::Running.as_str())
            .execute(connection)?;
        }
        refresh_counters(connection, session_id)
    })
}

/// The records [`finish_records`] brings to one final status, as the columns it binds.
struct FinishedRecords {
    status: RecordStatus,
    instance_ids: Vec<i64>,
    items_synced: Vec<i64>,
    error_messages: Vec<Option<String>>,
    details: Vec<serde_json::Value>,
}

impl FinishedRecords {
    fn new(status: RecordStatus) -> Self {
        Self {
            status,
            instance_ids: Vec::new(),
            items_synced: Vec::new(),
            error_messages: Vec::new(),
            details: Vec::new(),
        }
    }
}

#[derive(QueryableByName)]
struct StatusCount {
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = BigInt)]
    records: i64,
}

/// Recomputes the session's counters and progress from its records and returns them.
pub fn refresh_counters(
    connection: &mut PgConnection,
    session_id: i64,
) -> Result<Counters, StoreError> {
    let rows: Vec<StatusCount> = diesel::sql_query(
        "SELECT status, count(*) AS records FROM sync_instance_records
         WHERE session_id = $1 GROUP BY status",
    )
    .bind::<BigInt, _>(session_id)
    .load(connection)?;
    let mut counters = Counters::default();
    for row in rows {
        let status: RecordStatus = row.status.parse().map_err(corrupt)?;
        counters.add(status, u64::try_from(row.records).unwrap_or_default());
    }
    let progress = bigdecimal_from(counters.progress_percentage())?;
    // Progress never goes back: a run whose work items are not its records (a backfill's
    // batches, see `record_progress`) keeps the share it reached when its records end
    // cancelled, instead of falling to the records' 0 %.
    diesel::sql_query(
        "UPDATE sync_sessions
         SET total_instances = $2, successful_instances = $3, failed_instances = $4,
             cancelled_instances = $5,
             progress_percentage = GREATEST(progress_percentage, $6), updated_at = now()
         WHERE id = $1",
    )
    .bind::<BigInt, _>(session_id)
    .bind::<BigInt, _>(counters.total as i64)
    .bind::<BigInt, _>(counters.completed as i64)
    .bind::<BigInt, _>(counters.failed as i64)
    .bind::<BigInt, _>(counters.cancelled as i64)
    .bind::<diesel::sql_types::Numeric, _>(progress)
    .execute(connection)?;
    Ok(counters)
}

fn bigdecimal_from(value: Decimal) -> Result<bigdecimal::BigDecimal, StoreError> {
    value.to_string().parse().map_err(corrupt)
}

/// Records that the session's worker is alive.
pub fn heartbeat(connection: &mut PgConnection, session_id: i64) -> Result<(), StoreError> {
    diesel::update(sync_sessions::table.find(session_id))
        .set(sync_sessions::heartbeat_at.eq(diesel::dsl::now))
        .execute(connection)?;
    Ok(())
}

/// Records that the session's worker is alive and has done `done` of its `total` work items,
/// for a run whose work items are not its records (a backfill's batches each cover every
/// instance, so its records only end with the run). Only a running session is touched; when
/// its records end, their share only raises the progress (a cancelled backfill keeps the share
/// of batches it did). Progress never goes back: parallel batches report as they end, and a
/// later count may commit first.
pub fn record_progress(
    connection: &mut PgConnection,
    session_id: i64,
    done: u64,
    total: u64,
) -> Result<(), StoreError> {
    let progress = bigdecimal_from(share_done(done, total))?;
    diesel::update(sync_sessions::table.find(session_id))
        .filter(sync_sessions::status.eq(SessionStatus::Running.as_str()))
        .filter(sync_sessions::progress_percentage.le(progress.clone()))
        .set((
            sync_sessions::progress_percentage.eq(progress),
            sync_sessions::heartbeat_at.eq(diesel::dsl::now),
            sync_sessions::updated_at.eq(diesel::dsl::now),
        ))
        .execute(connection)?;
    Ok(())
}

/// Records that `worker_name` is alive and still running the session of job `job_id`,
/// whatever the run is doing (waiting for a period lock, one long statement); returns the
/// sessions touched. A worker calls this on a timer while the job runs, so that only a worker
/// that is gone stops sending heartbeats.
pub fn heartbeat_job(
    connection: &mut PgConnection,
    job_id: &str,
    worker_name: &str,
) -> Result<usize, StoreError> {
    Ok(diesel::update(sync_sessions::table)
        .filter(sync_sessions::job_id.eq(job_id))
        .filter(sync_sessions::worker_name.eq(worker_name))
        .filter(sync_sessions::status.eq(SessionStatus::Running.as_str()))
        .set(sync_sessions::heartbeat_at.eq(diesel::dsl::now))
        .execute(connection)?)
}

mod closing;
mod finishing;
mod reads;

pub use closing::{
    FailedAttempt, cancel_sessions_of_job, fail_attempt_sessions, fail_lost_sessions,
    fail_running_sessions_of_worker, queue_session_for_job, queued_session_of_job,
};
pub use finishing::{cancel_requested, fail_session, finish_session, request_cancel};
pub use reads::{
    SessionFilter, count_sessions, for_each_session, get_session, list_sessions,
    list_sessions_page, open_session_with_work, session_records,
};
