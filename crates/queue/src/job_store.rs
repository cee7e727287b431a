//! The apalis-postgres job store: set-up, pushing jobs (alone or in the transaction of a tick
//! claim), and the inspection and repair operators need (`capstats-worker jobs …`).
//!
//! The SQL on `apalis.jobs` follows how apalis 1.0 fetches and finishes jobs: a row is fetched
//! while `Pending`, or `Failed` with attempts left; a worker's result is written only where
//! `lock_by` is still that worker, so clearing `lock_by` makes a kill stick.

use std::time::Duration;

use apalis::prelude::{TaskBuilder, TaskId};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Row};

use capstats_services::enqueue::{EnqueueFuture, JobQueue};
use capstats_services::payloads::Job;

use crate::QueueError;
use crate::jobs::queue_of;

/// Creates or upgrades the `apalis` schema (jobs, workers and their functions) in the database
/// at `database_url`. Idempotent; part of `capstats-api migrate`.
pub async fn setup(database_url: &str) -> Result<(), QueueError> {
    let pool = sqlx::PgPool::connect(database_url).await?;
    let result = apalis_postgres::PostgresStorage::<()>::setup(&pool).await;
    pool.close().await;
    Ok(result?)
}

/// [`setup`] from synchronous code (`capstats-api migrate`, a test database's template): on
/// a thread of its own with its own runtime, since the caller may already run inside one.
pub fn setup_blocking(database_url: &str) -> Result<(), QueueError> {
    let url = database_url.to_owned();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(QueueError::Runtime)?
            .block_on(setup(&url))
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// A pool of sqlx connections for the job store.
pub async fn connect(database_url: &str, max_connections: u32) -> Result<PgPool, QueueError> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect(database_url)
        .await
        .map_err(QueueError::from)
}

fn task(job: &Job, job_id: &str, max_attempts: u32) -> Result<apalis_postgres::PgTask, QueueError> {
    let ulid: ulid::Ulid = job_id.parse()?;
    let payload = serde_json::to_vec(&job.to_json())?;
    Ok(TaskBuilder::new(payload)
        .task_id(TaskId::from_ulid(ulid))
        .max_attempts(max_attempts as usize)
        .build())
}

/// Pushes `job` with the id `job_id` and returns the id.
pub async fn enqueue(
    pool: &PgPool,
    job: &Job,
    job_id: &str,
    max_attempts: u32,
) -> Result<(), QueueError> {
    let mut transaction = pool.begin().await?;
    apalis_postgres::queries::push_tasks(
        &mut *transaction,
        queue_of(job),
        vec![task(job, job_id, max_attempts)?],
    )
    .await?;
    Ok(transaction.commit().await?)
}

/// The job queue of the API and the command-line tools: pushes jobs onto the job store with
/// the configured attempt budget.
#[derive(Debug, Clone)]
pub struct PostgresQueue {
    pool: PgPool,
    max_attempts: u32,
}

impl PostgresQueue {
    /// A queue on `pool` whose jobs get `max_attempts` attempts.
    pub fn new(pool: PgPool, max_attempts: u32) -> Self {
        Self { pool, max_attempts }
    }

    /// Connects a pool of `max_connections` to the job store at `database_url`.
    pub async fn connect(
        database_url: &str,
        max_connections: u32,
        max_attempts: u32,
    ) -> Result<Self, QueueError> {
        Ok(Self::new(
            connect(database_url, max_connections).await?,
            max_attempts,
        ))
    }

    /// The pool it pushes with.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

impl JobQueue for PostgresQueue {
    fn enqueue<'a>(&'a self, job: &'a Job, job_id: &'a str) -> EnqueueFuture<'a> {
        Box::pin(async move {
            enqueue(&self.pool, job, job_id, self.max_attempts)
                .await
                .map_err(Into::into)
        })
    }
}

/// What to do with a claimed tick.
#[derive(Debug, Clone)]
pub enum TickAction {
    /// Enqueue this job (with this id) for it.
    Enqueue {
        /// The job.
        job: Job,
        /// Its id.
        job_id: String,
        /// Its attempts.
        max_attempts: u32,
    },
    /// Record it as skipped (a missed tick the misfire policy does not run).
    Skip,
}

