//! Counters and histograms of what the use cases do — runs by kind and outcome with their
//! durations, aggregate rows written and deleted, ingested samples, collector outcomes — in
//! the process's default Prometheus registry. The worker serves them on
//! `CAPSTATS_WORKER_METRICS_BIND`, the API beside its own metrics on `/metrics`; a scrape only
//! reads memory.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts};

use capstats_sync_session::{SessionStatus, SyncCategory, SyncType};

/// Bucket bounds, in seconds, for durations from a few milliseconds to an hour.
pub const DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0, 300.0, 3600.0,
];

/// Registers a counter in the default registry.
pub fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let metric = IntCounterVec::new(Opts::new(name, help), labels).expect("a valid metric");
    prometheus::default_registry()
        .register(Box::new(metric.clone()))
        .expect("registered once");
    metric
}

/// Registers a histogram of durations in seconds in the default registry.
pub fn duration_histogram(name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let metric = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(DURATION_BUCKETS.to_vec()),
        labels,
    )
    .expect("a valid metric");
    prometheus::default_registry()
        .register(Box::new(metric.clone()))
        .expect("registered once");
    metric
}

struct UseCaseMetrics {
    runs: IntCounterVec,
    run_duration: HistogramVec,
    rows: IntCounterVec,
    ingested: IntCounterVec,
    collected: IntCounterVec,
}

static METRICS: LazyLock<UseCaseMetrics> = LazyLock::new(|| UseCaseMetrics {
    runs: counter(
        "capstats_runs_total",
        "Runs ended, by category (aggregation, capacity), type (scheduled_task, manual_task) and outcome (completed, failed, cancelled)",
        &["category", "type", "outcome"],
    ),
    run_duration: duration_histogram(
        "capstats_run_duration_seconds",
        "Duration of ended runs, from their start on a worker to their end, by category and type",
        &["category", "type"],
    ),
    rows: counter(
        "capstats_aggregate_rows_total",
        "Aggregate rows written or deleted (keys whose samples are gone) by runs and backfills",
        &["operation"],
    ),
    ingested: counter(
        "capstats_ingest_samples_total",
        "Samples sent to POST /capacity/stats, accepted (written) or rejected (in a refused batch)",
        &["outcome"],
    ),
    collected: counter(
        "capstats_collector_servers_total",
        "Servers read by collections, by outcome (completed, failed)",
        &["outcome"],
    ),
});

/// Registers every use-case metric now with each of its series at zero, so that a scrape
/// shows them before the first event (an alert on a rate or an absence needs the series).
pub fn register() {
    let metrics = &*METRICS;
    for category in SyncCategory::ALL {
        for sync_type in SyncType::ALL {
            let kind = [category.as_str(), sync_type.as_str()];
            metrics.run_duration.with_label_values(&kind);
            for outcome in [
                SessionStatus::Completed,
                SessionStatus::Failed,
                SessionStatus::Cancelled,
            ] {
                metrics
                    .runs
                    .with_label_values(&[kind[0], kind[1], outcome.as_str()]);
            }
        }
    }
    for (counter, values) in [
        (&metrics.rows, ["written", "deleted"]),
        (&metrics.ingested, ["accepted", "rejected"]),
        (&metrics.collected, ["completed", "failed"]),
    ] {
        for value in values {
            counter.with_label_values(&[value]);
        }
    }
}

/// A run ended with `outcome` after `duration`.
pub fn run_ended(
    category: SyncCategory,
    sync_type: SyncType,
    outcome: SessionStatus,
    duration: Duration,
) {
    let metrics = &*METRICS;
    metrics
        .runs
        .with_label_values(&[category.as_str(), sync_type.as_str(), outcome.as_str()])
        .inc();
    metrics
        .run_duration
        .with_label_values(&[category.as_str(), sync_type.as_str()])
        .observe(duration.as_secs_f64());
}

/// A run or backfill wrote `written` aggregate rows and deleted `deleted`.
pub fn aggregate_rows(written: u64, deleted: u64) {
    let metrics = &*METRICS;
    metrics.rows.with_label_values(&["written"]).inc_by(written);
    metrics.rows.with_label_values(&["deleted"]).inc_by(deleted);
}

/// A batch of `samples` was written (`accepted`) or refused.
pub fn samples_ingested(samples: u64, accepted: bool) {
    let outcome = if accepted { "accepted" } else { "rejected" };
    METRICS
        .ingested
        .with_label_values(&[outcome])
        .inc_by(samples);
}

/// A collection read one server (`failed`: it could not).
pub fn server_collected(failed: bool) {
    let outcome = if failed { "failed" } else { "completed" };
    METRICS.collected.with_label_values(&[outcome]).inc();
}

/// Every metric of the default registry, in Prometheus' text format.
pub fn render() -> Result<String, prometheus::Error> {
    prometheus::TextEncoder::new().encode_to_string(&prometheus::default_registry().gather())
}

/// Whether the `Authorization` header `authorization` carries `Bearer <expected>`, compared in
/// a time that does not depend on where a wrong token differs.
pub fn bearer_token_matches(authorization: Option<&str>, expected: &str) -> bool {
    let sent = authorization
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default();
    sent.len() == expected.len()
        && sent
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |difference, (a, b)| difference | (a ^ b))
            == 0
}
