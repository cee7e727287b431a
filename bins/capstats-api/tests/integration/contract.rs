//! Contract tests: the API served in-process against a fresh database (and, for aggregate now,
//! a real `capstats-worker run` process), driven over HTTP like a client would.

use std::time::{Duration, Instant};

use crate::common::{PASSWORD, TestApp, Worker};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn assert_error(status: StatusCode, body: &Value, expected_status: StatusCode, code: &str) {
    assert_eq!(status, expected_status, "{body}");
    assert_eq!(body["success"], false, "{body}");
    assert_eq!(body["error"], true, "{body}");
    assert_eq!(body["message_code"], code, "{body}");
    assert!(
        !body["message"].as_str().unwrap_or_default().is_empty(),
        "{body}"
    );
    assert!(
        !body["error_id"].as_str().unwrap_or_default().is_empty(),
        "{body}"
    );
    assert!(
        !body["request_id"].as_str().unwrap_or_default().is_empty(),
        "{body}"
    );
}

/// A decimal as the API writes it: a JSON number without trailing zeros.
fn exact(decimal: capstats_capacity_model::Decimal) -> String {
    if decimal.is_zero() {
        "0".to_owned()
    } else {
        decimal.normalize().to_string()
    }
}

fn assert_page(body: &Value) -> &Vec<Value> {
    assert_eq!(body["success"], true, "{body}");
    let data = &body["data"];
    for field in ["total", "page", "pages", "limit"] {
        assert!(data[field].is_i64(), "{field} missing: {body}");
    }
    assert!(
        data["has_prev"].is_boolean() && data["has_next"].is_boolean(),
        "{body}"
    );
    data["items"].as_array().expect("items")
}

/// Every write endpoint, with a body that would be valid.
fn writes() -> Vec<(Method, &'static str, Option<Value>)> {
    vec![
        (
            Method::POST,
            "/capacity/aggregations/current",
            Some(json!({"scope": "all", "period_type": "daily"})),
        ),
        (Method::POST, "/sync-sessions/1/actions/cancel", None),
        (
            Method::PUT,
            "/scheduler/jobs/aggregate_capacity",
            Some(json!({"cron_expression": "0 5 * * *"})),
        ),
        (
            Method::POST,
            "/scheduler/jobs/aggregate_capacity/actions/pause",
            None,
        ),
        (Method::POST, "/partitions/actions/cleanup", None),
        (
            Method::POST,
            "/instances",
            Some(json!({"name": "new", "db_type": "mysql"})),
        ),
        (
            Method::PUT,
            "/instances/1",
            Some(json!({"description": "x"})),
        ),
        (Method::DELETE, "/instances/3", None),
        (
            Method::PUT,
            "/databases/1/capacity-limit",
            Some(json!({"capacity_limit_mb": 1000})),
        ),
        (Method::POST, "/instances/1/actions/collect", None),
        (
            Method::POST,
            "/capacity/stats",
            Some(json!({"items": [{"instance_id": 1, "database_name": "x",
                                   "collected_date": "2026-01-01", "size_mb": 1}]})),
        ),
    ]
}

/// Every read endpoint.
const READS: [&str; 20] = [
    "/capacity/instances",
    "/capacity/instances/growth",
    "/capacity/instances/forecast",
    "/capacity/databases/growth",
    "/capacity/databases/forecast",
    "/capacity/instances/summary",
    "/capacity/instances/series",
    "/capacity/databases",
    "/capacity/databases/summary",
    "/capacity/databases/series",
    "/sync-sessions",
    "/sync-sessions/1",
    "/scheduler/jobs",
    "/scheduler/jobs/aggregate_capacity",
    "/partitions",
    "/partitions/status",
    "/instances",
    "/instances/options",
    "/databases/options",
    "/auth/me",
];