/// Claims a schedule's tick: inserts it into `schedule_ticks` — unique per schedule and
/// instant, so of several schedulers exactly one succeeds — and, only if this call inserted
/// it, pushes its job in the same transaction. A crash between the two cannot lose the tick or
/// enqueue it twice. Returns whether this call claimed the tick.
pub async fn claim_tick(
    pool: &PgPool,
    schedule_name: &str,
    tick_at: DateTime<Utc>,
    claimed_by: &str,
    action: &TickAction,
) -> Result<bool, QueueError> {
    let mut transaction = pool.begin().await?;
    let (status, job_id) = match action {
        TickAction::Enqueue { job_id, .. } => ("enqueued", Some(job_id.as_str())),
        TickAction::Skip => ("skipped", None),
    };
    let inserted = sqlx::query(
        "INSERT INTO schedule_ticks (schedule_name, tick_at, claimed_by, status, job_id)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (schedule_name, tick_at) DO NOTHING",
    )
    .bind(schedule_name)
    .bind(tick_at)
    .bind(claimed_by)
    .bind(status)
    .bind(job_id)
    .execute(&mut *transaction)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(false);
    }
    if let TickAction::Enqueue {
        job,
        job_id,
        max_attempts,
    } = action
    {
        apalis_postgres::queries::push_tasks(
            &mut *transaction,
            queue_of(job),
            vec![task(job, job_id, *max_attempts)?],
        )
        .await?;
    }
    transaction.commit().await?;
    Ok(true)
}

/// Delays the next attempt of a failed job (durable exponential backoff: the row is not
/// fetched again before `run_at`); returns the attempts the job is allowed (`None`: no such
/// job any more).
pub async fn defer_retry(
    pool: &PgPool,
    job_id: &str,
    delay: Duration,
) -> Result<Option<i32>, QueueError> {
    Ok(sqlx::query_scalar(
        "UPDATE apalis.jobs SET run_at = now() + $2 * interval '1 millisecond' WHERE id = $1
         RETURNING max_attempts",
    )
    .bind(job_id)
    .bind(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX))
    .fetch_optional(pool)
    .await?)
}

/// Marks job `job_id` failed for good after `attempt`, with `reason`, as apalis does when the
/// handler of its last attempt returns; done by the handler itself first, so that the job is
/// not taken for an orphan and run again should the worker's job stream fail (and apalis drop
/// the handler) before that answer is recorded. The lock stays, so apalis' own record of the
/// result still applies.
pub async fn mark_failed(
    pool: &PgPool,
    job_id: &str,
    attempt: usize,
    reason: &str,
) -> Result<(), QueueError> {
    sqlx::query(
        "UPDATE apalis.jobs
         SET status = 'Failed', done_at = now(), attempts = $2,
             last_result = jsonb_build_object('Err', $3::text)
         WHERE id = $1 AND status IN ('Queued', 'Running')",
    )
    .bind(job_id)
    .bind(i32::try_from(attempt).unwrap_or(i32::MAX))
    .bind(reason)
    .execute(pool)
    .await?;
    Ok(())
}

/// How long job `job_id` waited, in seconds, between being due (`run_at`: its push, or its
/// retry time) and being taken by a worker (`lock_at`), on the database's clock.
pub async fn pickup_delay(pool: &PgPool, job_id: &str) -> Result<Option<f64>, QueueError> {
    Ok(sqlx::query_scalar(
        "SELECT greatest(extract(epoch FROM lock_at - run_at), 0)::float8 FROM apalis.jobs
         WHERE id = $1 AND lock_at IS NOT NULL",
    )
    .bind(job_id)
    .fetch_optional(pool)
    .await?)
}

/// The backoff before attempt `attempt + 1` after attempt `attempt` failed: `base · 2^(attempt
/// − 1)`, at most ten minutes.
pub fn retry_delay(base: Duration, attempt: usize) -> Duration {
    let exponent = u32::try_from(attempt.saturating_sub(1))
        .unwrap_or(u32::MAX)
        .min(16);
    base.saturating_mul(1 << exponent)
        .min(Duration::from_secs(600))
}

