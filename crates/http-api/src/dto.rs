//! The JSON shapes of requests and responses (described in the OpenAPI document).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use capstats_capacity_model::{
    DatabaseSizeAggregate, DbType, Decimal, InstanceSizeAggregate, PeriodType, TlsMode,
    TrendDirection,
};

/// An instance-level aggregate with its instance.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InstanceAggregateItem {
    /// The instance.
    pub instance_id: i64,
    /// Its name.
    pub instance_name: String,
    /// Its engine.
    pub db_type: DbType,
    /// The period type.
    pub period_type: PeriodType,
    /// First day of the period.
    pub period_start: NaiveDate,
    /// Last day of the period.
    pub period_end: NaiveDate,
    /// Mean daily total size, MB.
    pub total_size_mb: i64,
    /// Mean size per database (Σ totals / Σ database counts), MB.
    pub avg_size_mb: Option<i64>,
    /// Largest daily total, MB.
    pub max_size_mb: i64,
    /// Smallest daily total, MB.
    pub min_size_mb: i64,
    /// Days sampled.
    pub data_count: i64,
    /// Mean daily database count, rounded.
    pub database_count: i64,
    /// Mean daily database count, two decimals.
    pub avg_database_count: Decimal,
    /// Largest daily database count.
    pub max_database_count: i64,
    /// Smallest daily database count.
    pub min_database_count: i64,
    /// Change of the mean total against the previous period, MB.
    pub total_size_change_mb: Option<i64>,
    /// That change in percent.
    pub total_size_change_percent: Option<Decimal>,
    /// Change of the mean database count.
    pub database_count_change: Option<i64>,
    /// That change in percent.
    pub database_count_change_percent: Option<Decimal>,
    /// Equal to `total_size_change_percent`.
    pub growth_rate: Option<Decimal>,
    /// `growing` above +5 %, `shrinking` below −5 %, else `stable`.
    pub trend_direction: Option<TrendDirection>,
}

impl InstanceAggregateItem {
    /// From a stored aggregate and its instance.
    pub fn new(
        aggregate: InstanceSizeAggregate,
        instance: capstats_store::aggregates::InstanceLabel,
    ) -> Self {
        Self {
            instance_id: instance.id.0,
            instance_name: instance.name,
            db_type: instance.db_type,
            period_type: aggregate.period.period_type(),
            period_start: aggregate.period.start(),
            period_end: aggregate.period.end(),
            total_size_mb: aggregate.total_size_mb,
            avg_size_mb: aggregate.avg_size_mb,
            max_size_mb: aggregate.max_size_mb,
            min_size_mb: aggregate.min_size_mb,
            data_count: aggregate.data_count,
            database_count: aggregate.database_count,
            avg_database_count: aggregate.avg_database_count,
            max_database_count: aggregate.max_database_count,
            min_database_count: aggregate.min_database_count,
            total_size_change_mb: aggregate.total_size_change_mb,
            total_size_change_percent: aggregate.total_size_change_percent,
            database_count_change: aggregate.database_count_change,
            database_count_change_percent: aggregate.database_count_change_percent,
            growth_rate: aggregate.growth_rate,
            trend_direction: aggregate.trend_direction,
        }
    }
}

/// A database-level aggregate with its instance.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DatabaseAggregateItem {
    /// The instance.
    pub instance_id: i64,
    /// Its name.
    pub instance_name: String,
    /// Its engine.
    pub db_type: DbType,
    /// The database.
    pub database_name: String,
    /// The period type.
    pub period_type: PeriodType,
    /// First day of the period.
    pub period_start: NaiveDate,
    /// Last day of the period.
    pub period_end: NaiveDate,
    /// Mean size, MB.
    pub avg_size_mb: i64,
    /// Largest size, MB.
    pub max_size_mb: i64,
    /// Smallest size, MB.
    pub min_size_mb: i64,
    /// Samples (days).
    pub data_count: i64,
    /// Mean data size, MB.
    pub avg_data_size_mb: Option<i64>,
    /// Largest data size, MB.
    pub max_data_size_mb: Option<i64>,
    /// Smallest data size, MB.
    pub min_data_size_mb: Option<i64>,
    /// Mean log size, MB.
    pub avg_log_size_mb: Option<i64>,
    /// Largest log size, MB.
    pub max_log_size_mb: Option<i64>,
    /// Smallest log size, MB.
    pub min_log_size_mb: Option<i64>,
    /// Change of the mean size against the previous period, MB.
    pub size_change_mb: Option<i64>,
    /// That change in percent.
    pub size_change_percent: Option<Decimal>,
    /// Change of the mean data size, MB.
    pub data_size_change_mb: Option<i64>,
    /// That change in percent.
    pub data_size_change_percent: Option<Decimal>,
    /// Change of the mean log size, MB.
    pub log_size_change_mb: Option<i64>,
    /// That change in percent.
    pub log_size_change_percent: Option<Decimal>,
    /// Equal to `size_change_percent`.
    pub growth_rate: Option<Decimal>,
}

