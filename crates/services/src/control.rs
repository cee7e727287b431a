//! What operators and the API ask of the job system: run a schedule now, aggregate the current
//! period, edit schedules, and look at schedules with their next and last runs.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use capstats_capacity_model::{InstanceId, PeriodType};
use capstats_store::ConnectionPool;
use capstats_store::schedules::{self, Schedule};
use capstats_store::sessions::{self, NewSession, RequestedSession};
use capstats_sync_session::{SessionStatus, SyncCategory};

use crate::ServiceError;
use crate::enqueue::{JobQueue, new_job_id};
use crate::payloads::{
    AggregationJob, AggregationWork, CollectionJob, Job, LevelScope, PAYLOAD_VERSION, Trigger,
};
use crate::scheduling::{CronExpression, MisfirePolicy, schedule_zone};

/// A job enqueued on request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Enqueued {
    /// The job's id in the job store.
    pub job_id: String,
    /// The session it will run as (aggregation jobs), pending until a worker starts it.
    pub session_id: Option<i64>,
    /// Whether an equal request was already queued or running and this is its session.
    pub existing: bool,
}

/// Creates the pending session of a job (with one record per instance of `records`) and
/// pushes the job built for that session.
async fn enqueue_with_session(
    store: &ConnectionPool,
    queue: &dyn JobQueue,
    job_id: String,
    session: NewSession,
    records: Vec<(InstanceId, String)>,
    job_for_session: impl FnOnce(i64) -> Job,
) -> Result<Enqueued, ServiceError> {
    let session_id = capstats_store::run_blocking(store, move |connection| {
        sessions::create_session(connection, &session, &records)
    })
    .await?;
    push_for_session(
        store,
        queue,
        job_id,
        session_id,
        &job_for_session(session_id),
    )
    .await
}

/// Pushes `job`, whose pending session `session_id` was just created. Should the push fail,
/// the session is closed as failed so that nobody waits for it.
async fn push_for_session(
    store: &ConnectionPool,
    queue: &dyn JobQueue,
    job_id: String,
    session_id: i64,
    job: &Job,
) -> Result<Enqueued, ServiceError> {
    if let Err(error) = queue.enqueue(job, &job_id).await {
        let reason = format!("could not enqueue its job: {error}");
        if let Err(closing) = capstats_store::run_blocking(store, move |connection| {
            sessions::fail_session(connection, session_id, &reason)
        })
        .await
        {
            tracing::error!(session_id, error = %closing, "could not close the session of a job the queue refused; the sweeper will");
        }
        return Err(ServiceError::Queue(error));
    }
    Ok(Enqueued {
        job_id,
        session_id: Some(session_id),
        existing: false,
    })
}

/// Creates the pending session of an aggregation job (a record per active instance) and
/// pushes the job.
async fn enqueue_aggregation(
    store: &ConnectionPool,
    queue: &dyn JobQueue,
    job: AggregationJob,
) -> Result<Enqueued, ServiceError> {
    let job_id = new_job_id();
    // Queued on request: the trigger is an operator's or a program's (a manual task).
    let session = job.trigger.new_session(
        SyncCategory::Aggregation,
        crate::runs::session_parameters(&job, &job_id),
        Some(&job_id),
    );
    let active = capstats_store::run_blocking(store, crate::session_run::active_records).await?;
    enqueue_with_session(store, queue, job_id, session, active, |session_id| {
        Job::Aggregation(AggregationJob {
            session_id: Some(session_id),
            ..job
        })
    })
    .await
}

/// Reads the database sizes of one instance now, on a worker. Answers at once with the
/// session to poll. The instance must be active, of an engine with a collector, and have a
/// host and a connection user.
pub async fn collect_now(
    store: &ConnectionPool,
    queue: &dyn JobQueue,
    instance_id: InstanceId,
    trigger: Trigger,
    today: NaiveDate,
) -> Result<Enqueued, ServiceError> {
    let instance = capstats_store::run_blocking(store, move |connection| {
        let instance = capstats_store::instances::get_instance(connection, instance_id)?;
        if instance.deleted_at.is_some() {
            return Err(ServiceError::NotFound(format!("instance {instance_id}")));
        }
        crate::collection::check_collectable(connection, &[(instance_id, instance.name.clone())])?;
        Ok(instance)
    })
    .await?;
    let job_id = new_job_id();
    let job = CollectionJob {
        version: PAYLOAD_VERSION,
        instance_ids: Some(vec![instance_id]),
        trigger,
        logical_date: Some(today),
        session_id: None,
    };
    let session = crate::collection::new_session(&job, Some(&job_id));
    enqueue_with_session(
        store,
        queue,
        job_id,
        session,
        vec![(instance.id, instance.name)],
        |session_id| {
            Job::Collection(CollectionJob {
                session_id: Some(session_id),
                ..job
            })
        },
    )
    .await
}