/// One job as operators see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobRow {
    /// Its id.
    pub id: String,
    /// Its queue.
    pub queue: String,
    /// apalis status: Pending, Queued, Running, Done, Failed or Killed.
    pub status: String,
    /// `runnable`, `in_flight` or `finished`.
    pub state: String,
    /// Attempts made.
    pub attempts: i32,
    /// Attempts allowed.
    pub max_attempts: i32,
    /// Not fetched before.
    pub run_at: DateTime<Utc>,
    /// When it finished.
    pub done_at: Option<DateTime<Utc>>,
    /// The worker holding or last holding it.
    pub worker: Option<String>,
    /// What the job does (`due`, `current`, `refresh_stale`, `maintain_partitions`, …).
    pub kind: Option<String>,
    /// Its last result (`{"Ok": …}` or `{"Err": "…"}`).
    pub last_result: Option<serde_json::Value>,
    /// Its payload.
    pub payload: serde_json::Value,
}

/// Jobs, newest first, optionally of one queue and status (case-insensitive).
pub async fn list_jobs(
    pool: &PgPool,
    queue: Option<&str>,
    status: Option<&str>,
    limit: i64,
) -> Result<Vec<JobRow>, QueueError> {
    let rows = sqlx::query(
        "SELECT id, job_type, status, attempts, max_attempts, run_at, done_at, lock_by,
                last_result, convert_from(job, 'UTF8')::jsonb AS payload,
                CASE WHEN status IN ('Queued', 'Running') THEN 'in_flight'
                     WHEN status = 'Pending' OR (status = 'Failed' AND attempts < max_attempts)
                         THEN 'runnable'
                     ELSE 'finished' END AS state
         FROM apalis.jobs
         WHERE ($1::text IS NULL OR job_type = $1)
           AND ($2::text IS NULL OR lower(status) = lower($2))
         ORDER BY id DESC
         LIMIT $3",
    )
    .bind(queue)
    .bind(status)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|row| {
            let payload: serde_json::Value = row.try_get("payload")?;
            let kind = payload
                .get("work")
                .and_then(|work| work.get("kind"))
                .or_else(|| payload.get("kind"))
                .and_then(|kind| kind.as_str())
                .map(str::to_owned);
            Ok(JobRow {
                id: row.try_get("id")?,
                queue: row.try_get("job_type")?,
                status: row.try_get("status")?,
                state: row.try_get("state")?,
                attempts: row.try_get("attempts")?,
                max_attempts: row.try_get("max_attempts")?,
                run_at: row.try_get("run_at")?,
                done_at: row.try_get("done_at")?,
                worker: row.try_get("lock_by")?,
                kind,
                last_result: row.try_get("last_result")?,
                payload,
            })
        })
        .collect()
}

/// Makes a finished job (done, killed, or failed with no attempts left) runnable again with a
/// fresh attempt budget. Jobs still queued or running are refused: their worker's result
/// would be lost and the job would run twice.
///
/// The payload forgets the session it was enqueued with: that session was ended (a killed
/// job's is cancelled, and must stay so), and a worker finding its job's session cancelled
/// would take the retry for a run cancelled while queued and do nothing. The retry records
/// itself in a new session of the same job id.
pub async fn retry_job(pool: &PgPool, job_id: &str) -> Result<(), QueueError> {
    let updated = sqlx::query(
        "UPDATE apalis.jobs
         SET status = 'Pending', attempts = 0, run_at = now(), lock_by = NULL, lock_at = NULL,
             done_at = NULL,
             job = convert_to((convert_from(job, 'UTF8')::jsonb - 'session_id')::text, 'UTF8')
         WHERE id = $1
           AND (status IN ('Done', 'Killed') OR (status = 'Failed' AND attempts >= max_attempts))",
    )
    .bind(job_id)
    .execute(pool)
    .await?
    .rows_affected();
    if updated == 0 {
        return Err(not_changed(pool, job_id, "retried (only finished jobs can be)").await);
    }
    Ok(())
}

/// Stops a job from running (again): marks it killed and releases it from its worker, so that a
/// result arriving later is ignored. A handler already running is not interrupted; a session
/// it opened is closed by the sweeper or ends on its own.
pub async fn kill_job(pool: &PgPool, job_id: &str) -> Result<(), QueueError> {
    let updated = sqlx::query(
        "UPDATE apalis.jobs
         SET status = 'Killed', lock_by = NULL, lock_at = NULL, done_at = now(),
             last_result = '{\"Err\": \"killed by an operator\"}'::jsonb
         WHERE id = $1 AND status IN ('Pending', 'Queued', 'Running', 'Failed')",
    )
    .bind(job_id)
    .execute(pool)
    .await?
    .rows_affected();
    if updated == 0 {
        return Err(not_changed(pool, job_id, "killed (it has already finished)").await);
    }
    Ok(())
}

