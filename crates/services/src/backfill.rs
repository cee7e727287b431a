//! Computing every period of a type in a date range: the `aggregate` command and the
//! backfill API.
//!
//! The periods are computed for all active instances at once, in batches of consecutive
//! periods — one set-based statement per level and batch, the cheapest way through the data —
//! with several batches running at once on separate connections when parallelism allows. The run is one sync session with a record per
//! active instance; a failed batch fails the records of every instance it covered and the run
//! goes on with the next batch, so one bad period does not hide the others.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use chrono::NaiveDate;

use capstats_capacity_model::{AggregationLevel, InstanceId, Period, PeriodType};
use capstats_store::aggregation::{BatchOutcome, InstanceScope, aggregate_periods};
use capstats_store::sessions::NewSession;
use capstats_store::{ConnectionPool, PgConnection, StoreError};
use capstats_sync_session::{PeriodOutcome, SessionStatus, SyncCategory, SyncType};

use crate::payloads::{AggregationJob, AggregationWork};
use crate::records::{RecordBook, RowTotals};
use crate::session_run::{OpenedRun, SessionRequest, SessionRun, active_records};
use crate::{NoProgress, Progress, ServiceError};

/// How often a backfill records that it is alive while its batches run: well inside any
/// sensible `CAPSTATS_SESSION_TIMEOUT_SECONDS` (120 s by default).
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);

/// What to compute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillRequest {
    /// The period type.
    pub period_type: PeriodType,
    /// Periods starting on or after this date…
    pub from: NaiveDate,
    /// …and on or before this one are computed.
    pub to: NaiveDate,
    /// Levels to compute, in order.
    pub levels: Vec<AggregationLevel>,
    /// Who asked: `cli`, `api:<user>`, a schedule name.
    pub triggered_by: String,
    /// Scheduled or manual.
    pub sync_type: SyncType,
    /// How many batches to compute at once, each on its own connection (at least 1).
    pub parallelism: usize,
    /// The first day the sample retention keeps (`None`: every day): no period starting
    /// earlier is computed, since its samples are partly gone.
    pub samples_kept_from: Option<NaiveDate>,
    /// The current business date, on which the rows are judged complete or partial.
    pub today: NaiveDate,
}

/// What a backfill did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillReport {
    /// The session recording the run.
    pub session_id: i64,
    /// Its final status.
    pub status: SessionStatus,
    /// Periods computed per level.
    pub periods: usize,
    /// Aggregate rows written.
    pub rows_written: u64,
    /// Aggregate rows deleted.
    pub rows_deleted: u64,
    /// Failed batches, with their errors.
    pub failures: Vec<String>,
    /// Wall time.
    pub duration: Duration,
}

/// How many consecutive periods one statement computes. Each statement also reads the period
/// before its first one, to compute the changes; batches spanning about two years keep that
/// extra read small for the long period types (a yearly batch of one would read every year
/// twice). Daily batches span one year: their extra read is a single day, and their window is
/// large already.
pub fn periods_per_batch(period_type: PeriodType) -> usize {
    match period_type {
        PeriodType::Daily => 366,
        other => 800_usize.div_ceil(other.maximum_days() as usize),
    }
}

/// The most periods one backfill computes: 27 years of days, more than any history a
/// deployment keeps. A longer range is refused, naming the bound, rather than planned as
/// millions of periods.
pub const MAXIMUM_BACKFILL_PERIODS: usize = 10_000;

