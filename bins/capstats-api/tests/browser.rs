//! The web UI in a real browser: headless Chromium driven by playwright-core
//! (tests/browser/ui.test.js) against a server on a fresh, seeded database, with a worker so
//! that "aggregate now" runs to its end. `CAPSTATS_SCREENSHOT_DIR` (see `make screenshots`)
//! saves a screenshot of every page.

mod common;

use std::process::Command;

#[actix_web::test]
async fn the_web_ui_works_in_a_real_browser() {
    let tests_directory =
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
    let _worker = common::Worker::start(&app.database.url());
    let base = app.root.clone();
    let output = actix_web::web::block(move || {
        Command::new("npm")
            .args(["test", "--silent"])
            .current_dir(tests_directory)
            .env("CAPSTATS_BASE_URL", base)
            .env("CAPSTATS_PASSWORD", common::PASSWORD)
            .env("CAPSTATS_CHROMIUM", chromium)
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
    println!("{report}");
    assert!(output.status.success(), "{report}");
    assert!(report.contains("# fail 0"), "{report}");
    assert!(!report.contains("# pass 0"), "{report}");
}
