//! Aggregation jobs as runs: which periods are due, computing them chunk by chunk of
//! instances, and recording every run as a sync session with one record per instance.
//!
//! Functions here are synchronous (diesel); the worker calls them on the blocking thread pool.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::NaiveDate;

use capstats_aggregation_core::due_periods;
use capstats_capacity_model::{AggregationLevel, InstanceId, Period, PeriodType};
use capstats_store::aggregation::{InstanceScope, aggregate_periods};
use capstats_store::{PgConnection, StoreError, ledger};
use capstats_sync_session::{PeriodOutcome, RecordStatus, SessionStatus, SyncCategory};

use crate::ServiceError;
use crate::payloads::{AggregationJob, AggregationWork, Trigger};
use crate::records::{RecordBook, RowTotals};
use crate::session_run::{OpenedRun, SessionRequest, SessionRun, active_records};

/// How runs are carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSettings {
    /// Instances per chunk.
    pub chunk_size: usize,
    /// Pause between chunks.
    pub chunk_pause: Duration,
    /// Complete periods of each type a scheduled run looks back over, the last one included.
    pub catch_up_periods: usize,
    /// Months of raw samples kept (0: all); periods starting before the first kept month are
    /// not computed (their samples are partly gone).
    pub sample_retention_months: u32,
    /// The period types scheduled runs compute.
    pub period_types: Vec<PeriodType>,
    /// The business time zone: the rows' completeness is judged on its current date.
    pub time_zone: chrono_tz::Tz,
}

impl RunSettings {
    /// The run settings of a configuration (`CAPSTATS_AGGREGATION_*`, the retention).
    pub fn from_settings(settings: &capstats_settings::Settings) -> Self {
        Self {
            chunk_size: settings.aggregation_chunk_size as usize,
            chunk_pause: Duration::from_millis(settings.aggregation_chunk_pause_ms),
            catch_up_periods: settings.aggregation_catch_up_periods as usize,
            sample_retention_months: settings.sample_retention_months,
            period_types: settings.aggregation_period_types.clone(),
            time_zone: settings.time_zone(),
        }
    }

    /// The current business date, on which the rows a run writes are judged complete or
    /// partial.
    pub fn today(&self) -> NaiveDate {
        capstats_settings::today_in(self.time_zone)
    }
}

/// One unit of work: a level and consecutive periods of one type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkItem {
    /// The level.
    pub level: AggregationLevel,
    /// Consecutive periods of one type, oldest first.
    pub periods: Vec<Period>,
}

/// Splits periods of one type (sorted) into runs of consecutive periods.
fn consecutive_runs(level: AggregationLevel, periods: Vec<Period>) -> Vec<WorkItem> {
    let mut items: Vec<WorkItem> = Vec::new();
    for period in periods {
        match items.last_mut() {
            Some(item)
                if item
                    .periods
                    .last()
                    .is_some_and(|last| last.next() == period) =>
            {
                item.periods.push(period);
            }
            _ => items.push(WorkItem {
                level,
                periods: vec![period],
            }),
        }
    }
    items
}

/// The periods a run on `logical_date` computes, per level and each of `period_types`
/// (DESIGN §5a): the last complete period of each type and, within `catch_up_periods`,
/// earlier complete periods that are not up to date in the ledger. With `skip_up_to_date`
/// (scheduled runs), periods up to date in the ledger are skipped; without (run now), no skip
/// rule applies: every period of the catch-up horizon is recomputed.
///
/// Periods starting before `keep_from` (the retention's first month) are never due: partition
/// maintenance drops their rows, and recomputing them from the samples the retention left
/// would store, say, a yearly row of the year's last months only.
pub fn plan_due(
    connection: &mut PgConnection,
    logical_date: NaiveDate,
    period_types: &[PeriodType],
    catch_up_periods: usize,
    skip_up_to_date: bool,
    keep_from: Option<NaiveDate>,
) -> Result<Vec<WorkItem>, StoreError> {
    // Periods that end before the first sample have nothing to compute.
    let Some(earliest) = capstats_store::samples::earliest_sample_date(connection)? else {
        return Ok(Vec::new());
    };
    let mut items = Vec::new();
    for level in AggregationLevel::ALL {
        for &period_type in period_types {
            let last = Period::last_complete(period_type, logical_date);
            let mut first = last;
            for _ in 1..catch_up_periods.max(1) {
                first = first.previous();
            }
            let up_to_date: BTreeSet<Period> = ledger::entries_between(
                connection,
                level,
                period_type,
                first.start(),
                last.start(),
            )?
            .into_iter()
            .filter(|entry| entry.is_up_to_date())
            .map(|entry| entry.period)
            .collect();
            let due = due_periods(period_type, logical_date, catch_up_periods, |period| {
                period.end() < earliest
                    || keep_from.is_some_and(|keep_from| period.start() < keep_from)
                    || skip_up_to_date && up_to_date.contains(period)
            });
            items.extend(consecutive_runs(level, due));
        }
    }
    Ok(items)
}

