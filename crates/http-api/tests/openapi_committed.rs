//! The committed `openapi/openapi.json` is what the code describes; regenerate it with
//! `capstats-api openapi > openapi/openapi.json` (or `make openapi`) when this fails.

#[test]
fn committed_spec_matches_the_code() {
    let generated: serde_json::Value =
        serde_json::from_str(&capstats_http_api::openapi().to_pretty_json().unwrap()).unwrap();
    let committed: serde_json::Value =
        serde_json::from_str(include_str!("../../../openapi/openapi.json"))
            .expect("openapi/openapi.json is valid JSON");
    assert!(
        generated == committed,
        "openapi/openapi.json is out of date: run `make openapi`"
    );
}

#[test]
fn every_operation_documents_its_errors_and_has_a_summary() {
    let document: serde_json::Value =
        serde_json::from_str(&capstats_http_api::openapi().to_pretty_json().unwrap()).unwrap();
    let paths = document["paths"].as_object().unwrap();
    assert!(paths.len() >= 28, "{} paths", paths.len());
    for (path, operations) in paths {
        for (method, operation) in operations.as_object().unwrap() {
            let summary = operation["summary"].as_str().unwrap_or_default();
            assert!(!summary.is_empty(), "{method} {path} has no summary");
            let responses = operation["responses"].as_object().unwrap();
            let public = path.ends_with("/health/live") || path.ends_with("/auth/csrf-token");
            if !public && !path.ends_with("/auth/login") && !path.ends_with("/health/ready") {
                assert!(
                    responses.contains_key("401"),
                    "{method} {path} does not document 401"
                );
            }
            for (status, response) in responses {
                assert!(
                    !response["description"]
                        .as_str()
                        .unwrap_or_default()
                        .is_empty(),
                    "{method} {path} {status} has no description"
                );
            }
        }
    }
}

#[test]
fn operation_ids_are_unique() {
    let document: serde_json::Value =
        serde_json::from_str(&capstats_http_api::openapi().to_pretty_json().unwrap()).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for (path, operations) in document["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let id = operation["operationId"].as_str().unwrap_or_default();
            assert!(!id.is_empty(), "{method} {path} has no operationId");
            assert!(
                seen.insert(id.to_owned()),
                "{method} {path}: operationId `{id}` is used twice"
            );
        }
    }
}