/// Runs a schedule's job now, like a tick but without the skip rule. Returns the job and, for
/// aggregation jobs other than the stale refresh, the session id at once (the refresh opens
/// its session when it starts, and only when something is stale).
pub async fn run_schedule_now(
    store: &ConnectionPool,
    queue: &dyn JobQueue,
    name: &str,
    trigger: Trigger,
    today: NaiveDate,
) -> Result<Enqueued, ServiceError> {
    let schedule = {
        let name = name.to_owned();
        capstats_store::run_blocking(store, move |connection| {
            schedules::get_schedule(connection, &name)
        })
        .await?
    };
    let mut job =
        Job::for_tick(&schedule.job_name, &schedule.name, Utc::now(), today).ok_or_else(|| {
            ServiceError::InvalidRequest(format!(
                "schedule `{}` names an unknown job `{}`",
                schedule.name, schedule.job_name
            ))
        })?;
    match &mut job {
        Job::Aggregation(aggregation) => {
            aggregation.trigger = trigger;
            if let AggregationWork::Due {
                skip_up_to_date, ..
            } = &mut aggregation.work
            {
                *skip_up_to_date = false;
            }
        }
        Job::Collection(collection) => collection.trigger = trigger,
        Job::Maintenance(_) | Job::Alert(_) => {}
    }
    match job {
        // A refresh opens its session when it starts, and only when something is stale, for
        // exactly the instances that changed: a session made now could stay pending forever.
        Job::Aggregation(aggregation)
            if !matches!(aggregation.work, AggregationWork::RefreshStale) =>
        {
            enqueue_aggregation(store, queue, aggregation).await
        }
        // Maintenance, collection and refresh jobs open their session (if any) when they start.
        other => {
            let job_id = new_job_id();
            queue
                .enqueue(&other, &job_id)
                .await
                .map_err(ServiceError::Queue)?;
            Ok(Enqueued {
                job_id,
                session_id: None,
                existing: false,
            })
        }
    }
}

/// Aggregates the current period of `period_type` at the `scope` levels for every active
/// instance. While an equal request is queued or running, its session is returned instead of
/// starting a second run.
pub async fn aggregate_current(
    store: &ConnectionPool,
    queue: &dyn JobQueue,
    period_type: PeriodType,
    scope: LevelScope,
    trigger: Trigger,
    today: NaiveDate,
) -> Result<Enqueued, ServiceError> {
    let work = AggregationWork::Current {
        logical_date: today,
        period_type,
        scope,
    };
    enqueue_unless_open(
        store,
        queue,
        AggregationJob {
            version: PAYLOAD_VERSION,
            work,
            trigger,
            session_id: None,
        },
    )
    .await
}

/// A backfill to queue: every `period_type` period starting between `from` and `to`, at the
/// `scope` levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackfillOrder {
    /// The period type.
    pub period_type: PeriodType,
    /// Periods starting on or after this date…
    pub from: NaiveDate,
    /// …and on or before this one.
    pub to: NaiveDate,
    /// The levels.
    pub scope: LevelScope,
}

/// Queues the backfill `order`, run by a worker in batches (cancellable between them, its
/// progress in its session); refused when a period starts before `samples_kept_from` (the
/// sample retention's first day). While an equal backfill is queued or running, its session
/// is returned instead.
pub async fn queue_backfill(
    store: &ConnectionPool,
    queue: &dyn JobQueue,
    order: BackfillOrder,
    trigger: Trigger,
    samples_kept_from: Option<NaiveDate>,
) -> Result<Enqueued, ServiceError> {
    let BackfillOrder {
        period_type,
        from,
        to,
        scope,
    } = order;
    let periods = crate::backfill::check_range(period_type, from, to)?;
    crate::backfill::check_retention(&periods, samples_kept_from)?;
    enqueue_unless_open(
        store,
        queue,
        AggregationJob {
            version: PAYLOAD_VERSION,
            work: AggregationWork::Backfill {
                period_type,
                from,
                to,
                scope,
            },
            trigger,
            session_id: None,
        },
    )
    .await
}