/// The `period_type` periods starting between `from` and `to`, or why there is nothing to
/// compute.
pub fn check_range(
    period_type: PeriodType,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<Period>, ServiceError> {
    for date in [from, to] {
        capstats_capacity_model::validate_supported_date(date)
            .map_err(|error| ServiceError::InvalidRequest(error.to_string()))?;
    }
    if from > to {
        return Err(ServiceError::InvalidRequest(format!(
            "from {from} lies after to {to}"
        )));
    }
    // Counted without building the whole list, so that a range of centuries of days is
    // refused before it costs memory.
    let periods: Vec<Period> = Period::starting_between(period_type, from, to)
        .take(MAXIMUM_BACKFILL_PERIODS + 1)
        .collect();
    if periods.len() > MAXIMUM_BACKFILL_PERIODS {
        return Err(ServiceError::InvalidRequest(format!(
            "more than {MAXIMUM_BACKFILL_PERIODS} {period_type} periods start between {from} \
             and {to}: backfill a shorter range at a time"
        )));
    }
    if periods.is_empty() {
        return Err(ServiceError::InvalidRequest(format!(
            "no {period_type} period starts between {from} and {to}"
        )));
    }
    Ok(periods)
}

/// Refuses `periods` when the first starts before `samples_kept_from` (the sample retention's
/// first day): it would be recomputed from what is left of its samples, replacing its stored
/// aggregates by ones of part of the period.
pub fn check_retention(
    periods: &[Period],
    samples_kept_from: Option<NaiveDate>,
) -> Result<(), ServiceError> {
    match (periods.first(), samples_kept_from) {
        (Some(first), Some(kept_from)) if first.start() < kept_from => {
            Err(ServiceError::InvalidRequest(format!(
                "the {} period starting {} is before the sample retention, which keeps samples \
                 from {kept_from} (CAPSTATS_SAMPLE_RETENTION_MONTHS); its stored aggregates are \
                 kept and cannot be recomputed from partial samples",
                first.period_type(),
                first.start()
            )))
        }
        _ => Ok(()),
    }
}

/// The periods of a backfill request, or why it cannot run.
fn planned_periods(request: &BackfillRequest) -> Result<Vec<Period>, ServiceError> {
    let periods = check_range(request.period_type, request.from, request.to)?;
    check_retention(&periods, request.samples_kept_from)?;
    if request.levels.is_empty() {
        return Err(ServiceError::InvalidRequest("no level to compute".into()));
    }
    Ok(periods)
}

/// The `parameters` JSON of a backfill session run in-process (`aggregate`).
fn session_parameters(request: &BackfillRequest) -> serde_json::Value {
    serde_json::json!({
        "version": 1,
        "kind": "backfill",
        "period_type": request.period_type,
        "from": request.from,
        "to": request.to,
        "levels": request.levels,
    })
}

/// Runs a backfill to the end in this process and returns its report, computing up to
/// `request.parallelism` batches at once on connections from `pool` (batches of different
/// periods never wait for each other: their advisory locks differ). Cancelling the session
/// (API or CLI) stops it between batches.
pub fn run_backfill(
    pool: &ConnectionPool,
    request: &BackfillRequest,
    progress: &dyn Progress,
) -> Result<BackfillReport, ServiceError> {
    let started = Instant::now();
    let periods = planned_periods(request)?;
    let mut connection = pool.get().map_err(StoreError::from)?;
    let active = active_records(&mut connection)?;
    let run = SessionRun::create(
        &mut connection,
        &crate::worker_name(),
        &NewSession {
            sync_category: SyncCategory::Aggregation,
            sync_type: request.sync_type,
            triggered_by: request.triggered_by.clone(),
            parameters: session_parameters(request),
            job_id: None,
            requested_by_token_id: None,
        },
        &active,
    )?;
    compute(
        pool,
        &mut connection,
        run,
        request,
        &periods,
        progress,
        started,
    )
}

/// Runs the backfill job `job` (work [`AggregationWork::Backfill`]) on a worker: in the
/// session created when it was queued while that is pending (none when it was cancelled
/// meanwhile: `Ok(None)`), else in a new one, with `parallelism` batches at once. Periods
/// starting before `samples_kept_from` are refused, as they were when it was queued (the
/// retention may have moved since).
pub fn run_queued_backfill(
    pool: &ConnectionPool,
    job: &AggregationJob,
    job_id: &str,
    worker_name: &str,
    parallelism: usize,
    samples_kept_from: Option<NaiveDate>,
    today: NaiveDate,
) -> Result<Option<BackfillReport>, ServiceError> {
    let started = Instant::now();
    let AggregationWork::Backfill {
        period_type,
        from,
        to,
        scope,
    } = job.work
    else {
        return Err(ServiceError::InvalidRequest("not a backfill job".into()));
    };
    let new = job.trigger.new_session(
        SyncCategory::Aggregation,
        crate::runs::session_parameters(job, job_id),
        Some(job_id),
    );
    let request = BackfillRequest {
        period_type,
        from,
        to,
        levels: scope.levels(),
        triggered_by: new.triggered_by.clone(),
        sync_type: new.sync_type,
        parallelism,
        samples_kept_from,
        today,
    };
    let periods = planned_periods(&request)?;
    let mut connection = pool.get().map_err(StoreError::from)?;
    let session = SessionRequest {
        adopt: job.session_id,
        new,
        instances: active_records(&mut connection)?,
        link_tick: false,
    };
    match SessionRun::open(&mut connection, worker_name, &session)? {
        OpenedRun::Cancelled(_) => Ok(None),
        OpenedRun::Run(run) => compute(
            pool,
            &mut connection,
            run,
            &request,
            &periods,
            &NoProgress,
            started,
        )
        .map(Some),
    }
}

/// Computes the batches of `periods` into the session `run` (whose records it starts and
/// ends), reporting to `progress`.
fn compute(
    pool: &ConnectionPool,
    connection: &mut PgConnection,
    run: SessionRun,
    request: &BackfillRequest,
    periods: &[Period],
    progress: &dyn Progress,
    started: Instant,
) -> Result<BackfillReport, ServiceError> {
    let parallelism = request.parallelism.max(1);
    let session_id = run.id();
    let instance_ids: Vec<InstanceId> = run.instance_ids(connection)?;
    run.start_records(connection, &instance_ids)?;

    // Enough batches to keep every connection busy, none longer than a batch should be; the
    // largest work (the database level) first.
    let batch_size = periods_per_batch(request.period_type)
        .min(periods.len().div_ceil(parallelism))
        .max(1);
    let work: VecDeque<(AggregationLevel, &[Period])> = request
        .levels
        .iter()
        .flat_map(|level| periods.chunks(batch_size).map(move |batch| (*level, batch)))
        .collect();
    let batches = work.len() as u64;
    let batches_done = AtomicU64::new(0);
    let work = Mutex::new(work);
    let results: Mutex<Vec<(PeriodOutcome, Result<BatchOutcome, StoreError>)>> =
        Mutex::new(Vec::new());
    let cancelled = AtomicBool::new(false);
    progress.begin(
        (periods.len() * request.levels.len()) as u64,
        &format!("{} periods", request.period_type),
    );
    let worker = || -> Result<(), StoreError> {
        let mut connection = pool.get()?;
        loop {
            if cancelled.load(Ordering::Relaxed) {
                return Ok(());
            }
            if run.cancel_requested(&mut connection)? {
                cancelled.store(true, Ordering::Relaxed);
                return Ok(());
            }
            let Some((level, batch)) = lock(&work).pop_front() else {
                return Ok(());
            };
            let outcome = aggregate_periods(
                &mut connection,
                level,
                batch,
                &InstanceScope::AllActive,
                Some(session_id),
                request.today,
            );
            let template = PeriodOutcome::covering(level, batch[0], batch[batch.len() - 1]);
            lock(&results).push((template, outcome));
            // The records only end with the run: the session's progress counts batches.
            let done = batches_done.fetch_add(1, Ordering::Relaxed) + 1;
            run.record_progress(&mut connection, done, batches)?;
            progress.advance(batch.len() as u64);
        }
    };
    let (stop_heartbeats, stopped) = std::sync::mpsc::channel::<()>();
    // The batches and the heartbeats log in the caller's span (the job's), like the rest of
    // the run.
    let span = tracing::Span::current();
    let worker = || {
        let _span = span.enter();
        worker()
    };
    let worker_errors: Vec<StoreError> = std::thread::scope(|scope| {
        // The run's own connection is idle until the batches are done: it sends the session's
        // heartbeats meanwhile, so that one batch longer than the session timeout does not
        // look like a run whose worker is gone.
        let connection = &mut *connection;
        let span = &span;
        scope.spawn(move || {
            let _span = span.enter();
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(HEARTBEAT_INTERVAL) {
                if let Err(error) = run.heartbeat(connection) {
                    tracing::warn!(session_id, error = %capstats_store::error_chain(&error), "could not record a session heartbeat");
                }
            }
        });
        let handles: Vec<_> = (0..parallelism).map(|_| scope.spawn(worker)).collect();
        let errors = handles
            .into_iter()
            .filter_map(|handle| match handle.join() {
                Ok(result) => result.err(),
                Err(panic) => Some(StoreError::thread_panicked(panic.as_ref())),
            })
            .collect();
        drop(stop_heartbeats);
        errors
    });
    progress.finish();

    let mut book = RecordBook::new(instance_ids.iter().copied());
    let mut failures: Vec<String> = worker_errors.iter().map(ToString::to_string).collect();
    let mut totals = RowTotals::default();
    let mut results = results
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    results.sort_by_key(|(template, _)| (template.level, template.period_start));
    for (template, outcome) in results {
        match outcome {
            Ok(outcome) => {
                totals.add(&outcome);
                book.add_batch(None, &template, &outcome);
            }
            Err(error) => {
                let message = format!(
                    "{} {} {}..{}: {error}",
                    template.level, request.period_type, template.period_start, template.period_end
                );
                tracing::error!(session_id, "{message}");
                book.add_failure(None, &template, &message);
                failures.push(message);
            }
        }
    }
    // A worker that lost its connection leaves work undone: that fails every record.
    let work_left = !lock(&work).is_empty();
    let unfinished = !worker_errors.is_empty() || (!cancelled.load(Ordering::Relaxed) && work_left);
    let unfinished_reason = failures.join("; ");
    // Cancelled only if the cancellation stopped a batch from running: one asked for while
    // the last batch ran, or after, comes too late to undo work already stored, and the
    // ledger already holds these periods as computed by this session.
    let was_cancelled = cancelled.load(Ordering::Relaxed) && work_left;
    let status = (|| {
        // Every batch covers every instance, so a cancelled run leaves every record
        // unfinished; a failure still shows as such.
        let outcomes = book.into_outcomes(
            was_cancelled,
            unfinished.then_some(unfinished_reason.as_str()),
        );
        run.finish_records(connection, &outcomes)?;
        run.finish(connection)
    })()
    .inspect_err(|error| run.fail(connection, error))?;
    Ok(BackfillReport {
        session_id,
        status,
        periods: periods.len(),
        rows_written: totals.written,
        rows_deleted: totals.deleted,
        failures,
        duration: started.elapsed(),
    })
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