impl DatabaseAggregateItem {
    /// From a stored aggregate and its instance.
    pub fn new(
        aggregate: DatabaseSizeAggregate,
        instance: capstats_store::aggregates::InstanceLabel,
    ) -> Self {
        Self {
            instance_id: instance.id.0,
            instance_name: instance.name,
            db_type: instance.db_type,
            database_name: aggregate.database_name,
            period_type: aggregate.period.period_type(),
            period_start: aggregate.period.start(),
            period_end: aggregate.period.end(),
            avg_size_mb: aggregate.avg_size_mb,
            max_size_mb: aggregate.max_size_mb,
            min_size_mb: aggregate.min_size_mb,
            data_count: aggregate.data_count,
            avg_data_size_mb: aggregate.avg_data_size_mb,
            max_data_size_mb: aggregate.max_data_size_mb,
            min_data_size_mb: aggregate.min_data_size_mb,
            avg_log_size_mb: aggregate.avg_log_size_mb,
            max_log_size_mb: aggregate.max_log_size_mb,
            min_log_size_mb: aggregate.min_log_size_mb,
            size_change_mb: aggregate.size_change_mb,
            size_change_percent: aggregate.size_change_percent,
            data_size_change_mb: aggregate.data_size_change_mb,
            data_size_change_percent: aggregate.data_size_change_percent,
            log_size_change_mb: aggregate.log_size_change_mb,
            log_size_change_percent: aggregate.log_size_change_percent,
            growth_rate: aggregate.growth_rate,
        }
    }
}

/// The date window a read covered.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Window {
    /// First day.
    pub start_date: NaiveDate,
    /// Last day.
    pub end_date: NaiveDate,
}

/// An instance named in a summary.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NamedSize {
    /// The instance.
    pub instance_id: i64,
    /// Its name.
    pub instance_name: String,
    /// The database, for database summaries.
    pub database_name: Option<String>,
    /// Its size, MB.
    pub size_mb: i64,
}

/// The four cards of the instances page: each instance's latest daily sample in the window,
/// summed, and the growth from each instance's earliest sample in the window.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InstancesSummary {
    /// The window.
    pub window: Window,
    /// Instances with samples in the window.
    pub instance_count: i64,
    /// Σ latest total sizes, MB.
    pub total_size_mb: i64,
    /// Σ latest database counts.
    pub database_count: i64,
    /// Σ latest − Σ earliest total sizes, MB.
    pub growth_mb: i64,
    /// That growth in percent of Σ earliest (two decimals; null when Σ earliest is 0).
    pub growth_percent: Option<Decimal>,
    /// The instance with the largest latest total.
    pub largest: Option<NamedSize>,
}

/// The four cards of the databases page: each database's latest period in the window, summed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DatabasesSummary {
    /// The window.
    pub window: Window,
    /// The period type.
    pub period_type: PeriodType,
    /// Databases with an aggregate in the window.
    pub database_count: i64,
    /// Instances they belong to.
    pub instance_count: i64,
    /// Σ mean sizes of their latest periods, MB.
    pub total_size_mb: i64,
    /// Σ size changes of their latest periods, MB (databases without a previous period count 0).
    pub size_change_mb: i64,
    /// That change in percent of the sizes before it (null when those sum to 0).
    pub growth_percent: Option<Decimal>,
    /// The largest database.
    pub largest: Option<NamedSize>,
}

/// One line of a chart.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SeriesLine {
    /// The instance.
    pub instance_id: i64,
    /// Its name.
    pub instance_name: String,
    /// Its engine.
    pub db_type: DbType,
    /// The database, for database series.
    pub database_name: Option<String>,
    /// One value per label; null where the period has no aggregate (a gap, not a zero).
    pub values: Vec<Option<Decimal>>,
}

/// A chart's data: the periods as labels and one line per key, ranked by the last value.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Series {
    /// The period type.
    pub period_type: PeriodType,
    /// The metric plotted.
    pub metric: String,
    /// Its unit: `MB`, `%` or `count`.
    pub unit: String,
    /// Period starts, oldest first.
    pub labels: Vec<NaiveDate>,
    /// The top lines, largest latest value first.
    pub series: Vec<SeriesLine>,
    /// How many lines were asked for.
    pub top: i64,
    /// How many keys had data in the window.
    pub total_series: i64,
    /// Whether lines were left out (more keys than `top`).
    pub truncated: bool,
}

