//! Runs: aggregate now, sync sessions with their records, schedules.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use capstats_capacity_model::Decimal;

/// `POST /capacity/aggregations/current`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct AggregateNowRequest {
    /// `instance`, `database` or `all` (default): which levels to compute.
    #[serde(default)]
    #[schema(pattern = "^(instance|database|all)$")]
    pub scope: Option<String>,
    /// Period type of the current period to compute (default `daily`).
    #[serde(default)]
    #[schema(value_type = Option<capstats_capacity_model::PeriodType>)]
    pub period_type: Option<String>,
}

/// `POST /capacity/aggregations/backfill`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct BackfillRequest {
    /// `daily`, `weekly`, `monthly`, `quarterly` or `yearly`.
    #[schema(example = "monthly", required = true, value_type = capstats_capacity_model::PeriodType)]
    pub period_type: Option<String>,
    /// Periods starting on or after this date (YYYY-MM-DD)…
    #[schema(example = "2025-01-01", required = true, value_type = String, format = Date)]
    pub from: Option<String>,
    /// …and on or before this one are computed.
    #[schema(example = "2025-12-31", required = true, value_type = String, format = Date)]
    pub to: Option<String>,
    /// `instance`, `database` or `all` (default): which levels to compute.
    #[serde(default)]
    #[schema(pattern = "^(instance|database|all)$")]
    pub scope: Option<String>,
}

/// A run that was started (or was already queued or running).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunStarted {
    /// The session to poll (`GET /api/v1/sync-sessions/{id}`).
    pub session_id: Option<i64>,
    /// The same session id as a string: the reference's name for it.
    pub run_id: Option<String>,
    /// The job in the job store.
    pub job_id: String,
    /// The same job id: the reference's name for the job run now starts.
    pub manual_job_id: String,
    /// Whether an equal request was already queued or running and this is its session.
    pub existing: bool,
}

impl From<capstats_services::control::Enqueued> for RunStarted {
    fn from(enqueued: capstats_services::control::Enqueued) -> Self {
        Self {
            session_id: enqueued.session_id,
            run_id: enqueued.session_id.map(|id| id.to_string()),
            manual_job_id: enqueued.job_id.clone(),
            job_id: enqueued.job_id,
            existing: enqueued.existing,
        }
    }
}

/// What aggregate now answers: the run queued (or found), and the reference's `result`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AggregationStarted {
    /// The run.
    #[serde(flatten)]
    pub run: RunStarted,
    /// The request as the reference describes it.
    pub result: AggregationResult,
}

/// The reference's description of an aggregation request. The reference computed while the
/// request waited; capstats computes on a worker, so `status` and `session` are the run's when
/// the request was answered and the figures follow in the session and the capacity lists.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AggregationResult {
    /// The run's status: `pending` (queued) or `running`.
    pub status: String,
    /// What happened, in words.
    pub message: String,
    /// The period type computed.
    #[schema(value_type = capstats_capacity_model::PeriodType)]
    pub period_type: String,
    /// The first day of the current period…
    pub period_start: chrono::NaiveDate,
    /// …and its last day.
    pub period_end: chrono::NaiveDate,
    /// `instance`, `database` or `all`.
    pub scope: String,
    /// The period type asked for (`daily` when absent).
    #[schema(value_type = capstats_capacity_model::PeriodType)]
    pub requested_period_type: String,
    /// The period type computed: always the one asked for.
    #[schema(value_type = capstats_capacity_model::PeriodType)]
    pub effective_period_type: String,
    /// The database level of the run.
    pub database_summary: LevelOfRun,
    /// The instance level of the run.
    pub instance_summary: LevelOfRun,
    /// The run's session.
    pub session: RunSession,
}

/// One level of an aggregation run.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LevelOfRun {
    /// Whether the run computes this level (its `scope`).
    pub included: bool,
    /// Active instances the run computes.
    pub instances: u64,
}

/// The session of a run, in brief.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunSession {
    /// Its id.
    pub id: i64,
    /// `pending`, `running`, `completed`, `failed` or `cancelled`.
    pub status: String,
}

