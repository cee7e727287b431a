//! One type per job, each a [`BackgroundJob`]: its stable name and queue, its versioned
//! payload (the types of `capstats_services::payloads`), and how it runs. The worker has one
//! generic handler for all of them ([`crate::worker`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use capstats_services::alerts;
use capstats_services::backfill;
use capstats_services::collection;
use capstats_services::maintenance;
use capstats_services::payloads::{
    AggregationJob, AggregationWork, AlertJob, CollectionJob, Job, MaintenanceJob, PAYLOAD_VERSION,
};
use capstats_services::runs;
use capstats_sync_session::SessionStatus;

use crate::QueueError;
use crate::job_store;
use crate::worker::WorkerState;

/// Queue of jobs that aggregate: scheduled runs, run-now, manual current-period runs and
/// refreshes of stale periods.
pub const AGGREGATION_QUEUE: &str = "capstats_aggregation";

/// Queue of housekeeping jobs: partition maintenance and job-store pruning.
pub const MAINTENANCE_QUEUE: &str = "capstats_maintenance";

/// Queue of jobs that read database sizes from the monitored servers.
pub const COLLECTION_QUEUE: &str = "capstats_collection";

/// Queue of alert evaluations (after each aggregation session) and notification deliveries.
pub const ALERT_QUEUE: &str = "capstats_alerts";

/// Every queue, in the order the worker registers them.
pub const QUEUES: [&str; 4] = [
    AGGREGATION_QUEUE,
    MAINTENANCE_QUEUE,
    COLLECTION_QUEUE,
    ALERT_QUEUE,
];

/// What a job's run ends with.
#[derive(Debug)]
pub enum JobOutcome {
    /// The job is done; the text is its recorded result.
    Done(String),
    /// This attempt failed without an error of the runtime (a run whose session failed); the
    /// text is the result recorded, and the job is retried while attempts are left.
    Failed(String),
}

/// A job type the worker runs.
pub trait BackgroundJob: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// Its name in logs and job listings; stable.
    const NAME: &'static str;
    /// The queue (apalis `job_type`) it travels on; stable, since jobs enqueued by an older
    /// build must still be found.
    const QUEUE: &'static str;

    /// The payload version the job was written with.
    fn version(&self) -> u32;

    /// How many of these one worker process runs at once.
    fn concurrency(state: &WorkerState) -> usize {
        let _ = state;
        1
    }

    /// Runs the job. An error fails this attempt; it is retried while attempts are left.
    fn run(
        self,
        state: Arc<WorkerState>,
        job_id: String,
    ) -> impl Future<Output = Result<JobOutcome, QueueError>> + Send;
}

/// The queue a job goes to.
pub fn queue_of(job: &Job) -> &'static str {
    match job {
        Job::Aggregation(_) => AggregationJob::QUEUE,
        Job::Maintenance(_) => MaintenanceJob::QUEUE,
        Job::Collection(_) => CollectionJob::QUEUE,
        Job::Alert(_) => AlertJob::QUEUE,
    }
}

/// Whether a payload was written by a build this one can read.
pub(crate) fn readable_version(version: u32) -> bool {
    version <= PAYLOAD_VERSION
}

impl BackgroundJob for AggregationJob {
    const NAME: &'static str = "aggregation";
    const QUEUE: &'static str = AGGREGATION_QUEUE;

    fn version(&self) -> u32 {
        self.version
    }

    fn concurrency(state: &WorkerState) -> usize {
        state.settings.worker_concurrency as usize
    }

    async fn run(self, state: Arc<WorkerState>, job_id: String) -> Result<JobOutcome, QueueError> {
        if matches!(self.work, AggregationWork::Backfill { .. }) {
            return run_backfill(self, state, job_id).await;
        }
        let worker_state = state.clone();
        let run_job_id = job_id.clone();
        let run = capstats_store::run_blocking(&state.store, move |connection| {
            let _running = worker_state.running_jobs.enter();
            runs::execute(
                connection,
                &self,
                &run_job_id,
                &worker_state.name,
                &worker_state.run_settings(),
            )
            .map_err(QueueError::from)
        });
        let report = tokio::select! {
            report = run => report?,
            never = crate::worker::keep_session_alive(&state, job_id) => match never {},
        };
        if let Some(session_id) = report.session_id {
            enqueue_evaluation(&state, session_id).await?;
        }
        Ok(if report.status == SessionStatus::Failed {
            JobOutcome::Failed(report.summary())
        } else {
            JobOutcome::Done(report.summary())
        })
    }
}

