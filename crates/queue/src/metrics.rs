//! The worker runtime's metrics — schedule ticks, job attempts by outcome, job pickup latency —
//! beside the use cases' (`capstats_services::metrics`) in the default registry, and the
//! worker's `/metrics` endpoint on `CAPSTATS_WORKER_METRICS_BIND`.

use std::sync::LazyLock;

use prometheus::{HistogramVec, IntCounterVec};

use capstats_services::metrics::{counter, duration_histogram};

struct RuntimeMetrics {
    ticks: IntCounterVec,
    attempts: IntCounterVec,
    pickup: HistogramVec,
}

static METRICS: LazyLock<RuntimeMetrics> = LazyLock::new(|| RuntimeMetrics {
    ticks: counter(
        "capstats_schedule_ticks_total",
        "Schedule ticks this worker claimed, by schedule and outcome: claimed (enqueued within the misfire grace), missed (enqueued later, catching up) or skipped (dropped by the misfire policy)",
        &["schedule", "outcome"],
    ),
    attempts: counter(
        "capstats_job_attempts_total",
        "Job attempts ended on this worker, by job type and outcome: done, retried (failed, attempts left) or failed (for good)",
        &["job_type", "outcome"],
    ),
    pickup: duration_histogram(
        "capstats_job_pickup_seconds",
        "Time from a job being due (pushed, or its retry time) to a worker taking it, by job type",
        &["job_type"],
    ),
});

/// Registers every metric now (with the use cases'), each job type's series at zero, so that
/// a scrape shows them before the first event.
pub fn register() {
    use crate::jobs::BackgroundJob;
    use capstats_services::payloads::{AggregationJob, CollectionJob, MaintenanceJob};
    let metrics = &*METRICS;
    for job in [
        AggregationJob::NAME,
        MaintenanceJob::NAME,
        CollectionJob::NAME,
    ] {
        metrics.pickup.with_label_values(&[job]);
        for outcome in ["done", "retried", "failed"] {
            metrics.attempts.with_label_values(&[job, outcome]);
        }
    }
    capstats_services::metrics::register();
}

/// How a claimed tick came to be enqueued or dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TickOutcome {
    /// Enqueued within the misfire grace.
    Claimed,
    /// Enqueued after it, catching up.
    Missed,
    /// Dropped by the misfire policy `skip`.
    Skipped,
}

/// A tick of `schedule` was claimed by this worker.
pub fn tick(schedule: &str, outcome: TickOutcome) {
    let outcome = match outcome {
        TickOutcome::Claimed => "claimed",
        TickOutcome::Missed => "missed",
        TickOutcome::Skipped => "skipped",
    };
    METRICS.ticks.with_label_values(&[schedule, outcome]).inc();
}

/// An attempt of a `job` job ended with `outcome` (`done`, `retried` or `failed`).
pub fn attempt(job: &str, outcome: &str) {
    METRICS.attempts.with_label_values(&[job, outcome]).inc();
}

/// A `job` job was taken `seconds` after it was due.
pub fn picked_up(job: &str, seconds: f64) {
    METRICS.pickup.with_label_values(&[job]).observe(seconds);
}

/// Serves `/metrics` on `bind` from a thread of its own until the process ends, answering
/// only `Authorization: Bearer <token>` when a token is set; returns the address bound (a
/// port of 0 picks a free one).
pub fn serve(bind: &str, token: Option<String>) -> std::io::Result<std::net::SocketAddr> {
    let server = tiny_http::Server::http(bind).map_err(std::io::Error::other)?;
    let address = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| std::io::Error::other("the metrics endpoint is not on an IP address"))?;
    register();
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for request in server.incoming_requests() {
                let response = answer(&request, token.as_deref());
                if let Err(error) = request.respond(response) {
                    tracing::debug!(%error, "could not answer a metrics request");
                }
            }
        })?;
    Ok(address)
}

fn answer(
    request: &tiny_http::Request,
    token: Option<&str>,
) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    let text =
        |status: u16, body: String| tiny_http::Response::from_string(body).with_status_code(status);
    let path = request.url().split('?').next().unwrap_or_default();
    if path != "/metrics" {
        return text(404, "not found: the worker serves /metrics only\n".into());
    }
    if !matches!(
        request.method(),
        tiny_http::Method::Get | tiny_http::Method::Head
    ) {
        return text(405, "use GET\n".into()).with_header(header("Allow", "GET, HEAD"));
    }
    if let Some(expected) = token {
        let authorization = request
            .headers()
            .iter()
            .find(|header| header.field.equiv("Authorization"))
            .map(|header| header.value.as_str());
        if !capstats_services::metrics::bearer_token_matches(authorization, expected) {
            return text(
                401,
                "send Authorization: Bearer <CAPSTATS_METRICS_TOKEN>\n".into(),
            );
        }
    }
    match capstats_services::metrics::render() {
        Ok(body) => text(200, body).with_header(header("Content-Type", prometheus::TEXT_FORMAT)),
        Err(error) => text(500, format!("{error}\n")),
    }
}

fn header(name: &str, value: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes())
        .expect("a valid header name and value")
}
