#![doc = include_str!("../README.md")]

use std::path::PathBuf;
use std::str::FromStr;

use chrono::{NaiveDate, Utc};
use chrono_tz::Tz;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// The database used when `DATABASE_URL` is not set: the local server's `capstats` database.
pub const DEFAULT_DATABASE_URL: &str = "postgres://root@127.0.0.1:5432/capstats";

mod logging;
mod validation;

pub use logging::{LogColor, LogFormat, init_tracing, one_line_error};

/// A setting could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A value has the wrong form.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// A list setting written as a list (`["a", "b"]`) or as one comma-separated text (`a,b`).
fn list_or_comma_separated<'de, D>(deserializer: D) -> Result<Vec<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        List(Vec<String>),
        Text(String),
    }
    Ok(match Form::deserialize(deserializer)? {
        Form::List(items) => items,
        Form::Text(text) => text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

fn time_zone_by_name<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Tz, D::Error> {
    let name = String::deserialize(deserializer)?;
    Tz::from_str(&name).map_err(|_| {
        serde::de::Error::custom(format!(
            "CAPSTATS_TIMEZONE `{name}` is not an IANA time zone name (for example Asia/Shanghai or UTC)"
        ))
    })
}

fn time_zone_name<S: serde::Serializer>(zone: &Tz, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(zone.name())
}

/// The typed configuration of capstats. Its `Debug` shows secrets as `<redacted>`
/// ([`SECRET_SETTINGS`]).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// PostgreSQL connection URL (`DATABASE_URL`).
    pub database_url: String,
    /// The business time zone that dates are counted in, by its IANA name
    /// (`CAPSTATS_TIMEZONE`); parsed once, when the settings are read.
    #[serde(
        deserialize_with = "time_zone_by_name",
        serialize_with = "time_zone_name"
    )]
    pub timezone: Tz,
    /// Maximum connections of the diesel pool (`CAPSTATS_DATABASE_POOL_SIZE`).
    pub database_pool_size: u32,
    /// Seconds to wait for a database connection, new or pooled
    /// (`CAPSTATS_DATABASE_CONNECT_TIMEOUT_SECONDS`).
    pub database_connect_timeout_seconds: u64,
    /// Log line format (`CAPSTATS_LOG_FORMAT`).
    pub log_format: LogFormat,
    /// ANSI colours in pretty log lines (`CAPSTATS_LOG_COLOR`: `auto`, `always`, `never`).
    pub log_color: LogColor,
    /// Batches a backfill computes at once, each on its own connection
    /// (`CAPSTATS_BACKFILL_PARALLELISM`; 0 means one per CPU, at most 4).
    pub backfill_parallelism: usize,
    /// Maximum connections of the job store's sqlx pool (`CAPSTATS_JOB_STORE_POOL_SIZE`).
    pub job_store_pool_size: u32,
    /// Whether this worker evaluates schedules (`CAPSTATS_SCHEDULER_ENABLED`).
    pub scheduler_enabled: bool,
    /// Milliseconds between two evaluations of the schedules (`CAPSTATS_SCHEDULER_INTERVAL_MS`).
    pub scheduler_interval_ms: u64,
    /// A tick older than this many seconds when first seen counts as missed and follows the
    /// schedule's misfire policy (`CAPSTATS_MISFIRE_GRACE_SECONDS`).
    pub misfire_grace_seconds: u64,
    /// Milliseconds between two looks for jobs by an idle worker, besides the wake-up a push
    /// sends at once: the poll finds retries whose backoff has passed and jobs pushed while
    /// the worker's listening connection was down (`CAPSTATS_WORKER_POLL_INTERVAL_MS`).
    pub worker_poll_interval_ms: u64,
    /// Seconds between two heartbeats of a worker (`CAPSTATS_WORKER_HEARTBEAT_SECONDS`).
    pub worker_heartbeat_seconds: u64,
    /// Heartbeats a worker may miss before its jobs count as orphaned and are re-enqueued
    /// (`CAPSTATS_WORKER_MISSED_HEARTBEATS`).
    pub worker_missed_heartbeats: u32,
    /// Aggregation jobs one worker process runs at once (`CAPSTATS_WORKER_CONCURRENCY`).
    pub worker_concurrency: u32,
    /// Seconds a worker waits for running jobs after SIGTERM or SIGINT before giving up on
    /// them (`CAPSTATS_SHUTDOWN_TIMEOUT_SECONDS`).
    pub shutdown_timeout_seconds: u64,
    /// Attempts a job gets before it stays failed (`CAPSTATS_JOB_MAX_ATTEMPTS`).
    pub job_max_attempts: u32,
    /// Delay before the first retry of a failed job, doubled for every further attempt and
    /// capped at ten minutes (`CAPSTATS_JOB_RETRY_BASE_SECONDS`).
    pub job_retry_base_seconds: u64,
    /// Days finished jobs and claimed ticks are kept (`CAPSTATS_JOB_RETENTION_DAYS`).
    pub job_retention_days: u32,
    /// A running session without a heartbeat for this many seconds is closed as failed
    /// ("worker lost") by the sweeper (`CAPSTATS_SESSION_TIMEOUT_SECONDS`).
    pub session_timeout_seconds: u64,
    /// Instances per chunk of an aggregation run (`CAPSTATS_AGGREGATION_CHUNK_SIZE`).
    pub aggregation_chunk_size: u32,
    /// Milliseconds to pause between chunks, to limit the load a run puts on the database
    /// (`CAPSTATS_AGGREGATION_CHUNK_PAUSE_MS`).
    pub aggregation_chunk_pause_ms: u64,
    /// Complete periods of each type a scheduled run looks back over for periods missing from
    /// the ledger, the last complete one included (`CAPSTATS_AGGREGATION_CATCH_UP_PERIODS`).
    pub aggregation_catch_up_periods: u32,
    /// The period types scheduled runs compute (`CAPSTATS_AGGREGATION_PERIOD_TYPES`, for
    /// example `[daily, monthly]`; all five by default). Manual runs and backfills of any type
    /// still work.
    pub aggregation_period_types: Vec<capstats_capacity_model::PeriodType>,
    /// Months of raw samples kept; older monthly partitions of the sample tables are dropped by
    /// `maintain_partitions`, samples older than that are refused, and periods starting
    /// earlier are not computed any more (`CAPSTATS_SAMPLE_RETENTION_MONTHS`, 0 keeps
    /// everything).
    pub sample_retention_months: u32,
    /// Months of aggregates kept, at least as long as the samples: the rollups outlive the raw
    /// samples they summarise (`CAPSTATS_AGGREGATE_RETENTION_MONTHS`, 0 keeps everything).
    pub aggregate_retention_months: u32,
    /// Days of daily sizes a forecast fits its line to, ending on the day it is made
    /// (`CAPSTATS_FORECAST_WINDOW_DAYS`, 14–3660, default 90). A projection is published for
    /// at most half the days its points cover (docs/forecasting.md).
    pub forecast_window_days: u32,
    /// Rows a CSV export (API `format=csv`, `capstats-worker export`) holds at most
    /// (`CAPSTATS_EXPORT_MAXIMUM_ROWS`, 1–100,000,000, default 5,000,000); a filter matching
    /// more is refused before anything is written.
    pub export_maximum_rows: i64,
    /// Memory, in MiB, the API gives to remembering its capacity lists, summaries, series,
    /// leaderboards and forecasts between requests (`CAPSTATS_REMEMBERED_READS_MB`, 0–65,536,
    /// default 64; 0 remembers nothing). A remembered answer is served while no write to the
    /// data behind it has committed since it was read, and for 10 minutes at most.
    pub remembered_reads_mb: u64,
    /// Months ahead for which `maintain_partitions` creates partitions
    /// (`CAPSTATS_PARTITIONS_AHEAD_MONTHS`).
    pub partitions_ahead_months: u32,
    /// Address the API listens on (`CAPSTATS_API_BIND`).
    pub api_bind: String,
    /// HTTP worker threads of the API; 0 means one per CPU (`CAPSTATS_API_WORKERS`).
    pub api_workers: usize,
    /// Secret (at least 64 bytes, hex-encoded: 128 hex digits) that signs and encrypts session
    /// cookies (`CAPSTATS_SESSION_KEY`). Without it a random key is used and sessions do not
    /// survive a restart or work across several API processes.
    pub session_key: Option<String>,
    /// Whether session cookies are marked `Secure` (HTTPS only) and named with the `__Host-`
    /// prefix (`CAPSTATS_COOKIE_SECURE`). Unset: secure unless `CAPSTATS_API_BIND` is a
    /// loopback address.
    pub cookie_secure: Option<bool>,
    /// Hours a login session lasts (`CAPSTATS_SESSION_TTL_HOURS`).
    pub session_ttl_hours: u32,
    /// Login attempts allowed per minute and client address (`CAPSTATS_LOGIN_ATTEMPTS_PER_MINUTE`).
    pub login_attempts_per_minute: u32,
    /// Password hashes (sign-ins, password changes) that may run at once; further sign-ins
    /// wait up to 5 s, then get `429` (`CAPSTATS_LOGIN_CONCURRENCY`).
    pub login_concurrency: u32,
    /// Addresses or CIDR networks of reverse proxies whose `X-Forwarded-For` is believed
    /// (`CAPSTATS_TRUSTED_PROXIES`, e.g. `["10.0.0.5", "10.1.0.0/16"]`; default none).
    pub trusted_proxies: Vec<String>,
    /// Days an API token lasts when its request names no expiry
    /// (`CAPSTATS_TOKEN_EXPIRY_DAYS`).
    pub token_expiry_days: u32,
    /// Bearer token `/metrics` requires, if set (`CAPSTATS_METRICS_TOKEN`), on the API and
    /// the worker alike.
    pub metrics_token: Option<String>,
    /// Address a worker serves its `/metrics` on (`CAPSTATS_WORKER_METRICS_BIND`, for example
    /// `127.0.0.1:9187`); none by default.
    pub worker_metrics_bind: Option<String>,
    /// Days audit events and ended sign-in sessions are kept (`CAPSTATS_AUDIT_RETENTION_DAYS`).
    pub audit_retention_days: u32,
    /// Key (32 bytes as 64 hex digits) that seals the passwords collectors connect with
    /// (`CAPSTATS_CREDENTIAL_KEY`). Without it no password can be stored or used.
    pub credential_key: Option<String>,
    /// Keys that sealed passwords before the current one: they still open them until
    /// `capstats-worker credentials rotate-key` has re-sealed them
    /// (`CAPSTATS_CREDENTIAL_OLD_KEYS`, a list `["<64 hex digits>", …]` or comma-separated).
    #[serde(deserialize_with = "list_or_comma_separated")]
    pub credential_old_keys: Vec<String>,
    /// A PEM file of CA certificates that collectors trust for `verify-full` connections, in
    /// addition to the system's (`CAPSTATS_COLLECTOR_CA_FILE`).
    pub collector_ca_file: Option<PathBuf>,
    /// Glob patterns of PostgreSQL databases collectors leave out
    /// (`CAPSTATS_COLLECTOR_EXCLUDE_POSTGRESQL`, e.g. `[postgres, "rds*"]`).
    pub collector_exclude_postgresql: Vec<String>,
    /// Glob patterns of MySQL/MariaDB schemas collectors leave out
    /// (`CAPSTATS_COLLECTOR_EXCLUDE_MYSQL`).
    pub collector_exclude_mysql: Vec<String>,
    /// Seconds a collector may spend connecting to and reading one server
    /// (`CAPSTATS_COLLECTOR_TIMEOUT_SECONDS`).
    pub collector_timeout_seconds: u64,
    /// Servers a collection reads at once (`CAPSTATS_COLLECTOR_CONCURRENCY`).
    pub collector_concurrency: u32,
    /// The address people open capstats at (`CAPSTATS_PUBLIC_URL`, e.g.
    /// `https://capstats.example.com`): alert notifications link to its capacity page.
    /// Unset: `http://` and `CAPSTATS_API_BIND`.
    pub public_url: Option<String>,
    /// The SMTP server alert mails go through (`CAPSTATS_SMTP_URL`:
    /// `smtps://user:password@host:465`, `smtp://host:587?tls=required` for STARTTLS, or
    /// `smtp://host:25` for a local relay); none by default, and mail channels then fail
    /// saying so.
    pub smtp_url: Option<String>,
    /// The sender of alert mails (`CAPSTATS_SMTP_FROM`, e.g. `capstats <capstats@example.com>`).
    pub smtp_from: Option<String>,
    /// Seconds one notification (a webhook request or a mail) may take
    /// (`CAPSTATS_NOTIFICATION_TIMEOUT_SECONDS`, 1–300).
    pub notification_timeout_seconds: u64,
}

