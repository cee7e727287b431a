//! The operator commands as processes: exit statuses, summary lines and one-line errors.

use std::path::PathBuf;
use std::process::{Command, Output};

fn worker(database_url: &str, arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_capstats-worker"))
        .args(arguments)
        .env("DATABASE_URL", database_url)
        .env("CAPSTATS_TIMEZONE", "UTC")
        .env("CAPSTATS_LOG", "warn")
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write_file(name: &str, contents: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("capstats-{}-{name}", std::process::id()));
    std::fs::write(&path, contents).unwrap();
    path
}

#[test]
fn import_then_aggregate_reports_what_was_done() {
    let database = test_support::TestDatabase::new();
    let file = write_file(
        "good.csv",
        "instance_name,db_type,database_name,collected_date,size_mb,data_size_mb,log_size_mb\n\
         alpha,mysql,orders,2025-06-01,100,80,\n\
         alpha,mysql,orders,2025-06-02,120,90,\n",
    );
    let output = worker(
        &database.url(),
        &["import-stats", file.to_str().unwrap(), "--create-instances"],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(
        stdout.starts_with("imported 2 samples for 1 instances (1 created)"),
        "{stdout}"
    );

    let output = worker(
        &database.url(),
        &[
            "aggregate",
            "--period-type",
            "daily",
            "--from",
            "2025-06-01",
            "--to",
            "2025-06-02",
        ],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(
        stdout.starts_with("session 1 completed: 2 daily periods × 2 levels, 4 rows written"),
        "{stdout}"
    );
    std::fs::remove_file(file).ok();
}

#[test]
fn failures_exit_non_zero_with_one_line() {
    let database = test_support::TestDatabase::new();
    let file = write_file(
        "bad.csv",
        "instance_name,db_type,database_name,collected_date,size_mb,data_size_mb,log_size_mb\n\
         alpha,mysql,orders,2025-06-01,100,,\n\
         alpha,mysql,orders,2025-06-02,x,,\n",
    );
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["import-stats", file.to_str().unwrap(), "--create-instances"],
            "capstats-worker: line 3: size_mb `x` is not a whole number of MB (nothing was imported)",
        ),
        (
            vec!["import-stats", "/nonexistent/stats.csv"],
            "capstats-worker: cannot open /nonexistent/stats.csv: No such file or directory (os error 2)",
        ),
        (
            vec![
                "aggregate",
                "--period-type",
                "monthly",
                "--from",
                "2025-06-02",
                "--to",
                "2025-06-30",
            ],
            "capstats-worker: no monthly period starts between 2025-06-02 and 2025-06-30",
        ),
    ];
    for (arguments, expected) in cases {
        let output = worker(&database.url(), &arguments);
        assert!(!output.status.success());
        assert_eq!(text(&output.stderr).trim_end(), expected);
    }
    let output = worker(
        &database.url(),
        &[
            "aggregate",
            "--period-type",
            "hourly",
            "--from",
            "2025-06-01",
            "--to",
            "2025-06-02",
        ],
    );
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("unknown period type `hourly`"));
    std::fs::remove_file(file).ok();
}

#[test]
fn commands_refuse_an_unreachable_or_unmigrated_database() {
    let output = worker(
        "postgres://root@127.0.0.1:1/capstats",
        &["seed-demo", "--instances", "1"],
    );
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.starts_with("capstats-worker: connecting to DATABASE_URL: "),
        "{stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");

    let empty = test_support::TestDatabase::new();
    {
        use diesel::connection::SimpleConnection;
        let mut connection = empty.connection();
        connection
            .batch_execute("DROP TABLE __diesel_schema_migrations")
            .unwrap();
    }
    let output = worker(&empty.url(), &["seed-demo", "--instances", "1"]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("the database schema is older than this build")
            && stderr.contains("run `capstats-api migrate`"),
        "{stderr}"
    );
}

#[test]
fn seed_demo_writes_the_requested_shape() {
    let database = test_support::TestDatabase::new();
    let output = worker(
        &database.url(),
        &[
            "seed-demo",
            "--instances",
            "2",
            "--databases-per-instance",
            "3",
            "--days",
            "30",
        ],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(
        stdout.starts_with("seeded 2 instances × 3 databases × 30 days ending "),
        "{stdout}"
    );
}
