//! Ingest throughput end to end: batches of 5,000 samples posted over HTTP with an ingest
//! token to the API served in-process (release build) on a fresh database, from two clients at
//! once; every batch is validated, written, and marks its periods stale. Prints samples per
//! second over the whole run and the batch latencies, for two cases measured one after the
//! other, each on its own fresh database:
//!
//! - `partitions exist`: the monthly partitions of the batches' days exist before the run, as
//!   they do for daily ingest (`maintain_partitions` creates months ahead);
//! - `partitions created`: the run creates them as it goes, as a backfill of history does.
//!
//! `make bench-ingest` (= `cargo bench -p capstats-api --bench ingest`). Settings:
//! `CAPSTATS_BENCH_BATCHES` (default 40), `CAPSTATS_BENCH_CLIENTS` (default 2).

#[path = "../tests/integration/common/mod.rs"]
#[expect(
    dead_code,
    reason = "the benchmark uses only the server and the seed of the test helpers"
)]
mod common;
mod support;

use std::time::Instant;

use support::{env_number, percentile};

use chrono::{Days, NaiveDate, Utc};
use diesel::Connection;
use reqwest::StatusCode;
use serde_json::{Value, json};

const BATCH_ITEMS: usize = 5_000;
/// Databases per instance: with the seed's 3 instances, a batch covers 12 days, so that the 40
/// batches' 480 days stay within the default sample retention (older samples are refused).
const DATABASES: usize = 150;

/// Batch `index`: instances × databases × consecutive days, each batch on its own older days,
/// so that every sample is new and the batches spread over many monthly partitions.
fn batch(index: usize, instance_ids: &[i64]) -> Value {
    let days_per_batch = BATCH_ITEMS.div_ceil(instance_ids.len() * DATABASES);
    let newest = Utc::now().date_naive() - Days::new(1 + (index * days_per_batch) as u64);
    let mut items = Vec::with_capacity(BATCH_ITEMS);
    'fill: for day in 0..days_per_batch {
        let date = newest - Days::new(day as u64);
        for instance_id in instance_ids {
            for database in 0..DATABASES {
                if items.len() == BATCH_ITEMS {
                    break 'fill;
                }
                let size = 1_000 + (database * 37 + day * 3) as i64;
                items.push(json!({
                    "instance_id": instance_id,
                    "database_name": format!("bench_db_{database:03}"),
                    "collected_date": date,
                    "size_mb": size,
                    "data_size_mb": size * 4 / 5,
                    "log_size_mb": size / 10,
                }));
            }
        }
    }
    json!({ "items": items })
}

/// Posts `batches` batches from `clients` clients to a fresh server and prints the figures;
/// with `partitions_first`, the partitions the batches need are created before the clock
/// starts.
async fn measure(batches: usize, clients: usize, partitions_first: bool) {
    let app = common::TestApp::spawn(1000).await;
    let (admin, csrf) = app.login("admin").await;
    let (_, listed) = app.get(&admin, "/instances?limit=100").await;
    let instance_ids: Vec<i64> = listed["data"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_i64().unwrap())
        .collect();
    let token = app.create_token(&admin, &csrf, json!(["ingest"])).await;
    // Bodies are serialised up front: the client's work is not what is measured.
    let payloads: Vec<Value> = (0..batches)
        .map(|index| batch(index, &instance_ids))
        .collect();
    if partitions_first {
        let dates: Vec<NaiveDate> = payloads
            .iter()
            .flat_map(|payload| payload["items"].as_array().unwrap().iter())
            .map(|item| item["collected_date"].as_str().unwrap().parse().unwrap())
            .collect();
        let url = app.database.url();
        actix_web::web::block(move || {
            let mut connection = diesel::PgConnection::establish(&url).unwrap();
            capstats_store::partitions::ensure_partitions(
                &mut connection,
                &capstats_store::partitions::PartitionedTable::SAMPLES,
                dates,
            )
            .unwrap();
        })
        .await
        .unwrap();
    }
    let bodies: Vec<Vec<u8>> = payloads
        .iter()
        .map(|payload| serde_json::to_vec(payload).unwrap())
        .collect();
    let url = format!("{}/capacity/stats", app.base);
    // reqwest is built without a crypto provider of its own (see capstats-notifications).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();

    let started = Instant::now();
    let mut workers = Vec::new();
    for client_index in 0..clients {
        let mine: Vec<Vec<u8>> = bodies
            .iter()
            .skip(client_index)
            .step_by(clients)
            .cloned()
            .collect();
        let (client, url, token) = (client.clone(), url.clone(), token.clone());
        workers.push(actix_web::rt::spawn(async move {
            let mut latencies = Vec::new();
            for body in mine {
                let sent = Instant::now();
                let response = client
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                let status = response.status();
                let text = response.text().await.unwrap();
                assert_eq!(status, StatusCode::OK, "{text}");
                latencies.push(sent.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.unwrap());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let samples = batches * BATCH_ITEMS;
    println!(
        "ingest ({}): {samples} samples in {batches} batches of {BATCH_ITEMS} from {clients} \
         clients in {:.2} s = {:.0} samples/s; batch latency p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms",
        if partitions_first {
            "partitions exist"
        } else {
            "partitions created"
        },
        elapsed.as_secs_f64(),
        samples as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.5).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.95).as_secs_f64() * 1000.0,
        latencies.last().unwrap().as_secs_f64() * 1000.0,
    );
    app.stop().await;
}

fn main() {
    let batches = env_number("CAPSTATS_BENCH_BATCHES", 40);
    let clients = env_number("CAPSTATS_BENCH_CLIENTS", 2).max(1);
    let runtime = actix_web::rt::System::new();
    runtime.block_on(async move {
        measure(batches, clients, true).await;
        measure(batches, clients, false).await;
    });
}