/// `POST /capacity/aggregations/current`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct AggregateNowRequest {
    /// `instance`, `database` or `all` (default): which levels to compute.
    #[serde(default)]
    pub scope: Option<String>,
    /// Period type of the current period to compute (default `daily`).
    #[serde(default)]
    pub period_type: Option<String>,
}

/// A run that was started (or was already queued or running).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunStarted {
    /// The session to poll (`GET /api/v1/sync-sessions/{id}`).
    pub session_id: Option<i64>,
    /// The job in the job store.
    pub job_id: String,
    /// Whether an equal request was already queued or running and this is its session.
    pub existing: bool,
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
    /// Finished records in percent.
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
    #[schema(value_type = Object)]
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

/// `PUT /scheduler/jobs/{id}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ScheduleUpdate {
    /// The new cron expression.
    pub cron_expression: String,
}

/// A partition with its size.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PartitionItem {
    /// The partitioned table.
    pub table_name: String,
    /// The partition.
    pub partition_name: String,
    /// First day it holds.
    pub range_start: NaiveDate,
    /// First day after it.
    pub range_end: NaiveDate,
    /// Size on disk, bytes.
    pub total_bytes: i64,
    /// Row estimate (null before the first ANALYZE).
    pub estimated_rows: Option<i64>,
}

/// Partitions of one table.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PartitionTableStatus {
    /// The table.
    pub table_name: String,
    /// Its partitions.
    pub partitions: i64,
    /// Their size, bytes.
    pub total_bytes: i64,
    /// Their rows (estimate).
    pub estimated_rows: i64,
    /// First month covered.
    pub oldest_month: Option<NaiveDate>,
    /// Last month covered.
    pub newest_month: Option<NaiveDate>,
    /// Months from this one to the look-ahead without a partition yet (created on demand).
    pub missing_ahead: Vec<NaiveDate>,
}

/// The partition overview.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PartitionStatus {
    /// Months of data kept (0 = everything).
    pub retention_months: u32,
    /// First month kept; older partitions are dropped by cleanup.
    pub keep_from: Option<NaiveDate>,
    /// Partitions older than that.
    pub past_retention: Vec<String>,
    /// Per table.
    pub tables: Vec<PartitionTableStatus>,
}

/// What a cleanup did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CleanupResult {
    /// Partitions created ahead.
    pub created: Vec<String>,
    /// Partitions dropped past the retention.
    pub dropped: Vec<String>,
}

/// An instance.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InstanceItem {
    /// Its id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// Engine.
    pub db_type: DbType,
    /// Host.
    pub host: Option<String>,
    /// Port.
    pub port: Option<i32>,
    /// Free text.
    pub description: Option<String>,
    /// The login collectors connect as.
    pub connection_user: Option<String>,
    /// PostgreSQL: the database collectors connect to (default `postgres`).
    pub connection_database: Option<String>,
    /// How collectors protect their connection to the server.
    pub tls_mode: TlsMode,
    /// Whether a collector password is stored (the password itself is never returned).
    pub has_password: bool,
    /// Whether it is aggregated.
    pub is_active: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl From<capstats_store::instances::Instance> for InstanceItem {
    fn from(instance: capstats_store::instances::Instance) -> Self {
        Self {
            id: instance.id.0,
            name: instance.name,
            db_type: instance.db_type,
            host: instance.host,
            port: instance.port,
            description: instance.description,
            connection_user: instance.connection_user,
            connection_database: instance.connection_database,
            tls_mode: instance.tls_mode,
            has_password: instance.has_password,
            is_active: instance.is_active,
            created_at: instance.created_at,
        }
    }
}

/// The answer to `PUT /instances/{id}`: the instance and whether its password was dropped.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UpdatedInstanceItem {
    /// The instance as stored now.
    #[serde(flatten)]
    pub instance: InstanceItem,
    /// True when this update removed the stored collector password: the request cleared it
    /// (`connection_password: ""`), or it changed `host`, `port`, `db_type`,
    /// `connection_user`, `connection_database` or lowered `tls_mode` without sending a new
    /// `connection_password`. Send the password again to collect.
    pub password_cleared: bool,
}

