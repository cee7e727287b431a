//! `capstats-worker run`: apalis workers for the three queues on the PostgreSQL job store, the
//! scheduler loop, and graceful shutdown.
//!
//! Pitfalls of apalis 1.0 handled here (docs/operations.md explains them): every queue name is
//! explicit; a push wakes its queue's workers at once (`wakeups`), and they poll every few
//! hundred milliseconds besides instead of waiting for a heartbeat;
//! heartbeat interval and missed heartbeats are explicit (apalis' default orphan timeout is five
//! minutes); worker names are unique per process (queue, host, pid); payloads are decoded by the
//! handler, so a malformed one fails its job instead of killing the worker; panics are caught
//! inside the handler (apalis' own panic and timeout layers would leave the row running); retries
//! are bounded by `max_attempts` and spaced by a durable exponential backoff (`run_at`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use apalis::prelude::{
    AbortError, Attempt, BackendExt, BoxDynError, Data, Monitor, Strategy, TaskId, WorkerBuilder,
    WorkerBuilderExt,
};
use apalis_postgres::{Config, PostgresStorage};
use capstats_settings::Settings;
use sqlx::PgPool;

use capstats_services::alerts::DeliverySettings;
use capstats_services::collection::CollectorSettings;
use capstats_services::payloads::{AggregationJob, AlertJob, CollectionJob, MaintenanceJob};
use capstats_services::runs::RunSettings;

use crate::QueueError;
use crate::job_store;
use crate::jobs::{BackgroundJob, JobOutcome, QUEUES, readable_version};
use crate::wakeups::{WakeupRoutes, Wakeups};

/// What every handler and the scheduler share.
pub struct WorkerState {
    /// Diesel pool for the store.
    pub store: capstats_store::ConnectionPool,
    /// sqlx pool for the job store.
    pub job_store: PgPool,
    /// The configuration.
    pub settings: Settings,
    /// How collectors connect.
    pub collector: CollectorSettings,
    /// How alert notifications are sent.
    pub alerts: DeliverySettings,
    /// This process's name: host and pid.
    pub name: String,
    /// Aggregation runs in progress on the blocking thread pool.
    pub running_jobs: RunningJobs,
}

/// Counts the aggregation runs in progress, so that a shutdown can tell whether it left any
/// behind. Runs are synchronous and cannot be interrupted; the count is kept on the blocking
/// thread itself, not by the job's future, which apalis drops when the shutdown timeout passes.
#[derive(Debug, Default)]
pub struct RunningJobs(AtomicUsize);

impl RunningJobs {
    /// Counts a run until the returned guard is dropped.
    pub(crate) fn enter(&self) -> RunningJob<'_> {
        self.0.fetch_add(1, Ordering::SeqCst);
        RunningJob(&self.0)
    }

    /// Runs in progress now.
    pub fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// One run in progress; see [`RunningJobs`].
pub(crate) struct RunningJob<'a>(&'a AtomicUsize);

impl Drop for RunningJob<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl WorkerState {
    pub(crate) fn run_settings(&self) -> RunSettings {
        RunSettings::from_settings(&self.settings)
    }

    /// The job store as the use cases push onto it, with the configured attempt budget.
    pub(crate) fn queue(&self) -> job_store::PostgresQueue {
        job_store::PostgresQueue::new(self.job_store.clone(), self.settings.job_max_attempts)
    }
}

/// The apalis configuration of a queue.
fn queue_config(settings: &Settings, queue: &str, batch: u32) -> Config {
    Config::default()
        .queue(queue)
        .batch_size(batch.max(1) as usize)
        .heartbeat_interval(settings.worker_heartbeat())
        .missed_heartbeats(settings.worker_missed_heartbeats as usize)
}