/// The current period of `period_type` on `logical_date`, at each of `levels`.
pub fn plan_current(
    logical_date: NaiveDate,
    period_type: PeriodType,
    levels: &[AggregationLevel],
) -> Vec<WorkItem> {
    let period = Period::current(period_type, logical_date);
    levels
        .iter()
        .map(|level| WorkItem {
            level: *level,
            periods: vec![period],
        })
        .collect()
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    /// The session recording it; `None` when there was nothing to do and no session was
    /// opened (a refresh without stale periods).
    pub session_id: Option<i64>,
    /// The session's final status.
    pub status: SessionStatus,
    /// Work items (level × consecutive periods) computed.
    pub items: usize,
    /// Rows written.
    pub rows_written: u64,
    /// Rows deleted.
    pub rows_deleted: u64,
}

impl RunReport {
    /// One line for the job's result and the logs.
    pub fn summary(&self) -> String {
        match self.session_id {
            None => "nothing to do".into(),
            Some(id) => format!(
                "session {id} {}: {} work items, {} rows written, {} deleted",
                self.status, self.items, self.rows_written, self.rows_deleted
            ),
        }
    }
}

/// How an aggregation job comes to its session: the one created at enqueue time while it is
/// still pending, else a new one (a scheduled tick, or a retry after the first attempt's
/// session ended) with a record for each of `instances`.
fn session_request(
    job: &AggregationJob,
    job_id: &str,
    instances: Vec<(InstanceId, String)>,
) -> SessionRequest {
    SessionRequest {
        adopt: job.session_id,
        new: job.trigger.new_session(
            SyncCategory::Aggregation,
            session_parameters(job, job_id),
            Some(job_id),
        ),
        instances,
        link_tick: job.trigger.is_scheduled(),
    }
}

/// Opens the run's session, or reports the run that must not happen: its session was
/// cancelled while the job was queued.
fn open_run(
    connection: &mut PgConnection,
    worker_name: &str,
    request: &SessionRequest,
) -> Result<Result<SessionRun, RunReport>, StoreError> {
    Ok(match SessionRun::open(connection, worker_name, request)? {
        OpenedRun::Run(run) => Ok(run),
        OpenedRun::Cancelled(session_id) => Err(RunReport::without_work(
            Some(session_id),
            SessionStatus::Cancelled,
        )),
    })
}

impl RunReport {
    /// The report of a run that computed nothing: a session cancelled before it started, or
    /// a refresh that found nothing stale (no session).
    fn without_work(session_id: Option<i64>, status: SessionStatus) -> Self {
        Self {
            session_id,
            status,
            items: 0,
            rows_written: 0,
            rows_deleted: 0,
        }
    }
}

/// The `parameters` JSON of a session: the job's work and trigger.
pub fn session_parameters(job: &AggregationJob, job_id: &str) -> serde_json::Value {
    let mut parameters = serde_json::json!({
        "version": 1,
        "work": job.work,
        "trigger": job.trigger,
    });
    if !job_id.is_empty() {
        parameters["job_id"] = job_id.into();
    }
    if let Trigger::Schedule { tick_at, .. } = &job.trigger {
        parameters["tick_at"] = serde_json::to_value(tick_at).expect("a timestamp serializes");
    }
    parameters
}

