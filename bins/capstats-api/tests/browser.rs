//! The web UI in a real browser: headless Chromium driven by playwright-core
//! (tests/browser/ui.test.js) against a server on a fresh, seeded database. The tests run in
//! two phases: first without a worker, so that a run stays queued and can be cancelled from
//! its page, then with a `capstats-worker run` process, so that "aggregate now" runs to its
//! end. `CAPSTATS_SCREENSHOT_DIR` (see `make screenshots`) saves a screenshot of every page.

mod common;

use std::path::PathBuf;
use std::process::Command;

/// Runs the browser tests of `phase` against `base` and prints their TAP report, failing
/// when any failed or none ran.
async fn run_phase(base: &str, chromium: &str, phase: &str) {
    let tests_directory =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser");
    let (base, chromium, phase_name) = (base.to_owned(), chromium.to_owned(), phase.to_owned());
    let output = actix_web::web::block(move || {
        Command::new("npm")
            .args(["test", "--silent"])
            .current_dir(tests_directory)
            .env("CAPSTATS_BASE_URL", base)
            .env("CAPSTATS_PASSWORD", common::PASSWORD)
            .env("CAPSTATS_CHROMIUM", chromium)
            .env("CAPSTATS_BROWSER_PHASE", phase_name)
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
    println!("{report}");
    assert!(output.status.success(), "{phase}: {report}");
    assert!(report.contains("# fail 0"), "{phase}: {report}");
    assert!(
        !report.contains("# pass 0"),
        "{phase}: no test ran\n{report}"
    );
}

#[actix_web::test]
async fn the_web_ui_works_in_a_real_browser() {
    let tests_directory: PathBuf =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser");
    assert!(
        tests_directory.join("node_modules").exists(),
        "run `npm ci` in tests/browser first (make test does)"
    );
    let chromium =
        std::env::var("CAPSTATS_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "{chromium} is missing: install Debian's `chromium` (`.ci/run` does) or set CAPSTATS_CHROMIUM"
    );
    let app = common::TestApp::spawn(1000).await;
    run_phase(&app.root, &chromium, "queued").await;
    let worker = common::Worker::start(&app.database.url());
    run_phase(&app.root, &chromium, "worker").await;
    drop(worker);
    app.stop().await;
}
