//! Prometheus metrics: HTTP requests measured by the middleware, the state of runs, jobs,
//! ticks and stale periods read from the database on a timer (every [`REFRESH_INTERVAL`], so
//! every API process reports the same numbers whichever worker did the work, and a scrape never
//! runs a query), and the use cases' counters of this process (`capstats_services::metrics`:
//! ingested samples). `/metrics` can require a bearer token (`CAPSTATS_METRICS_TOKEN`).

use actix_web::{HttpRequest, HttpResponse};
use prometheus::{
    GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

use crate::state::State;

/// The registry and the HTTP metrics.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Requests by method, route template and status.
    pub http_requests: IntCounterVec,
    /// Request durations by method and route template.
    pub http_duration: HistogramVec,
    /// Remembered capacity reads by outcome: `hit` (served as remembered), `changed` (read
    /// again after a write), `miss` (not remembered).
    pub remembered_reads: IntCounterVec,
    runs: GaugeVec,
    run_duration: GaugeVec,
    last_completed: GaugeVec,
    schedule_last_completed: GaugeVec,
    oldest_stale: GaugeVec,
    rows: GaugeVec,
    jobs: GaugeVec,
    retries: GaugeVec,
    ticks: GaugeVec,
}

impl Metrics {
    /// Registers every metric (the use cases' ones live in the default registry, which
    /// `/metrics` serves beside these).
    pub fn new() -> Self {
        capstats_services::metrics::register();
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let metric = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(metric.clone()))
                .expect("registered once");
            metric
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            let metric = GaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(metric.clone()))
                .expect("registered once");
            metric
        };
        let http_requests = counter(
            "capstats_http_requests_total",
            "HTTP requests by method, route and status",
            &["method", "route", "status"],
        );
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "capstats_http_request_duration_seconds",
                "HTTP request duration by method and route",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["method", "route"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(http_duration.clone()))
            .expect("registered once");
        let remembered_reads = counter(
            "capstats_remembered_reads_total",
            "Capacity reads answered from memory (hit), read again after a write (changed) or not remembered (miss)",
            &["outcome"],
        );
        Self {
            http_requests,
            http_duration,
            remembered_reads,
            runs: gauge(
                "capstats_sync_sessions",
                "Sync sessions of the last 24 hours by category, type and status",
                &["category", "type", "status"],
            ),
            run_duration: gauge(
                "capstats_last_run_duration_seconds",
                "Duration of the last finished run by category and type",
                &["category", "type"],
            ),
            last_completed: gauge(
                "capstats_last_completed_run_timestamp_seconds",
                "When the last completed run ended (Unix time) by category and type",
                &["category", "type"],
            ),
            schedule_last_completed: gauge(
                "capstats_schedule_last_completed_run_timestamp_seconds",
                "When the last completed run of a schedule's ticks ended (Unix time), by schedule",
                &["schedule"],
            ),
            oldest_stale: gauge(
                "capstats_oldest_stale_period_seconds",
                "How long the oldest period marked stale by late samples has waited for its refresh (0: none)",
                &[],
            ),
            rows: gauge(
                "capstats_aggregate_rows_written_last_24h",
                "Aggregate rows written by runs of the last 24 hours",
                &["category"],
            ),
            jobs: gauge(
                "capstats_jobs",
                "Jobs in the job store by queue and status",
                &["queue", "status"],
            ),
            retries: gauge(
                "capstats_job_retries",
                "Attempts beyond the first of jobs in the job store, by queue",
                &["queue"],
            ),
            ticks: gauge(
                "capstats_schedule_ticks_last_24h",
                "Ticks claimed in the last 24 hours by schedule and outcome",
                &["schedule", "status"],
            ),
            registry,
        }
    }

    /// Sets the domain gauges from a database snapshot.
    pub fn update(&self, snapshot: &capstats_store::monitoring::Snapshot) {
        let set =
            |gauge: &GaugeVec, rows: &[capstats_store::monitoring::Labelled], labels: usize| {
                gauge.reset();
                for row in rows {
                    let values = [row.first.as_str(), row.second.as_str(), row.third.as_str()];
                    gauge.with_label_values(&values[..labels]).set(row.value);
                }
            };
        set(&self.runs, &snapshot.sessions, 3);
        set(&self.run_duration, &snapshot.last_run_seconds, 2);
        set(&self.last_completed, &snapshot.last_completed_at, 2);
        set(
            &self.schedule_last_completed,
            &snapshot.schedule_last_completed_at,
            1,
        );
        set(&self.oldest_stale, &snapshot.oldest_stale_seconds, 0);
        set(&self.rows, &snapshot.rows_written, 1);
        set(&self.jobs, &snapshot.jobs, 2);
        set(&self.retries, &snapshot.retries, 1);
        set(&self.ticks, &snapshot.ticks, 2);
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// How often the domain gauges are read from the database.
pub const REFRESH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(15);

/// Reads the domain gauges from the database once.
pub async fn refresh(state: &crate::state::AppState) {
    match capstats_store::run_blocking(&state.store, capstats_store::monitoring::snapshot).await {
        Ok(snapshot) => state.metrics.update(&snapshot),
        Err(error) => tracing::warn!(%error, "could not read run metrics from the database"),
    }
}

/// Refreshes the domain gauges every [`REFRESH_INTERVAL`] until the process ends.
pub async fn refresh_periodically(state: std::sync::Arc<crate::state::AppState>) {
    let mut interval = tokio::time::interval(REFRESH_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        refresh(&state).await;
    }
}

/// Whether `request` may read `/metrics`: always without `CAPSTATS_METRICS_TOKEN`, else only
/// with `Authorization: Bearer <that token>` (compared in constant time).
fn may_scrape(state: &crate::state::AppState, request: &HttpRequest) -> bool {
    let Some(expected) = state.settings.metrics_token.as_deref() else {
        return true;
    };
    let authorization = request
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    capstats_services::metrics::bearer_token_matches(authorization, expected)
}

/// `GET /metrics`: Prometheus text format. Outside `/api/v1` and the OpenAPI description.
pub async fn scrape(state: State, request: HttpRequest) -> HttpResponse {
    if !may_scrape(&state, &request) {
        return HttpResponse::from_error(crate::error::ApiError::AuthenticationRequired);
    }
    let mut families = state.metrics.registry.gather();
    families.extend(prometheus::default_registry().gather());
    match TextEncoder::new().encode_to_string(&families) {
        Ok(body) => HttpResponse::Ok()
            .content_type(prometheus::TEXT_FORMAT)
            .body(body),
        Err(error) => HttpResponse::InternalServerError().body(error.to_string()),
    }
}