/// The settings that are secrets or may hold one (a password in a URL): `Debug` of
/// [`Settings`] shows them as `<redacted>` when they are set, so that printing the settings
/// (a log line, a panic message) never shows them.
pub const SECRET_SETTINGS: [&str; 6] = [
    "database_url",
    "session_key",
    "metrics_token",
    "credential_key",
    "credential_old_keys",
    "smtp_url",
];

impl std::fmt::Debug for Settings {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Through their serialised form, so that a new setting shows without touching this.
        let Ok(serde_json::Value::Object(values)) = serde_json::to_value(self) else {
            return Err(std::fmt::Error);
        };
        let mut map = formatter.debug_map();
        for (name, value) in &values {
            let unset = value.is_null() || value.as_array().is_some_and(Vec::is_empty);
            if SECRET_SETTINGS.contains(&name.as_str()) && !unset {
                map.entry(name, &format_args!("<redacted>"));
            } else {
                map.entry(name, &format_args!("{value}"));
            }
        }
        map.finish()
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            database_url: DEFAULT_DATABASE_URL.into(),
            timezone: chrono_tz::Asia::Shanghai,
            database_pool_size: 8,
            database_connect_timeout_seconds: 5,
            log_format: LogFormat::Pretty,
            log_color: LogColor::Auto,
            backfill_parallelism: 0,
            job_store_pool_size: 4,
            scheduler_enabled: true,
            scheduler_interval_ms: 1000,
            misfire_grace_seconds: 60,
            worker_poll_interval_ms: 1000,
            worker_heartbeat_seconds: 10,
            worker_missed_heartbeats: 3,
            worker_concurrency: 2,
            shutdown_timeout_seconds: 30,
            job_max_attempts: 5,
            job_retry_base_seconds: 10,
            job_retention_days: 7,
            session_timeout_seconds: 120,
            aggregation_chunk_size: 200,
            aggregation_chunk_pause_ms: 0,
            aggregation_catch_up_periods: 7,
            aggregation_period_types: capstats_capacity_model::PeriodType::ALL.to_vec(),
            sample_retention_months: 36,
            aggregate_retention_months: 120,
            forecast_window_days: 90,
            export_maximum_rows: 5_000_000,
            remembered_reads_mb: 64,
            partitions_ahead_months: 3,
            api_bind: "127.0.0.1:8080".into(),
            api_workers: 0,
            session_key: None,
            cookie_secure: None,
            session_ttl_hours: 8,
            login_attempts_per_minute: 5,
            login_concurrency: 2,
            trusted_proxies: Vec::new(),
            token_expiry_days: 90,
            metrics_token: None,
            worker_metrics_bind: None,
            audit_retention_days: 365,
            credential_key: None,
            credential_old_keys: Vec::new(),
            collector_ca_file: None,
            collector_exclude_postgresql: vec![
                "postgres".into(),
                "rdsadmin".into(),
                "cloudsqladmin".into(),
                "azure_maintenance".into(),
                "azure_sys".into(),
            ],
            collector_exclude_mysql: vec![
                "information_schema".into(),
                "mysql".into(),
                "performance_schema".into(),
                "sys".into(),
            ],
            collector_timeout_seconds: 30,
            collector_concurrency: 4,
            public_url: None,
            smtp_url: None,
            smtp_from: None,
            notification_timeout_seconds: 10,
        }
    }
}

