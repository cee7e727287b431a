//! The reference's capacity contract replayed against capstats: the assertions of its route
//! contract tests (capacity instances, databases and aggregations, partitions, scheduler),
//! written anew for capstats' HTTP API. The data goes in as the reference's does — a stats
//! file through `import-stats` (`capstats_services::import`), then aggregated — and every call
//! is an HTTP request with the reference client's parameters. Where capstats deliberately
//! differs (202 for aggregate now, no schedule deletion), the test checks capstats' answer and
//! `docs/reference-compatibility.md` lists the difference.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::NaiveDate;
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

use crate::common::TestApp;

/// The reference tests' day, and their query.
const DAY: &str = "2025-12-24";
const QUERY: &str = "period_type=daily&start_date=2025-12-24&end_date=2025-12-24";

/// Imports `csv` as `capstats-worker import-stats --create-instances` does, then aggregates
/// the day at both levels.
fn import_and_aggregate(url: &str, csv: &str) {
    use diesel::Connection;
    let day = NaiveDate::parse_from_str(DAY, "%Y-%m-%d").unwrap();
    let mut connection = diesel::PgConnection::establish(url).unwrap();
    let lines = capstats_services::import::parse_stats_csv(
        csv.as_bytes(),
        capstats_capacity_model::SampleDates::until(chrono::Utc::now().date_naive()),
        &capstats_services::NoProgress,
    )
    .unwrap();
    capstats_services::import::import_stats(
        &mut connection,
        &lines,
        true,
        chrono_tz::UTC,
        &capstats_services::NoProgress,
    )
    .unwrap();
    let pool = capstats_store::build_pool(url, 2, Duration::from_secs(10)).unwrap();
    capstats_services::backfill::run_backfill(
        &pool,
        &capstats_services::backfill::BackfillRequest {
            period_type: capstats_capacity_model::PeriodType::Daily,
            from: day,
            to: day,
            levels: capstats_capacity_model::AggregationLevel::ALL.to_vec(),
            triggered_by: "reference contract".into(),
            sync_type: capstats_sync_session::SyncType::ManualTask,
            parallelism: 1,
            samples_kept_from: None,
            today: chrono::Utc::now().date_naive(),
        },
        &capstats_services::NoProgress,
    )
    .unwrap();
}

const HEADER: &str =
    "instance_name,db_type,database_name,collected_date,size_mb,data_size_mb,log_size_mb\n";

/// One MySQL instance of 1024 MB in three databases.
fn one_instance(url: &str) {
    import_and_aggregate(
        url,
        &format!(
            "{HEADER}instance-1,mysql,db1,{DAY},500,,\ninstance-1,mysql,db2,{DAY},300,,\n\
             instance-1,mysql,db3,{DAY},224,,\n"
        ),
    );
}

/// Three instances of three engines, 100, 200 and 300 MB in one database each.
fn three_engines(url: &str) {
    import_and_aggregate(
        url,
        &format!(
            "{HEADER}mysql-instance,mysql,db_mysql,{DAY},100,,\n\
             pg-instance,postgresql,db_pg,{DAY},200,,\n\
             sqlserver-instance,sqlserver,db_sqlserver,{DAY},300,,\n"
        ),
    );
}

/// One instance, deactivated after its day was aggregated (by the test, through the API).
fn disabled_instance(url: &str) {
    import_and_aggregate(
        url,
        &format!("{HEADER}instance-disabled,mysql,db1,{DAY},256,,\n"),
    );
}

/// The CSRF token an anonymous client gets, as the reference's tests fetch it first.
async fn anonymous_csrf(app: &TestApp, client: &Client) -> String {
    let body = app.get_ok(client, "/auth/csrf-token").await;
    body["data"]["csrf_token"].as_str().unwrap().to_owned()
}

fn assert_authentication_required(status: StatusCode, body: &Value) {
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["message_code"], "AUTHENTICATION_REQUIRED", "{body}");
}

fn assert_keys(value: &Value, keys: &[&str]) {
    for key in keys {
        assert!(value.get(key).is_some(), "`{key}` missing: {value}");
    }
}

async fn instance_id(app: &TestApp, client: &Client, name: &str) -> i64 {
    let (_, body) = app.get(client, &format!("/instances?search={name}")).await;
    body["data"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|instance| instance["name"] == name)
        .and_then(|instance| instance["id"].as_i64())
        .unwrap_or_else(|| panic!("no instance {name}: {body}"))
}