/// Enqueues `job` with its pending session unless an aggregation session of the same work is
/// pending or running, whose session is returned instead. The check and the creation of the
/// session are one atomic step, so equal requests at once (from any number of API processes)
/// make one run and one job.
async fn enqueue_unless_open(
    store: &ConnectionPool,
    queue: &dyn JobQueue,
    job: AggregationJob,
) -> Result<Enqueued, ServiceError> {
    let wanted = serde_json::to_value(&job.work).expect("a payload's work serializes");
    let job_id = new_job_id();
    let session = job.trigger.new_session(
        SyncCategory::Aggregation,
        crate::runs::session_parameters(&job, &job_id),
        Some(&job_id),
    );
    let requested = capstats_store::run_blocking(store, move |connection| {
        let active = crate::session_run::active_records(connection)?;
        sessions::create_session_unless_open(connection, &session, &active, &wanted)
    })
    .await?;
    match requested {
        RequestedSession::Existing(session_id, job_id) => Ok(Enqueued {
            job_id: job_id.unwrap_or_default(),
            session_id: Some(session_id),
            existing: true,
        }),
        RequestedSession::Created(session_id) => {
            let job = Job::Aggregation(AggregationJob {
                session_id: Some(session_id),
                ..job
            });
            push_for_session(store, queue, job_id, session_id, &job).await
        }
    }
}

/// A schedule with what operators want to know about it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScheduleView {
    /// The schedule.
    #[serde(flatten)]
    pub schedule: Schedule,
    /// The zone its cron expression is read in.
    pub effective_time_zone: String,
    /// Its next tick, unless paused.
    pub next_run_at: Option<DateTime<Utc>>,
    /// Its latest enqueued tick.
    pub last_run_at: Option<DateTime<Utc>>,
    /// The session of that tick, if its job opened one.
    pub last_session_id: Option<i64>,
    /// That session's status.
    pub last_session_status: Option<SessionStatus>,
}

/// Every schedule with its next and last runs.
pub async fn list_schedules(
    store: &ConnectionPool,
    business_zone: Tz,
) -> Result<Vec<ScheduleView>, ServiceError> {
    let rows = capstats_store::run_blocking(store, |connection| {
        let mut rows = Vec::new();
        for schedule in schedules::list_schedules(connection)? {
            let last = schedules::last_enqueued_tick(connection, &schedule.name)?;
            let status = match last.as_ref().and_then(|tick| tick.session_id) {
                Some(id) => Some(sessions::get_session(connection, id)?.status),
                None => None,
            };
            rows.push((schedule, last, status));
        }
        Ok::<_, ServiceError>(rows)
    })
    .await?;
    let now = Utc::now();
    rows.into_iter()
        .map(|(schedule, last, status)| {
            let zone = schedule_zone(&schedule, business_zone)?;
            let next_run_at = if schedule.is_paused {
                None
            } else {
                schedule
                    .cron_expression
                    .parse::<CronExpression>()
                    .ok()
                    .and_then(|cron| cron.next_after(now, zone))
            };
            Ok(ScheduleView {
                effective_time_zone: zone.name().to_owned(),
                next_run_at,
                last_run_at: last.as_ref().map(|tick| tick.tick_at),
                last_session_id: last.and_then(|tick| tick.session_id),
                last_session_status: status,
                schedule,
            })
        })
        .collect()
}

/// Pauses or resumes a schedule; takes effect at the schedulers' next pass (about a second).
pub async fn set_paused(
    store: &ConnectionPool,
    name: &str,
    paused: bool,
) -> Result<Schedule, ServiceError> {
    let name = name.to_owned();
    Ok(capstats_store::run_blocking(store, move |connection| {
        schedules::set_paused(connection, &name, paused)
    })
    .await?)
}

/// A change of a schedule as an operator asks for it (API body, `schedules set`); absent
/// settings stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScheduleEdit {
    /// A cron expression: 5 fields, or 6 with seconds first.
    pub cron_expression: Option<String>,
    /// An IANA zone; the empty text reads the expression in the business zone again.
    pub time_zone: Option<String>,
    /// `skip`, `run_once` or `catch_up`.
    pub misfire_policy: Option<String>,
    /// How many missed ticks `catch_up` runs at most: 1 to 1000.
    pub catch_up_limit: Option<i64>,
}

/// A setting of a [`ScheduleEdit`] that cannot be applied, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditProblem {
    /// The setting, by its API name.
    pub field: &'static str,
    /// Why, naming the value.
    pub message: String,
}

/// The largest catch-up limit: a week of per-minute ticks is already more than any outage
/// should replay.
pub const MAX_CATCH_UP_LIMIT: i64 = 1000;

