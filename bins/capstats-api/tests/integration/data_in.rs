//! Getting data in over HTTP against a fresh database: `POST /capacity/stats` (who may post, a
//! valid batch and what it changes, bad batches rejected whole with every bad item listed),
//! and collect now for an instance with stored connection settings, run by a real worker.

use capstats_test_support::count;

use crate::common::{TestApp, Worker};
use chrono::{Days, NaiveDate, Utc};
use diesel::prelude::*;
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

/// `size_mb` of one stored sample.
fn stored_sample(url: &str, instance_id: i64, database: &str, date: NaiveDate) -> Option<i64> {
    use diesel::sql_types::{BigInt, Date, Text};
    #[derive(QueryableByName)]
    struct Size {
        #[diesel(sql_type = BigInt)]
        size_mb: i64,
    }
    let mut connection = PgConnection::establish(url).unwrap();
    diesel::sql_query(
        "SELECT size_mb FROM database_size_stats
         WHERE instance_id = $1 AND database_name = $2 AND collected_date = $3",
    )
    .bind::<BigInt, _>(instance_id)
    .bind::<Text, _>(database)
    .bind::<Date, _>(date)
    .get_result::<Size>(&mut connection)
    .optional()
    .unwrap()
    .map(|row| row.size_mb)
}

async fn instance_ids(app: &TestApp, admin: &Client) -> Vec<i64> {
    let (_, body) = app.get(admin, "/instances?limit=100").await;
    body["data"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_i64().unwrap())
        .collect()
}