/// Takes an instance out of service: `deactivate` it, or (soft) `delete` it.
async fn retire(app: &TestApp, name: &str, how: &str) {
    let (admin, csrf) = app.login("admin").await;
    let id = instance_id(app, &admin, name).await;
    let (method, body) = match how {
        "deactivate" => (Method::PUT, Some(json!({"is_active": false}))),
        "delete" => (Method::DELETE, None),
        other => panic!("no way to retire an instance called {other}"),
    };
    let (status, body) = app
        .call(
            &admin,
            method,
            &format!("/instances/{id}"),
            Some(&csrf),
            body,
        )
        .await;
    assert!(status.is_success(), "{how}: {status} {body}");
}

#[actix_web::test]
async fn capacity_reads_require_a_sign_in() {
    let app = TestApp::spawn_seeded(one_instance, |_| {}).await;
    let anonymous = app.anonymous();
    for level in ["instances", "databases"] {
        for path in [
            format!("/capacity/{level}?{QUERY}"),
            format!("/capacity/{level}/summary?{QUERY}"),
        ] {
            let (status, body) = app.get(&anonymous, &path).await;
            assert_authentication_required(status, &body);
        }
    }
    app.stop().await;
}

#[actix_web::test]
async fn capacity_lists_and_summaries_have_the_reference_shapes() {
    let app = TestApp::spawn_seeded(one_instance, |_| {}).await;
    let (viewer, _) = app.login("viewer").await;

    let body = app
        .get_ok(&viewer, &format!("/capacity/instances?{QUERY}"))
        .await;
    assert_eq!(body["success"], true);
    let data = &body["data"];
    assert_keys(
        data,
        &[
            "items", "total", "page", "pages", "limit", "has_prev", "has_next",
        ],
    );
    let items = data["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{body}");
    assert_keys(
        &items[0],
        &[
            "id",
            "instance_id",
            "period_type",
            "period_start",
            "period_end",
            "total_size_mb",
            "avg_size_mb",
            "database_count",
            "total_size_change_mb",
            "total_size_change_percent",
            "instance",
        ],
    );
    assert_eq!(items[0]["total_size_mb"], 1024);
    assert_eq!(items[0]["database_count"], 3);
    let instance = &items[0]["instance"];
    assert_eq!(instance["id"], items[0]["instance_id"]);
    assert_eq!(instance["name"], "instance-1");
    assert_eq!(instance["db_type"], "mysql");

    let body = app
        .get_ok(&viewer, &format!("/capacity/instances/summary?{QUERY}"))
        .await;
    assert_eq!(body["success"], true);
    let summary = &body["data"]["summary"];
    assert_keys(
        summary,
        &[
            "total_instances",
            "total_size_mb",
            "avg_size_mb",
            "max_size_mb",
            "period_type",
            "source",
        ],
    );
    assert_eq!(summary["total_instances"], 1);
    assert_eq!(summary["total_size_mb"], 1024);
    assert_eq!(summary["avg_size_mb"], 1024);
    assert_eq!(summary["max_size_mb"], 1024);
    assert_eq!(summary["period_type"], "daily");
    assert_eq!(summary["source"], "instance_size_stats");

    let body = app
        .get_ok(&viewer, &format!("/capacity/databases?{QUERY}"))
        .await;
    let data = &body["data"];
    assert_keys(data, &["items", "total", "page", "pages", "limit"]);
    let items = data["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{body}");
    for item in items {
        assert_keys(
            item,
            &[
                "id",
                "instance_id",
                "database_name",
                "period_type",
                "period_start",
                "period_end",
                "avg_size_mb",
                "size_change_mb",
                "size_change_percent",
                "instance",
            ],
        );
        assert_eq!(item["instance"]["name"], "instance-1");
    }
    let ids: BTreeSet<&str> = items
        .iter()
        .map(|item| item["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3, "row ids are distinct: {ids:?}");

    let body = app
        .get_ok(&viewer, &format!("/capacity/databases/summary?{QUERY}"))
        .await;
    let summary = &body["data"]["summary"];
    assert_keys(
        summary,
        &[
            "total_databases",
            "total_instances",
            "total_size_mb",
            "avg_size_mb",
            "max_size_mb",
            "growth_rate",
        ],
    );
    assert_eq!(summary["total_databases"], 3);
    assert_eq!(summary["total_instances"], 1);
    assert_eq!(summary["total_size_mb"], 1024);
    assert_eq!(summary["avg_size_mb"], json!(341.33));
    assert_eq!(summary["max_size_mb"], 500);
    app.stop().await;
}

#[actix_web::test]
async fn repeated_engine_and_instance_filters_select_the_same_rows_in_lists_and_summaries() {
    let app = TestApp::spawn_seeded(three_engines, |_| {}).await;
    let (viewer, _) = app.login("viewer").await;
    let mysql = instance_id(&app, &viewer, "mysql-instance").await;
    let postgres = instance_id(&app, &viewer, "pg-instance").await;
    let filter = format!(
        "{QUERY}&db_type=mysql&db_type=postgresql&instance_id={mysql}&instance_id={postgres}"
    );

    let body = app
        .get_ok(&viewer, &format!("/capacity/instances?{filter}"))
        .await;
    let ids: BTreeSet<i64> = body["data"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["instance_id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, BTreeSet::from([mysql, postgres]));
    let (_, body) = app
        .get(&viewer, &format!("/capacity/instances/summary?{filter}"))
        .await;
    assert_eq!(body["data"]["summary"]["total_instances"], 2, "{body}");
    assert_eq!(body["data"]["summary"]["total_size_mb"], 300, "{body}");

    let body = app
        .get_ok(&viewer, &format!("/capacity/databases?{filter}"))
        .await;
    let names: BTreeSet<&str> = body["data"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["database_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, BTreeSet::from(["db_mysql", "db_pg"]));
    let (_, body) = app
        .get(&viewer, &format!("/capacity/databases/summary?{filter}"))
        .await;
    let summary = &body["data"]["summary"];
    assert_eq!(summary["total_instances"], 2, "{body}");
    assert_eq!(summary["total_databases"], 2, "{body}");
    assert_eq!(summary["total_size_mb"], 300, "{body}");
    app.stop().await;
}

#[actix_web::test]
async fn a_deactivated_or_deleted_instance_stays_in_lists_and_summaries_alike_unless_left_out() {
    for how in ["deactivate", "delete"] {
        retired_instance_is_counted_alike(how).await;
    }
}

/// Lists, summaries and series count an instance retired `how` the same way.
async fn retired_instance_is_counted_alike(how: &str) {
    let app = TestApp::spawn_seeded(disabled_instance, |_| {}).await;
    retire(&app, "instance-disabled", how).await;
    let (viewer, _) = app.login("viewer").await;
    for level in ["instances", "databases"] {
        let body = app
            .get_ok(&viewer, &format!("/capacity/{level}?{QUERY}"))
            .await;
        assert_eq!(
            body["data"]["items"].as_array().unwrap().len(),
            1,
            "{how} {level}: {body}"
        );
        let (_, body) = app
            .get(&viewer, &format!("/capacity/{level}/summary?{QUERY}"))
            .await;
        assert_eq!(
            body["data"]["summary"]["total_instances"], 1,
            "{how} {level}: {body}"
        );
        // include_inactive=false leaves it out of both, and of the series.
        let only_active = format!("{QUERY}&include_inactive=false");
        let body = app
            .get_ok(&viewer, &format!("/capacity/{level}?{only_active}"))
            .await;
        assert_eq!(body["data"]["total"], 0, "{how} {level}: {body}");
        assert!(
            body["data"]["items"].as_array().unwrap().is_empty(),
            "{body}"
        );
        let (_, body) = app
            .get(&viewer, &format!("/capacity/{level}/summary?{only_active}"))
            .await;
        assert_eq!(
            body["data"]["summary"]["total_instances"], 0,
            "{how} {level}: {body}"
        );
        let series = format!("period_type=daily&end_date={DAY}&periods=1");
        let (_, body) = app
            .get(&viewer, &format!("/capacity/{level}/series?{series}"))
            .await;
        assert_eq!(
            body["data"]["series"].as_array().unwrap().len(),
            1,
            "{body}"
        );
        let (_, body) = app
            .get(
                &viewer,
                &format!("/capacity/{level}/series?{series}&include_inactive=false"),
            )
            .await;
        assert!(
            body["data"]["series"].as_array().unwrap().is_empty(),
            "{body}"
        );
    }
    app.stop().await;
}

#[actix_web::test]
async fn aggregate_now_answers_a_run_id() {
    let app = TestApp::spawn_seeded(one_instance, |_| {}).await;
    let anonymous = app.anonymous();
    let csrf = anonymous_csrf(&app, &anonymous).await;
    let request = json!({"period_type": "daily", "scope": "all"});
    let (status, body) = app
        .post(
            &anonymous,
            &csrf,
            "/capacity/aggregations/current",
            Some(request.clone()),
        )
        .await;
    assert_authentication_required(status, &body);
    let (admin, csrf) = app.login("admin").await;
    let (status, body) = app
        .post(
            &admin,
            &csrf,
            "/capacity/aggregations/current",
            Some(request),
        )
        .await;
    // The reference answers 200; capstats 202, the work being queued for a worker.
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["success"], true);
    let run_id = body["data"]["run_id"].as_str().expect("run_id is a string");
    assert_eq!(
        run_id,
        body["data"]["session_id"].as_i64().unwrap().to_string()
    );
    // The reference's `data.result`, every key of its contract test.
    let result = body["data"]["result"].as_object().expect("a result object");
    for key in [
        "status",
        "message",
        "period_type",
        "period_start",
        "period_end",
        "scope",
        "requested_period_type",
        "effective_period_type",
        "database_summary",
        "instance_summary",
        "session",
    ] {
        assert!(result.contains_key(key), "no {key} in {body}");
    }
    let today = chrono::Utc::now().date_naive().to_string();
    assert_eq!(result["status"], "pending");
    assert_eq!(result["period_type"], "daily");
    assert_eq!(result["effective_period_type"], "daily");
    assert_eq!(
        (
            result["period_start"].as_str(),
            result["period_end"].as_str()
        ),
        (Some(today.as_str()), Some(today.as_str()))
    );
    assert_eq!(result["scope"], "all");
    assert_eq!(result["session"]["id"], body["data"]["session_id"]);
    assert_eq!(
        result["database_summary"],
        json!({"included": true, "instances": 1})
    );
    assert_eq!(
        result["instance_summary"],
        json!({"included": true, "instances": 1})
    );
    // An equal request finds the queued run, and says so.
    let (status, again) = app
        .post(
            &admin,
            &csrf,
            "/capacity/aggregations/current",
            Some(json!({"period_type": "daily", "scope": "all"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    assert_eq!(again["data"]["existing"], true);
    assert_eq!(
        again["data"]["result"]["session"],
        result["session"].clone()
    );
    assert_eq!(
        again["data"]["result"]["message"],
        "an equal run is already queued or running"
    );
    app.stop().await;
}

#[actix_web::test]
async fn partition_reads_and_creation_have_the_reference_endpoints() {
    let app = TestApp::spawn_seeded(one_instance, |_| {}).await;
    let anonymous = app.anonymous();
    let (status, body) = app.get(&anonymous, "/partitions/info").await;
    assert_authentication_required(status, &body);
    let csrf = anonymous_csrf(&app, &anonymous).await;
    let (status, body) = app
        .post(
            &anonymous,
            &csrf,
            "/partitions",
            Some(json!({"date": "2099-12-27"})),
        )
        .await;
    assert_authentication_required(status, &body);

    let (admin, csrf) = app.login("admin").await;
    for path in [
        "/partitions/info",
        "/partitions/status",
        "/partitions/statistics",
        "/partitions/core-metrics",
    ] {
        let body = app.get_ok(&admin, path).await;
        assert_eq!(body["success"], true, "{path}");
    }
    let (_, info) = app.get(&admin, "/partitions/info").await;
    assert_keys(
        &info["data"],
        &[
            "partitions",
            "total_partitions",
            "total_size_bytes",
            "total_size",
            "total_records",
            "tables",
            "status",
            "missing_partitions",
        ],
    );
    let first = &info["data"]["partitions"][0];
    assert_keys(
        first,
        &[
            "name",
            "table",
            "table_type",
            "display_name",
            "size",
            "size_bytes",
            "record_count",
            "date",
            "status",
        ],
    );
    let (_, metrics) = app.get(&admin, "/partitions/core-metrics").await;
    assert_keys(
        &metrics["data"],
        &[
            "labels",
            "datasets",
            "dataPointCount",
            "timeRange",
            "yAxisLabel",
            "chartTitle",
            "periodType",
        ],
    );
    assert_eq!(metrics["data"]["dataPointCount"], 7, "{metrics}");
    assert_eq!(metrics["data"]["timeRange"], "7d");
    let list = app.get_ok(&admin, "/partitions").await;
    assert_keys(&list["data"], &["items", "total", "page", "pages", "limit"]);
    assert_eq!(list["data"]["limit"], 20);

    let (status, body) = app
        .post(
            &admin,
            &csrf,
            "/partitions",
            Some(json!({"date": "2099-12-27"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["success"], true);
    assert_eq!(
        body["data"]["created"].as_array().unwrap().len(),
        4,
        "{body}"
    );
    let (_, list) = app
        .get(&admin, "/partitions?search=2099_12&sort=name&order=desc")
        .await;
    assert_eq!(list["data"]["total"], 4, "{list}");
    // Again: nothing left to create.
    let (status, body) = app
        .post(
            &admin,
            &csrf,
            "/partitions",
            Some(json!({"date": "2099-12-01"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["data"]["created"].as_array().unwrap().is_empty(),
        "{body}"
    );
    let (status, body) = app
        .post(
            &admin,
            &csrf,
            "/partitions",
            Some(json!({"date": "2020-01-01"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errors"][0]["field"], "date", "{body}");
    // The reference's cleanup takes `retention_months`; capstats keeps its configured
    // retention, so a body it would not read is refused, not dropped. `{}` says nothing.
    for (sent, expected) in [
        (
            Some(json!({"retention_months": 12})),
            StatusCode::BAD_REQUEST,
        ),
        (None, StatusCode::OK),
        (Some(json!({})), StatusCode::OK),
    ] {
        let (status, body) = app
            .post(&admin, &csrf, "/partitions/actions/cleanup", sent)
            .await;
        assert_eq!(status, expected, "{body}");
        if expected == StatusCode::BAD_REQUEST {
            assert_eq!(body["errors"][0]["field"], "body", "{body}");
            assert_eq!(body["errors"][0]["code"], "unexpected_body", "{body}");
        }
    }
    app.stop().await;
}

#[actix_web::test]
async fn scheduler_endpoints_have_the_reference_fields() {
    let app = TestApp::spawn_seeded(one_instance, |_| {}).await;
    let anonymous = app.anonymous();
    let (status, body) = app.get(&anonymous, "/scheduler/jobs").await;
    assert_authentication_required(status, &body);
    let csrf = anonymous_csrf(&app, &anonymous).await;
    let (status, body) = app
        .post(
            &anonymous,
            &csrf,
            "/scheduler/jobs/actions/reload",
            Some(json!({})),
        )
        .await;
    assert_authentication_required(status, &body);

    let (admin, csrf) = app.login("admin").await;
    let body = app.get_ok(&admin, "/scheduler/jobs").await;
    let jobs = body["data"].as_array().expect("a list, not a page");
    let job = jobs
        .iter()
        .find(|job| job["id"] == "aggregate_capacity")
        .expect("the aggregation schedule");
    assert_eq!(job["task_id"], "aggregate_capacity");
    assert_eq!(job["task_name"], "aggregate_capacity");
    assert!(
        job["editable_fields"]
            .as_array()
            .unwrap()
            .contains(&json!("cron_expression"))
    );
    let body = app
        .get_ok(&admin, "/scheduler/jobs/aggregate_capacity")
        .await;
    assert_eq!(body["data"]["id"], "aggregate_capacity");
    // The reference client's edit, with its trigger_type.
    let (status, body) = app
        .put(
            &admin,
            &csrf,
            "/scheduler/jobs/aggregate_capacity",
            json!({"trigger_type": "cron", "cron_expression": "*/5 * * * *"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["cron_expression"], "*/5 * * * *");
    for action in ["pause", "resume"] {
        let (status, body) = app
            .post(
                &admin,
                &csrf,
                &format!("/scheduler/jobs/aggregate_capacity/actions/{action}"),
                Some(json!({})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{action}: {body}");
        assert_eq!(body["success"], true);
    }
    let (status, body) = app
        .post(
            &admin,
            &csrf,
            "/scheduler/jobs/aggregate_capacity/actions/run",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(body["data"].get("manual_job_id").is_some(), "{body}");
    let (status, body) = app
        .post(
            &admin,
            &csrf,
            "/scheduler/jobs/actions/reload",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["success"], true);
    assert!(
        body["data"]["reloaded"]
            .as_array()
            .unwrap()
            .contains(&json!("aggregate_capacity"))
    );
    // capstats' schedules are built in: they are paused, not deleted.
    let (status, _) = app
        .delete(&admin, &csrf, "/scheduler/jobs/aggregate_capacity")
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    app.stop().await;
}

#[actix_web::test]
async fn get_all_answers_at_most_its_cap_and_says_rows_were_left_out() {
    // 8 × 24 databases × 70 days (some created or dropped on the way): over 10,000 daily
    // database rows, the cap.
    let app = TestApp::spawn_seeded(|url| crate::common::seed_fleet(url, 8, 24), |_| {}).await;
    let stored = capstats_test_support::count(
        &app.database.url(),
        "SELECT count(*) AS count FROM database_size_aggregations WHERE period_type = 'daily'",
    );
    assert!(stored > 10_000, "{stored}");
    let (viewer, _) = app.login("viewer").await;
    let body = app.get_ok(&viewer,
            "/capacity/databases?period_type=daily&start_date=2000-01-01&end_date=2100-01-01&get_all=true").await;
    let data = &body["data"];
    assert_eq!(data["total"], stored);
    assert_eq!(data["items"].as_array().unwrap().len(), 10_000);
    assert_eq!(data["limit"], 10_000);
    assert_eq!(
        (data["pages"].clone(), data["has_next"].clone()),
        (json!(1), json!(false))
    );
    assert_eq!(data["truncated"], true);
    // The rows kept are the newest, as on the first page of the list.
    let (_, first_page) = app
        .get(
            &viewer,
            "/capacity/databases?period_type=daily&start_date=2000-01-01&end_date=2100-01-01&limit=200",
        )
        .await;
    assert_eq!(
        first_page["data"]["items"].as_array().unwrap()[..],
        data["items"].as_array().unwrap()[..200]
    );
    app.stop().await;
}

#[actix_web::test]
async fn get_all_and_database_id_are_honoured() {
    let app = TestApp::spawn_seeded(three_engines, |_| {}).await;
    let (viewer, _) = app.login("viewer").await;
    // get_all: every row on one page, saying whether any were left out.
    for (level, rows) in [("instances", 3), ("databases", 3)] {
        let body = app
            .get_ok(&viewer, &format!("/capacity/{level}?{QUERY}&get_all=true"))
            .await;
        let data = &body["data"];
        assert_eq!(data["items"].as_array().unwrap().len(), rows, "{body}");
        assert_eq!(data["total"], rows, "{body}");
        assert_eq!(data["pages"], 1);
        assert_eq!(data["has_next"], false);
        assert_eq!(data["truncated"], false, "{body}");
        let (status, body) = app
            .get(
                &viewer,
                &format!("/capacity/{level}?{QUERY}&get_all=true&limit=2"),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["errors"][0]["field"], "limit", "{body}");
        // Without get_all, the default page of 20.
        let (_, body) = app
            .get(&viewer, &format!("/capacity/{level}?{QUERY}"))
            .await;
        assert_eq!(body["data"]["limit"], 20);
        assert!(body["data"].get("truncated").is_none(), "{body}");
    }
    // database_id: the inventory's id of one database.
    let (_, options) = app.get(&viewer, "/databases/options").await;
    let pg = options["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|database| database["database_name"] == "db_pg")
        .unwrap()
        .clone();
    let id = pg["id"].as_i64().unwrap();
    let body = app
        .get_ok(
            &viewer,
            &format!("/capacity/databases?{QUERY}&database_id={id}"),
        )
        .await;
    let items = body["data"]["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{body}");
    assert_eq!(items[0]["database_name"], "db_pg");
    let (_, body) = app
        .get(
            &viewer,
            &format!("/capacity/databases/summary?{QUERY}&database_id={id}"),
        )
        .await;
    assert_eq!(body["data"]["summary"]["total_databases"], 1, "{body}");
    assert_eq!(body["data"]["summary"]["total_size_mb"], 200, "{body}");
    let (status, body) = app
        .get(
            &viewer,
            &format!("/capacity/databases?{QUERY}&database_id=999999"),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let mysql = instance_id(&app, &viewer, "mysql-instance").await;
    let (status, body) = app
        .get(
            &viewer,
            &format!("/capacity/databases?{QUERY}&database_id={id}&instance_id={mysql}"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errors"][0]["field"], "database_id", "{body}");
    // Instance endpoints have no database filters: refused, not ignored.
    let (status, body) = app
        .get(
            &viewer,
            &format!("/capacity/instances?{QUERY}&database_id={id}"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errors"][0]["code"], "unknown_parameter", "{body}");
    app.stop().await;
}
