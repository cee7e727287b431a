//! Security rules, each tried the way an attacker would: an authorisation matrix generated from
//! the committed OpenAPI description, tokens that cannot exceed their scopes or mint others,
//! replayed cookies after logout, resets and deactivation, sign-in throttling that forwarded
//! headers cannot dodge, bounded memory under parallel sign-ins, error text that stays inside,
//! unsafe characters and oversized values refused, `/metrics` bounded and guarded, and the
//! audit trail.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::common::{ApiProcess, PASSWORD, TestApp};
use diesel::{Connection, RunQueryDsl};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

/// The routes anyone may call; every other operation must name its scope in the spec.
const PUBLIC: [(&str, &str); 4] = [
    ("POST", "/api/v1/auth/login"),
    ("GET", "/api/v1/auth/csrf-token"),
    ("GET", "/api/v1/health/live"),
    ("GET", "/api/v1/health/ready"),
];

/// Who calls, in the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Who {
    Anonymous,
    ViewerSession,
    AdminSession,
    Token(&'static str),
}

/// What the spec says an operation needs.
#[derive(Debug, Clone)]
struct Access {
    /// Whether a sign-in session is accepted.
    session: bool,
    /// The scope a token needs; `None`: tokens are refused.
    token_scope: Option<String>,
}

/// Every operation of the committed spec with its access rule; panics on an operation that is
/// neither public nor names a decision.
fn operations() -> Vec<(String, String, Option<Access>)> {
    let spec: Value =
        serde_json::from_str(include_str!("../../../../openapi/openapi.json")).unwrap();
    let mut operations = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let method = method.to_uppercase();
            let full = path.clone();
            let access = operation.get("security").map(|requirements| {
                let mut access = Access {
                    session: false,
                    token_scope: None,
                };
                for requirement in requirements.as_array().unwrap() {
                    if requirement.get("session_cookie").is_some() {
                        access.session = true;
                    }
                    if let Some(scopes) = requirement.get("bearer_token") {
                        let scopes = scopes.as_array().unwrap();
                        assert_eq!(
                            scopes.len(),
                            1,
                            "{method} {full}: a token route names exactly one scope"
                        );
                        access.token_scope = Some(scopes[0].as_str().unwrap().to_owned());
                    }
                }
                access
            });
            let is_public = PUBLIC.contains(&(method.as_str(), full.as_str()));
            assert_eq!(
                access.is_none(),
                is_public,
                "{method} {full}: every route is either public (listed in PUBLIC) or names its access in the spec"
            );
            if access.is_some() {
                let description = operation["description"].as_str().unwrap_or_default();
                assert!(
                    description.contains("**Access:**"),
                    "{method} {full}: the description states the access rule"
                );
            }
            operations.push((method, full, access));
        }
    }
    assert!(operations.len() > 30, "the spec lists every route");
    operations
}

/// Whether `who` may call an operation with `access`.
fn allowed(who: Who, access: &Option<Access>) -> bool {
    let Some(access) = access else { return true };
    match who {
        Who::Anonymous => false,
        Who::ViewerSession => {
            access.session && matches!(access.token_scope.as_deref(), Some("read") | None)
        }
        Who::AdminSession => access.session,
        Who::Token(scope) => access
            .token_scope
            .as_deref()
            .is_some_and(|needed| needed == scope || scope == "admin"),
    }
}

/// A client with a session cookie (cookie store) and its CSRF token.
struct SignedIn {
    client: Client,
    csrf: String,
}

async fn sign_in(app: &TestApp, username: &str) -> SignedIn {
    let (client, csrf) = app.login(username).await;
    SignedIn { client, csrf }
}