/// Runs the workers (and the scheduler, when enabled) until SIGTERM or SIGINT, then waits up to
/// the shutdown timeout for running jobs. Aggregation runs still going after that are left to
/// the caller, which should exit without waiting for the blocking thread pool.
pub async fn run(settings: Settings) -> Result<(), QueueError> {
    // Listening starts before anything else: a SIGTERM while the worker is still starting
    // (systemd stopping it right after a start) is a clean shutdown, not the default death.
    let shutdown_requested = shutdown_signal().map_err(QueueError::Signals)?;
    // Each running aggregation holds a connection for its whole run; the alert job (one at a
    // time), the scheduler, the sweeper and the runs' own heartbeats need connections beside
    // them, or they wait for a run to end and live runs look lost.
    let needed = settings.worker_concurrency + 3;
    if settings.database_pool_size < needed {
        return Err(QueueError::InvalidRequest(format!(
            "CAPSTATS_DATABASE_POOL_SIZE ({}) must be at least CAPSTATS_WORKER_CONCURRENCY + 3 \
             ({needed}) for the worker: every running aggregation holds a connection, and the \
             alert job, the scheduler and the runs' heartbeats need their own",
            settings.database_pool_size
        )));
    }
    let collector = CollectorSettings::from_settings(&settings)?;
    let alerts = DeliverySettings::from_settings(&settings, collector.keys.clone())?;
    crate::metrics::register();
    if let Some(bind) = &settings.worker_metrics_bind {
        let address = crate::metrics::serve(bind, settings.metrics_token.clone())
            .map_err(|error| QueueError::Metrics(bind.clone(), error))?;
        tracing::info!(%address, "serving metrics at /metrics");
    }
    let store = capstats_store::build_pool(
        &settings.database_url,
        settings.database_pool_size,
        settings.database_connect_timeout(),
    )?;
    capstats_store::run_blocking(&store, capstats_store::migrations::ensure_current).await?;
    let job_store =
        job_store::connect(&settings.database_url, settings.job_store_pool_size).await?;
    let state = Arc::new(WorkerState {
        store,
        job_store: job_store.clone(),
        collector,
        alerts,
        name: capstats_services::worker_name(),
        settings,
        running_jobs: RunningJobs::default(),
    });
    let settings = &state.settings;
    tracing::info!(
        worker = %state.name,
        queues = ?QUEUES,
        scheduler = settings.scheduler_enabled,
        poll_ms = settings.worker_poll_interval_ms,
        orphan_timeout_s = settings.orphan_timeout().as_secs(),
        concurrency = settings.worker_concurrency,
        "worker starting"
    );

    let (stop_sender, stop_receiver) = tokio::sync::watch::channel(false);
    let scheduler = settings
        .scheduler_enabled
        .then(|| tokio::spawn(crate::scheduler::run(state.clone(), stop_receiver.clone())));

    // Pushed jobs wake their queue's worker at once; the poll interval is the fallback.
    let (routes, mut wakeups) = WakeupRoutes::new(&QUEUES);
    let listener = tokio::spawn(routes.listen(
        settings.database_url.clone(),
        settings.worker_heartbeat(),
        stop_receiver.clone(),
    ));

    // The one registration point: every job type, each on its queue.
    let monitor = Monitor::new();
    let monitor = register::<AggregationJob>(monitor, &state, &job_store, &mut wakeups);
    let monitor = register::<MaintenanceJob>(monitor, &state, &job_store, &mut wakeups);
    let monitor = register::<CollectionJob>(monitor, &state, &job_store, &mut wakeups);
    let monitor = register::<AlertJob>(monitor, &state, &job_store, &mut wakeups);
    let monitor = monitor
        .should_restart(|worker, error| {
            tracing::error!(worker = %worker.name(), %error, "worker stopped; restarting");
            true
        })
        .shutdown_timeout(settings.shutdown_timeout());
    let signal = async move {
        shutdown_requested.await;
        tracing::info!("shutdown requested; finishing running jobs");
        let _ = stop_sender.send(true);
        Ok(())
    };
    let result = monitor
        .run_with_signal(signal)
        .await
        .map_err(QueueError::from);
    if let Some(scheduler) = scheduler {
        let _ = scheduler.await;
    }
    let _ = listener.await;
    let abandoned = state.running_jobs.count();
    if abandoned > 0 {
        // The caller exits without waiting for them (see `capstats-worker run`).
        tracing::warn!(
            worker = %state.name,
            abandoned,
            timeout_s = state.settings.shutdown_timeout().as_secs(),
            "the shutdown timeout passed with aggregation runs in progress: they stop with the \
             process, their open transaction rolls back, and another worker re-runs each job \
             once this worker's heartbeat has lapsed"
        );
        close_abandoned_sessions(&state).await;
    }
    // Closing waits for connections in use; an abandoned run may hold none of the job
    // store's, but nothing here may outlast the timeout by much.
    if tokio::time::timeout(Duration::from_secs(2), job_store.close())
        .await
        .is_err()
    {
        tracing::warn!("the job store's connections did not close within 2 s");
    }
    tracing::info!(worker = %state.name, "worker stopped");
    result
}

/// Closes the sessions of the runs a shutdown abandons as failed, saying why, so that nobody
/// reads them as running (or, later, as lost by a worker that crashed). Bounded: the process
/// is about to exit.
async fn close_abandoned_sessions(state: &WorkerState) {
    let worker = state.name.clone();
    let reason = format!(
        "worker {worker} shut down with this run in progress (its shutdown timeout of {} s \
         passed); the job runs again on a worker once this one's heartbeat has lapsed",
        state.settings.shutdown_timeout().as_secs()
    );
    let closing = capstats_store::run_blocking(&state.store, move |connection| {
        capstats_store::sessions::fail_running_sessions_of_worker(connection, &worker, &reason)
    });
    match tokio::time::timeout(Duration::from_secs(2), closing).await {
        Ok(Ok(closed)) => {
            tracing::info!(worker = %state.name, sessions = ?closed, "closed the abandoned runs' sessions");
        }
        Ok(Err(error)) => {
            tracing::warn!(worker = %state.name, error = %capstats_store::error_chain(&error), "could not close the abandoned runs' sessions; the sweeper will");
        }
        Err(_) => {
            tracing::warn!(worker = %state.name, "closing the abandoned runs' sessions took over 2 s; the sweeper will");
        }
    }
}