/// A sync session.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionItem {
    /// Its id.
    pub id: i64,
    /// `aggregation` or `capacity`.
    pub sync_category: String,
    /// `scheduled_task` or `manual_task`.
    pub sync_type: String,
    /// `pending`, `running`, `completed`, `failed` or `cancelled`.
    pub status: String,
    /// Who or what started it.
    pub triggered_by: String,
    /// The API token it was requested with, if any.
    pub requested_by_token_id: Option<i64>,
    /// Its parameters.
    #[schema(value_type = Object)]
    pub parameters: serde_json::Value,
    /// Records.
    pub total_instances: u64,
    /// Completed records.
    pub successful_instances: u64,
    /// Failed records.
    pub failed_instances: u64,
    /// Cancelled records.
    pub cancelled_instances: u64,
    /// Records done (completed or failed) in percent of all records; cancelled records were
    /// never done, so a cancelled run shows how much of it happened. A running backfill, whose
    /// records only end with it, shows the share of its batches done instead.
    #[serde(serialize_with = "crate::dto::numbers::exact")]
    #[schema(value_type = f64)]
    pub progress_percentage: Decimal,
    /// Why it failed as a whole.
    pub error_message: Option<String>,
    /// The worker running it.
    pub worker_name: Option<String>,
    /// Its job.
    pub job_id: Option<String>,
    /// When a cancellation was asked.
    pub cancel_requested_at: Option<DateTime<Utc>>,
    /// Start.
    pub started_at: Option<DateTime<Utc>>,
    /// End.
    pub completed_at: Option<DateTime<Utc>>,
    /// Duration in seconds, when finished.
    pub duration_seconds: Option<f64>,
    /// Creation.
    pub created_at: DateTime<Utc>,
}

impl From<capstats_store::sessions::Session> for SessionItem {
    fn from(session: capstats_store::sessions::Session) -> Self {
        Self {
            duration_seconds: match (session.started_at, session.completed_at) {
                (Some(start), Some(end)) => Some((end - start).num_milliseconds() as f64 / 1000.0),
                _ => None,
            },
            id: session.id,
            sync_category: session.sync_category.to_string(),
            sync_type: session.sync_type.to_string(),
            status: session.status.to_string(),
            triggered_by: session.triggered_by,
            requested_by_token_id: session.requested_by_token_id,
            parameters: session.parameters,
            total_instances: session.total_instances,
            successful_instances: session.successful_instances,
            failed_instances: session.failed_instances,
            cancelled_instances: session.cancelled_instances,
            progress_percentage: session.progress_percentage,
            error_message: session.error_message,
            worker_name: session.worker_name,
            job_id: session.job_id,
            cancel_requested_at: session.cancel_requested_at,
            started_at: session.started_at,
            completed_at: session.completed_at,
            created_at: session.created_at,
        }
    }
}

/// One instance's record in a session.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecordItem {
    /// The instance.
    pub instance_id: i64,
    /// Its name when the run started.
    pub instance_name: String,
    /// Its status.
    pub status: String,
    /// Rows written.
    pub items_synced: i64,
    /// Why it failed.
    pub error_message: Option<String>,
    /// What was done, per level and periods (versioned JSON).
    #[schema(value_type = Option<Object>)]
    pub detail: Option<serde_json::Value>,
    /// Start.
    pub started_at: Option<DateTime<Utc>>,
    /// End.
    pub completed_at: Option<DateTime<Utc>>,
}

impl From<capstats_store::sessions::SessionRecord> for RecordItem {
    fn from(record: capstats_store::sessions::SessionRecord) -> Self {
        Self {
            instance_id: record.instance_id.0,
            instance_name: record.instance_name,
            status: record.status.to_string(),
            items_synced: record.items_synced,
            error_message: record.error_message,
            detail: record
                .detail
                .and_then(|detail| serde_json::to_value(detail).ok()),
            started_at: record.started_at,
            completed_at: record.completed_at,
        }
    }
}

/// A session with its records.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionDetail {
    /// The session.
    pub session: SessionItem,
    /// Its records, by instance.
    pub records: Vec<RecordItem>,
}

