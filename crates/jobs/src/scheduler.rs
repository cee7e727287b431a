//! The scheduler loop every worker runs (unless `CAPSTATS_SCHEDULER_ENABLED=false`): it reads
//! the schedules, plans the ticks due since each schedule's cursor (misfire policies included),
//! and claims each tick — in one transaction with its job, so that however many workers run
//! the loop, a tick is enqueued once. It also runs the session sweeper.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use store::schedules::{self, Schedule};

use crate::JobError;
use crate::job_store::{self, TickAction};
use crate::payloads::Job;
use crate::scheduling::{CronExpression, MisfirePolicy, plan_ticks};
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
            tracing::error!(%error, "evaluating schedules failed; retrying");
        }
        if last_sweep.elapsed() >= SWEEP_INTERVAL {
            last_sweep = Instant::now();
            if let Err(error) = sweep(&state).await {
                tracing::error!(%error, "sweeping sessions failed; retrying");
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

/// The zone a schedule's cron expression is read in.
fn zone_of(schedule: &Schedule, business: Tz) -> Result<Tz, JobError> {
    match &schedule.time_zone {
        None => Ok(business),
        Some(name) => name.parse().map_err(|_| {
            JobError::InvalidRequest(format!(
                "schedule `{}` has an unknown time zone `{name}`",
                schedule.name
            ))
        }),
    }
}

/// One pass over every schedule.
pub async fn evaluate(state: &WorkerState) -> Result<(), JobError> {
    let (all, cursors) = store::run_blocking(&state.store, |connection| {
        Ok((
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
            tracing::error!(schedule = %schedule.name, %error, "schedule skipped this round");
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
) -> Result<(), JobError> {
    let cron: CronExpression = schedule.cron_expression.parse()?;
    let zone = zone_of(schedule, state.time_zone)?;
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
    }
    for tick_at in plan.enqueue {
        let logical_date = tick_at.with_timezone(&state.time_zone).date_naive();
        let Some(job) = Job::for_tick(&schedule.job_name, &schedule.name, tick_at, logical_date)
        else {
            return Err(JobError::InvalidRequest(format!(
                "schedule `{}` names an unknown job `{}`",
                schedule.name, schedule.job_name
            )));
        };
        let action = TickAction::Enqueue {
            job,
            job_id: job_store::new_job_id(),
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
        }
    }
    Ok(())
}

/// Closes sessions whose worker is gone: running sessions without a heartbeat for longer than
/// the session timeout, and pending sessions whose job ended before starting them.
pub async fn sweep(state: &WorkerState) -> Result<(), JobError> {
    let timeout = Duration::from_secs(state.settings.session_timeout_seconds);
    let lost = store::run_blocking(&state.store, move |connection| {
        store::sessions::fail_lost_sessions(connection, timeout)
    })
    .await?;
    for (session_id, reason) in lost {
        tracing::warn!(session_id, reason, "closed a session whose worker is gone");
    }
    for (session_id, job_id, status) in job_store::sessions_of_ended_jobs(&state.job_store).await? {
        let reason = format!("its job {job_id} ended {status} before the run started");
        let closed = store::run_blocking(&state.store, {
            let reason = reason.clone();
            move |connection| store::sessions::fail_session(connection, session_id, &reason)
        })
        .await;
        match closed {
            Ok(()) => tracing::warn!(session_id, reason, "closed a session"),
            Err(error) => tracing::warn!(session_id, %error, "could not close a session"),
        }
    }
    Ok(())
}