async fn not_changed(pool: &PgPool, job_id: &str, what: &str) -> QueueError {
    let status: Option<String> = sqlx::query_scalar("SELECT status FROM apalis.jobs WHERE id = $1")
        .bind(job_id)
        .fetch_optional(pool)
        .await
        .ok()
        .flatten();
    match status {
        None => QueueError::NotFound(format!("job {job_id}")),
        Some(status) => {
            QueueError::InvalidRequest(format!("job {job_id} is {status} and cannot be {what}"))
        }
    }
}

/// What a prune removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct PruneReport {
    /// Finished jobs deleted.
    pub jobs: u64,
    /// Worker rows deleted (workers not seen for the retention, holding no job).
    pub workers: u64,
}

/// Deletes finished jobs that finished more than `older_than` ago, then worker rows not seen for
/// that long that no job refers to any more.
pub async fn prune(pool: &PgPool, older_than: Duration) -> Result<PruneReport, QueueError> {
    let seconds = older_than.as_secs_f64();
    let jobs = sqlx::query(
        "DELETE FROM apalis.jobs
         WHERE done_at < now() - $1 * interval '1 second'
           AND (status IN ('Done', 'Killed') OR (status = 'Failed' AND attempts >= max_attempts))",
    )
    .bind(seconds)
    .execute(pool)
    .await?
    .rows_affected();
    let workers = sqlx::query(
        "DELETE FROM apalis.workers worker
         WHERE worker.last_seen < now() - $1 * interval '1 second'
           AND NOT EXISTS (SELECT 1 FROM apalis.jobs job WHERE job.lock_by = worker.id)",
    )
    .bind(seconds)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(PruneReport { jobs, workers })
}

/// Pending sessions whose job ended before it could start them (killed, or failed with no
/// attempts left), with the job's status.
pub async fn sessions_of_ended_jobs(
    pool: &PgPool,
) -> Result<Vec<(i64, String, String)>, QueueError> {
    let rows = sqlx::query(
        "SELECT session.id, job.id AS job_id, job.status
         FROM sync_sessions session
         JOIN apalis.jobs job ON job.id = session.job_id
         WHERE session.status = 'pending'
           AND (job.status = 'Killed' OR (job.status = 'Failed' AND job.attempts >= job.max_attempts))",
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok((
                row.try_get("id")?,
                row.try_get("job_id")?,
                row.try_get("status")?,
            ))
        })
        .collect()
}

/// Releases the pending alert notifications whose delivery job will not run again (done,
/// killed, failed with no attempts left, or pruned) without having delivered them — a job
/// whose attempts all failed before one could be recorded, say — so that the next dispatch
/// enqueues a new one; their ids. A job that is still queued, running or waiting for a retry
/// keeps its notification.
pub async fn release_notifications_of_ended_jobs(pool: &PgPool) -> Result<Vec<i64>, QueueError> {
    let rows = sqlx::query(
        "UPDATE alert_notifications notification SET job_id = NULL
         WHERE notification.status = 'pending'
           AND notification.job_id IS NOT NULL
           AND NOT EXISTS (
               SELECT 1 FROM apalis.jobs job
               WHERE job.id = notification.job_id
                 AND (job.status IN ('Pending', 'Queued', 'Running')
                      OR (job.status = 'Failed' AND job.attempts < job.max_attempts)))
         RETURNING notification.id",
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(|row| Ok(row.try_get("id")?)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_double_up_to_ten_minutes() {
        let base = Duration::from_secs(10);
        assert_eq!(retry_delay(base, 1), Duration::from_secs(10));
        assert_eq!(retry_delay(base, 2), Duration::from_secs(20));
        assert_eq!(retry_delay(base, 4), Duration::from_secs(80));
        assert_eq!(retry_delay(base, 40), Duration::from_secs(600));
    }
}
