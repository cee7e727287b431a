//! What the API benchmarks share: their settings from the environment and percentiles.

use std::time::Duration;

/// The number in the environment variable `name`, or `default` when unset or unreadable.
pub fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// The `fraction` percentile (0.5 = median) of `sorted`, nearest rank.
pub fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index]
}