/// A queued backfill: its batches run on connections of the worker's pool, as many at once as
/// the pool spares beside the other runs (`CAPSTATS_BACKFILL_PARALLELISM` at most).
async fn run_backfill(
    job: AggregationJob,
    state: Arc<WorkerState>,
    job_id: String,
) -> Result<JobOutcome, QueueError> {
    let settings = &state.settings;
    let spare = settings
        .database_pool_size
        .saturating_sub(settings.worker_concurrency + 1)
        .max(1) as usize;
    let parallelism = settings.backfill_parallelism().min(spare).max(1);
    let today = settings.today();
    let samples_kept_from = maintenance::Retention::of(settings).samples_kept_from(today);
    let worker_state = state.clone();
    let run_job_id = job_id.clone();
    let span = tracing::Span::current();
    let run = tokio::task::spawn_blocking(move || {
        let _span = span.enter();
        let _running = worker_state.running_jobs.enter();
        backfill::run_queued_backfill(
            &worker_state.store,
            &job,
            &run_job_id,
            &worker_state.name,
            parallelism,
            samples_kept_from,
            today,
        )
    });
    let report = tokio::select! {
        report = run => report.map_err(|error| QueueError::from(capstats_store::StoreError::Task(error)))??,
        never = crate::worker::keep_session_alive(&state, job_id) => match never {},
    };
    if let Some(report) = &report {
        enqueue_evaluation(&state, report.session_id).await?;
    }
    Ok(match report {
        None => JobOutcome::Done("the backfill was cancelled while queued".into()),
        Some(report) => {
            let summary = format!(
                "session {} {}: {} periods, {} rows written, {} deleted",
                report.session_id,
                report.status,
                report.periods,
                report.rows_written,
                report.rows_deleted
            );
            if report.status == SessionStatus::Failed {
                JobOutcome::Failed(summary)
            } else {
                JobOutcome::Done(summary)
            }
        }
    })
}

impl BackgroundJob for MaintenanceJob {
    const NAME: &'static str = "maintenance";
    const QUEUE: &'static str = MAINTENANCE_QUEUE;

    fn version(&self) -> u32 {
        match self {
            Self::MaintainPartitions { version, .. } | Self::PruneJobStore { version, .. } => {
                *version
            }
        }
    }

    async fn run(self, state: Arc<WorkerState>, _job_id: String) -> Result<JobOutcome, QueueError> {
        let settings = &state.settings;
        let summary = match self {
            Self::MaintainPartitions { logical_date, .. } => {
                let ahead = settings.partitions_ahead_months;
                let retention = maintenance::Retention::of(settings);
                let report = capstats_store::run_blocking(&state.store, move |connection| {
                    maintenance::maintain_partitions(connection, logical_date, ahead, retention)
                        .map_err(QueueError::from)
                })
                .await?;
                format!(
                    "{} partitions created, {} dropped",
                    report.created.len(),
                    report.dropped.len()
                )
            }
            Self::PruneJobStore { .. } => {
                let days = |days: u32| Duration::from_secs(u64::from(days) * 86_400);
                let summary = prune_job_store(
                    &state.job_store,
                    &state.store,
                    days(settings.job_retention_days),
                    days(settings.audit_retention_days),
                )
                .await?;
                format!(
                    "{} jobs, {} workers, {} ticks, {} audit events, {} sign-in sessions and {} read-change records pruned",
                    summary.job_store.jobs,
                    summary.job_store.workers,
                    summary.store.ticks,
                    summary.store.audit_events,
                    summary.store.sign_in_sessions,
                    summary.store.read_changes
                )
            }
        };
        Ok(JobOutcome::Done(summary))
    }
}

/// What [`prune_job_store`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PruneSummary {
    /// Jobs and workers removed from the job store.
    pub job_store: job_store::PruneReport,
    /// Ticks, audit events, sign-in sessions and read-change records removed from the store.
    pub store: maintenance::StorePruneSummary,
}

