//! How fast an idle worker starts what is queued, on the real `capstats-worker run` binary
//! (default settings, scheduler off) and a fresh database:
//!
//! - `pickup`: `CAPSTATS_BENCH_JOBS` (default 50) `prune_job_store` jobs pushed one at a time
//!   onto the job store, each after a pause of 0–500 ms so that pushes fall anywhere in the
//!   worker's poll interval; a job's pickup is the time from its push's commit to the worker's
//!   fetch that locked it (both on the database's clock: `clock_timestamp()` after the commit,
//!   the job row's `lock_at`). Prints p50, p99 and max.
//! - `aggregate now`: `CAPSTATS_BENCH_INSTANCES` (default 200) instances × 20 databases with
//!   samples up to today; `POST /capacity/aggregations/current` for the current daily period
//!   at both levels, from the request to the session's `completed` as a client sees it
//!   (the session polled every 10 ms), `CAPSTATS_BENCH_RUNS` (default 10) times. Prints p50 and
//!   max, and where the time goes (queued → started → completed, from the session's times).
//!
//! `make bench-pickup` (builds the worker, then `cargo bench -p capstats-api --bench pickup`).

#[path = "../tests/integration/common/mod.rs"]
#[expect(
    dead_code,
    reason = "the benchmark uses only the server, the worker and the seed of the test helpers"
)]
mod common;
mod support;

use std::time::{Duration, Instant};

use support::{env_number, percentile};

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

use capstats_services::payloads::{Job, MaintenanceJob, PAYLOAD_VERSION, Trigger};

const DATABASES_PER_INSTANCE: u32 = 20;

