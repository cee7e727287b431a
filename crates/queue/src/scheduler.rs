//! The scheduler loop every worker runs (unless `CAPSTATS_SCHEDULER_ENABLED=false`): it reads
//! the schedules, plans the ticks due since each schedule's cursor (misfire policies included),
//! and claims each tick — in one transaction with its job, so that however many workers run
//! the loop, a tick is enqueued once. It also runs the session sweeper.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use capstats_store::schedules::{self, Schedule};

use capstats_services::new_job_id;
use capstats_services::payloads::Job;
use capstats_services::scheduling::{CronExpression, MisfirePolicy, plan_ticks, schedule_zone};

use crate::QueueError;
use crate::job_store::{self, TickAction};
use crate::worker::WorkerState;

/// How often the sweeper looks for lost sessions.
const SWEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Runs until `shutdown` turns true.
pub async fn run(state: Arc<WorkerState>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let interval = state.settings.scheduler_interval();
    tracing::info!(
        worker = %state.name,
        interval_ms = interval.as_millis() as u64,
        "scheduler started"
    );
    let mut last_sweep = Instant::now() - SWEEP_INTERVAL;
    loop {
        if let Err(error) = evaluate(&state).await {
            tracing::error!(error = %error.chain(), "evaluating schedules failed; retrying");
        }
        if last_sweep.elapsed() >= SWEEP_INTERVAL {
            last_sweep = Instant::now();
            if let Err(error) = sweep(&state).await {
                tracing::error!(error = %error.chain(), "sweeping sessions failed; retrying");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => break,
        }
        if *shutdown.borrow() {
            break;
        }
    }
    tracing::info!(worker = %state.name, "scheduler stopped");
}

/// One pass over every schedule.
pub async fn evaluate(state: &WorkerState) -> Result<(), QueueError> {
    let (all, cursors) = capstats_store::run_blocking(&state.store, |connection| {
        Ok::<_, QueueError>((
            schedules::list_schedules(connection)?,
            schedules::cursors(connection)?,
        ))
    })
    .await?;
    let now = Utc::now();
    let grace = Duration::from_secs(state.settings.misfire_grace_seconds);
    for schedule in all.iter().filter(|schedule| !schedule.is_paused) {
        if let Err(error) = evaluate_one(
            state,
            schedule,
            cursors.get(&schedule.name).copied(),
            now,
            grace,
        )
        .await
        {
            tracing::error!(schedule = %schedule.name, error = %error.chain(), "schedule skipped this round");
        }
    }
    Ok(())
}

async fn evaluate_one(
    state: &WorkerState,
    schedule: &Schedule,
    cursor: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    grace: Duration,
) -> Result<(), QueueError> {
    let cron: CronExpression = schedule.cron_expression.parse()?;
    let zone = schedule_zone(schedule, state.settings.time_zone())?;
    let policy = MisfirePolicy::from_stored(&schedule.misfire_policy, schedule.catch_up_limit)?;
    let cursor = cursor.unwrap_or(schedule.ticks_from);
    let plan = plan_ticks(&cron, zone, policy, cursor, now, grace);
    if let Some(tick_at) = plan.skip
        && job_store::claim_tick(
            &state.job_store,
            &schedule.name,
            tick_at,
            &state.name,
            &TickAction::Skip,
        )
        .await?
    {
        tracing::warn!(schedule = %schedule.name, %tick_at, "missed tick skipped (misfire policy skip)");
        crate::metrics::tick(&schedule.name, crate::metrics::TickOutcome::Skipped);
    }
    for tick_at in plan.enqueue {
        let logical_date = tick_at
            .with_timezone(&state.settings.time_zone())
            .date_naive();
        let Some(job) = Job::for_tick(&schedule.job_name, &schedule.name, tick_at, logical_date)
        else {
            return Err(QueueError::InvalidRequest(format!(
                "schedule `{}` names an unknown job `{}`",
                schedule.name, schedule.job_name
            )));
        };
        let action = TickAction::Enqueue {
            job,
            job_id: new_job_id(),
            max_attempts: state.settings.job_max_attempts,
        };
        if job_store::claim_tick(
            &state.job_store,
            &schedule.name,
            tick_at,
            &state.name,
            &action,
        )
        .await?
        {
            let late = (now - tick_at).num_milliseconds();
            if let TickAction::Enqueue { job_id, .. } = &action {
                tracing::info!(schedule = %schedule.name, %tick_at, job_id, late_ms = late, "tick claimed");
            }
            let outcome = if u128::try_from(late).unwrap_or(0) > grace.as_millis() {
                crate::metrics::TickOutcome::Missed
            } else {
                crate::metrics::TickOutcome::Claimed
            };
            crate::metrics::tick(&schedule.name, outcome);
        }
    }
    Ok(())
}

/// Closes sessions whose worker is gone: running sessions without a heartbeat for longer than
/// the session timeout, and pending sessions whose job ended before starting them.
pub async fn sweep(state: &WorkerState) -> Result<(), QueueError> {
    let timeout = Duration::from_secs(state.settings.session_timeout_seconds);
    let lost = capstats_store::run_blocking(&state.store, move |connection| {
        capstats_store::sessions::fail_lost_sessions(connection, timeout)
    })
    .await?;
    for (session_id, reason) in lost {
        tracing::warn!(session_id, reason, "closed a session whose worker is gone");
    }
    // Alert notifications are the business of another table: a failure there is logged and
    // does not keep the sessions below from being closed.
    if let Err(error) = redispatch_notifications(state).await {
        tracing::warn!(error = %error.chain(), "could not re-dispatch alert notifications");
    }
    for (session_id, job_id, status) in job_store::sessions_of_ended_jobs(&state.job_store).await? {
        let reason = format!("its job {job_id} ended {status} before the run started");
        let closed = capstats_store::run_blocking(&state.store, {
            let reason = reason.clone();
            move |connection| {
                capstats_store::sessions::fail_session(connection, session_id, &reason)
            }
        })
        .await;
        match closed {
            Ok(()) => tracing::warn!(session_id, reason, "closed a session"),
            Err(error) => {
                tracing::warn!(session_id, error = %capstats_store::error_chain(&error), "could not close a session")
            }
        }
    }
    Ok(())
}

/// Releases the alert notifications whose delivery job ended without delivering them, and
/// dispatches every notification without a job (those just released, and any whose dispatch
/// failed before).
async fn redispatch_notifications(state: &WorkerState) -> Result<(), QueueError> {
    let released = job_store::release_notifications_of_ended_jobs(&state.job_store).await?;
    if !released.is_empty() {
        tracing::warn!(notifications = ?released, "re-dispatching notifications whose delivery job ended without delivering them");
    }
    capstats_services::alerts::dispatch_notifications(&state.store, &state.queue()).await?;
    Ok(())
}