/// `POST /instances` and `PUT /instances/{id}`.
///
/// A stored password belongs to the server it was given for: an update that changes `host`,
/// `port`, `db_type`, `connection_user` or `connection_database`, or lowers `tls_mode`
/// (`verify-full` → `require` → `disable`), drops it unless the same request sends a new
/// `connection_password` (the answer then has `password_cleared: true`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct InstanceInput {
    /// Unique name (1–255 characters).
    pub name: Option<String>,
    /// `mysql`, `postgresql`, `sqlserver` or `oracle`.
    pub db_type: Option<String>,
    /// Host name or address.
    pub host: Option<String>,
    /// Port (1–65535).
    pub port: Option<i32>,
    /// Free text.
    pub description: Option<String>,
    /// The login collectors connect as (empty clears it).
    pub connection_user: Option<String>,
    /// The collector's password: stored sealed with `CAPSTATS_CREDENTIAL_KEY` (bound to this
    /// instance), never returned; empty clears it, absent leaves it as it is — unless the
    /// request changes where or how collectors connect, which drops it.
    pub connection_password: Option<String>,
    /// PostgreSQL: the database collectors connect to (default `postgres`; empty clears it).
    pub connection_database: Option<String>,
    /// `disable`, `require` or `verify-full` (the default for new instances): whether
    /// collectors use TLS and check the server's certificate against the trusted roots
    /// (system plus `CAPSTATS_COLLECTOR_CA_FILE`) and host name. Passwords are never sent in
    /// clear text, whatever the mode.
    pub tls_mode: Option<String>,
    /// Whether it is aggregated (default true).
    pub is_active: Option<bool>,
}

/// An entry of a select box.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InstanceOption {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Engine.
    pub db_type: DbType,
}

/// A database of an instance.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DatabaseOption {
    /// The instance.
    pub instance_id: i64,
    /// The database.
    pub database_name: String,
    /// Whether it is still present.
    pub is_active: bool,
    /// First sample.
    pub first_seen_date: NaiveDate,
    /// Last sample.
    pub last_seen_date: NaiveDate,
}

/// `POST /auth/login`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct LoginRequest {
    /// Username.
    pub username: String,
    /// Password.
    pub password: String,
}

/// The signed-in user.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserItem {
    /// Id.
    pub id: i64,
    /// Username.
    pub username: String,
    /// `admin` or `viewer`.
    pub role: String,
    /// `session` or `token`.
    pub authenticated_by: String,
    /// What this caller may do now: `read`, `ingest`, `operate`, `admin`.
    pub scopes: Vec<String>,
    /// The API token of this request, when it came with one.
    pub token_id: Option<i64>,
}

/// The result of a login.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LoginResult {
    /// The user.
    pub user: UserItem,
    /// The token cookie-authenticated writes send as `X-CSRFToken`.
    pub csrf_token: String,
}

/// The CSRF token of the session.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CsrfToken {
    /// Send it as `X-CSRFToken` with writes.
    pub csrf_token: String,
}

/// `POST /auth/tokens`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct TokenRequest {
    /// A label (1–100 characters).
    pub name: String,
    /// What the token may do, at least one and never more than the caller's role: `read`
    /// (every GET), `ingest` (`POST /capacity/stats` only), `operate` (runs, schedules,
    /// partitions, collect now), `admin` (everything an admin session may do except managing
    /// tokens).
    pub scopes: Vec<String>,
    /// Days until it expires, 1–3650 (absent: `CAPSTATS_TOKEN_EXPIRY_DAYS`, 90 by default).
    pub expires_in_days: Option<i64>,
}

/// `PUT /auth/password`: the signed-in user's new password.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct PasswordChange {
    /// The current password.
    pub current_password: String,
    /// The new password (8 to 1024 characters).
    pub new_password: String,
}

/// A user account, for administrators.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccountItem {
    /// Id.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// `admin` or `viewer`.
    pub role: String,
    /// Inactive users cannot sign in, and their tokens do not work.
    pub is_active: bool,
    /// Last successful sign-in.
    pub last_login_at: Option<DateTime<Utc>>,
    /// Creation.
    pub created_at: DateTime<Utc>,
}

impl From<capstats_store::accounts::User> for AccountItem {
    fn from(user: capstats_store::accounts::User) -> Self {
        Self {
            id: user.id,
            username: user.username,
            role: user.role,
            is_active: user.is_active,
            last_login_at: user.last_login_at,
            created_at: user.created_at,
        }
    }
}

/// `POST /users`: a new account.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewAccount {
    /// Login name (1–150 characters).
    pub username: String,
    /// Password (8 to 1024 characters).
    pub password: String,
    /// `admin` or `viewer`.
    pub role: String,
}

/// `PUT /users/{id}`: changes to an account; absent fields stay. A new password, a
/// deactivation or a role change end all of the user's sign-in sessions.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct AccountChanges {
    /// `admin` or `viewer`.
    pub role: Option<String>,
    /// `false` deactivates the account.
    pub is_active: Option<bool>,
    /// A new password (8 to 1024 characters): a reset by an administrator.
    pub password: Option<String>,
}

