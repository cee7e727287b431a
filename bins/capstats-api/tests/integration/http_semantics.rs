//! HTTP semantics every route shares, checked over the whole spec: `HEAD` answers like `GET`
//! without a body, a known path asked with a method it does not declare answers `405` with
//! `Allow`, an unknown path `404`, and a query parameter an operation does not declare `400`.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::common::TestApp;

/// A concrete path for a spec path: the demo's aggregation schedule for a schedule, `1` (an
/// instance, a session, a user) for every other parameter.
fn concrete(path: &str) -> String {
    path.replace("/scheduler/jobs/{id}", "/scheduler/jobs/aggregate_capacity")
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "1"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The spec's paths (with `/api/v1`) and the methods each declares.
fn declared() -> Vec<(String, Vec<Method>)> {
    let document = serde_json::to_value(capstats_http_api::openapi()).unwrap();
    document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(path, item)| {
            let methods = ["get", "post", "put", "patch", "delete"]
                .into_iter()
                .filter(|method| item.get(*method).is_some())
                .map(|method| Method::from_bytes(method.to_uppercase().as_bytes()).unwrap())
                .collect();
            (path.clone(), methods)
        })
        .collect()
}

#[actix_web::test]
async fn head_answers_every_get_route_like_get_without_a_body() {
    let app = TestApp::spawn(1000).await;
    let (admin, _) = app.login("admin").await;
    let mut paths: Vec<String> = declared()
        .into_iter()
        .filter(|(_, methods)| methods.contains(&Method::GET))
        .map(|(path, _)| concrete(&path))
        .collect();
    paths.extend(["/metrics".to_owned(), "/api/v1/openapi.json".to_owned()]);
    assert!(paths.len() > 20, "{paths:?}");
    for path in paths {
        let url = format!("{}{path}", app.root);
        let get = admin.get(&url).send().await.unwrap();
        let head = admin.head(&url).send().await.unwrap();
        assert_eq!(head.status(), get.status(), "HEAD {path}");
        assert_eq!(
            head.headers().get("content-type"),
            get.headers().get("content-type"),
            "HEAD {path}"
        );
        assert!(head.headers().contains_key("x-request-id"), "HEAD {path}");
        assert!(
            head.text().await.unwrap().is_empty(),
            "HEAD {path} sent a body"
        );
        assert!(!get.text().await.unwrap().is_empty(), "GET {path}");
    }
    app.stop().await;
}

#[actix_web::test]
async fn a_method_a_path_does_not_declare_answers_405_with_the_methods_it_does() {
    let app = TestApp::spawn(1000).await;
    let (admin, csrf) = app.login("admin").await;
    let mut checked = 0;
    for (path, methods) in declared() {
        let mut allowed: Vec<&str> = methods.iter().map(Method::as_str).collect();
        if methods.contains(&Method::GET) {
            allowed.insert(1, "HEAD");
        }
        let allowed = allowed.join(", ");
        for method in [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
            Method::TRACE,
        ] {
            if methods.contains(&method) {
                continue;
            }
            let url = format!("{}{}", app.root, concrete(&path));
            let response = admin
                .request(method.clone(), &url)
                .header("X-CSRFToken", &csrf)
                .send()
                .await
                .unwrap();
            assert_eq!(
                response.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            assert_eq!(
                response
                    .headers()
                    .get("allow")
                    .map(|value| value.to_str().unwrap()),
                Some(allowed.as_str()),
                "{method} {path}"
            );
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["message_code"], "METHOD_NOT_ALLOWED", "{body}");
            assert!(!body["request_id"].as_str().unwrap().is_empty(), "{body}");
            checked += 1;
        }
        // HEAD is GET's: refused where GET is.
        if !methods.contains(&Method::GET) {
            let url = format!("{}{}", app.root, concrete(&path));
            let response = admin.head(&url).send().await.unwrap();
            assert_eq!(
                response.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "HEAD {path}"
            );
        }
    }
    assert!(checked > 50, "{checked}");
    // Outside the spec: the scrape endpoint and the pages are GET only.
    for path in ["/metrics", "/capacity/instances", "/sync-sessions/1"] {
        let response = admin
            .post(format!("{}{path}", app.root))
            .header("X-CSRFToken", &csrf)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "POST {path}"
        );
        assert_eq!(
            response.headers().get("allow").unwrap(),
            "GET, HEAD",
            "POST {path}"
        );
    }
    // An unknown path stays 404, whatever the method.
    for method in [Method::GET, Method::POST, Method::DELETE] {
        let response = admin
            .request(method.clone(), format!("{}/api/v1/no-such-thing", app.root))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{method}");
    }
    app.stop().await;
}

#[actix_web::test]
async fn a_query_parameter_the_operation_does_not_declare_is_refused_by_name() {
    let app = TestApp::spawn(1000).await;
    let (admin, _) = app.login("admin").await;
    // Declared parameters pass.
    app.get_ok(
        &admin,
        "/capacity/instances?period_type=daily&page=1&limit=5",
    )
    .await;
    for (path, unknown) in [
        (
            "/capacity/instances?period_type=daily&get_al=true&pgae=2",
            vec!["get_al", "pgae"],
        ),
        ("/sync-sessions/1?verbose=1", vec!["verbose"]),
        ("/scheduler/jobs?x=1&x=2", vec!["x"]),
        ("/health/live?probe=lb", vec!["probe"]),
    ] {
        let (status, body) = app.get(&admin, path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["message_code"], "VALIDATION_ERROR", "{body}");
        let fields: Vec<&str> = body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|error| {
                assert_eq!(error["code"], "unknown_parameter", "{body}");
                error["field"].as_str().unwrap()
            })
            .collect();
        assert_eq!(fields, unknown, "{path}");
    }
    app.stop().await;
}

/// Stored data this build cannot read is the server's fault: a 500 with the generic answer
/// (the cause goes to the log), never a 409 that would send the client to change its request.
#[actix_web::test]
async fn stored_data_that_cannot_be_read_answers_500_not_409() {
    use diesel::connection::SimpleConnection;
    let app = TestApp::spawn(1000).await;
    let (admin, _) = app.login("admin").await;
    app.database
        .connection()
        .batch_execute(
            "INSERT INTO alert_rules (name, level, metric, comparison, threshold, period_type,
                                      periods, severity)
             VALUES ('broken', 'instance', 'size_mb', 'above', 1, 'fortnightly', 1, 'info')",
        )
        .unwrap();
    let (status, body) = app.get(&admin, "/alerts/rules").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(body["message_code"], "DATABASE_QUERY_ERROR", "{body}");
    assert!(
        !body.to_string().contains("fortnightly"),
        "the cause stays in the log: {body}"
    );
    app.stop().await;
}