/// A schedule.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScheduleItem {
    /// Its name (the id in URLs).
    pub id: String,
    /// The same name: the reference's field for it.
    pub task_id: String,
    /// The same name: the reference's field for what it is called.
    pub task_name: String,
    /// The fields `PUT /scheduler/jobs/{id}` accepts.
    pub editable_fields: Vec<String>,
    /// The job it enqueues.
    pub job_name: String,
    /// Cron expression: 5 fields, or 6 with seconds first; weekdays 0–7 (0 and 7 are Sunday)
    /// or names.
    pub cron_expression: String,
    /// Zone the expression is read in.
    pub time_zone: String,
    /// Whether paused.
    pub is_paused: bool,
    /// `skip`, `run_once` or `catch_up`.
    pub misfire_policy: String,
    /// Most missed ticks `catch_up` runs.
    pub catch_up_limit: i32,
    /// What it is for.
    pub description: String,
    /// Next tick (null when paused).
    pub next_run_at: Option<DateTime<Utc>>,
    /// Latest enqueued tick.
    pub last_run_at: Option<DateTime<Utc>>,
    /// The session of that tick.
    pub last_session_id: Option<i64>,
    /// That session's status.
    pub last_session_status: Option<String>,
}

impl From<capstats_services::control::ScheduleView> for ScheduleItem {
    fn from(view: capstats_services::control::ScheduleView) -> Self {
        Self {
            task_id: view.schedule.name.clone(),
            task_name: view.schedule.name.clone(),
            editable_fields: ScheduleUpdate::FIELDS
                .iter()
                .map(|field| (*field).to_owned())
                .collect(),
            id: view.schedule.name,
            job_name: view.schedule.job_name,
            cron_expression: view.schedule.cron_expression,
            time_zone: view.effective_time_zone,
            is_paused: view.schedule.is_paused,
            misfire_policy: view.schedule.misfire_policy,
            catch_up_limit: view.schedule.catch_up_limit,
            description: view.schedule.description,
            next_run_at: view.next_run_at,
            last_run_at: view.last_run_at,
            last_session_id: view.last_session_id,
            last_session_status: view.last_session_status.map(|status| status.to_string()),
        }
    }
}

/// The answer to `POST /scheduler/jobs/actions/reload`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReloadedSchedules {
    /// The schedules in force, by name.
    pub reloaded: Vec<String>,
    /// How many.
    pub reloaded_count: usize,
    /// Always empty: reloading deletes nothing.
    pub deleted: Vec<String>,
    /// Always 0.
    pub deleted_count: usize,
}

/// `PUT /scheduler/jobs/{id}`: the settings to change (at least one); absent ones stay.
/// Unknown fields are refused.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ScheduleUpdate {
    /// A new cron expression: 5 fields, or 6 with seconds first.
    #[schema(example = "30 2 * * *")]
    pub cron_expression: Option<String>,
    /// A new IANA zone to read the expression in; the empty text means the business zone.
    #[serde(alias = "time_zone")]
    #[schema(example = "Europe/Berlin")]
    pub timezone: Option<String>,
    /// `skip`, `run_once` or `catch_up`: what happens to ticks missed while no worker ran.
    #[schema(pattern = "^(skip|run_once|catch_up)$")]
    pub misfire_policy: Option<String>,
    /// How many missed ticks `catch_up` runs at most (1 to 1000).
    #[schema(minimum = 1, maximum = 1000)]
    pub catch_up_limit: Option<i64>,
    /// `cron`, the only trigger capstats schedules have; accepted so that the reference's
    /// clients, which send it, keep working.
    #[schema(example = "cron", pattern = "^cron$")]
    pub trigger_type: Option<String>,
}

impl ScheduleUpdate {
    /// The fields a schedule update may carry.
    pub const FIELDS: [&str; 5] = [
        "cron_expression",
        "timezone",
        "misfire_policy",
        "catch_up_limit",
        "trigger_type",
    ];
}

impl From<ScheduleUpdate> for capstats_services::control::ScheduleEdit {
    fn from(update: ScheduleUpdate) -> Self {
        Self {
            cron_expression: update.cron_expression,
            time_zone: update.timezone,
            misfire_policy: update.misfire_policy,
            catch_up_limit: update.catch_up_limit,
        }
    }
}
