//! Turning the merged sources into [`Settings`], refusing values out of range and half-set pairs.

use figment::Figment;

use crate::{Settings, SettingsError};

impl Settings {
    pub(super) fn from_figment(figment: Figment) -> Result<Self, SettingsError> {
        // The single retention of earlier releases: refused by name rather than ignored, so
        // that an old configuration does not silently keep other horizons than it says.
        if figment.find_value("retention_months").is_ok() {
            return Err(SettingsError::Invalid(
                "CAPSTATS_RETENTION_MONTHS is replaced by CAPSTATS_SAMPLE_RETENTION_MONTHS (raw \
                 samples) and CAPSTATS_AGGREGATE_RETENTION_MONTHS (aggregates, default 120); \
                 set those instead"
                    .into(),
            ));
        }
        let settings: Settings = figment
            .extract()
            .map_err(|error| SettingsError::Invalid(error.to_string()))?;
        if let Some(key) = &settings.credential_key {
            let key = key.trim();
            if key.len() != 64 || !key.bytes().all(|byte| byte.is_ascii_hexdigit()) {
                return Err(SettingsError::Invalid(
                    "CAPSTATS_CREDENTIAL_KEY must be 64 hexadecimal digits (32 bytes); \
                     generate one with `openssl rand -hex 32`"
                        .into(),
                ));
            }
        }
        for (position, key) in settings.credential_old_keys.iter().enumerate() {
            let key = key.trim();
            if key.len() != 64 || !key.bytes().all(|byte| byte.is_ascii_hexdigit()) {
                return Err(SettingsError::Invalid(format!(
                    "CAPSTATS_CREDENTIAL_OLD_KEYS: key {} must be 64 hexadecimal digits (32 bytes)",
                    position + 1
                )));
            }
        }
        if !settings.credential_old_keys.is_empty() && settings.credential_key.is_none() {
            return Err(SettingsError::Invalid(
                "CAPSTATS_CREDENTIAL_OLD_KEYS needs CAPSTATS_CREDENTIAL_KEY: old keys only open \
                 passwords, the current key seals them"
                    .into(),
            ));
        }
        for (name, value) in [
            (
                "CAPSTATS_DATABASE_POOL_SIZE",
                u64::from(settings.database_pool_size),
            ),
            (
                "CAPSTATS_JOB_STORE_POOL_SIZE",
                u64::from(settings.job_store_pool_size),
            ),
            (
                "CAPSTATS_SCHEDULER_INTERVAL_MS",
                settings.scheduler_interval_ms,
            ),
            (
                "CAPSTATS_WORKER_POLL_INTERVAL_MS",
                settings.worker_poll_interval_ms,
            ),
            (
                "CAPSTATS_WORKER_HEARTBEAT_SECONDS",
                settings.worker_heartbeat_seconds,
            ),
            (
                "CAPSTATS_WORKER_MISSED_HEARTBEATS",
                u64::from(settings.worker_missed_heartbeats),
            ),
            (
                "CAPSTATS_WORKER_CONCURRENCY",
                u64::from(settings.worker_concurrency),
            ),
            (
                "CAPSTATS_JOB_MAX_ATTEMPTS",
                u64::from(settings.job_max_attempts),
            ),
            (
                "CAPSTATS_JOB_RETRY_BASE_SECONDS",
                settings.job_retry_base_seconds,
            ),
            (
                "CAPSTATS_SESSION_TIMEOUT_SECONDS",
                settings.session_timeout_seconds,
            ),
            (
                "CAPSTATS_AGGREGATION_CHUNK_SIZE",
                u64::from(settings.aggregation_chunk_size),
            ),
            (
                "CAPSTATS_AGGREGATION_CATCH_UP_PERIODS",
                u64::from(settings.aggregation_catch_up_periods),
            ),
            (
                "CAPSTATS_SESSION_TTL_HOURS",
                u64::from(settings.session_ttl_hours),
            ),
            (
                "CAPSTATS_LOGIN_ATTEMPTS_PER_MINUTE",
                u64::from(settings.login_attempts_per_minute),
            ),
            (
                "CAPSTATS_LOGIN_CONCURRENCY",
                u64::from(settings.login_concurrency),
            ),
            (
                "CAPSTATS_TOKEN_EXPIRY_DAYS",
                u64::from(settings.token_expiry_days),
            ),
            (
                "CAPSTATS_AUDIT_RETENTION_DAYS",
                u64::from(settings.audit_retention_days),
            ),
            (
                "CAPSTATS_COLLECTOR_TIMEOUT_SECONDS",
                settings.collector_timeout_seconds,
            ),
            (
                "CAPSTATS_COLLECTOR_CONCURRENCY",
                u64::from(settings.collector_concurrency),
            ),
        ] {
            if value == 0 {
                return Err(SettingsError::Invalid(format!("{name} must be at least 1")));
            }
        }
        if settings.aggregate_retention_months != 0
            && (settings.sample_retention_months == 0
                || settings.aggregate_retention_months < settings.sample_retention_months)
        {
            return Err(SettingsError::Invalid(format!(
                "CAPSTATS_AGGREGATE_RETENTION_MONTHS ({}) must be 0 (keep everything) or at least \
                 CAPSTATS_SAMPLE_RETENTION_MONTHS ({}): aggregates are computed from the samples \
                 and must not vanish before them",
                settings.aggregate_retention_months,
                if settings.sample_retention_months == 0 {
                    "0, everything".to_owned()
                } else {
                    settings.sample_retention_months.to_string()
                }
            )));
        }
        if !(14..=3660).contains(&settings.forecast_window_days) {
            return Err(SettingsError::Invalid(format!(
                "CAPSTATS_FORECAST_WINDOW_DAYS ({}) must be between 14 and 3660 days: a forecast \
                 needs at least 14 daily points",
                settings.forecast_window_days
            )));
        }
        if !(1..=300).contains(&settings.notification_timeout_seconds) {
            return Err(SettingsError::Invalid(format!(
                "CAPSTATS_NOTIFICATION_TIMEOUT_SECONDS ({}) must be between 1 and 300",
                settings.notification_timeout_seconds
            )));
        }
        if settings.smtp_url.is_some() != settings.smtp_from.is_some() {
            return Err(SettingsError::Invalid(
                "CAPSTATS_SMTP_URL and CAPSTATS_SMTP_FROM go together: set both or neither".into(),
            ));
        }
        if let Some(url) = &settings.public_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(SettingsError::Invalid(format!(
                "CAPSTATS_PUBLIC_URL ({url}) must start with https:// or http://"
            )));
        }
        if !(1..=100_000_000).contains(&settings.export_maximum_rows) {
            return Err(SettingsError::Invalid(format!(
                "CAPSTATS_EXPORT_MAXIMUM_ROWS ({}) must be between 1 and 100000000",
                settings.export_maximum_rows
            )));
        }
        if settings.remembered_reads_mb > 65_536 {
            return Err(SettingsError::Invalid(format!(
                "CAPSTATS_REMEMBERED_READS_MB ({}) must be between 0 and 65536",
                settings.remembered_reads_mb
            )));
        }
        let types = &settings.aggregation_period_types;
        if types.is_empty() {
            return Err(SettingsError::Invalid(
                "CAPSTATS_AGGREGATION_PERIOD_TYPES must name at least one period type".into(),
            ));
        }
        if let Some(repeated) = types
            .iter()
            .enumerate()
            .find(|(index, period_type)| types[..*index].contains(period_type))
        {
            return Err(SettingsError::Invalid(format!(
                "CAPSTATS_AGGREGATION_PERIOD_TYPES names {} twice",
                repeated.1
            )));
        }
        // A scheduler sees a tick at most one interval late; with a shorter grace period every
        // tick would count as missed, and `skip` schedules would never run.
        if settings.misfire_grace_seconds.saturating_mul(1000) <= settings.scheduler_interval_ms {
            return Err(SettingsError::Invalid(format!(
                "CAPSTATS_MISFIRE_GRACE_SECONDS ({} s) must be longer than CAPSTATS_SCHEDULER_INTERVAL_MS ({} ms)",
                settings.misfire_grace_seconds, settings.scheduler_interval_ms
            )));
        }
        Ok(settings)
    }
}
