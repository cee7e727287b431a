//! A client generated from the committed spec by openapi-typescript drives a running server
//! (tests/client): login, token, lists, summaries, series, aggregate now and its session.

mod common;

use std::process::Command;

#[actix_web::test]
async fn a_client_generated_from_the_spec_drives_the_api() {
    let client_directory =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/client");
    assert!(
        client_directory.join("node_modules").exists(),
        "run `npm ci` in tests/client first (make test does)"
    );
    let app = common::TestApp::spawn(1000).await;
    let _worker = common::Worker::start(&app.database.url());
    let base = app.root.clone();
    let output = actix_web::web::block(move || {
        Command::new("npm")
            .args(["test", "--silent"])
            .current_dir(client_directory)
            .env("CAPSTATS_BASE_URL", base)
            .env("CAPSTATS_USERNAME", "admin")
            .env("CAPSTATS_PASSWORD", common::PASSWORD)
            .output()
    })
    .await
    .unwrap()
    .expect("npm runs");
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    app.stop().await;
    assert!(output.status.success(), "{report}");
    assert!(report.contains("# pass 1"), "{report}");
}