fn milliseconds(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Waits until the worker has registered on every queue (each worker type's row exists) and
/// listens for pushed jobs.
async fn wait_for_worker(pool: &PgPool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (registered, listening): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(DISTINCT worker_type) FROM apalis.workers),
                    (SELECT count(*) FROM pg_stat_activity
                     WHERE datname = current_database() AND query LIKE 'LISTEN%')",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        if registered as usize == capstats_queue::jobs::QUEUES.len() && listening == 1 {
            return;
        }
        assert!(Instant::now() < deadline, "the worker did not register");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Pushes one prune job and returns how long the worker took to lock it.
async fn one_pickup(pool: &PgPool) -> Duration {
    let job = Job::Maintenance(MaintenanceJob::PruneJobStore {
        version: PAYLOAD_VERSION,
        trigger: Trigger::manual("bench", None),
    });
    let job_id = capstats_services::enqueue::new_job_id();
    capstats_queue::job_store::enqueue(pool, &job, &job_id, 1)
        .await
        .unwrap();
    let committed: DateTime<Utc> = sqlx::query_scalar("SELECT clock_timestamp()")
        .fetch_one(pool)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, locked): (String, Option<DateTime<Utc>>) =
            sqlx::query_as("SELECT status, lock_at FROM apalis.jobs WHERE id = $1")
                .bind(&job_id)
                .fetch_one(pool)
                .await
                .unwrap();
        match status.as_str() {
            "Done" => {
                let locked = locked.expect("a finished job was locked");
                return (locked - committed).to_std().unwrap_or_default();
            }
            "Failed" | "Killed" => panic!("the prune job {job_id} ended {status}"),
            _ => {}
        }
        assert!(Instant::now() < deadline, "job {job_id} was not run");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn pickup(app: &common::TestApp, pool: &PgPool, jobs: usize) {
    // The first job warms the worker's connections up; it is not counted.
    one_pickup(pool).await;
    // A fixed pseudo-random sequence of pauses, so that runs compare.
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut pickups = Vec::with_capacity(jobs);
    for _ in 0..jobs {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        tokio::time::sleep(Duration::from_millis((state >> 33) % 500)).await;
        pickups.push(one_pickup(pool).await);
    }
    pickups.sort();
    println!(
        "pickup: {jobs} jobs on an idle worker (database {}): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        app.database.name(),
        milliseconds(percentile(&pickups, 0.5)),
        milliseconds(percentile(&pickups, 0.99)),
        milliseconds(*pickups.last().unwrap()),
    );
}

/// Adds `instances` × 20 databases with eight days of samples up to today.
async fn seed_fleet(url: String, instances: u32) {
    actix_web::web::block(move || {
        use diesel::Connection;
        let mut connection = diesel::PgConnection::establish(&url).unwrap();
        capstats_services::seed::seed_demo(
            &mut connection,
            &capstats_services::seed::SeedOptions {
                instances,
                databases_per_instance: DATABASES_PER_INSTANCE,
                days: 8,
                end_date: Utc::now().date_naive(),
                seed: 13,
            },
            &capstats_services::NoProgress,
        )
        .unwrap();
    })
    .await
    .unwrap();
}

fn timestamp(session: &Value, field: &str) -> DateTime<Utc> {
    session[field]
        .as_str()
        .unwrap_or_else(|| panic!("the session has no {field}: {session}"))
        .parse()
        .unwrap()
}

async fn aggregate_now(app: &common::TestApp, instances: usize, runs: usize) {
    let (admin, csrf) = app.login("admin").await;
    let mut totals = Vec::with_capacity(runs);
    let (mut queued, mut running) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let started = Instant::now();
        let response = admin
            .post(format!("{}/capacity/aggregations/current", app.base))
            .header("X-CSRFToken", &csrf)
            .json(&json!({"scope": "all", "period_type": "daily"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        let path = location.replace("/api/v1", "");
        let deadline = Instant::now() + Duration::from_secs(120);
        let session = loop {
            let (_, body) = app.get(&admin, &path).await;
            let session = body["data"]["session"].clone();
            match session["status"].as_str().unwrap_or_default() {
                "completed" => break session,
                "failed" | "cancelled" => panic!("the run did not complete: {body}"),
                _ => {}
            }
            assert!(Instant::now() < deadline, "the run did not finish: {body}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        totals.push(started.elapsed());
        let (created, began, completed) = (
            timestamp(&session, "created_at"),
            timestamp(&session, "started_at"),
            timestamp(&session, "completed_at"),
        );
        queued.push((began - created).to_std().unwrap_or_default());
        running.push((completed - began).to_std().unwrap_or_default());
    }
    totals.sort();
    queued.sort();
    running.sort();
    println!(
        "aggregate now: current daily period, both levels, {instances} instances × \
         {DATABASES_PER_INSTANCE} databases, {runs} runs: POST to completed p50 {:.0} ms, max \
         {:.0} ms; queued until started p50 {:.0} ms, max {:.0} ms; started until completed \
         p50 {:.0} ms, max {:.0} ms",
        milliseconds(percentile(&totals, 0.5)),
        milliseconds(*totals.last().unwrap()),
        milliseconds(percentile(&queued, 0.5)),
        milliseconds(*queued.last().unwrap()),
        milliseconds(percentile(&running, 0.5)),
        milliseconds(*running.last().unwrap()),
    );
}

fn main() {
    let jobs = env_number("CAPSTATS_BENCH_JOBS", 50).max(1);
    let instances = env_number("CAPSTATS_BENCH_INSTANCES", 200).max(1);
    let runs = env_number("CAPSTATS_BENCH_RUNS", 10).max(1);
    actix_web::rt::System::new().block_on(async move {
        let app = common::TestApp::spawn(1000).await;
        seed_fleet(app.database.url(), instances as u32).await;
        let pool = capstats_queue::job_store::connect(&app.database.url(), 2)
            .await
            .unwrap();
        // The worker as deployed: default poll interval and pools.
        let worker = common::Worker::start_with(&app.database.url(), &[]);
        wait_for_worker(&pool).await;
        pickup(&app, &pool, jobs).await;
        aggregate_now(&app, instances, runs).await;
        drop(worker);
        pool.close().await;
        app.stop().await;
    });
}