async fn post_with_token(app: &TestApp, token: &str, body: &Value) -> (StatusCode, Value) {
    let response = app
        .anonymous()
        .post(format!("{}/capacity/stats", app.base))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

async fn post_stats(
    app: &TestApp,
    client: &Client,
    csrf: Option<&str>,
    body: Value,
) -> (StatusCode, Value) {
    app.call(client, Method::POST, "/capacity/stats", csrf, Some(body))
        .await
}

#[actix_web::test]
async fn a_valid_batch_is_written_and_marks_aggregated_periods_stale() {
    let app = TestApp::spawn(100).await;
    let url = app.database.url();
    let (admin, csrf) = app.login("admin").await;
    let ids = instance_ids(&app, &admin).await;
    let today = Utc::now().date_naive();
    let late_date = today - Days::new(20);
    let stale_before = count(
        &url,
        "SELECT count(*) AS count FROM aggregation_ledger WHERE stale_since IS NOT NULL \
         AND computed_at IS NOT NULL",
    );
    assert_eq!(stale_before, 0);

    let batch = json!({"items": [
        // A new database, today.
        {"instance_id": ids[0], "database_name": "fresh_db", "collected_date": today,
         "size_mb": 1234, "data_size_mb": 1000, "log_size_mb": 200},
        // A late sample for a day whose periods are aggregated.
        {"instance_id": ids[1], "database_name": "late_db", "collected_date": late_date,
         "size_mb": 777, "collected_at": "2026-01-01T00:00:00Z"},
    ]});
    let accepted_before = ingested_samples(&app, "accepted").await;
    let (status, body) = post_stats(&app, &admin, Some(&csrf), batch.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["items"], 2);
    assert_eq!(body["data"]["samples_written"], 2);
    // Counted as accepted (other tests of this process add theirs).
    assert!(ingested_samples(&app, "accepted").await >= accepted_before + 2.0);
    assert_eq!(body["data"]["instance_days_refreshed"], 2);
    assert_eq!(body["data"]["databases_recorded"], 2);
    assert!(body["data"]["periods_marked_stale"].as_i64().unwrap() >= 10);
    assert_eq!(stored_sample(&url, ids[0], "fresh_db", today), Some(1234));
    assert_eq!(stored_sample(&url, ids[1], "late_db", late_date), Some(777));
    // The day's total includes the new database; the inventory knows it.
    assert_eq!(
        count(
            &url,
            &format!(
                "SELECT count(*) AS count FROM instance_databases \
                 WHERE instance_id = {} AND database_name = 'late_db'",
                ids[1]
            )
        ),
        1
    );
    assert_eq!(
        count(
            &url,
            &format!(
                "SELECT (total_size_mb - (SELECT sum(size_mb) FROM database_size_stats \
                 WHERE instance_id = {id} AND collected_date = '{late_date}'))::bigint AS count \
                 FROM instance_size_stats WHERE instance_id = {id} AND collected_date = '{late_date}'",
                id = ids[1]
            )
        ),
        0
    );
    // The aggregated day, week and month of the late date are stale for that instance only.
    let stale = count(
        &url,
        &format!(
            "SELECT count(*) AS count FROM aggregation_ledger WHERE computed_at IS NOT NULL \
             AND {} = ANY(stale_instance_ids) \
             AND period_start <= '{late_date}' AND period_end >= '{late_date}'",
            ids[1]
        ),
    );
    assert_eq!(stale, 6, "daily, weekly and monthly at both levels");

    // Sending the same batch again replaces the samples (an upsert), with a token this time.
    let token = app.create_token(&admin, &csrf, json!(["ingest"])).await;
    let mut replaced = batch.clone();
    replaced["items"][0]["size_mb"] = json!(1300);
    let (status, body) = post_with_token(&app, &token, &replaced).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(stored_sample(&url, ids[0], "fresh_db", today), Some(1300));
    app.stop().await;
}

#[actix_web::test]
async fn only_admin_sessions_and_ingest_tokens_may_post() {
    let app = TestApp::spawn(100).await;
    let (admin, csrf) = app.login("admin").await;
    let ids = instance_ids(&app, &admin).await;
    let batch = json!({"items": [{"instance_id": ids[0], "database_name": "x",
        "collected_date": Utc::now().date_naive(), "size_mb": 1}]});

    let (status, body) = post_stats(&app, &app.anonymous(), None, batch.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = post_stats(&app, &admin, None, batch.clone()).await;
    assert_eq!(
        (status, body["message_code"].as_str()),
        (StatusCode::FORBIDDEN, Some("CSRF_MISSING")),
        "{body}"
    );
    let (viewer, viewer_csrf) = app.login("viewer").await;
    let (status, body) = post_stats(&app, &viewer, Some(&viewer_csrf), batch.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let plain = app
        .create_token(&admin, &csrf, json!(["read", "operate"]))
        .await;
    let (status, body) = post_with_token(&app, &plain, &batch).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("ingest"),
        "{body}"
    );
    let ingest = app.create_token(&admin, &csrf, json!(["ingest"])).await;
    let (status, body) = post_with_token(&app, &ingest, &batch).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.stop().await;
}

#[actix_web::test]
async fn a_batch_with_bad_items_is_rejected_whole_listing_every_problem() {
    let app = TestApp::spawn(100).await;
    let url = app.database.url();
    let (admin, csrf) = app.login("admin").await;
    let ids = instance_ids(&app, &admin).await;
    // One instance made inactive.
    let (status, _) = app
        .put(
            &admin,
            &csrf,
            &format!("/instances/{}", ids[2]),
            json!({"is_active": false}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let today = Utc::now().date_naive();
    let tomorrow = today + Days::new(2);
    // Past the default sample retention of 36 months: maintenance would drop it.
    let too_old = today - chrono::Months::new(40);
    let samples_before = count(&url, "SELECT count(*) AS count FROM database_size_stats");
    let rejected_before = ingested_samples(&app, "rejected").await;
    let ledger_before = count(
        &url,
        "SELECT count(*) AS count FROM aggregation_ledger WHERE stale_since IS NOT NULL",
    );
    let item = |instance: i64, name: &str, date: NaiveDate, size: i64| {
        json!({"instance_id": instance, "database_name": name, "collected_date": date,
               "size_mb": size})
    };
    let mut data_too_large = item(ids[0], "d", today, 10);
    data_too_large["data_size_mb"] = json!(11);
    let mut negative_log = item(ids[0], "e", today, 10);
    negative_log["log_size_mb"] = json!(-1);
    let batch = json!({"items": [
        item(ids[0], "good", today, 5),             // 0: valid
        item(999_999, "a", today, 5),               // 1: unknown instance
        item(ids[2], "b", today, 5),                // 2: inactive instance
        item(ids[0], " ", today, 5),                // 3: empty name
        item(ids[0], &"n".repeat(256), today, 5),   // 4: name too long
        item(ids[0], "c", today, -3),               // 5: negative size
        data_too_large,                             // 6: data larger than total
        negative_log,                               // 7: negative log
        item(ids[0], "f", tomorrow, 5),             // 8: in the future
        item(ids[0], "good", today, 6),             // 9: duplicate of item 0
        item(ids[0], &"m".repeat(255), today, 5),   // 10: valid (255 characters)
        item(ids[0], "g", tomorrow, -1),            // 11: negative size and in the future
        item(ids[0], "h", too_old, 5),              // 12: before the sample retention
    ]});
    let (status, body) = post_stats(&app, &admin, Some(&csrf), batch).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["message_code"], "VALIDATION_ERROR");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("11 of 13 items are invalid"),
        "{body}"
    );
    let errors: Vec<(String, String)> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| {
            (
                error["field"].as_str().unwrap().to_owned(),
                error["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let fields: Vec<&str> = errors.iter().map(|(field, _)| field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "items[1].instance_id",
            "items[2].instance_id",
            "items[3].database_name",
            "items[4].database_name",
            "items[5].size_mb",
            "items[6].data_size_mb",
            "items[7].log_size_mb",
            "items[8].collected_date",
            "items[9].database_name",
            // Every problem of an item, not only its first.
            "items[11].size_mb",
            "items[11].collected_date",
            "items[12].collected_date",
        ],
        "{body}"
    );
    assert_eq!(errors[1].1, "inactive");
    assert_eq!(errors[8].1, "duplicate");
    assert_eq!(errors[11].1, "before_retention");
    for error in body["errors"].as_array().unwrap() {
        assert!(!error["message"].as_str().unwrap().is_empty(), "{error}");
    }
    // The refused items are counted in the metrics (other tests of this process add theirs).
    assert!(ingested_samples(&app, "rejected").await >= rejected_before + 13.0);
    // Nothing was written: not even the valid items.
    assert_eq!(
        count(&url, "SELECT count(*) AS count FROM database_size_stats"),
        samples_before
    );
    assert_eq!(stored_sample(&url, ids[0], "good", today), None);
    assert_eq!(
        count(
            &url,
            "SELECT count(*) AS count FROM aggregation_ledger WHERE stale_since IS NOT NULL"
        ),
        ledger_before
    );

    // Empty and oversized batches are refused as a whole.
    let (status, body) = post_stats(&app, &admin, Some(&csrf), json!({"items": []})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let too_many: Vec<Value> = (0..10_001)
        .map(|index| item(ids[0], &format!("db{index}"), today, 1))
        .collect();
    let (status, body) = post_stats(&app, &admin, Some(&csrf), json!({"items": too_many})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("at most 10000"),
        "{body}"
    );
    // A body that is not a batch at all gets the envelope too.
    let (status, body) = post_stats(
        &app,
        &admin,
        Some(&csrf),
        json!({"items": [{"instance_id": "one"}]}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["message_code"], "VALIDATION_ERROR", "{body}");
    assert_eq!(body["errors"][0]["field"], "items[0].instance_id", "{body}");
    // A misspelt field is refused by its path, with every other one, and nothing is stored
    // (it used to be dropped: the sample was written without its log size).
    let mut misspelt = item(ids[0], "typo", today, 30);
    misspelt["log_size_mbb"] = json!(20);
    let batch = json!({"items": [item(ids[0], "fine", today, 5), misspelt], "dry_run": true});
    let (status, body) = post_stats(&app, &admin, Some(&csrf), batch).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let fields: Vec<(&str, &str)> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| {
            (
                error["field"].as_str().unwrap(),
                error["code"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        fields,
        // In the order of the body (json! sorts its keys).
        [
            ("dry_run", "unknown_field"),
            ("items[1].log_size_mbb", "unknown_field")
        ],
        "{body}"
    );
    assert_eq!(stored_sample(&url, ids[0], "typo", today), None);
    assert_eq!(stored_sample(&url, ids[0], "fine", today), None);
    app.stop().await;
}

#[actix_web::test]
async fn collect_now_reads_an_instance_on_a_worker_and_never_returns_the_password() {
    let app = TestApp::spawn(100).await;
    let url = app.database.url();
    let (admin, csrf) = app.login("admin").await;
    let server = capstats_test_support::server_url();
    let (status, created) = app
        .post(
            &admin,
            &csrf,
            "/instances",
            Some(json!({
                "name": "pg-local", "db_type": "postgresql", "host": "127.0.0.1",
                "port": server.port().unwrap_or(5432),
                "connection_user": server.username(),
                // The local server trusts its clients; the password is stored all the same.
                "connection_password": "never-shown",
                // The local server has no TLS.
                "tls_mode": "disable",
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["data"]["id"].as_i64().unwrap();
    assert_eq!(created["data"]["has_password"], true);
    assert_eq!(created["data"]["tls_mode"], "disable");
    assert_eq!(created["data"]["connection_user"], server.username());
    let (_, fetched) = app.get(&admin, &format!("/instances/{id}")).await;
    let (_, listed) = app.get(&admin, "/instances?limit=100").await;
    for body in [&created, &fetched, &listed] {
        assert!(!body.to_string().contains("never-shown"), "{body}");
        assert!(!body.to_string().contains("connection_password"), "{body}");
    }
    // Stored sealed, not in clear.
    assert_eq!(
        count(
            &url,
            &format!(
                "SELECT count(*) AS count FROM instances WHERE id = {id} \
                 AND connection_password IS NOT NULL \
                 AND position('never-shown'::bytea in connection_password) = 0"
            )
        ),
        1
    );

    // An instance without connection settings cannot be collected.
    let (status, body) = app
        .post(&admin, &csrf, "/instances/1/actions/collect", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("connection user"),
        "{body}"
    );

    let _worker = Worker::start(&url);
    let (status, body) = app
        .post(
            &admin,
            &csrf,
            &format!("/instances/{id}/actions/collect"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let session_id = body["data"]["session_id"].as_i64().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let session = loop {
        let (_, session) = app
            .get(&admin, &format!("/sync-sessions/{session_id}"))
            .await;
        let status = session["data"]["session"]["status"].as_str().unwrap_or("");
        if status != "pending" && status != "running" {
            break session;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "collection did not finish: {session}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(
        session["data"]["session"]["status"], "completed",
        "{session}"
    );
    assert_eq!(session["data"]["session"]["sync_category"], "capacity");
    let record = &session["data"]["records"][0];
    assert_eq!(record["instance_id"], id);
    assert!(record["items_synced"].as_i64().unwrap() >= 1, "{record}");
    // The test's own database is among today's samples.
    let today = Utc::now().date_naive();
    assert!(stored_sample(&url, id, app.database.name(), today).is_some());
    app.stop().await;
}

#[actix_web::test]
async fn retargeting_an_instance_drops_its_password_and_says_so() {
    let app = TestApp::spawn(100).await;
    let (admin, csrf) = app.login("admin").await;
    let (status, created) = app
        .post(
            &admin,
            &csrf,
            "/instances",
            Some(json!({
                "name": "pg-remote", "db_type": "postgresql", "host": "db1.example.test",
                "port": 5432, "connection_user": "collector",
                "connection_password": "for-db1-only",
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["data"]["id"].as_i64().unwrap();
    assert_eq!(created["data"]["tls_mode"], "verify-full", "the default");
    let put = |body: Value| {
        let (admin, csrf) = (&admin, &csrf);
        let app = &app;
        async move {
            app.put(admin, csrf, &format!("/instances/{id}"), body)
                .await
        }
    };

    // Settings that do not change the target keep the password, as does resending the host.
    let (status, body) = put(json!({"description": "primary", "host": "db1.example.test"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["password_cleared"], false, "{body}");
    assert_eq!(body["data"]["has_password"], true);
    assert_eq!(body["message"], "instance updated");

    // Another host without a new password: the password is dropped, and the answer says so.
    let (status, body) = put(json!({"host": "attacker.example.test"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["password_cleared"], true, "{body}");
    assert_eq!(body["data"]["has_password"], false);
    assert!(
        body["message"].as_str().unwrap().contains("cleared"),
        "{body}"
    );
    let (_, fetched) = app.get(&admin, &format!("/instances/{id}")).await;
    assert_eq!(fetched["data"]["has_password"], false);

    // A new target with its own password in the same request keeps that password.
    let (status, body) =
        put(json!({"port": 6432, "connection_password": "for-the-new-port"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["password_cleared"], false, "{body}");
    assert_eq!(body["data"]["has_password"], true);

    // Lowering the TLS mode counts as a new target; raising it does not.
    let (_, body) = put(json!({"tls_mode": "require"})).await;
    assert_eq!(body["data"]["password_cleared"], true, "{body}");
    assert_eq!(body["data"]["tls_mode"], "require");
    let (_, body) = put(json!({"connection_password": "again"})).await;
    assert_eq!(body["data"]["has_password"], true, "{body}");
    let (_, body) = put(json!({"tls_mode": "verify-full"})).await;
    assert_eq!(body["data"]["password_cleared"], false, "{body}");
    assert_eq!(body["data"]["has_password"], true);

    // Each connection field drops it.
    for change in [
        json!({"port": 5433}),
        json!({"db_type": "mysql"}),
        json!({"connection_user": "someone-else"}),
        json!({"connection_database": "other"}),
    ] {
        let (_, body) = put(json!({"connection_password": "again"})).await;
        assert_eq!(body["data"]["has_password"], true, "{body}");
        let (status, body) = put(change.clone()).await;
        assert_eq!(status, StatusCode::OK, "{change}: {body}");
        assert_eq!(body["data"]["password_cleared"], true, "{change}: {body}");
    }

    // An unknown mode is refused, naming the field.
    let (status, body) = put(json!({"tls_mode": "prefer"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errors"][0]["field"], "tls_mode", "{body}");
    app.stop().await;
}

/// `capstats_ingest_samples_total{outcome="…"}` as `/metrics` shows it now.
async fn ingested_samples(app: &TestApp, outcome: &str) -> f64 {
    let series = format!("capstats_ingest_samples_total{{outcome=\"{outcome}\"}}");
    app.metric(&series)
        .await
        .unwrap_or_else(|| panic!("no {series} counter"))
}