/// The `prune_job_store` job: finished jobs, gone workers and claimed ticks older than
/// `retention`, audit events and ended sign-in sessions older than `audit_retention`, and
/// read-change records older than a day (`maintenance::READ_CHANGES_KEPT`).
pub async fn prune_job_store(
    pool: &sqlx::PgPool,
    store: &capstats_store::ConnectionPool,
    retention: Duration,
    audit_retention: Duration,
) -> Result<PruneSummary, QueueError> {
    Ok(PruneSummary {
        job_store: job_store::prune(pool, retention).await?,
        store: maintenance::prune_store(store, retention, audit_retention).await?,
    })
}

/// Servers that cannot be read fail their own records, which is no reason to retry the job;
/// only a failure of capstats' own database is.
impl BackgroundJob for CollectionJob {
    const NAME: &'static str = "collection";
    const QUEUE: &'static str = COLLECTION_QUEUE;

    fn version(&self) -> u32 {
        self.version
    }

    async fn run(self, state: Arc<WorkerState>, job_id: String) -> Result<JobOutcome, QueueError> {
        let collection = collection::run_collection(
            &state.store,
            &self,
            Some(&job_id),
            &state.name,
            &state.collector,
            state.settings.today(),
        );
        // The run's own heartbeats come between servers; a server slower than the session
        // timeout, or sample writes waiting on an aggregation's ledger rows, must not make
        // the sweeper take a working run for a lost one.
        let report = tokio::select! {
            report = collection => report?,
            never = crate::worker::keep_session_alive(&state, job_id.clone()) => match never {},
        };
        Ok(JobOutcome::Done(report.summary()))
    }
}

/// Enqueues the evaluation of the alert rules after session `session_id`. An error fails the
/// run's attempt, so that a retry enqueues it again; the evaluation itself runs once per
/// session however often it is enqueued.
async fn enqueue_evaluation(state: &WorkerState, session_id: i64) -> Result<(), QueueError> {
    job_store::enqueue(
        &state.job_store,
        &AlertJob::evaluate(session_id),
        &capstats_services::new_job_id(),
        state.settings.job_max_attempts,
    )
    .await
}

/// Evaluations and deliveries. A failed delivery fails its attempt, so that it is retried
/// with the job store's backoff while attempts are left; the notification records each
/// attempt and its error.
impl BackgroundJob for AlertJob {
    const NAME: &'static str = "alert";
    const QUEUE: &'static str = ALERT_QUEUE;

    fn version(&self) -> u32 {
        match self {
            Self::Evaluate { version, .. } | Self::Deliver { version, .. } => *version,
        }
    }

    // One at a time per worker: a delivery holds a database connection while it sends, and
    // the pool is sized for the runs (CAPSTATS_WORKER_CONCURRENCY) plus this one.
    fn concurrency(_state: &WorkerState) -> usize {
        1
    }

    async fn run(self, state: Arc<WorkerState>, _job_id: String) -> Result<JobOutcome, QueueError> {
        match self {
            Self::Evaluate { session_id, .. } => {
                let options = alerts::evaluation_options(&state.settings, state.settings.today());
                let counts = capstats_store::run_blocking(&state.store, move |connection| {
                    alerts::evaluate_after_session(
                        connection,
                        session_id,
                        &options,
                        chrono::Utc::now(),
                    )
                    .map_err(QueueError::from)
                })
                .await?;
                let dispatched =
                    alerts::dispatch_notifications(&state.store, &state.queue()).await?;
                Ok(JobOutcome::Done(match counts {
                    None => format!(
                        "session {session_id} was already evaluated; {dispatched} notifications enqueued"
                    ),
                    Some(counts) => format!(
                        "session {session_id}: {} rules ({} could not be evaluated), {} events opened, {} seen again, {} resolved; {dispatched} notifications enqueued",
                        counts.rules, counts.failed, counts.opened, counts.updated, counts.resolved
                    ),
                }))
            }
            Self::Deliver {
                notification_id, ..
            } => match alerts::deliver(&state.store, &state.alerts, notification_id).await? {
                alerts::Delivery::Sent => Ok(JobOutcome::Done(format!(
                    "notification {notification_id} delivered"
                ))),
                alerts::Delivery::Skipped(reason) => Ok(JobOutcome::Done(format!(
                    "notification {notification_id} not sent: {reason}"
                ))),
                alerts::Delivery::Failed { error, .. } => Ok(JobOutcome::Failed(format!(
                    "notification {notification_id} failed: {error}"
                ))),
            },
        }
    }
}
