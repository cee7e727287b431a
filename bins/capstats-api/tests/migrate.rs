//! `capstats-api migrate` on a database that does not exist yet, twice.

use std::process::Command;

#[test]
fn migrate_creates_the_database_and_is_idempotent() {
    let name = format!(
        "{}migrate_{}",
        test_support::TEST_DATABASE_PREFIX,
        std::process::id()
    );
    let url = test_support::database_url(&name);
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_capstats-api"))
            .arg("migrate")
            .env("DATABASE_URL", &url)
            .env("CAPSTATS_LOG", "warn")
            .output()
            .expect("the binary runs")
    };
    let first = run();
    let second = run();
    // Drop before asserting so that a failure leaves nothing behind.
    {
        use diesel::Connection;
        use diesel::connection::SimpleConnection;
        let mut admin =
            diesel::PgConnection::establish(&test_support::database_url("postgres")).unwrap();
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .unwrap();
    }
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(stdout.starts_with("applied 6 migrations ("), "{stdout}");
    assert!(stdout.contains("create_inventory_and_samples"), "{stdout}");
    assert!(second.status.success());
    assert_eq!(
        String::from_utf8_lossy(&second.stdout).trim_end(),
        "schema is up to date; job store is ready"
    );
}
