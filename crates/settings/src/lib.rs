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

/// A setting could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A value has the wrong form.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line, for log shippers.
    Json,
}

/// The typed configuration of capstats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// PostgreSQL connection URL (`DATABASE_URL`).
    pub database_url: String,
    /// IANA name of the business time zone that dates are counted in (`CAPSTATS_TIMEZONE`).
    pub timezone: String,
    /// Maximum connections of the diesel pool (`CAPSTATS_DATABASE_POOL_SIZE`).
    pub database_pool_size: u32,
    /// Seconds to wait for a pooled connection (`CAPSTATS_DATABASE_CONNECT_TIMEOUT_SECONDS`).
    pub database_connect_timeout_seconds: u64,
    /// Log line format (`CAPSTATS_LOG_FORMAT`).
    pub log_format: LogFormat,
    /// Batches a backfill computes at once, each on its own connection
    /// (`CAPSTATS_BACKFILL_PARALLELISM`; 0 means one per CPU, at most 4).
    pub backfill_parallelism: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            database_url: DEFAULT_DATABASE_URL.into(),
            timezone: "Asia/Shanghai".into(),
            database_pool_size: 8,
            database_connect_timeout_seconds: 10,
            log_format: LogFormat::Pretty,
            backfill_parallelism: 0,
        }
    }
}

impl Settings {
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

    fn from_figment(figment: Figment) -> Result<Self, SettingsError> {
        let settings: Settings = figment
            .extract()
            .map_err(|error| SettingsError::Invalid(error.to_string()))?;
        settings.time_zone()?;
        if settings.database_pool_size == 0 {
            return Err(SettingsError::Invalid(
                "CAPSTATS_DATABASE_POOL_SIZE must be at least 1".into(),
            ));
        }
        Ok(settings)
    }

    /// The business time zone.
    pub fn time_zone(&self) -> Result<Tz, SettingsError> {
        Tz::from_str(&self.timezone).map_err(|_| {
            SettingsError::Invalid(format!(
                "CAPSTATS_TIMEZONE `{}` is not an IANA time zone name (for example Asia/Shanghai or UTC)",
                self.timezone
            ))
        })
    }

    /// Today's date in the business time zone.
    pub fn today(&self) -> Result<NaiveDate, SettingsError> {
        Ok(Utc::now().with_timezone(&self.time_zone()?).date_naive())
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

    /// How long to wait for a database connection.
    pub fn database_connect_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.database_connect_timeout_seconds)
    }
}

/// Installs the global log subscriber. The filter comes from `CAPSTATS_LOG`, else `RUST_LOG`,
/// else `info` (with sqlx notices hidden). Calling it twice keeps the first subscriber.
pub fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = std::env::var("CAPSTATS_LOG")
        .ok()
        .and_then(|directives| EnvFilter::try_new(directives).ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _already_installed = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// An error and its causes as one line, for the last words of a command: causes already
/// quoted by the message before them are not repeated, and line breaks inside messages (libpq
/// writes some) become spaces.
pub fn one_line_error(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(current) = cause {
        let text = current.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = current.source();
    }
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail dictates the closure type.
mod tests {
    use super::*;

    #[test]
    fn errors_become_one_line_without_repeating_causes() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer: {0}")]
        struct Outer(#[source] Inner);
        #[derive(Debug, thiserror::Error)]
        #[error("inner\n\tdetail")]
        struct Inner;
        assert_eq!(one_line_error(&Outer(Inner)), "outer: inner detail");
        #[derive(Debug, thiserror::Error)]
        #[error("context")]
        struct Context(#[source] Inner);
        assert_eq!(one_line_error(&Context(Inner)), "context: inner detail");
    }

    #[test]
    fn defaults_apply_and_environment_overrides() {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            let settings = Settings::from_environment().unwrap();
            assert_eq!(settings, Settings::default());
            jail.set_env("DATABASE_URL", "postgres://example/db");
            jail.set_env("CAPSTATS_TIMEZONE", "Europe/Berlin");
            jail.set_env("CAPSTATS_DATABASE_POOL_SIZE", "12");
            jail.set_env("CAPSTATS_LOG_FORMAT", "json");
            let settings = Settings::from_environment().unwrap();
            assert_eq!(settings.database_url, "postgres://example/db");
            assert_eq!(settings.time_zone().unwrap(), chrono_tz::Europe::Berlin);
            assert_eq!(settings.database_pool_size, 12);
            assert_eq!(settings.log_format, LogFormat::Json);
            Ok(())
        });
    }

    #[test]
    fn file_values_lose_to_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file(
                "capstats.toml",
                "database_pool_size = 6\ntimezone = \"UTC\"",
            )?;
            jail.set_env("CAPSTATS_CONFIG_FILE", "capstats.toml");
            jail.set_env("CAPSTATS_DATABASE_POOL_SIZE", "7");
            let settings = Settings::from_environment().unwrap();
            assert_eq!(settings.database_pool_size, 7);
            assert_eq!(settings.timezone, "UTC");
            Ok(())
        });
    }

    #[test]
    fn bad_values_name_the_setting() {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env("CAPSTATS_TIMEZONE", "Mars/Olympus");
            let error = Settings::from_environment().unwrap_err().to_string();
            assert!(error.contains("CAPSTATS_TIMEZONE"), "{error}");
            jail.set_env("CAPSTATS_TIMEZONE", "UTC");
            jail.set_env("CAPSTATS_DATABASE_POOL_SIZE", "many");
            let error = Settings::from_environment().unwrap_err().to_string();
            assert!(error.contains("DATABASE_POOL_SIZE"), "{error}");
            jail.set_env("CAPSTATS_DATABASE_POOL_SIZE", "3");
            jail.set_env("CAPSTATS_CONFIG_FILE", "missing.toml");
            let error = Settings::from_environment().unwrap_err().to_string();
            assert!(error.contains("missing.toml"), "{error}");
            Ok(())
        });
    }
}