/// Executes an aggregation job to the end and returns its report. Failures of single
/// statements fail the records of the instances they covered and the run goes on; an error
/// that stops the run (the database went away) is returned after the session was closed as
/// failed, when that is still possible.
pub fn execute(
    connection: &mut PgConnection,
    job: &AggregationJob,
    job_id: &str,
    worker_name: &str,
    settings: &RunSettings,
) -> Result<RunReport, ServiceError> {
    let today = settings.today();
    refresh_completeness(connection, today)?;
    let samples_kept_from =
        capstats_store::partitions::retention_start(today, settings.sample_retention_months);
    if let AggregationWork::RefreshStale = job.work {
        return refresh_stale(
            connection,
            job,
            job_id,
            worker_name,
            today,
            samples_kept_from,
        );
    }
    let items = match &job.work {
        AggregationWork::Due {
            logical_date,
            skip_up_to_date,
        } => plan_due(
            connection,
            *logical_date,
            &settings.period_types,
            settings.catch_up_periods,
            *skip_up_to_date,
            capstats_store::partitions::retention_start(
                *logical_date,
                settings.sample_retention_months,
            ),
        )?,
        AggregationWork::Current {
            logical_date,
            period_type,
            scope,
        } => {
            // The API refuses it first; a job queued otherwise is refused here.
            crate::backfill::check_retention(
                &[Period::containing(*period_type, *logical_date)],
                samples_kept_from,
            )?;
            plan_current(*logical_date, *period_type, &scope.levels())
        }
        AggregationWork::RefreshStale => unreachable!("handled above"),
        AggregationWork::Backfill { .. } => {
            return Err(ServiceError::InvalidRequest(
                "a backfill runs on a connection pool: use backfill::run_queued_backfill".into(),
            ));
        }
    };
    let request = session_request(job, job_id, active_records(connection)?);
    let run = match open_run(connection, worker_name, &request)? {
        Ok(run) => run,
        Err(cancelled) => return Ok(cancelled),
    };
    run_chunks(connection, run, &items, settings).map_err(|error| {
        run.fail(connection, &error);
        error.into()
    })
}

/// Computes `items` for `instance_ids` chunk by chunk, recording each instance's outcome, then
/// marks the periods every chunk computed as computed in the ledger and ends the session.
fn run_chunks(
    connection: &mut PgConnection,
    run: SessionRun,
    items: &[WorkItem],
    settings: &RunSettings,
) -> Result<RunReport, StoreError> {
    let session_id = run.id();
    let today = settings.today();
    let instance_ids = run.instance_ids(connection)?;
    let mut failed_items: BTreeSet<usize> = BTreeSet::new();
    let mut totals = RowTotals::default();
    let mut finished_all_chunks = true;
    for (index, chunk) in instance_ids.chunks(settings.chunk_size.max(1)).enumerate() {
        if run.cancel_requested(connection)? {
            finished_all_chunks = false;
            break;
        }
        if index > 0 && !settings.chunk_pause.is_zero() {
            std::thread::sleep(settings.chunk_pause);
        }
        run.start_records(connection, chunk)?;
        let mut book = RecordBook::new(chunk.iter().copied());
        for (item_index, item) in items.iter().enumerate() {
            let first = item.periods[0];
            let last = item.periods[item.periods.len() - 1];
            let template = PeriodOutcome::covering(item.level, first, last);
            match aggregate_periods(
                connection,
                item.level,
                &item.periods,
                &InstanceScope::Only(chunk.to_vec()),
                Some(session_id),
                today,
            ) {
                Ok(outcome) => {
                    totals.add(&outcome);
                    book.add_batch(None, &template, &outcome);
                }
                Err(error) if matches!(error, StoreError::Connection(_) | StoreError::Pool(_)) => {
                    return Err(error);
                }
                Err(error) => {
                    let message = format!(
                        "{} {} {}..{}: {error}",
                        item.level,
                        first.period_type(),
                        first.start(),
                        last.end()
                    );
                    tracing::error!(session_id, "{message}");
                    failed_items.insert(item_index);
                    book.add_failure(None, &template, &message);
                }
            }
            run.heartbeat(connection)?;
        }
        let outcomes = book.into_outcomes(false, None);
        run.finish_records(connection, &outcomes)?;
    }
    // A period counts as computed only when every chunk computed it.
    if finished_all_chunks {
        for (index, item) in items.iter().enumerate() {
            if !failed_items.contains(&index) {
                ledger::mark_computed(connection, item.level, &item.periods, Some(session_id))?;
            }
        }
    }
    let status = run.finish(connection)?;
    Ok(RunReport {
        session_id: Some(session_id),
        status,
        items: items.len(),
        rows_written: totals.written,
        rows_deleted: totals.deleted,
    })
}

/// Brings the stored completeness of the partial rows up to `today` before a run computes
/// anything (every aggregation job does this, and the stale refresh runs every few minutes, so
/// a period that ended at midnight reads as complete shortly after).
///
/// It is housekeeping, not the job's work: when it fails for another reason than a lost
/// database (a row held by another run past the lock timeout), the failure is logged as a
/// warning with its cause and the run goes on; the next run refreshes what this one left.
fn refresh_completeness(connection: &mut PgConnection, today: NaiveDate) -> Result<(), StoreError> {
    match capstats_store::aggregation::refresh_completeness(connection, today) {
        Ok(refreshed) if refreshed != Default::default() => tracing::info!(
            %today,
            database_rows = refreshed.database_rows,
            instance_rows = refreshed.instance_rows,
            "refreshed the completeness of partial periods"
        ),
        Ok(_) => {}
        Err(error @ (StoreError::Connection(_) | StoreError::Pool(_))) => return Err(error),
        Err(error) => tracing::warn!(
            %today,
            error = %capstats_store::error_chain(&error),
            "the completeness of partial periods was not refreshed; the next run tries again"
        ),
    }
    Ok(())
}