async fn create_token(app: &TestApp, admin: &SignedIn, scopes: Value) -> (String, i64) {
    let (status, body) = app
        .post(
            &admin.client,
            &admin.csrf,
            "/auth/tokens",
            Some(json!({"name": "matrix", "scopes": scopes})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (
        body["data"]["token"].as_str().unwrap().to_owned(),
        body["data"]["id"].as_i64().unwrap(),
    )
}

async fn with_token(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = crate::common::client()
        .request(method, format!("{}{path}", app.base))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[actix_web::test]
async fn every_operation_of_the_spec_allows_exactly_who_its_scope_names() {
    let app = TestApp::spawn(10_000).await;
    let operations = operations();
    let admin_for_tokens = sign_in(&app, "admin").await;
    let mut tokens = BTreeMap::new();
    for scope in ["read", "ingest", "operate", "admin"] {
        tokens.insert(
            scope,
            create_token(&app, &admin_for_tokens, json!([scope]))
                .await
                .0,
        );
    }
    let mut viewer = sign_in(&app, "viewer").await;
    let mut admin = sign_in(&app, "admin").await;
    let anonymous = app.anonymous();
    let mut checked = 0;
    for (method, path, access) in &operations {
        // Ids that exist nowhere: an allowed call ends in 404 or 400, never in a change.
        let relative = path
            .strip_prefix("/api/v1")
            .unwrap()
            .replace("{id}", "999999")
            .replace("{action}", "pause");
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let is_read = method == Method::GET;
        let body = (!is_read).then(|| json!({}));
        let mut callers = vec![Who::Anonymous, Who::ViewerSession, Who::AdminSession];
        callers.extend(["read", "ingest", "operate", "admin"].map(Who::Token));
        for who in callers {
            let (status, response) = match who {
                Who::Anonymous => {
                    app.call(&anonymous, method.clone(), &relative, None, body.clone())
                        .await
                }
                Who::ViewerSession | Who::AdminSession => {
                    let session = if who == Who::ViewerSession {
                        &viewer
                    } else {
                        &admin
                    };
                    app.call(
                        &session.client,
                        method.clone(),
                        &relative,
                        Some(&session.csrf),
                        body.clone(),
                    )
                    .await
                }
                Who::Token(scope) => {
                    with_token(
                        &app,
                        &tokens[scope],
                        method.clone(),
                        &relative,
                        body.clone(),
                    )
                    .await
                }
            };
            let expected_allowed = allowed(who, access);
            if expected_allowed {
                assert!(
                    status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                    "{who:?} {method} {path} should be allowed, got {status}: {response}"
                );
                assert!(
                    !status.is_server_error(),
                    "{who:?} {method} {path}: {status} {response}"
                );
            } else {
                let expected = if who == Who::Anonymous {
                    StatusCode::UNAUTHORIZED
                } else {
                    StatusCode::FORBIDDEN
                };
                assert_eq!(
                    status, expected,
                    "{who:?} {method} {path} should be refused: {response}"
                );
            }
            checked += 1;
            // Signing out (allowed) ended that session: sign in again for the next calls.
            if relative == "/auth/logout" && expected_allowed {
                match who {
                    Who::ViewerSession => viewer = sign_in(&app, "viewer").await,
                    Who::AdminSession => admin = sign_in(&app, "admin").await,
                    _ => {}
                }
            }
        }
    }
    assert_eq!(checked, operations.len() * 7);
    app.stop().await;
}

#[actix_web::test]
async fn tokens_never_exceed_their_scopes_or_their_owner_and_cannot_mint_tokens() {
    let app = TestApp::spawn(10_000).await;
    let admin = sign_in(&app, "admin").await;
    let (ingest, ingest_id) = create_token(&app, &admin, json!(["ingest"])).await;

    // What the attacker with a loader's token tried.
    let (status, body) = with_token(
        &app,
        &ingest,
        Method::POST,
        "/auth/tokens",
        Some(json!({"name": "escalate", "scopes": ["admin"]})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = with_token(
        &app,
        &ingest,
        Method::POST,
        "/partitions/actions/cleanup",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = with_token(&app, &ingest, Method::GET, "/instances", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Tokens list their scopes, an expiry (90 days by default) and their last use.
    let (_, listed) = app.get(&admin.client, "/auth/tokens").await;
    let token = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|token| token["id"] == ingest_id)
        .unwrap()
        .clone();
    assert_eq!(token["scopes"], json!(["ingest"]));
    let expires: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(token["expires_at"].clone()).unwrap();
    let days = (expires - chrono::Utc::now()).num_days();
    assert!((89..=90).contains(&days), "{token}");
    assert!(token["last_used_at"].is_string(), "{token}");

    // Scopes are refused beyond the caller's role, and unknown or missing ones too.
    let viewer = sign_in(&app, "viewer").await;
    for (scopes, code) in [
        (json!(["operate"]), "beyond_role"),
        (json!(["everything"]), "invalid_choice"),
        (json!([]), "required"),
    ] {
        let (status, body) = app
            .post(
                &viewer.client,
                &viewer.csrf,
                "/auth/tokens",
                Some(json!({"name": "mine", "scopes": scopes})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["errors"][0]["field"], "scopes", "{body}");
        assert_eq!(body["errors"][0]["code"], code, "{body}");
    }
    let (read, _) = create_token(&app, &viewer, json!(["read"])).await;
    let (status, _) = with_token(&app, &read, Method::GET, "/instances", None).await;
    assert_eq!(status, StatusCode::OK);

    // An admin token follows its owner's role down: demoted to viewer, it only reads.
    let (operate, operate_id) = create_token(&app, &admin, json!(["operate", "read"])).await;
    let (status, started) = with_token(
        &app,
        &operate,
        Method::POST,
        "/capacity/aggregations/current",
        Some(json!({"scope": "all", "period_type": "daily"})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    // Runs record the token they were requested with.
    let session_id = started["data"]["session_id"].as_i64().unwrap();
    let (_, session) = app
        .get(&admin.client, &format!("/sync-sessions/{session_id}"))
        .await;
    assert_eq!(
        session["data"]["session"]["requested_by_token_id"], operate_id,
        "{session}"
    );
    let (_, users) = app.get(&admin.client, "/users").await;
    let admin_id = users["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|user| user["username"] == "admin")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let other_admin = sign_in(&app, "admin").await;
    let (status, body) = app
        .put(
            &other_admin.client,
            &other_admin.csrf,
            &format!("/users/{admin_id}"),
            json!({"role": "viewer"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = with_token(
        &app,
        &operate,
        Method::POST,
        "/scheduler/jobs/aggregate_capacity/actions/pause",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, me) = with_token(&app, &operate, Method::GET, "/auth/me", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["data"]["scopes"], json!(["read"]), "{me}");
    assert_eq!(me["data"]["token_id"], operate_id);
    app.stop().await;
}

/// Signs in without a cookie store and returns the session cookie as a `Cookie` header value,
/// as an attacker who copied it would hold it, with the CSRF token.
async fn stolen_cookie(app: &TestApp, username: &str, password: &str) -> (String, String) {
    let response = crate::common::client()
        .post(format!("{}/auth/login", app.base))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .find(|value| value.starts_with("capstats_session="))
        .expect("a session cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    (
        cookie,
        body["data"]["csrf_token"].as_str().unwrap().to_owned(),
    )
}

async fn replay(app: &TestApp, cookie: &str) -> StatusCode {
    crate::common::client()
        .get(format!("{}/auth/me", app.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .status()
}

#[actix_web::test]
async fn a_copied_cookie_stops_working_after_logout_reset_deactivation_and_end_sessions() {
    let app = TestApp::spawn(10_000).await;
    let admin = sign_in(&app, "admin").await;
    let (_, users) = app.get(&admin.client, "/users").await;
    let viewer_id = users["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|user| user["username"] == "viewer")
        .unwrap()["id"]
        .as_i64()
        .unwrap();

    // Logout ends that session everywhere, the copy included.
    let (cookie, csrf) = stolen_cookie(&app, "viewer", PASSWORD).await;
    assert_eq!(replay(&app, &cookie).await, StatusCode::OK);
    let response = crate::common::client()
        .post(format!("{}/auth/logout", app.base))
        .header("cookie", &cookie)
        .header("X-CSRFToken", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(replay(&app, &cookie).await, StatusCode::UNAUTHORIZED);

    // An administrator's password reset ends every session of the user.
    let (first, _) = stolen_cookie(&app, "viewer", PASSWORD).await;
    let (second, _) = stolen_cookie(&app, "viewer", PASSWORD).await;
    let new_password = "another long password";
    let (status, body) = app
        .put(
            &admin.client,
            &admin.csrf,
            &format!("/users/{viewer_id}"),
            json!({"password": new_password}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["sessions_ended"], 2, "{body}");
    assert_eq!(replay(&app, &first).await, StatusCode::UNAUTHORIZED);
    assert_eq!(replay(&app, &second).await, StatusCode::UNAUTHORIZED);

    // The user's own password change ends the other sessions; the browser that changed it
    // is signed in again.
    let (other, _) = stolen_cookie(&app, "viewer", new_password).await;
    let (own, own_csrf) = stolen_cookie(&app, "viewer", new_password).await;
    let response = crate::common::client()
        .put(format!("{}/auth/password", app.base))
        .header("cookie", &own)
        .header("X-CSRFToken", &own_csrf)
        .json(&json!({"current_password": new_password, "new_password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let renewed = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .find(|value| value.starts_with("capstats_session="))
        .unwrap();
    let renewed = renewed.split(';').next().unwrap().to_owned();
    assert_eq!(replay(&app, &other).await, StatusCode::UNAUTHORIZED);
    assert_eq!(replay(&app, &own).await, StatusCode::UNAUTHORIZED);
    assert_eq!(replay(&app, &renewed).await, StatusCode::OK);

    // Deactivation ends them too.
    let (cookie, _) = stolen_cookie(&app, "viewer", PASSWORD).await;
    let (status, _) = app
        .put(
            &admin.client,
            &admin.csrf,
            &format!("/users/{viewer_id}"),
            json!({"is_active": false}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(replay(&app, &cookie).await, StatusCode::UNAUTHORIZED);
    assert_eq!(replay(&app, &renewed).await, StatusCode::UNAUTHORIZED);
    let (status, _) = app
        .put(
            &admin.client,
            &admin.csrf,
            &format!("/users/{viewer_id}"),
            json!({"is_active": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // An administrator ends all sessions of a user; the command-line reset does the same.
    let (cookie, _) = stolen_cookie(&app, "viewer", PASSWORD).await;
    let (status, body) = app
        .post(
            &admin.client,
            &admin.csrf,
            &format!("/users/{viewer_id}/actions/end-sessions"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["sessions_ended"], 1, "{body}");
    assert_eq!(replay(&app, &cookie).await, StatusCode::UNAUTHORIZED);
    let (cookie, _) = stolen_cookie(&app, "viewer", PASSWORD).await;
    let mut connection = diesel::PgConnection::establish(&app.database.url()).unwrap();
    let hash = capstats_http_api::auth::hash_password(PASSWORD).unwrap();
    capstats_store::accounts::update_user(&mut connection, "viewer", &hash, "viewer").unwrap();
    assert_eq!(replay(&app, &cookie).await, StatusCode::UNAUTHORIZED);
    app.stop().await;
}

async fn login_status(
    app: &TestApp,
    username: &str,
    password: &str,
    forwarded_for: &str,
) -> (StatusCode, Option<String>) {
    let response = crate::common::client()
        .post(format!("{}/auth/login", app.base))
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().unwrap().to_owned());
    (response.status(), retry_after)
}

#[actix_web::test]
async fn forwarded_headers_from_untrusted_peers_do_not_dodge_the_limits() {
    // The peer (127.0.0.1) is no trusted proxy: rotating X-Forwarded-For changes nothing.
    let app = TestApp::spawn(5).await;
    for attempt in 0..5 {
        let (status, _) =
            login_status(&app, "admin", "wrong", &format!("198.51.100.{attempt}")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, retry_after) = login_status(&app, "admin", PASSWORD, "198.51.100.77").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after.is_some_and(|seconds| seconds.parse::<u64>().unwrap() >= 1));
    app.stop().await;

    // Behind a trusted proxy each client has its own address limit, and an account backs off
    // after repeated failures whatever the address.
    let app = TestApp::spawn_with(|settings| {
        settings.login_attempts_per_minute = 5;
        settings.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    for attempt in 0..5 {
        let (status, _) =
            login_status(&app, "admin", "wrong", &format!("203.0.113.{attempt}")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "attempt {attempt}");
    }
    let (status, retry_after) = login_status(&app, "ADMIN", PASSWORD, "203.0.113.50").await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "the account backs off"
    );
    assert!(retry_after.is_some());
    let (status, _) = login_status(&app, "viewer", PASSWORD, "203.0.113.51").await;
    assert_eq!(status, StatusCode::OK, "another account and client go on");
    app.stop().await;
}

#[actix_web::test]
async fn parallel_sign_ins_and_huge_bodies_keep_memory_bounded() {
    // Measured on the real binary in its own process, so that other tests running in this
    // one do not count.
    let app = TestApp::spawn(10_000).await;
    let api = ApiProcess::start(
        &app.database.url(),
        &[("CAPSTATS_LOGIN_ATTEMPTS_PER_MINUTE", "10000")],
    )
    .await;
    // One sign-in first, so that lazily allocated pools count in the baseline.
    let response = crate::common::client()
        .post(format!("{}/auth/login", api.base))
        .json(&json!({"username": "viewer", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let before = api.resident_megabytes();
    let started = Instant::now();
    let mut attempts = Vec::new();
    // Distinct unknown usernames: each one is hashed (against the decoy), none is backed off.
    for attempt in 0..40 {
        let url = format!("{}/auth/login", api.base);
        attempts.push(tokio::spawn(async move {
            crate::common::client()
                .post(url)
                .json(&json!({"username": format!("nobody{attempt}"), "password": "wrong but long enough"}))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    let mut peak = before;
    let mut statuses = Vec::new();
    for attempt in attempts {
        while !attempt.is_finished() {
            peak = peak.max(api.resident_megabytes());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        statuses.push(attempt.await.unwrap());
    }
    let after = api.resident_megabytes().max(peak);
    // 40 hashes at once took 600+ MiB; two hashing threads, each reusing its 19 MiB of Argon2
    // memory, keep it to about 40.
    assert!(
        after.saturating_sub(before) < 64,
        "resident memory grew from {before} to {after} MiB"
    );
    assert!(
        statuses
            .iter()
            .all(|status| *status == StatusCode::UNAUTHORIZED
                || *status == StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&StatusCode::UNAUTHORIZED),
        "some sign-ins were checked: {statuses:?}"
    );
    println!(
        "40 parallel sign-ins: {before} → {after} MiB resident in {:?}; {} checked, {} told to retry",
        started.elapsed(),
        statuses
            .iter()
            .filter(|status| **status == StatusCode::UNAUTHORIZED)
            .count(),
        statuses
            .iter()
            .filter(|status| **status == StatusCode::TOO_MANY_REQUESTS)
            .count(),
    );

    // A 15 MiB body is refused before it is parsed.
    let huge = format!(
        "{{\"username\": \"viewer\", \"password\": \"{}\"}}",
        "x".repeat(15 * 1024 * 1024)
    );
    let response = crate::common::client()
        .post(format!("{}/auth/login", api.base))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "too_large", "{body}");
    app.stop().await;
}

fn execute(url: &str, sql: &str) {
    let mut connection = diesel::PgConnection::establish(url).unwrap();
    diesel::sql_query(sql).execute(&mut connection).unwrap();
}

#[actix_web::test]
async fn clients_never_see_database_or_internal_error_text() {
    let app = TestApp::spawn(10_000).await;
    let admin = sign_in(&app, "admin").await;
    let url = app.database.url();
    // A query that fails: the table is gone.
    execute(
        &url,
        "ALTER TABLE sync_sessions RENAME TO sync_sessions_moved",
    );
    let (status, body) = app.get(&admin.client, "/sync-sessions").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(body["message_code"], "DATABASE_QUERY_ERROR");
    assert!(body["error_id"].is_string());
    let text = body.to_string();
    for leak in ["sync_sessions", "relation", "SQL", "diesel", "postgres"] {
        assert!(!text.contains(leak), "`{leak}` leaked: {text}");
    }
    execute(
        &url,
        "ALTER TABLE sync_sessions_moved RENAME TO sync_sessions",
    );
    // An outdated schema, as anonymous readiness shows it.
    execute(
        &url,
        "UPDATE __diesel_schema_migrations SET version = 'hidden' WHERE version = (SELECT max(version) FROM __diesel_schema_migrations)",
    );
    let (status, body) = app.get(&app.anonymous(), "/health/ready").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let text = body.to_string();
    for leak in ["migration", "capstats-api migrate", "pending", "schema"] {
        assert!(!text.contains(leak), "`{leak}` leaked: {text}");
    }
    app.stop().await;
}

#[actix_web::test]
async fn a_server_fault_is_logged_once_with_its_request_and_error_ids_and_its_cause() {
    let app = TestApp::spawn(10_000).await;
    let (admin, csrf) = app.login("admin").await;
    let token = app.create_token(&admin, &csrf, json!(["read"])).await;
    let log_path =
        std::env::temp_dir().join(format!("capstats-api-fault-{}.log", std::process::id()));
    let log = std::fs::File::create(&log_path).unwrap();
    let api = crate::common::ApiProcess::start_with_log(
        &app.database.url(),
        &[("CAPSTATS_LOG", "info")],
        log,
    )
    .await;
    execute(
        &app.database.url(),
        "ALTER TABLE sync_sessions RENAME TO sync_sessions_moved",
    );
    let response = crate::common::client()
        .get(format!("{}/sync-sessions", api.base))
        .bearer_auth(&token)
        .header("x-request-id", "fault-request-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["request_id"], "fault-request-1", "{body}");
    let error_id = body["error_id"].as_str().unwrap().to_owned();
    drop(api);
    let text = std::fs::read_to_string(&log_path).unwrap();
    let _ = std::fs::remove_file(&log_path);
    let errors: Vec<&str> = text
        .lines()
        .filter(|line| line.contains(" ERROR ") || line.contains("fault-request-1"))
        .collect();
    // One line: both ids, and the real cause that the client never sees.
    assert_eq!(errors.len(), 1, "{text}");
    for expected in [error_id.as_str(), "fault-request-1", "sync_sessions"] {
        assert!(
            errors[0].contains(expected),
            "no `{expected}` in {}",
            errors[0]
        );
    }
    app.stop().await;
}

#[actix_web::test]
async fn unsafe_characters_and_oversized_sizes_are_field_errors() {
    let app = TestApp::spawn(10_000).await;
    let admin = sign_in(&app, "admin").await;
    let (_, instances) = app.get(&admin.client, "/instances").await;
    let instance_id = instances["data"]["items"][0]["id"].as_i64().unwrap();
    let today = chrono::Utc::now().date_naive();
    for (name, size, field) in [
        ("orders\u{0}", 1, "items[0].database_name"),
        ("invoice\u{202E}gpj.exe", 1, "items[0].database_name"),
        ("tab\tbed", 1, "items[0].database_name"),
        ("orders", i64::MAX, "items[0].size_mb"),
    ] {
        let (status, body) = app
            .post(
                &admin.client,
                &admin.csrf,
                "/capacity/stats",
                Some(
                    json!({"items": [{"instance_id": instance_id, "database_name": name,
                                       "collected_date": today, "size_mb": size}]}),
                ),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name:?}: {body}");
        assert_eq!(body["message_code"], "VALIDATION_ERROR");
        assert_eq!(body["errors"][0]["field"], field, "{body}");
    }
    let (status, body) = app
        .post(
            &admin.client,
            &admin.csrf,
            "/instances",
            Some(json!({"name": "evil\u{0}name", "db_type": "mysql"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errors"][0]["field"], "name", "{body}");
    app.stop().await;
}

async fn scrape(app: &TestApp, token: Option<&str>) -> (StatusCode, String) {
    let mut request = crate::common::client().get(format!("{}/metrics", app.root));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

#[actix_web::test]
async fn metrics_have_bounded_labels_need_their_token_and_query_nothing_per_scrape() {
    let app = TestApp::spawn_with(|settings| {
        settings.metrics_token = Some("scrape-secret".into());
    })
    .await;
    for method in ["FOO", "BAR", "PROPFIND"] {
        crate::common::client()
            .request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{}/health/live", app.base),
            )
            .send()
            .await
            .unwrap();
    }
    let (status, _) = scrape(&app, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = scrape(&app, Some("wrong")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, text) = scrape(&app, Some("scrape-secret")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains("method=\"other\""), "{text}");
    for method in ["FOO", "BAR", "PROPFIND"] {
        assert!(!text.contains(method), "{method} became a label");
    }
    // The use cases' counters are served beside the HTTP metrics, their series there from the
    // start.
    for series in [
        "capstats_ingest_samples_total{outcome=\"accepted\"}",
        "capstats_ingest_samples_total{outcome=\"rejected\"}",
    ] {
        assert!(text.contains(series), "{series} missing:\n{text}");
    }
    // With the tables the gauges read locked by another session, scrapes still answer at
    // once: they run no query.
    let url = app.database.url();
    let (locked_sender, locked) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let mut connection = diesel::PgConnection::establish(&url).unwrap();
        connection
            .transaction::<_, diesel::result::Error, _>(|connection| {
                diesel::sql_query(
                    "LOCK TABLE sync_sessions, schedule_ticks IN ACCESS EXCLUSIVE MODE",
                )
                .execute(connection)?;
                locked_sender.send(()).unwrap();
                released.recv().ok();
                Ok(())
            })
            .unwrap();
    });
    locked.recv().unwrap();
    for _ in 0..5 {
        let started = Instant::now();
        let (status, _) =
            tokio::time::timeout(Duration::from_secs(5), scrape(&app, Some("scrape-secret")))
                .await
                .expect("a scrape does not wait for the database");
        assert_eq!(status, StatusCode::OK);
        assert!(started.elapsed() < Duration::from_secs(2));
    }
    release.send(()).unwrap();
    holder.join().unwrap();
    app.stop().await;
}

#[actix_web::test]
async fn the_audit_trail_records_sign_ins_tokens_and_writes() {
    let app = TestApp::spawn(10_000).await;
    let (status, _) = login_status(&app, "admin", "not the password", "192.0.2.1").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let admin = sign_in(&app, "admin").await;
    let (token, token_id) = create_token(&app, &admin, json!(["operate"])).await;
    let (status, _) = with_token(
        &app,
        &token,
        Method::POST,
        "/scheduler/jobs/aggregate_capacity/actions/pause",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = with_token(&app, &token, Method::POST, "/instances", Some(json!({}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let body = app
        .get_ok(&admin.client, "/audit-events?action=auth.login&limit=10")
        .await;
    let sign_ins = body["data"]["items"].as_array().unwrap();
    let failed = sign_ins
        .iter()
        .find(|event| event["outcome"] == "failure")
        .expect("the failed sign-in");
    assert_eq!(failed["username"], "admin");
    assert_eq!(failed["client_address"], "127.0.0.1");
    assert!(failed["user_id"].is_null());
    assert!(sign_ins.iter().any(|event| event["outcome"] == "success"));

    let (_, body) = app
        .get(&admin.client, "/audit-events?action=auth.tokens")
        .await;
    let created = &body["data"]["items"][0];
    assert_eq!(created["action"], "auth.tokens.create");
    assert_eq!(created["detail"]["token_id"], token_id);
    assert_eq!(created["detail"]["scopes"], json!(["operate"]));

    let (_, body) = app
        .get(&admin.client, "/audit-events?action=scheduler")
        .await;
    let paused = &body["data"]["items"][0];
    assert_eq!(paused["action"], "scheduler.jobs.pause", "{paused}");
    assert_eq!(paused["token_id"], token_id);
    assert_eq!(paused["outcome"], "success");
    assert_eq!(
        paused["target"], "id=aggregate_capacity action=pause",
        "{paused}"
    );

    let (_, body) = app
        .get(
            &admin.client,
            "/audit-events?action=instances&outcome=denied",
        )
        .await;
    assert_eq!(body["data"]["items"][0]["token_id"], token_id, "{body}");

    // Credential changes: a password set, then dropped by retargeting the instance.
    let (status, body) = app
        .post(
            &admin.client,
            &admin.csrf,
            "/instances",
            Some(
                json!({"name": "audited", "db_type": "postgresql", "host": "db1.example",
                        "connection_user": "capstats", "connection_password": "s3cret"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let instance_id = body["data"]["id"].as_i64().unwrap();
    let (status, body) = app
        .put(
            &admin.client,
            &admin.csrf,
            &format!("/instances/{instance_id}"),
            json!({"host": "elsewhere.example"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["password_cleared"], true, "{body}");
    let (_, body) = app
        .get(
            &admin.client,
            "/audit-events?action=instances&outcome=success",
        )
        .await;
    let items = body["data"]["items"].as_array().unwrap();
    assert_eq!(items[0]["action"], "instances.update", "{body}");
    assert_eq!(
        items[0]["detail"]["connection_password"], "cleared because the target changed",
        "{body}"
    );
    assert_eq!(items[1]["action"], "instances.create", "{body}");
    assert_eq!(items[1]["detail"]["connection_password"], "set", "{body}");
    assert!(!body.to_string().contains("s3cret"), "{body}");

    // The command line reads the same trail.
    let binary = env!("CARGO_BIN_EXE_capstats-api");
    let output = std::process::Command::new(binary)
        .args([
            "audit",
            "--action",
            "auth.login",
            "--outcome",
            "failure",
            "--json",
        ])
        .env("DATABASE_URL", app.database.url())
        .env("CAPSTATS_LOG", "warn")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let events: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(events[0]["username"], "admin", "{events}");
    app.stop().await;
}

#[actix_web::test]
async fn the_longest_password_fits_the_sign_in_body_limit_even_as_json_escapes() {
    let app = TestApp::spawn(1000).await;
    // 1,024 characters written as escaped surrogate pairs (12 bytes each): read and checked,
    // not refused for its size, so a wrong one answers 401.
    let escaped = format!(
        "{{\"username\": \"viewer\", \"password\": \"{}\"}}",
        "\\ud83d\\ude00".repeat(1024)
    );
    assert!(escaped.len() > 12 * 1024);
    let response = crate::common::client()
        .post(format!("{}/auth/login", app.base))
        .header("content-type", "application/json")
        .body(escaped)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}

/// A copied cookie must not turn the password change into an unthrottled guessing oracle: a
/// wrong current password counts as a failed sign-in, and past the free failures the account
/// waits, there as at sign-in.
#[actix_web::test]
async fn guessing_the_current_password_is_slowed_like_a_sign_in() {
    let app = TestApp::spawn(1000).await;
    let viewer = sign_in(&app, "viewer").await;
    let mut statuses = Vec::new();
    for guess in 0..6 {
        let (status, _) = app
            .put(
                &viewer.client,
                &viewer.csrf,
                "/auth/password",
                json!({"current_password": format!("guess number {guess}"),
                       "new_password": "a new long password"}),
            )
            .await;
        statuses.push(status);
    }
    assert_eq!(
        statuses[..5],
        [StatusCode::BAD_REQUEST; 5],
        "the free failures are refused as wrong: {statuses:?}"
    );
    assert_eq!(statuses[5], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
    // The account waits at sign-in too.
    let response = crate::common::client()
        .post(format!("{}/auth/login", app.base))
        .json(&json!({"username": "viewer", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
    app.stop().await;
}

/// The audit trail of sign-ins names the account tried even when the request carried a
/// credential of its own (here a viewer's session): an attack on `admin` is found under
/// `admin`.
#[actix_web::test]
async fn a_sign_in_is_recorded_under_the_account_it_tried_whatever_credential_it_carried() {
    let app = TestApp::spawn(1000).await;
    let admin = sign_in(&app, "admin").await;
    let viewer = sign_in(&app, "viewer").await;
    let (status, _) = app
        .post(
            &viewer.client,
            &viewer.csrf,
            "/auth/login",
            Some(json!({"username": "admin", "password": "not the password at all"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let body = app
        .get_ok(
            &admin.client,
            "/audit-events?action=auth.login&outcome=failure&limit=10",
        )
        .await;
    let failed = &body["data"]["items"][0];
    assert_eq!(failed["username"], "admin", "{body}");
    assert!(failed["user_id"].is_null(), "{body}");
    app.stop().await;
}