impl Settings {
    /// The address notifications link to: `CAPSTATS_PUBLIC_URL`, else `http://` and the API's
    /// bind address; without a trailing slash.
    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.api_bind))
            .trim_end_matches('/')
            .to_owned()
    }

    /// Reads the configuration: defaults, then the TOML file named by `CAPSTATS_CONFIG_FILE`
    /// if set, then `CAPSTATS_*` variables and `DATABASE_URL`.
    pub fn from_environment() -> Result<Self, SettingsError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(file) = std::env::var_os("CAPSTATS_CONFIG_FILE") {
            let file = PathBuf::from(file);
            if !file.is_file() {
                return Err(SettingsError::Invalid(format!(
                    "CAPSTATS_CONFIG_FILE names {}, which is not a readable file",
                    file.display()
                )));
            }
            figment = figment.merge(Toml::file(file));
        }
        Self::from_figment(
            figment
                .merge(Env::prefixed("CAPSTATS_").ignore(&["config_file"]))
                .merge(Env::raw().only(&["database_url"])),
        )
    }

    /// The business time zone.
    pub fn time_zone(&self) -> Tz {
        self.timezone
    }

    /// Today's date in the business time zone.
    pub fn today(&self) -> NaiveDate {
        today_in(self.timezone)
    }

    /// The effective backfill parallelism: the setting, or one per CPU (at most 4) for 0.
    pub fn backfill_parallelism(&self) -> usize {
        match self.backfill_parallelism {
            0 => std::thread::available_parallelism()
                .map_or(1, std::num::NonZeroUsize::get)
                .min(4),
            explicit => explicit,
        }
    }

    /// Milliseconds as a duration.
    fn millis(value: u64) -> std::time::Duration {
        std::time::Duration::from_millis(value)
    }

    /// Time between two evaluations of the schedules.
    pub fn scheduler_interval(&self) -> std::time::Duration {
        Self::millis(self.scheduler_interval_ms)
    }

    /// Time between two looks for new jobs.
    pub fn worker_poll_interval(&self) -> std::time::Duration {
        Self::millis(self.worker_poll_interval_ms)
    }

    /// Time between two worker heartbeats.
    pub fn worker_heartbeat(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.worker_heartbeat_seconds)
    }

    /// After this long without a heartbeat, a worker's jobs are re-enqueued.
    pub fn orphan_timeout(&self) -> std::time::Duration {
        self.worker_heartbeat() * self.worker_missed_heartbeats
    }

    /// How long to wait for running jobs at shutdown.
    pub fn shutdown_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.shutdown_timeout_seconds)
    }

    /// The session cookie key's bytes, if configured: an error when it is not 128 hex digits or
    /// more.
    pub fn session_key_bytes(&self) -> Result<Option<Vec<u8>>, SettingsError> {
        let Some(text) = &self.session_key else {
            return Ok(None);
        };
        let text = text.trim();
        let invalid = || {
            SettingsError::Invalid(
                "CAPSTATS_SESSION_KEY must be at least 128 hexadecimal digits (64 bytes); \
                 generate one with `openssl rand -hex 64`"
                    .into(),
            )
        };
        // Checked before any slicing: a slice inside a multi-byte character would panic, and a
        // panic message quotes the string, which is the key.
        if text.len() < 128
            || text.len() % 2 != 0
            || !text.bytes().all(|byte| byte.is_ascii_hexdigit())
        {
            return Err(invalid());
        }
        (0..text.len())
            .step_by(2)
            .map(|index| u8::from_str_radix(&text[index..index + 2], 16).map_err(|_| invalid()))
            .collect::<Result<Vec<u8>, _>>()
            .map(Some)
    }

    /// How long to wait for a database connection.
    pub fn database_connect_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.database_connect_timeout_seconds)
    }

    /// Whether `CAPSTATS_API_BIND` names only loopback addresses (`127.0.0.1:8080`,
    /// `[::1]:8080`, `localhost:8080`).
    pub fn api_bound_to_loopback(&self) -> bool {
        let host = self
            .api_bind
            .rsplit_once(':')
            .map_or(self.api_bind.as_str(), |(host, _)| host)
            .trim_start_matches('[')
            .trim_end_matches(']');
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|address| address.is_loopback())
    }

    /// Whether session cookies are `Secure`: as set, else unless the API listens on loopback
    /// only (where a TLS-terminating proxy on the same host or a developer's browser talks
    /// plain HTTP).
    pub fn cookie_is_secure(&self) -> bool {
        self.cookie_secure
            .unwrap_or_else(|| !self.api_bound_to_loopback())
    }
}

/// Today's date in `zone`: the one definition of "today" (the business date of samples,
/// runs and reads).
pub fn today_in(zone: Tz) -> NaiveDate {
    Utc::now().with_timezone(&zone).date_naive()
}

#[cfg(test)]
#[expect(
    clippy::result_large_err,
    reason = "figment::Jail dictates the closure type"
)]
mod tests;
