//! Logging: the line format and colours, the global subscriber, and errors as one line.

use serde::{Deserialize, Serialize};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line, for log shippers.
    Json,
}

/// When log lines carry ANSI colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogColor {
    /// Only when stderr is a terminal: never in a file, a pipe or journald.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

impl LogColor {
    /// Whether lines written to stderr get colours.
    pub fn applies(self) -> bool {
        use std::io::IsTerminal;
        match self {
            Self::Auto => std::io::stderr().is_terminal(),
            Self::Always => true,
            Self::Never => false,
        }
    }
}

/// Installs the global log subscriber. The filter comes from `CAPSTATS_LOG`, else `RUST_LOG`,
/// else `info` (with sqlx notices hidden); colours as `color` says. Calling it twice keeps the
/// first subscriber.
pub fn init_tracing(format: LogFormat, color: LogColor) {
    use tracing_subscriber::EnvFilter;
    let filter = std::env::var("CAPSTATS_LOG")
        .ok()
        .and_then(|directives| EnvFilter::try_new(directives).ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(color.applies())
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