/// Recomputes, for every stale ledger entry, exactly the instances whose samples changed. No
/// session is opened when nothing is stale, unless one was queued for this attempt.
fn refresh_stale(
    connection: &mut PgConnection,
    job: &AggregationJob,
    job_id: &str,
    worker_name: &str,
    today: NaiveDate,
    samples_kept_from: Option<NaiveDate>,
) -> Result<RunReport, ServiceError> {
    // Periods starting before the retention stay as computed, as they do for scheduled runs
    // and backfills: recomputing one from what is left of its samples would replace
    // whole-period figures by partial ones.
    let entries = ledger::stale_entries(connection, 1000, samples_kept_from)?;
    // A session queued for this attempt (by a failed attempt before it, or an operator's
    // retry) is run and closed even with nothing stale left, or it would stay pending for
    // ever: nothing else closes the session of a job that ends well.
    if entries.is_empty()
        && (job_id.is_empty()
            || capstats_store::sessions::queued_session_of_job(connection, job_id)?.is_none())
    {
        return Ok(RunReport::without_work(None, SessionStatus::Completed));
    }
    let stale: BTreeSet<InstanceId> = entries
        .iter()
        .flat_map(|entry| entry.stale_instance_ids.iter().copied())
        .collect();
    let mut stale_active = active_records(connection)?;
    stale_active.retain(|(id, _)| stale.contains(id));
    let request = session_request(job, job_id, stale_active);
    let run = match open_run(connection, worker_name, &request)? {
        Ok(run) => run,
        Err(cancelled) => return Ok(cancelled),
    };
    let session_id = run.id();
    let result = (|| -> Result<RunReport, StoreError> {
        let records = run.instance_ids(connection)?;
        run.start_records(connection, &records)?;
        let mut book = RecordBook::new(records.iter().copied());
        let mut totals = RowTotals::default();
        // Cancellation is honoured between entries: instances with entries left undone end
        // cancelled (their entries stay stale for the next refresh), the others as computed.
        let mut undone: BTreeSet<InstanceId> = BTreeSet::new();
        for (index, entry) in entries.iter().enumerate() {
            if run.cancel_requested(connection)? {
                undone = entries[index..]
                    .iter()
                    .flat_map(|entry| entry.stale_instance_ids.iter().copied())
                    .collect();
                break;
            }
            let template = PeriodOutcome::covering(entry.level, entry.period, entry.period);
            let scope = InstanceScope::Only(entry.stale_instance_ids.clone());
            let outcome = aggregate_periods(
                connection,
                entry.level,
                &[entry.period],
                &scope,
                Some(session_id),
                today,
            );
            match &outcome {
                Ok(outcome) => book.add_batch(Some(&entry.stale_instance_ids), &template, outcome),
                Err(error) => book.add_failure(
                    Some(&entry.stale_instance_ids),
                    &template,
                    &format!("{} {}: {error}", entry.level, entry.period),
                ),
            }
            if let Ok(outcome) = &outcome {
                totals.add(outcome);
            }
            run.heartbeat(connection)?;
        }
        let mut outcomes = book.into_outcomes(false, None);
        for outcome in &mut outcomes {
            if outcome.status == RecordStatus::Completed && undone.contains(&outcome.instance_id) {
                outcome.status = RecordStatus::Cancelled;
            }
        }
        run.finish_records(connection, &outcomes)?;
        let status = run.finish(connection)?;
        Ok(RunReport {
            session_id: Some(session_id),
            status,
            items: entries.len(),
            rows_written: totals.written,
            rows_deleted: totals.deleted,
        })
    })();
    result.map_err(|error| {
        run.fail(connection, &error);
        error.into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_split_into_consecutive_runs() {
        let day = |d| {
            Period::containing(
                PeriodType::Daily,
                NaiveDate::from_ymd_opt(2025, 1, d).unwrap(),
            )
        };
        let items = consecutive_runs(
            AggregationLevel::Database,
            vec![day(1), day(2), day(4), day(5), day(6), day(9)],
        );
        let lengths: Vec<usize> = items.iter().map(|item| item.periods.len()).collect();
        assert_eq!(lengths, vec![2, 3, 1]);
    }
}