/// Starts listening for SIGTERM and SIGINT now and returns what resolves on the first of them.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

/// Sends the heartbeats of the session job `job_id` runs on this worker, every quarter of the
/// session timeout, until dropped: a run sends its own only between work items, and one long
/// statement or a wait for another run's period lock must not look like a worker that is
/// gone to the sweeper.
pub(crate) async fn keep_session_alive(
    state: &WorkerState,
    job_id: String,
) -> std::convert::Infallible {
    let period = Duration::from_secs(state.settings.session_timeout_seconds).div_f64(4.0);
    let mut ticks = tokio::time::interval(period.max(Duration::from_millis(500)));
    // The first tick is immediate, when the run has not opened its session yet.
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let (job_id, worker_name) = (job_id.clone(), state.name.clone());
        if let Err(error) = capstats_store::run_blocking(&state.store, move |connection| {
            capstats_store::sessions::heartbeat_job(connection, &job_id, &worker_name)
        })
        .await
        {
            tracing::warn!(error = %capstats_store::error_chain(&error), "could not record a session heartbeat");
        }
    }
}

/// After a failed attempt: space the next one out (durably, in the job row), close the
/// sessions the attempt left open as failed with its error and what comes next, log the
/// failure once with its job and whole cause chain, and return it for apalis to record.
async fn fail_attempt(
    state: &WorkerState,
    name: &str,
    id: &TaskId,
    attempt: &Attempt,
    error: String,
) -> Result<String, BoxDynError> {
    let delay = job_store::retry_delay(
        Duration::from_secs(state.settings.job_retry_base_seconds),
        attempt.current(),
    );
    // The job store's connection may have broken with the run's (a pooled connection found
    // dead is dropped, and the next try gets a new one): a few quick tries before giving up.
    let mut tries = 0;
    let allowed = loop {
        tries += 1;
        match job_store::defer_retry(&state.job_store, &id.to_string(), delay).await {
            Ok(allowed) => break allowed,
            Err(deferring) if tries < 5 => {
                tracing::debug!(error = %deferring.chain(), tries, "could not delay the retry yet");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(deferring) => {
                tracing::warn!(error = %deferring.chain(), "could not delay the retry");
                break None;
            }
        }
    };
    let exhausted = matches!(
        allowed,
        Some(allowed) if attempt.current() >= usize::try_from(allowed).unwrap_or(0)
    );
    crate::metrics::attempt(name, if exhausted { "failed" } else { "retried" });
    let next = match allowed {
        _ if exhausted => "no attempts left".to_owned(),
        Some(_) => format!("the job is retried in {} s", delay.as_secs()),
        None => "the job is retried while attempts are left".to_owned(),
    };
    // libpq ends its messages with a newline.
    let error = error.trim_end().to_owned();
    let reason = match allowed {
        Some(allowed) => format!(
            "attempt {} of {allowed} failed: {error}; {next}",
            attempt.current()
        ),
        None => format!("attempt {} failed: {error}; {next}", attempt.current()),
    };
    if exhausted
        && let Err(marking) = job_store::mark_failed(
            &state.job_store,
            &id.to_string(),
            attempt.current(),
            &reason,
        )
        .await
    {
        tracing::warn!(error = %marking.chain(), "could not mark the job failed; apalis records it");
    }
    close_sessions_of_attempt(state, &id.to_string(), reason, !exhausted).await;
    tracing::error!(retry_in_s = delay.as_secs(), "{error}");
    Err(error.into())
}

/// Closes the sessions a failed attempt of job `job_id` left open (the run's own connection
/// may be the one that broke, so it could not close them itself) and, when the job will
/// `retry`, queues the retry's pending session. The database may still be coming back: this
/// is tried for up to a session timeout; should it never succeed, the sweeper closes them
/// later (and the retry opens its own session).
async fn close_sessions_of_attempt(state: &WorkerState, job_id: &str, reason: String, retry: bool) {
    let deadline = tokio::time::Instant::now()
        + Duration::from_secs(state.settings.session_timeout_seconds.max(1));
    loop {
        let (owned_job_id, reason) = (job_id.to_owned(), reason.clone());
        match capstats_store::run_blocking(&state.store, move |connection| {
            capstats_store::sessions::fail_attempt_sessions(
                connection,
                &owned_job_id,
                &reason,
                retry,
            )
        })
        .await
        {
            Ok(attempt) => {
                if !attempt.closed.is_empty() || attempt.queued.is_some() {
                    tracing::info!(closed = ?attempt.closed, queued = ?attempt.queued, "closed the sessions of the failed attempt");
                }
                return;
            }
            Err(error) if tokio::time::Instant::now() < deadline => {
                tracing::debug!(error = %capstats_store::error_chain(&error), "closing the failed attempt's sessions; trying again");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(error) => {
                tracing::warn!(error = %capstats_store::error_chain(&error), "could not close the failed attempt's sessions; the sweeper will");
                return;
            }
        }
    }
}

/// The handler of every job type: runs the attempt in a span naming the job, so that every
/// line it logs, down to a failed work item's, carries the job's id.
async fn handle<J: BackgroundJob>(
    payload: serde_json::Value,
    id: TaskId,
    attempt: Attempt,
    state: Data<Arc<WorkerState>>,
) -> Result<String, BoxDynError> {
    use tracing::Instrument;
    let span = tracing::info_span!("job", job = J::NAME, job_id = %id, attempt = attempt.current());
    // The attempt is a task of its own: when the worker's job stream fails (its connection to
    // the job store lost) apalis restarts the worker and drops this handler, but the attempt
    // still ends and records its outcome — its sessions closed, its job failed or retried.
    match tokio::spawn(handle_attempt::<J>(payload, id, attempt, state).instrument(span)).await {
        Ok(outcome) => outcome,
        Err(ended) => Err(ended.into()),
    }
}

/// One attempt of a job: decodes the payload (a payload this build cannot read fails its job
/// for good instead of killing the worker), runs the job, and records the outcome.
async fn handle_attempt<J: BackgroundJob>(
    payload: serde_json::Value,
    id: TaskId,
    attempt: Attempt,
    state: Data<Arc<WorkerState>>,
) -> Result<String, BoxDynError> {
    // Payloads are small; the log line of the start shows what the job is to do.
    let described = payload.to_string();
    let job: J = match serde_json::from_value(payload) {
        Ok(job) => job,
        // Retrying cannot help a payload this build does not understand.
        Err(error) => {
            tracing::error!(%error, "unreadable job payload");
            crate::metrics::attempt(J::NAME, "failed");
            return Err(AbortError::new(format!("unreadable {} job: {error}", J::NAME)).into());
        }
    };
    if !readable_version(job.version()) {
        let message = format!(
            "{} job of payload version {} is newer than this build reads",
            J::NAME,
            job.version()
        );
        tracing::error!("{message}");
        crate::metrics::attempt(J::NAME, "failed");
        return Err(AbortError::new(message).into());
    }
    let state = Arc::clone(&state);
    tracing::info!(payload = %described, "job started");
    match job_store::pickup_delay(&state.job_store, &id.to_string()).await {
        Ok(Some(seconds)) => crate::metrics::picked_up(J::NAME, seconds),
        Ok(None) => {}
        Err(error) => tracing::debug!(error = %error.chain(), "no pickup delay"),
    }
    match job.run(state.clone(), id.to_string()).await {
        Ok(JobOutcome::Done(summary)) => {
            tracing::info!("{summary}");
            crate::metrics::attempt(J::NAME, "done");
            Ok(summary)
        }
        Ok(JobOutcome::Failed(summary)) => {
            fail_attempt(&state, J::NAME, &id, &attempt, summary).await
        }
        Err(error) => fail_attempt(&state, J::NAME, &id, &attempt, error.chain()).await,
    }
}

/// Registers the workers of job type `J` on its queue: they look for jobs when a push wakes
/// them and every poll interval (for retries whose time has come and wake-ups lost while the
/// listener was down).
fn register<J: BackgroundJob>(
    monitor: Monitor,
    state: &Arc<WorkerState>,
    job_store: &PgPool,
    wakeups: &mut std::collections::HashMap<String, Wakeups>,
) -> Monitor {
    let settings = &state.settings;
    let concurrency = J::concurrency(state).max(1);
    let mut strategy = Strategy::new();
    if let Some(wakeups) = wakeups.remove(J::QUEUE) {
        strategy = strategy.stream(wakeups);
    }
    let storage = PostgresStorage::<serde_json::Value>::new(job_store)
        .with_config(queue_config(settings, J::QUEUE, concurrency as u32))
        .poll_with_strategy(strategy.interval(settings.worker_poll_interval()));
    let state = state.clone();
    monitor.register(move |restarts| {
        WorkerBuilder::new(format!("{}@{}#{restarts}", J::QUEUE, state.name))
            .backend(storage.clone())
            .data(state.clone())
            .concurrency(concurrency)
            .build(handle::<J>)
    })
}