/// An account after a change.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChangedAccount {
    /// The account.
    #[serde(flatten)]
    pub account: AccountItem,
    /// Sign-in sessions the change ended.
    pub sessions_ended: usize,
}

/// Sessions an action ended.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EndedSessions {
    /// How many.
    pub sessions_ended: usize,
}

/// One audit event.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditEventItem {
    /// Id (increasing).
    pub id: i64,
    /// When.
    pub occurred_at: DateTime<Utc>,
    /// What: `auth.login`, `auth.tokens.create`, `instances.update`, `scheduler.jobs.pause`, ….
    pub action: String,
    /// `success`, `failure` or `denied`.
    pub outcome: String,
    /// The acting user.
    pub user_id: Option<i64>,
    /// The acting user's name, or the name a failed sign-in tried.
    pub username: Option<String>,
    /// The API token used.
    pub token_id: Option<i64>,
    /// The client's address.
    pub client_address: Option<String>,
    /// The request's id.
    pub request_id: Option<String>,
    /// HTTP method.
    pub http_method: Option<String>,
    /// Route template.
    pub http_route: Option<String>,
    /// Response status.
    pub http_status: Option<i32>,
    /// What was acted on (`id=12`).
    pub target: Option<String>,
    /// More detail.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

impl From<capstats_store::audit::AuditEvent> for AuditEventItem {
    fn from(event: capstats_store::audit::AuditEvent) -> Self {
        Self {
            id: event.id,
            occurred_at: event.occurred_at,
            action: event.action,
            outcome: event.outcome,
            user_id: event.user_id,
            username: event.username,
            token_id: event.token_id,
            client_address: event.client_address,
            request_id: event.request_id,
            http_method: event.http_method,
            http_route: event.http_route,
            http_status: event.http_status,
            target: event.target,
            detail: event.detail,
        }
    }
}

/// An API token (without its secret).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenItem {
    /// Id.
    pub id: i64,
    /// Label.
    pub name: String,
    /// The first characters, to recognise it.
    pub token_prefix: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// Last use.
    pub last_used_at: Option<DateTime<Utc>>,
    /// Revocation.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Creation.
    pub created_at: DateTime<Utc>,
}

impl From<capstats_store::accounts::ApiToken> for TokenItem {
    fn from(token: capstats_store::accounts::ApiToken) -> Self {
        Self {
            id: token.id,
            name: token.name,
            token_prefix: token.token_prefix,
            scopes: token.scopes.into_iter().flatten().collect(),
            expires_at: token.expires_at,
            last_used_at: token.last_used_at,
            revoked_at: token.revoked_at,
            created_at: token.created_at,
        }
    }
}

/// A new token: the secret is shown this once.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedToken {
    /// Send it as `Authorization: Bearer <token>`.
    pub token: String,
    /// The stored token.
    #[serde(flatten)]
    pub details: TokenItem,
}

/// Health.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HealthStatus {
    /// `ok`.
    pub status: String,
    /// The database, for readiness.
    pub database: Option<String>,
}

/// `POST /capacity/stats`: a batch of database samples.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct IngestRequest {
    /// The samples, 1 to 10,000; no instance, database and date twice.
    pub items: Vec<IngestSample>,
}

/// One database's size on one business date.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct IngestSample {
    /// The instance (must exist and be active).
    pub instance_id: i64,
    /// The database's name on that instance (1–255 characters).
    pub database_name: String,
    /// The business date the size describes (not after today in the business time zone).
    pub collected_date: NaiveDate,
    /// Total size in MiB (≥ 0).
    pub size_mb: i64,
    /// Data files in MiB (≥ 0, at most `size_mb`), if known.
    #[serde(default)]
    pub data_size_mb: Option<i64>,
    /// Log files in MiB (≥ 0, at most `size_mb`), if known.
    #[serde(default)]
    pub log_size_mb: Option<i64>,
    /// When it was measured; the time of the request when absent.
    #[serde(default)]
    pub collected_at: Option<DateTime<Utc>>,
}

/// What an accepted batch changed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IngestResult {
    /// Items in the batch.
    pub items: i64,
    /// Sample rows inserted or replaced.
    pub samples_written: i64,
    /// `(instance, date)` totals recomputed.
    pub instance_days_refreshed: i64,
    /// Inventory rows created or updated.
    pub databases_recorded: i64,
    /// Ledger entries (level, period type, period) marked for recomputation.
    pub periods_marked_stale: i64,
}