impl ScheduleEdit {
    /// The change to store, or every problem of the edit at once (nothing is stored then).
    pub fn validate(&self) -> Result<schedules::ScheduleChange, Vec<EditProblem>> {
        let mut problems = Vec::new();
        let mut problem = |field, message: String| problems.push(EditProblem { field, message });
        let mut change = schedules::ScheduleChange::default();
        if let Some(text) = &self.cron_expression {
            match text.parse::<CronExpression>() {
                Ok(cron) => change.cron_expression = Some(cron.to_string()),
                Err(error) => problem("cron_expression", error.to_string()),
            }
        }
        if let Some(text) = &self.time_zone {
            let text = text.trim();
            if text.is_empty() {
                change.time_zone = Some(None);
            } else if let Ok(zone) = text.parse::<Tz>() {
                change.time_zone = Some(Some(zone.name().to_owned()));
            } else {
                problem(
                    "timezone",
                    format!(
                        "unknown time zone `{text}`; expected an IANA name such as Europe/Berlin, or empty for the business zone"
                    ),
                );
            }
        }
        if let Some(text) = &self.misfire_policy {
            match MisfirePolicy::from_stored(text, 1) {
                Ok(_) => change.misfire_policy = Some(text.clone()),
                Err(error) => problem("misfire_policy", error.to_string()),
            }
        }
        if let Some(limit) = self.catch_up_limit {
            match i32::try_from(limit) {
                Ok(limit) if (1..=MAX_CATCH_UP_LIMIT).contains(&i64::from(limit)) => {
                    change.catch_up_limit = Some(limit);
                }
                _ => problem(
                    "catch_up_limit",
                    format!("{limit} is not between 1 and {MAX_CATCH_UP_LIMIT}"),
                ),
            }
        }
        let nothing = change == schedules::ScheduleChange::default();
        if problems.is_empty() && nothing {
            problems.push(EditProblem {
                field: "body",
                message: "nothing to change: give cron_expression, timezone, misfire_policy or \
                          catch_up_limit"
                    .into(),
            });
        }
        if problems.is_empty() {
            Ok(change)
        } else {
            Err(problems)
        }
    }
}

/// Applies a validated edit to schedule `name` (schedulers pick it up at their next pass,
/// about a second); a new expression or zone counts ticks from now on.
pub async fn update_schedule(
    store: &ConnectionPool,
    name: &str,
    edit: &ScheduleEdit,
) -> Result<Schedule, ServiceError> {
    let change = edit.validate().map_err(|problems| {
        ServiceError::InvalidRequest(
            problems
                .iter()
                .map(|problem| format!("{}: {}", problem.field, problem.message))
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    let name = name.to_owned();
    Ok(capstats_store::run_blocking(store, move |connection| {
        schedules::update_schedule(connection, &name, &change)
    })
    .await?)
}

/// What `schedules preview` shows: the ticks a schedule (or the expression and zone tried in
/// its place) fires on some local days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SchedulePreview {
    /// The schedule.
    pub name: String,
    /// The expression previewed: the schedule's, or the one tried instead.
    pub cron_expression: String,
    /// The zone it is read in: the schedule's (else the business zone), or the one tried.
    pub time_zone: String,
    /// The ticks, oldest first.
    pub ticks: Vec<crate::scheduling::PreviewTick>,
}

/// The ticks schedule `name` would fire on the `days` local days from `from`, read with
/// `cron` and `zone` instead of its own when given — computed by the scheduler's own
/// iteration (its DST policy included).
pub async fn preview_schedule(
    store: &ConnectionPool,
    name: &str,
    cron: Option<&str>,
    zone: Option<&str>,
    business_zone: Tz,
    from: NaiveDate,
    days: u32,
) -> Result<SchedulePreview, ServiceError> {
    if !(1..=366).contains(&days) {
        return Err(ServiceError::InvalidRequest(format!(
            "days: {days} is not between 1 and 366"
        )));
    }
    let schedule = {
        let name = name.to_owned();
        capstats_store::run_blocking(store, move |connection| {
            schedules::get_schedule(connection, &name)
        })
        .await?
    };
    let cron: CronExpression = cron.unwrap_or(&schedule.cron_expression).parse()?;
    let zone = match zone {
        Some(text) => text.parse::<Tz>().map_err(|_| {
            ServiceError::InvalidRequest(format!(
                "zone: unknown time zone `{text}`; expected an IANA name such as Europe/Berlin"
            ))
        })?,
        None => schedule_zone(&schedule, business_zone)?,
    };
    Ok(SchedulePreview {
        name: schedule.name,
        cron_expression: cron.to_string(),
        time_zone: zone.name().to_owned(),
        ticks: crate::scheduling::preview_ticks(&cron, zone, from, days),
    })
}
