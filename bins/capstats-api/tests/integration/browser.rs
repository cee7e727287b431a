//! The web UI in a real browser: headless Chromium driven by playwright-core
//! (tests/browser/ui.test.js) against a server on a fresh, seeded database. The tests run in
//! two phases: first without a worker, so that a run stays queued and can be cancelled from
//! its page, then with a `capstats-worker run` process, so that "aggregate now" runs to its
//! end. `CAPSTATS_SCREENSHOT_DIR` (see `make screenshots`) saves a screenshot of every page.

/// The environment of the browser tests of `phase` against `base`.
fn environment(base: &str, chromium: &str, phase: &str) -> Vec<(&'static str, String)> {
    vec![
        ("CAPSTATS_BASE_URL", base.to_owned()),
        ("CAPSTATS_PASSWORD", crate::common::PASSWORD.to_owned()),
        ("CAPSTATS_CHROMIUM", chromium.to_owned()),
        ("CAPSTATS_BROWSER_PHASE", phase.to_owned()),
    ]
}

#[actix_web::test]
async fn the_web_ui_works_in_a_real_browser() {
    let tests_directory = crate::common::node_suite("browser");
    let chromium =
        std::env::var("CAPSTATS_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "{chromium} is missing: install Debian's `chromium` (`.ci/run` does) or set CAPSTATS_CHROMIUM"
    );
    let app = crate::common::TestApp::spawn(1000).await;
    crate::common::run_npm_tests(
        tests_directory.clone(),
        environment(&app.root, &chromium, "queued"),
    )
    .await;
    let worker = crate::common::Worker::start(&app.database.url());
    crate::common::run_npm_tests(tests_directory, environment(&app.root, &chromium, "worker"))
        .await;
    drop(worker);
    app.stop().await;
}