#[actix_web::test]
async fn the_auth_matrix_holds_for_every_endpoint() {
    let app = TestApp::spawn(1000).await;
    let anonymous = app.anonymous();
    for path in READS {
        let (status, body) = app.get(&anonymous, path).await;
        assert_error(
            status,
            &body,
            StatusCode::UNAUTHORIZED,
            "AUTHENTICATION_REQUIRED",
        );
    }
    for (method, path, body) in writes() {
        // Authentication before CSRF: anonymous writes are 401, not 403.
        let (status, response) = app.call(&anonymous, method, path, None, body).await;
        assert_error(
            status,
            &response,
            StatusCode::UNAUTHORIZED,
            "AUTHENTICATION_REQUIRED",
        );
    }

    let (viewer, viewer_csrf) = app.login("viewer").await;
    for path in READS {
        app.get_ok(&viewer, path).await;
    }
    for (method, path, body) in writes() {
        // CSRF before permissions: a viewer without the token gets CSRF_MISSING...
        let (status, response) = app
            .call(&viewer, method.clone(), path, None, body.clone())
            .await;
        assert_error(status, &response, StatusCode::FORBIDDEN, "CSRF_MISSING");
        // ...and with it, PERMISSION_REQUIRED.
        let (status, response) = app
            .call(&viewer, method, path, Some(&viewer_csrf), body)
            .await;
        assert_error(
            status,
            &response,
            StatusCode::FORBIDDEN,
            "PERMISSION_REQUIRED",
        );
    }

    let (admin, csrf) = app.login("admin").await;
    let (status, body) = app
        .call(
            &admin,
            Method::POST,
            "/scheduler/jobs/aggregate_capacity/actions/pause",
            None,
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "CSRF_MISSING");
    let (status, body) = app
        .post(
            &admin,
            "not-the-token",
            "/scheduler/jobs/aggregate_capacity/actions/pause",
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "CSRF_INVALID");
    let (status, body) = app
        .post(
            &admin,
            &csrf,
            "/scheduler/jobs/aggregate_capacity/actions/pause",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["is_paused"], true);

    // Tokens: created by an admin, shown once, usable without CSRF, and revocable.
    let (status, created) = app
        .post(
            &admin,
            &csrf,
            "/auth/tokens",
            Some(json!({"name": "ci", "scopes": ["operate", "read"], "expires_in_days": 30})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let token = created["data"]["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("cst_"));
    let bearer = crate::common::client();
    let response = bearer
        .post(format!(
            "{}/scheduler/jobs/aggregate_capacity/actions/resume",
            app.base
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let me: Value = bearer
        .get(format!("{}/auth/me", app.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["data"]["authenticated_by"], "token");
    let (_, tokens) = app.get(&admin, "/auth/tokens").await;
    assert_eq!(tokens["data"][0]["name"], "ci");
    assert!(
        tokens["data"][0].get("token").is_none(),
        "the secret is never listed again"
    );
    let token_id = tokens["data"][0]["id"].as_i64().unwrap();
    let (status, _) = app
        .delete(&admin, &csrf, &format!("/auth/tokens/{token_id}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let response = bearer
        .get(format!("{}/auth/me", app.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = bearer
        .get(format!("{}/auth/me", app.base))
        .bearer_auth("cst_forged")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // A viewer's token reads but cannot write.
    let (status, body) = app
        .post(
            &admin,
            &csrf,
            "/auth/tokens",
            Some(json!({"name": "x", "scopes": ["everything"]})),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert_eq!(body["errors"][0]["field"], "scopes");

    // Logging out ends the session.
    let (status, _) = app.post(&admin, &csrf, "/auth/logout", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app.get(&admin, "/auth/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.stop().await;
}

#[actix_web::test]
async fn an_unknown_user_name_is_invalid_credentials_like_a_wrong_password() {
    let app = TestApp::spawn(100).await;
    for (username, password) in [("nobody", PASSWORD), ("admin", "wrong")] {
        let response = app
            .anonymous()
            .post(format!("{}/auth/login", app.base))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_error(
            status,
            &body,
            StatusCode::UNAUTHORIZED,
            "INVALID_CREDENTIALS",
        );
    }
    app.stop().await;
}

#[actix_web::test]
async fn logins_are_checked_and_rate_limited() {
    let app = TestApp::spawn(3).await;
    let client = app.anonymous();
    let attempt = |password: &'static str| {
        let client = client.clone();
        let url = format!("{}/auth/login", app.base);
        async move {
            let response = client
                .post(url)
                .json(&json!({"username": "admin", "password": password}))
                .send()
                .await
                .unwrap();
            let status = response.status();
            let retry_after = response
                .headers()
                .get("retry-after")
                .map(|value| value.to_str().unwrap().to_owned());
            (status, response.json::<Value>().await.unwrap(), retry_after)
        }
    };
    let (status, body, _) = attempt("wrong").await;
    assert_error(
        status,
        &body,
        StatusCode::UNAUTHORIZED,
        "INVALID_CREDENTIALS",
    );
    let (status, body, _) = attempt("").await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert_eq!(body["errors"][0]["field"], "password");
    let (status, _, _) = attempt(PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body, retry_after) = attempt(PASSWORD).await;
    assert_error(
        status,
        &body,
        StatusCode::TOO_MANY_REQUESTS,
        "RATE_LIMIT_EXCEEDED",
    );
    assert!(retry_after.is_some());
    // A malformed body is a field error, not a crash.
    let response = client
        .post(format!("{}/auth/login", app.base))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    app.stop().await;
}

#[actix_web::test]
async fn capacity_reads_have_one_shape_validated_filters_and_real_numbers() {
    let app = TestApp::spawn(1000).await;
    let (client, _) = app.login("viewer").await;

    let body = app
        .get_ok(&client, "/capacity/instances?period_type=daily&limit=5")
        .await;
    let items = assert_page(&body);
    assert_eq!(items.len(), 5);
    assert_eq!(body["data"]["limit"], 5);
    // Newest first: period start, then instance id, both descending.
    let keys: Vec<(String, i64)> = items
        .iter()
        .map(|item| {
            (
                item["period_start"].as_str().unwrap().to_owned(),
                item["instance_id"].as_i64().unwrap(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(keys, sorted);
    // Decimals are JSON numbers, at most two decimals and no trailing zero, in the raw text
    // of every read (never strings such as "50.00").
    for path in [
        "/capacity/instances?period_type=weekly&limit=50",
        "/capacity/databases?period_type=weekly&limit=50",
        "/capacity/instances/summary",
        "/capacity/databases/summary?period_type=weekly",
        "/capacity/instances/series?period_type=weekly&metric=total_size_change_percent",
        "/capacity/databases/series?period_type=weekly&metric=avg_size_mb",
    ] {
        let text = client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let decimals = text
            .split(['{', ',', '['])
            .filter_map(|pair| {
                let (key, value) = pair.split_once("\":")?;
                (key.ends_with("_percent")
                    || key.ends_with("growth_rate")
                    || key.ends_with("_count"))
                .then(|| value.trim_end_matches(['}', ']']).to_owned())
            })
            .collect::<Vec<_>>();
        assert!(
            !decimals.is_empty() || path.contains("series"),
            "{path}: {text}"
        );
        for value in decimals {
            let plain = value == "null"
                || value.parse::<i64>().is_ok()
                || value.split_once('.').is_some_and(|(whole, fraction)| {
                    whole.parse::<i64>().is_ok()
                        && (1..=2).contains(&fraction.len())
                        && !fraction.ends_with('0')
                        && fraction.chars().all(|digit| digit.is_ascii_digit())
                });
            assert!(
                plain,
                "{path}: `{value}` is not a plain JSON number: {text}"
            );
        }
        assert!(
            !text.contains(":\"0"),
            "{path}: a number as a string: {text}"
        );
        let body: Value = serde_json::from_str(&text).unwrap();
        for line in body["data"]["series"].as_array().into_iter().flatten() {
            assert!(
                line["values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|value| value.is_number() || value.is_null()),
                "{path}: {line}"
            );
        }
    }
    let total = body["data"]["total"].as_i64().unwrap();
    assert_eq!(body["data"]["pages"].as_i64().unwrap(), (total + 4) / 5);
    assert_eq!(body["data"]["has_next"], true);
    let (_, page2) = app
        .get(
            &client,
            "/capacity/instances?period_type=daily&limit=5&page=2",
        )
        .await;
    assert_eq!(page2["data"]["has_prev"], true);
    assert_ne!(page2["data"]["items"][0], items[0]);

    // Repeatable filters.
    let body = app
        .get_ok(
            &client,
            "/capacity/databases?period_type=weekly&instance_id=1&instance_id=2&limit=200",
        )
        .await;
    let items = assert_page(&body);
    assert!(!items.is_empty());
    assert!(
        items
            .iter()
            .all(|item| [1, 2].contains(&item["instance_id"].as_i64().unwrap()))
    );
    let (_, body) = app
        .get(
            &client,
            "/capacity/instances?db_type=mysql&db_type=oracle&limit=200",
        )
        .await;
    assert!(
        assert_page(&body)
            .iter()
            .all(|item| ["mysql", "oracle"].contains(&item["db_type"].as_str().unwrap()))
    );
    let (_, body) = app
        .get(
            &client,
            "/capacity/databases?database_name=orders&limit=200",
        )
        .await;
    assert!(
        assert_page(&body)
            .iter()
            .all(|item| item["database_name"] == "orders")
    );

    // Field-level validation, every problem listed.
    let (status, body) = app
        .get(
            &client,
            "/capacity/instances?period_type=hourly&start_date=2025-02-30&limit=500&db_type=db2",
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["field"].as_str().unwrap())
        .collect();
    for field in ["period_type", "start_date", "limit", "db_type"] {
        assert!(fields.contains(&field), "{field} not reported: {body}");
    }
    let (status, body) = app
        .get(
            &client,
            "/capacity/instances?start_date=2025-03-01&end_date=2025-02-01",
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert_eq!(body["errors"][0]["code"], "start_after_end");
    let (status, body) = app
        .get(
            &client,
            "/capacity/instances?start_date=2025-01-01&end_date=2025-02-01&time_range=7",
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert_eq!(body["errors"][0]["field"], "time_range");
    let (status, body) = app
        .get(&client, "/capacity/instances?instance_id=999")
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "RESOURCE_NOT_FOUND");

    // Summaries: computed from the samples, growth not a constant.
    let summary = app
        .get_ok(&client, "/capacity/instances/summary?time_range=30")
        .await;
    let data = &summary["data"]["summary"];
    assert_eq!(data["total_instances"], 3);
    assert!(data["total_size_mb"].as_i64().unwrap() > 0);
    assert!(data["growth_rate"].is_number(), "{summary}");
    assert_ne!(data["growth_mb"], 0);
    let summary = app
        .get_ok(&client, "/capacity/databases/summary?period_type=weekly")
        .await;
    assert!(
        summary["data"]["summary"]["total_databases"]
            .as_i64()
            .unwrap()
            >= 6
    );
    assert!(summary["data"]["summary"]["largest"]["database_name"].is_string());

    // Series: server-side windows, gaps as null, ranking and truncation.
    let series = app
        .get_ok(
            &client,
            "/capacity/databases/series?period_type=daily&periods=100&top=2&metric=avg_size_mb",
        )
        .await;
    let data = &series["data"];
    assert_eq!(data["labels"].as_array().unwrap().len(), 100);
    assert_eq!(data["series"].as_array().unwrap().len(), 2);
    assert_eq!(data["truncated"], true);
    assert!(data["total_series"].as_i64().unwrap() > 2);
    let values = data["series"][0]["values"].as_array().unwrap();
    assert!(
        values.iter().any(Value::is_null),
        "100 days back include days before the data: gaps"
    );
    let last = |line: &Value| {
        line["values"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .find(|value| !value.is_null())
            .map(|value| value.as_f64().unwrap())
    };
    assert!(last(&data["series"][0]) >= last(&data["series"][1]));
    let (status, body) = app
        .get(&client, "/capacity/instances/series?periods=400")
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    let (status, body) = app
        .get(&client, "/capacity/instances/series?metric=size_mb")
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert_eq!(body["errors"][0]["field"], "metric");
    let series = app.get_ok(&client, "/capacity/instances/series?period_type=weekly&periods=6&metric=total_size_change_percent&instance_id=1").await;
    assert_eq!(series["data"]["unit"], "%");
    assert_eq!(series["data"]["series"].as_array().unwrap().len(), 1);
    assert_eq!(series["data"]["truncated"], false);
    app.stop().await;
}

#[actix_web::test]
async fn instances_sessions_schedules_partitions_and_health() {
    let app = TestApp::spawn(1000).await;
    let (admin, csrf) = app.login("admin").await;

    // Instances: create, conflict, update, options, soft delete.
    let (status, created) = app
        .post(
            &admin,
            &csrf,
            "/instances",
            Some(
                json!({"name": "billing-db", "db_type": "postgresql", "host": "db1",
                        "port": 5432, "capacity_limit_mb": 50_000, "tls_mode": "require"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    // Every field given is stored, the ones the update after the insert writes too.
    for (field, value) in [
        ("name", json!("billing-db")),
        ("host", json!("db1")),
        ("port", json!(5432)),
        ("capacity_limit_mb", json!(50_000)),
        ("tls_mode", json!("require")),
    ] {
        assert_eq!(created["data"][field], value, "{field}: {created}");
    }
    let id = created["data"]["id"].as_i64().unwrap();
    let (status, body) = app
        .post(
            &admin,
            &csrf,
            "/instances",
            Some(json!({"name": "billing-db", "db_type": "mysql"})),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "CONFLICT");
    let (status, body) = app
        .post(
            &admin,
            &csrf,
            "/instances",
            Some(json!({"db_type": "db2", "port": 0})),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert_eq!(body["errors"].as_array().unwrap().len(), 3, "{body}");
    let (status, updated) = app
        .put(
            &admin,
            &csrf,
            &format!("/instances/{id}"),
            json!({"is_active": false, "description": "old"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["data"]["is_active"], false);
    assert_eq!(updated["data"]["host"], "db1");
    let (_, options) = app
        .get(&admin, "/instances/options?db_type=postgresql")
        .await;
    assert!(
        options["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|option| option["db_type"] == "postgresql")
    );
    let (_, databases) = app.get(&admin, "/databases/options?instance_id=1").await;
    assert!(databases["data"].as_array().unwrap().len() >= 2);
    let (status, _) = app.delete(&admin, &csrf, &format!("/instances/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app.delete(&admin, &csrf, &format!("/instances/{id}")).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "RESOURCE_NOT_FOUND");
    let (_, listed) = app.get(&admin, "/instances?search=BILL").await;
    assert_eq!(
        assert_page(&listed).len(),
        0,
        "deleted instances are not listed"
    );
    let (status, body) = app.get(&admin, "/instances/abc").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "RESOURCE_NOT_FOUND");

    // Sessions: the seeding backfills, with records.
    let sessions = app
        .get_ok(
            &admin,
            "/sync-sessions?status=completed&sync_type=manual_task",
        )
        .await;
    assert_eq!(assert_page(&sessions).len(), 3);
    let (_, detail) = app.get(&admin, "/sync-sessions/1").await;
    assert_eq!(detail["data"]["records"].as_array().unwrap().len(), 3);
    assert_eq!(detail["data"]["session"]["progress_percentage"], 100);
    let (status, body) = app.get(&admin, "/sync-sessions?status=done").await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    let (status, body) = app.get(&admin, "/sync-sessions/999").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "RESOURCE_NOT_FOUND");
    let (status, cancelled) = app
        .post(&admin, &csrf, "/sync-sessions/1/actions/cancel", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        cancelled["data"]["status"], "completed",
        "finished runs stay as they were"
    );

    // Schedules.
    let (_, schedules) = app.get(&admin, "/scheduler/jobs").await;
    assert_eq!(schedules["data"].as_array().unwrap().len(), 5);
    assert!(schedules["data"][0]["next_run_at"].is_string());
    let (status, body) = app
        .put(
            &admin,
            &csrf,
            "/scheduler/jobs/aggregate_capacity",
            json!({"cron_expression": "every day"}),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert_eq!(body["errors"][0]["field"], "cron_expression");
    let (status, body) = app
        .put(
            &admin,
            &csrf,
            "/scheduler/jobs/aggregate_capacity",
            json!({"cron_expression": "15 2 * * *"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["cron_expression"], "15 2 * * *");
    // Every setting is editable and validated: each bad one is named, nothing is saved; an
    // unknown field or an empty change is refused.
    let put =
        |request: Value| app.put(&admin, &csrf, "/scheduler/jobs/aggregate_capacity", request);
    let (status, body) = put(json!({
        "timezone": "Mars/Olympus", "misfire_policy": "sometimes", "catch_up_limit": 0,
        "cron_expression": "0 3 * * *"
    }))
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["timezone", "misfire_policy", "catch_up_limit"],
        "{body}"
    );
    let (_, unchanged) = app.get(&admin, "/scheduler/jobs/aggregate_capacity").await;
    assert_eq!(unchanged["data"]["cron_expression"], "15 2 * * *");
    let (status, body) = put(json!({"misfire": "skip"})).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert_eq!(body["errors"][0]["field"], "misfire", "{body}");
    assert_eq!(body["errors"][0]["code"], "unknown_field", "{body}");
    let (status, body) = put(json!({})).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert_eq!(body["errors"][0]["field"], "body");
    let (status, body) = put(json!({
        "timezone": "Europe/Berlin", "misfire_policy": "catch_up", "catch_up_limit": 3
    }))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["time_zone"], "Europe/Berlin");
    assert_eq!(body["data"]["misfire_policy"], "catch_up");
    assert_eq!(body["data"]["catch_up_limit"], 3);
    // The empty zone returns to the business zone.
    let (status, body) = put(json!({"timezone": ""})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["time_zone"], "UTC");
    let (status, body) = app
        .post(&admin, &csrf, "/scheduler/jobs/nope/actions/pause", None)
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "RESOURCE_NOT_FOUND");
    let (status, body) = app
        .post(
            &admin,
            &csrf,
            "/scheduler/jobs/aggregate_capacity/actions/explode",
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "RESOURCE_NOT_FOUND");
    let (status, run) = app
        .post(
            &admin,
            &csrf,
            "/scheduler/jobs/maintain_partitions/actions/run",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{run}");
    assert!(run["data"]["job_id"].is_string());

    // Partitions.
    let (_, partitions) = app.get(&admin, "/partitions?limit=200").await;
    assert!(
        partitions["data"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|partition| partition["table_name"] == "database_size_stats")
    );
    let (_, status_body) = app.get(&admin, "/partitions/status").await;
    assert_eq!(status_body["data"]["tables"].as_array().unwrap().len(), 4);
    let (status, cleanup) = app
        .post(&admin, &csrf, "/partitions/actions/cleanup", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{cleanup}");
    let (_, after) = app.get(&admin, "/partitions/status").await;
    assert!(
        after["data"]["tables"]
            .as_array()
            .unwrap()
            .iter()
            .all(|table| table["missing_ahead"].as_array().unwrap().is_empty())
    );

    // Unknown paths, the spec, the docs, metrics, request ids.
    let (status, body) = app.get(&admin, "/no/such/thing").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "RESOURCE_NOT_FOUND");
    let spec: Value = admin
        .get(format!("{}/openapi.json", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let committed: Value =
        serde_json::from_str(include_str!("../../../../openapi/openapi.json")).unwrap();
    assert_eq!(spec, committed);
    let docs = admin
        .get(format!("{}/docs/", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    let html = docs.text().await.unwrap();
    assert!(
        html.contains("swagger-ui") && !html.contains("https://"),
        "the UI loads nothing from elsewhere"
    );
    // The run gauges are read from the database every 15 s, not per scrape: wait for the
    // refresh that sees this test's sessions.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(40);
    let metrics = loop {
        let metrics = admin
            .get(format!("{}/metrics", app.root))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metrics.contains("capstats_sync_sessions{") || std::time::Instant::now() > deadline {
            break metrics;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    assert!(
        metrics.contains("capstats_http_requests_total")
            && metrics.contains("capstats_sync_sessions{"),
        "{metrics}"
    );
    let echoed = admin
        .get(format!("{}/health/live", app.base))
        .header("X-Request-ID", "trace-42")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "trace-42");
    let _ = app.get_ok(&admin, "/health/ready").await;

    // Readiness follows the database: gone → 503.
    {
        use diesel::Connection;
        use diesel::connection::SimpleConnection;
        let mut admin_connection =
            diesel::PgConnection::establish(&capstats_test_support::database_url("postgres"))
                .unwrap();
        admin_connection
            .batch_execute(&format!(
                "DROP DATABASE {} WITH (FORCE)",
                app.database.name()
            ))
            .unwrap();
    }
    let (status, body) = app.get(&admin, "/health/ready").await;
    assert_error(
        status,
        &body,
        StatusCode::SERVICE_UNAVAILABLE,
        "SERVICE_UNAVAILABLE",
    );
    app.stop().await;
}

#[actix_web::test]
async fn samples_and_aggregates_are_kept_for_their_own_retention() {
    use diesel::Connection;
    let app = TestApp::spawn_with(|settings| {
        settings.sample_retention_months = 12;
        settings.aggregate_retention_months = 24;
    })
    .await;
    let today = chrono::Utc::now().date_naive();
    let month = |months_back: u32| {
        capstats_store::partitions::month_of(today - chrono::Months::new(months_back))
    };
    // A month past the samples' retention but within the aggregates'.
    let mut connection = diesel::PgConnection::establish(&app.database.url()).unwrap();
    capstats_store::partitions::ensure_partitions(
        &mut connection,
        &capstats_store::partitions::PartitionedTable::ALL,
        [month(18)],
    )
    .unwrap();
    let (admin, csrf) = app.login("admin").await;
    let body = app.get_ok(&admin, "/partitions/status").await;
    let data = &body["data"];
    assert_eq!(data["retention_months"], 12, "{body}");
    assert_eq!(data["keep_from"], month(12).to_string(), "{body}");
    assert_eq!(data["aggregate_retention_months"], 24, "{body}");
    assert_eq!(
        data["aggregates_kept_from"],
        month(24).to_string(),
        "{body}"
    );
    let suffix = month(18).format("%Y_%m").to_string();
    let sample_partitions = vec![
        format!("database_size_stats_{suffix}"),
        format!("instance_size_stats_{suffix}"),
    ];
    let mut past: Vec<String> = serde_json::from_value(data["past_retention"].clone()).unwrap();
    past.sort();
    assert_eq!(past, sample_partitions, "{body}");
    let (status, body) = app
        .post(&admin, &csrf, "/partitions/actions/cleanup", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut dropped: Vec<String> = serde_json::from_value(body["data"]["dropped"].clone()).unwrap();
    dropped.sort();
    assert_eq!(
        dropped, sample_partitions,
        "only the samples' partitions go: {body}"
    );
    let (_, partitions) = app.get(&admin, "/partitions?limit=200").await;
    let names: Vec<&str> = partitions["data"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|partition| partition["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&format!("database_size_aggregations_{suffix}").as_str()),
        "{names:?}"
    );
    // Those kept aggregates cannot be recomputed from what is left of their samples.
    let (status, body) = app
        .post(
            &admin,
            &csrf,
            "/capacity/aggregations/backfill",
            Some(json!({"period_type": "monthly", "from": month(18), "to": month(1)})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errors"][0]["field"], "from", "{body}");
    assert_eq!(body["errors"][0]["code"], "before_retention", "{body}");
    // Dates past what the calendar supports, and a range of more periods than one backfill
    // computes, are refused naming the field before anything is planned.
    for (body, field, code) in [
        (
            json!({"period_type": "yearly", "from": month(1), "to": "+262142-12-31"}),
            "to",
            "date_out_of_range",
        ),
        (
            json!({"period_type": "daily", "from": "1900-01-01", "to": "9998-12-31"}),
            "to",
            "invalid_range",
        ),
    ] {
        let (status, answer) = app
            .post(&admin, &csrf, "/capacity/aggregations/backfill", Some(body))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["errors"][0]["field"], field, "{answer}");
        assert_eq!(answer["errors"][0]["code"], code, "{answer}");
    }
    app.stop().await;
}

#[actix_web::test]
async fn aggregate_now_is_executed_by_a_worker_to_completed_with_correct_rows() {
    let app = TestApp::spawn(1000).await;
    let (admin, csrf) = app.login("admin").await;
    let binary =
        std::path::Path::new(env!("CARGO_BIN_EXE_capstats-api")).with_file_name("capstats-worker");
    assert!(
        binary.exists(),
        "build the workspace so that {} exists",
        binary.display()
    );

    let request = json!({"scope": "all", "period_type": "monthly"});
    let response = admin
        .post(format!("{}/capacity/aggregations/current", app.base))
        .header("X-CSRFToken", &csrf)
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    let session_id = body["data"]["session_id"].as_i64().unwrap();
    assert_eq!(location, format!("/api/v1/sync-sessions/{session_id}"));
    assert_eq!(body["data"]["existing"], false);
    // The same request while queued: the same session, no second run.
    let (status, again) = app
        .post(
            &admin,
            &csrf,
            "/capacity/aggregations/current",
            Some(request),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(again["data"]["session_id"], session_id);
    assert_eq!(again["data"]["existing"], true);
    let (status, body) = app
        .post(
            &admin,
            &csrf,
            "/capacity/aggregations/current",
            Some(json!({"scope": "everything", "period_type": "hourly"})),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert_eq!(body["errors"].as_array().unwrap().len(), 2);

    let _worker = Worker::start(&app.database.url());
    let deadline = Instant::now() + Duration::from_secs(60);
    let session = loop {
        let (_, body) = app.get(&admin, &location.replace("/api/v1", "")).await;
        let status = body["data"]["session"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if status == "completed" || status == "failed" {
            break body;
        }
        assert!(Instant::now() < deadline, "the run did not finish: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        session["data"]["session"]["status"], "completed",
        "{session}"
    );
    assert_eq!(session["data"]["session"]["progress_percentage"], 100);
    assert!(
        session["data"]["records"]
            .as_array()
            .unwrap()
            .iter()
            .all(|record| record["status"] == "completed")
    );

    // The month's rows, over HTTP, equal what aggregation-core computes from the samples.
    let today = chrono::Utc::now().date_naive();
    let month = capstats_capacity_model::Period::current(
        capstats_capacity_model::PeriodType::Monthly,
        today,
    );
    let (_, listed) = app
        .get(
            &admin,
            &format!(
                "/capacity/instances?period_type=monthly&start_date={}&end_date={}",
                month.start(),
                month.start()
            ),
        )
        .await;
    let url = app.database.url();
    let expected = std::thread::spawn(move || {
        use diesel::Connection;
        let mut connection = diesel::PgConnection::establish(&url).unwrap();
        let mut engine =
            capstats_aggregation_core::AggregationEngine::as_of(chrono::Utc::now().date_naive());
        for sample in capstats_store::samples::load_database_samples(&mut connection).unwrap() {
            engine.record(sample).unwrap();
        }
        engine.instance_aggregates(month).unwrap()
    })
    .join()
    .unwrap();
    let items = assert_page(&listed);
    assert_eq!(items.len(), expected.len());
    // Lists are newest first, then by instance id descending within a period.
    let mut expected = expected;
    expected.sort_by_key(|aggregate| std::cmp::Reverse(aggregate.instance_id));
    for (item, aggregate) in items.iter().zip(&expected) {
        assert_eq!(item["instance_id"], aggregate.instance_id.0);
        assert_eq!(item["total_size_mb"], aggregate.total_size_mb);
        // Exact decimals as JSON numbers, without trailing zeros.
        assert_eq!(
            item["avg_database_count"].to_string(),
            exact(aggregate.avg_database_count)
        );
        assert_eq!(
            item["growth_rate"].to_string(),
            aggregate.growth_rate.map_or("null".to_owned(), exact)
        );
    }
    app.stop().await;
}

#[actix_web::test]
async fn equal_aggregate_now_requests_at_once_through_two_api_processes_make_one_run() {
    let app = TestApp::spawn(1000).await;
    let (admin, csrf) = app.login("admin").await;
    let token = app.create_token(&admin, &csrf, json!(["operate"])).await;
    let url = app.database.url();
    let (first, second) = tokio::join!(
        crate::common::ApiProcess::start(&url, &[]),
        crate::common::ApiProcess::start(&url, &[]),
    );
    let client = crate::common::client();
    let request = json!({"scope": "all", "period_type": "weekly"});
    let mut posts = tokio::task::JoinSet::new();
    for index in 0..20 {
        let base = if index % 2 == 0 {
            &first.base
        } else {
            &second.base
        };
        let post = client
            .post(format!("{base}/capacity/aggregations/current"))
            .bearer_auth(&token)
            .json(&request)
            .send();
        posts.spawn(async move {
            let response = post.await.unwrap();
            assert_eq!(response.status(), StatusCode::ACCEPTED);
            response.json::<Value>().await.unwrap()
        });
    }
    let mut sessions = std::collections::BTreeSet::new();
    let mut created = 0;
    for body in posts.join_all().await {
        sessions.insert(body["data"]["session_id"].as_i64().unwrap());
        if body["data"]["existing"] == false {
            created += 1;
        }
    }
    assert_eq!(sessions.len(), 1, "one session for all: {sessions:?}");
    assert_eq!(created, 1, "exactly one request created the run");
    assert_eq!(
        capstats_test_support::count(
            &url,
            "SELECT count(*) AS count FROM sync_sessions WHERE parameters -> 'work' ->> 'kind' = 'current'"
        ),
        1
    );
    assert_eq!(
        capstats_test_support::count(
            &url,
            "SELECT count(*) AS count FROM apalis.jobs
             WHERE convert_from(job, 'UTF8')::jsonb -> 'work' ->> 'kind' = 'current'"
        ),
        1
    );
    drop((first, second));
    app.stop().await;
}

#[actix_web::test]
async fn a_backfill_queued_through_the_api_is_computed_by_a_worker_and_deduplicated() {
    let app = TestApp::spawn(1000).await;
    let (admin, csrf) = app.login("admin").await;
    let post = |body: Value| app.post(&admin, &csrf, "/capacity/aggregations/backfill", Some(body));
    // Every bad field is named; nothing is queued.
    let (status, body) =
        post(json!({"period_type": "hourly", "from": "2025-13-01", "scope": "some"})).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    let mut fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["field"].as_str().unwrap())
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["from", "period_type", "scope", "to"], "{body}");
    let (status, body) =
        post(json!({"period_type": "yearly", "from": "2025-06-01", "to": "2025-07-01"})).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert_eq!(body["errors"][0]["field"], "to", "{body}");
    let (status, body) = post(
        json!({"period_type": "weekly", "from": "2025-01-01", "to": "2025-02-01", "levels": "all"}),
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert_eq!(body["errors"][0]["field"], "levels", "{body}");
    assert_eq!(body["errors"][0]["code"], "unknown_field", "{body}");

    // Quarters of the seeded history, which nothing has computed yet.
    let today = chrono::Utc::now().date_naive();
    let from = today - chrono::Days::new(200);
    let request =
        json!({"period_type": "quarterly", "from": from.to_string(), "to": today.to_string()});
    let (status, queued) = post(request.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    assert_eq!(queued["data"]["existing"], false);
    let session_id = queued["data"]["session_id"].as_i64().unwrap();
    let (_, again) = post(request).await;
    assert_eq!(again["data"]["session_id"], session_id);
    assert_eq!(again["data"]["existing"], true);

    let _worker = Worker::start(&app.database.url());
    let deadline = Instant::now() + Duration::from_secs(60);
    let session = loop {
        let (_, body) = app
            .get(&admin, &format!("/sync-sessions/{session_id}"))
            .await;
        let status = body["data"]["session"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if status == "completed" || status == "failed" {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "the backfill did not finish: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        session["data"]["session"]["status"], "completed",
        "{session}"
    );
    assert_eq!(session["data"]["session"]["progress_percentage"], 100);
    assert_eq!(
        session["data"]["session"]["parameters"]["work"]["kind"],
        "backfill"
    );

    // The stored quarters equal what aggregation-core computes from the samples.
    let url = app.database.url();
    let (stored, expected) = std::thread::spawn(move || {
        use diesel::Connection;
        let mut connection = diesel::PgConnection::establish(&url).unwrap();
        let mut engine =
            capstats_aggregation_core::AggregationEngine::as_of(chrono::Utc::now().date_naive());
        for sample in capstats_store::samples::load_database_samples(&mut connection).unwrap() {
            engine.record(sample).unwrap();
        }
        let quarterly = capstats_capacity_model::PeriodType::Quarterly;
        let periods: Vec<_> =
            capstats_capacity_model::Period::starting_between(quarterly, from, today).collect();
        let mut expected = Vec::new();
        for period in &periods {
            expected.extend(engine.database_aggregates(*period));
        }
        let stored = capstats_store::aggregates::database_aggregates_between(
            &mut connection,
            quarterly,
            periods[0].start(),
            periods[periods.len() - 1].start(),
        )
        .unwrap();
        (stored, expected)
    })
    .join()
    .unwrap();
    assert!(!expected.is_empty());
    assert_eq!(stored, expected);
    app.stop().await;
}

/// "Aggregate now" of a current period that starts before the sample retention would store it
/// from part of its samples: refused, naming the field, like a backfill of it.
#[actix_web::test]
async fn aggregate_now_of_a_period_starting_before_the_sample_retention_is_refused() {
    let app = TestApp::spawn_with(|settings| settings.sample_retention_months = 1).await;
    let (admin, csrf) = app.login("admin").await;
    let today = chrono::Utc::now().date_naive();
    let kept_from = capstats_store::partitions::retention_start(today, 1).unwrap();
    let year = capstats_capacity_model::Period::containing(
        capstats_capacity_model::PeriodType::Yearly,
        today,
    );
    let (status, body) = app
        .post(
            &admin,
            &csrf,
            "/capacity/aggregations/current",
            Some(json!({"period_type": "yearly"})),
        )
        .await;
    // With one month kept, the year has lost its first months from March on.
    if year.start() < kept_from {
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["errors"][0]["field"], "period_type", "{body}");
        assert_eq!(body["errors"][0]["code"], "before_retention", "{body}");
    } else {
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    // The current day always starts within it.
    let (status, body) = app
        .post(
            &admin,
            &csrf,
            "/capacity/aggregations/current",
            Some(json!({"period_type": "daily"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    app.stop().await;
}
