//! Remembered capacity reads: a summary, series, leaderboard or forecast asked for again is
//! served from memory while nothing behind it has changed, and never after a committed change.

use diesel::connection::SimpleConnection;
use reqwest::StatusCode;
use serde_json::Value;

use crate::common::TestApp;

/// Every remembered read, as a capacity page and a planner ask for them.
const READS: [&str; 10] = [
    "/capacity/instances/summary",
    "/capacity/databases/summary?period_type=daily",
    "/capacity/instances/series?period_type=daily&periods=30&top=10",
    "/capacity/databases/series?period_type=daily&periods=30&top=10",
    "/capacity/instances/growth?period_type=monthly&periods=3",
    "/capacity/databases/growth?period_type=monthly&periods=3",
    "/capacity/instances/forecast?horizon_days=30",
    "/capacity/databases/forecast?horizon_days=30",
    "/capacity/instances?period_type=daily&limit=5",
    "/capacity/databases?period_type=weekly&get_all=true",
];

/// `capstats_remembered_reads_total{outcome}` as `/metrics` shows it now.
async fn remembered(app: &TestApp, outcome: &str) -> f64 {
    let series = format!("capstats_remembered_reads_total{{outcome=\"{outcome}\"}}");
    app.metric(&series).await.unwrap_or(0.0)
}

async fn read_all(app: &TestApp, client: &reqwest::Client) -> Vec<Value> {
    let mut bodies = Vec::new();
    for path in READS {
        let body = app.get_ok(client, path).await;
        bodies.push(body);
    }
    bodies
}

#[actix_web::test]
async fn a_remembered_read_is_served_until_a_change_commits() {
    let app = TestApp::spawn(100).await;
    let (viewer, _) = app.login("viewer").await;
    let first = read_all(&app, &viewer).await;
    assert_eq!(remembered(&app, "miss").await, READS.len() as f64);

    // Asked again with nothing written: the same answers, from memory.
    let again = read_all(&app, &viewer).await;
    assert_eq!(again, first);
    assert_eq!(remembered(&app, "hit").await, READS.len() as f64);
    // Remembered answers are for signed-in readers only, like the reads themselves.
    for path in READS {
        let (status, body) = app.get(&app.anonymous(), path).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {body}");
    }

    // A transaction renames every instance but has not committed: still the same answers.
    let mut writer = app.database.connection();
    writer
        .batch_execute("BEGIN; UPDATE instances SET name = name || '-renamed'")
        .unwrap();
    assert_eq!(read_all(&app, &viewer).await, first);
    assert_eq!(remembered(&app, "hit").await, 2.0 * READS.len() as f64);

    // Once it commits, every answer names the instances anew: each was read again.
    writer.batch_execute("COMMIT").unwrap();
    let renamed = read_all(&app, &viewer).await;
    for (path, body) in READS.iter().zip(&renamed) {
        assert!(body.to_string().contains("-renamed"), "{path}: {body}");
    }
    assert_eq!(remembered(&app, "changed").await, READS.len() as f64);

    // A run's new figures show at once.
    let total = |body: &Value| body["data"]["summary"]["total_size_mb"].as_i64().unwrap();
    let databases = renamed[1]["data"]["summary"]["total_databases"]
        .as_i64()
        .unwrap();
    assert!(databases > 0);
    // (A run writes the aggregates and each key's latest row together, as here.)
    writer
        .batch_execute(
            "BEGIN;
             UPDATE database_size_aggregations SET avg_size_mb = avg_size_mb + 1000
             WHERE period_type = 'daily';
             UPDATE database_latest_aggregations SET avg_size_mb = avg_size_mb + 1000
             WHERE period_type = 'daily';
             COMMIT;",
        )
        .unwrap();
    let summary = app.get_ok(&viewer, READS[1]).await;
    assert_eq!(total(&summary), total(&renamed[1]) + 1000 * databases);
    app.stop().await;
}

#[actix_web::test]
async fn nothing_is_remembered_when_the_memory_is_zero() {
    let app = TestApp::spawn_with(|settings| settings.remembered_reads_mb = 0).await;
    let (viewer, _) = app.login("viewer").await;
    let first = read_all(&app, &viewer).await;
    assert_eq!(read_all(&app, &viewer).await, first);
    for outcome in ["hit", "miss", "changed"] {
        assert_eq!(remembered(&app, outcome).await, 0.0, "{outcome}");
    }
    app.stop().await;
}
