//! A client generated from the committed spec by openapi-typescript drives a running server
//! (tests/client): login, token, lists, summaries, series, aggregate now and its session.

#[actix_web::test]
async fn a_client_generated_from_the_spec_drives_the_api() {
    let client_directory = crate::common::node_suite("client");
    let app = crate::common::TestApp::spawn(1000).await;
    let _worker = crate::common::Worker::start(&app.database.url());
    let report = crate::common::run_npm_tests(
        client_directory,
        vec![
            ("CAPSTATS_BASE_URL", app.root.clone()),
            ("CAPSTATS_USERNAME", "admin".to_owned()),
            ("CAPSTATS_PASSWORD", crate::common::PASSWORD.to_owned()),
        ],
    )
    .await;
    app.stop().await;
    assert!(report.contains("# pass 1"), "{report}");
}
