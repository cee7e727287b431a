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
    let database = crate::common::database();
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
    let database = crate::common::database();
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
    // A pool too small for the runs, the scheduler and the heartbeats: refused at start.
    let output = Command::new(env!("CARGO_BIN_EXE_capstats-worker"))
        .arg("run")
        .env("DATABASE_URL", database.url())
        .env("CAPSTATS_LOG", "warn")
        .env("CAPSTATS_DATABASE_POOL_SIZE", "4")
        .env("CAPSTATS_WORKER_CONCURRENCY", "2")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains(
            "CAPSTATS_DATABASE_POOL_SIZE (4) must be at least CAPSTATS_WORKER_CONCURRENCY + 3 (5)"
        ),
        "{}",
        text(&output.stderr)
    );
    std::fs::remove_file(file).ok();
}

/// Runs `arguments` against a database that cannot be reached at `port` and checks the one
/// line it fails with: host, port and reason, never the password, within `within`.
fn assert_fails_fast_and_cleanly(port: u16, arguments: &[&str], within: std::time::Duration) {
    let url = format!("postgres://root:secret-password@127.0.0.1:{port}/capstats");
    let started = std::time::Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_capstats-worker"))
        .args(arguments)
        .env("DATABASE_URL", &url)
        .env("CAPSTATS_TIMEZONE", "UTC")
        .env("CAPSTATS_DATABASE_CONNECT_TIMEOUT_SECONDS", "2")
        .output()
        .expect("the binary runs");
    let took = started.elapsed();
    assert!(!output.status.success(), "{arguments:?}");
    let stderr = text(&output.stderr);
    assert!(
        stderr.starts_with("capstats-worker: connecting to DATABASE_URL: "),
        "{arguments:?}: {stderr}"
    );
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "{arguments:?}: {stderr}"
    );
    assert!(
        stderr.contains("\"127.0.0.1\"") && stderr.contains(&format!("port {port}")),
        "{arguments:?}: {stderr}"
    );
    assert!(!stderr.contains("secret-password"), "{stderr}");
    assert!(took < within, "{arguments:?} took {took:?}: {stderr}");
}

#[test]
fn commands_refuse_an_unreachable_or_unmigrated_database() {
    // Nothing listens: refused at once, by commands with one connection or with a pool.
    let commands: [&[&str]; 3] = [
        &["seed-demo", "--instances", "1"],
        &[
            "aggregate",
            "--period-type",
            "daily",
            "--from",
            "2025-01-01",
            "--to",
            "2025-01-01",
        ],
        &["collect"],
    ];
    for arguments in commands {
        assert_fails_fast_and_cleanly(1, arguments, std::time::Duration::from_secs(2));
    }
    // A server that accepts the connection and never answers: given up after the connect
    // timeout (2 s here), not the operating system's minutes.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    for arguments in commands {
        assert_fails_fast_and_cleanly(port, arguments, std::time::Duration::from_secs(6));
    }
    drop(silent);

    let empty = crate::common::database();
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
    let database = crate::common::database();
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

#[test]
fn operators_can_inspect_and_control_schedules_jobs_and_sessions() {
    let database = crate::common::database();
    let url = database.url();
    let ok = |arguments: &[&str]| {
        let output = worker(&url, arguments);
        assert!(
            output.status.success(),
            "{arguments:?}: {}",
            text(&output.stderr)
        );
        text(&output.stdout)
    };
    let fails = |arguments: &[&str]| {
        let output = worker(&url, arguments);
        assert!(!output.status.success(), "{arguments:?} should fail");
        text(&output.stderr)
    };

    let listed = ok(&["schedules", "list"]);
    for name in [
        "aggregate_capacity",
        "refresh_stale_periods",
        "maintain_partitions",
        "prune_job_store",
    ] {
        assert!(listed.contains(name), "{listed}");
    }
    let schedules: serde_json::Value =
        serde_json::from_str(&ok(&["schedules", "list", "--json"])).unwrap();
    let aggregate = schedules
        .as_array()
        .unwrap()
        .iter()
        .find(|schedule| schedule["name"] == "aggregate_capacity")
        .unwrap();
    assert_eq!(aggregate["cron_expression"], "0 4 * * *");
    assert_eq!(aggregate["effective_time_zone"], "UTC");
    assert!(
        aggregate["next_run_at"]
            .as_str()
            .unwrap()
            .ends_with("T04:00:00Z")
    );

    assert_eq!(
        ok(&["schedules", "pause", "aggregate_capacity"]).trim(),
        "schedule aggregate_capacity paused"
    );
    let paused: serde_json::Value =
        serde_json::from_str(&ok(&["schedules", "list", "--json"])).unwrap();
    assert!(paused.as_array().unwrap().iter().any(|schedule| {
        schedule["name"] == "aggregate_capacity"
            && schedule["is_paused"] == true
            && schedule["next_run_at"].is_null()
    }));
    ok(&["schedules", "resume", "aggregate_capacity"]);
    assert_eq!(
        ok(&[
            "schedules",
            "set-cron",
            "aggregate_capacity",
            "30 5 * * 1-5"
        ])
        .trim(),
        "schedule aggregate_capacity now runs at `30 5 * * 1-5`"
    );
    let error = fails(&["schedules", "set-cron", "aggregate_capacity", "every day"]);
    assert!(
        error.contains("invalid cron expression `every day`"),
        "{error}"
    );
    let error = fails(&["schedules", "pause", "nope"]);
    assert!(error.contains("schedule `nope` not found"), "{error}");
    assert_eq!(
        ok(&[
            "schedules",
            "set",
            "refresh_stale_periods",
            "--zone",
            "Europe/Berlin",
            "--misfire",
            "catch_up",
            "--catch-up-limit",
            "5",
        ])
        .trim(),
        "schedule refresh_stale_periods: `*/5 * * * *` in Europe/Berlin, misfire catch_up (catch-up limit 5)"
    );
    let error = fails(&[
        "schedules",
        "set",
        "refresh_stale_periods",
        "--misfire",
        "later",
        "--catch-up-limit",
        "5000",
    ]);
    assert!(
        error.contains("misfire_policy: unknown misfire policy `later`")
            && error.contains("catch_up_limit: 5000 is not between 1 and 1000"),
        "{error}"
    );
    ok(&["schedules", "set", "refresh_stale_periods", "--zone", ""]);

    // Preview: the scheduler's own ticks, DST days included (Berlin springs forward on
    // 2026-03-29: 02:30 does not exist and fires at 03:00 CEST, once).
    let preview: serde_json::Value = serde_json::from_str(&ok(&[
        "schedules",
        "preview",
        "aggregate_capacity",
        "--cron",
        "30 2 * * *",
        "--zone",
        "Europe/Berlin",
        "--from",
        "2026-03-28",
        "--days",
        "3",
        "--json",
    ]))
    .unwrap();
    let locals: Vec<&str> = preview["ticks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tick| tick["local"].as_str().unwrap())
        .collect();
    assert_eq!(
        locals,
        [
            "2026-03-28T02:30:00+01:00",
            "2026-03-29T03:00:00+02:00",
            "2026-03-30T02:30:00+02:00"
        ]
    );
    assert_eq!(preview["ticks"][1]["utc"], "2026-03-29T01:00:00Z");
    let table = ok(&[
        "schedules",
        "preview",
        "aggregate_capacity",
        "--zone",
        "America/New_York",
        "--from",
        "2026-11-01",
    ]);
    assert!(
        table.contains("schedule aggregate_capacity `30 5 * * 1-5` in America/New_York: 0 ticks"),
        "a Sunday: {table}"
    );
    let error = fails(&[
        "schedules",
        "preview",
        "aggregate_capacity",
        "--zone",
        "Mars/Olympus",
        "--from",
        "2026-11-01",
    ]);
    assert!(
        error.contains("zone: unknown time zone `Mars/Olympus`"),
        "{error}"
    );
    // The list shows times in the schedule's zone, with the offset.
    diesel::connection::SimpleConnection::batch_execute(
        &mut database.connection(),
        "UPDATE schedules SET time_zone = 'Asia/Kolkata' WHERE name = 'aggregate_capacity'",
    )
    .unwrap();
    let listed = ok(&["schedules", "list"]);
    let line = listed
        .lines()
        .find(|line| line.contains("aggregate_capacity"))
        .unwrap();
    assert!(
        line.contains("Asia/Kolkata") && line.contains("05:30:00 +05:30"),
        "{listed}"
    );
    diesel::connection::SimpleConnection::batch_execute(
        &mut database.connection(),
        "UPDATE schedules SET time_zone = NULL WHERE name = 'aggregate_capacity'",
    )
    .unwrap();

    // Run now: a job and a pending session, which a kill closes.
    let enqueued = ok(&["schedules", "run", "aggregate_capacity"]);
    let job_id = enqueued
        .split_whitespace()
        .nth(5)
        .unwrap()
        .trim_end_matches(';')
        .to_owned();
    assert!(enqueued.trim().ends_with("session 1"), "{enqueued}");
    // The same request again gets its own job and session; with --json for scripts.
    let again: serde_json::Value =
        serde_json::from_str(&ok(&["schedules", "run", "aggregate_capacity", "--json"])).unwrap();
    assert_eq!(again["session_id"], 2);
    assert_eq!(again["existing"], false);
    let second_job = again["job_id"].as_str().unwrap().to_owned();
    assert_ne!(second_job, job_id);
    assert!(ok(&["jobs", "kill", &second_job]).contains("session 2 asked to stop"));
    let jobs: serde_json::Value = serde_json::from_str(&ok(&["jobs", "list", "--json"])).unwrap();
    let jobs: Vec<&serde_json::Value> = jobs
        .as_array()
        .unwrap()
        .iter()
        .filter(|job| job["id"] != second_job.as_str())
        .collect();
    assert_eq!(jobs[0]["id"], job_id.as_str());
    assert_eq!(jobs[0]["status"], "Pending");
    assert_eq!(jobs[0]["kind"], "due");
    assert!(ok(&["jobs", "list", "--status", "pending"]).contains(&job_id));
    assert!(!ok(&["jobs", "list", "--status", "done"]).contains(&job_id));
    // A word of the sessions' (or a misspelt queue) is refused naming the flag, not answered
    // with an empty list.
    let refused = fails(&["jobs", "list", "--status", "completed"]);
    assert!(
        refused.contains("--status") && refused.contains("done"),
        "{refused}"
    );
    let refused = fails(&["jobs", "list", "--queue", "aggregation"]);
    assert!(
        refused.contains("--queue") && refused.contains("capstats_aggregation"),
        "{refused}"
    );
    let killed = ok(&["jobs", "kill", &job_id]);
    assert_eq!(
        killed.trim(),
        format!("job {job_id} killed; session 1 asked to stop")
    );
    let session: serde_json::Value =
        serde_json::from_str(&ok(&["sessions", "show", "1", "--json"])).unwrap();
    assert_eq!(session["session"]["status"], "cancelled");
    let error = fails(&["jobs", "kill", &job_id]);
    assert!(error.contains("is Killed and cannot be killed"), "{error}");
    // The retry runs in a session queued for it (the killed one stays cancelled), which equal
    // requests find while the job waits.
    let retried = ok(&["jobs", "retry", &job_id]);
    let queued_id = retried
        .trim()
        .strip_prefix(&format!("job {job_id} will run again, in session "))
        .unwrap_or_else(|| panic!("{retried}"));
    assert_ne!(queued_id, "1");
    let queued: serde_json::Value =
        serde_json::from_str(&ok(&["sessions", "show", queued_id, "--json"])).unwrap();
    assert_eq!(queued["session"]["status"], "pending");
    assert_eq!(queued["session"]["job_id"], job_id.as_str());
    let session: serde_json::Value =
        serde_json::from_str(&ok(&["sessions", "show", "1", "--json"])).unwrap();
    assert_eq!(session["session"]["status"], "cancelled");
    let error = fails(&["jobs", "retry", "01M8CF8CFW1TPR3EZNBW1ET2X9"]);
    assert!(
        error.contains("job 01M8CF8CFW1TPR3EZNBW1ET2X9 not found"),
        "{error}"
    );
    let error = fails(&["jobs", "prune", "--older-than", "a while"]);
    assert!(error.contains("is not a duration"), "{error}");
    assert!(ok(&["jobs", "prune", "--older-than", "7d"]).starts_with("pruned 0 finished jobs"));

    let sessions = ok(&["sessions", "list"]);
    assert!(
        sessions.contains("cancelled") && sessions.contains("manual_task"),
        "{sessions}"
    );
    let shown = ok(&["sessions", "show", "1"]);
    assert!(shown.contains("cli") && shown.contains(&job_id), "{shown}");
    let error = fails(&["sessions", "show", "99"]);
    assert!(error.contains("sync session 99 not found"), "{error}");

    // A backfill queued for the workers, once however often it is asked for.
    let backfill = [
        "aggregate",
        "--period-type",
        "monthly",
        "--from",
        "2026-01-01",
        "--to",
        "2026-03-31",
        "--queue",
    ];
    let queued = ok(&backfill);
    assert!(queued.starts_with("backfill queued as job "), "{queued}");
    let again = ok(&backfill);
    assert!(
        again.starts_with("an equal backfill is already queued or running"),
        "{again}"
    );
    let error = fails(&[
        "aggregate",
        "--period-type",
        "yearly",
        "--from",
        "2026-02-01",
        "--to",
        "2026-03-01",
        "--queue",
    ]);
    assert!(error.contains("no yearly period starts between"), "{error}");
}

#[test]
fn rotate_key_reseals_the_stored_passwords_under_the_new_key() {
    use capstats_collectors::credentials::{CredentialKey, CredentialKeys};
    let database = crate::common::database();
    let mut connection = database.connection();
    let (old_hex, new_hex) = ("0a".repeat(32), "0b".repeat(32));
    let old = CredentialKeys::new(CredentialKey::from_hex(&old_hex).unwrap(), Vec::new());
    let created = capstats_store::instances::create_instance(
        &mut connection,
        &capstats_store::instances::NewInstance {
            name: "sealed-before".into(),
            db_type: capstats_capacity_model::DbType::Postgresql,
            host: Some("db.example.test".into()),
            port: None,
            description: None,
        },
    )
    .unwrap();
    capstats_store::instances::update_instance(
        &mut connection,
        created.id,
        &capstats_store::instances::InstanceChanges {
            connection_password: Some(Some(old.seal(created.id, "kept-secret"))),
            ..Default::default()
        },
    )
    .unwrap();
    // An alert channel sealed under the old key too: its URL and secret move with the rest.
    let rule = capstats_services::alerts::create_rule(
        &mut connection,
        old.current(),
        &capstats_capacity_model::AlertRuleSpec {
            name: "sealed channel".into(),
            level: capstats_capacity_model::AggregationLevel::Instance,
            condition: capstats_capacity_model::AlertCondition {
                metric: capstats_capacity_model::AlertMetric::SizeMb,
                comparison: capstats_capacity_model::Comparison::Above,
                threshold: 1.into(),
                period_type: capstats_capacity_model::PeriodType::Daily,
                periods: 1,
            },
            scope: Default::default(),
            severity: capstats_capacity_model::Severity::Info,
            channels: vec![capstats_capacity_model::AlertChannel {
                kind: capstats_capacity_model::ChannelKind::Dingtalk,
                target: "https://oapi.dingtalk.com/robot/send?access_token=t0ken".into(),
                secret: Some("SECsecret".into()),
            }],
        },
    )
    .unwrap();
    let channel_id = rule.channels[0].id;
    let rotate = |keys: &[(&str, &str)]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_capstats-worker"));
        command
            .args(["credentials", "rotate-key", "--batch-size", "1"])
            .env("DATABASE_URL", database.url())
            .env("CAPSTATS_TIMEZONE", "UTC")
            .env("CAPSTATS_LOG", "warn");
        for (name, value) in keys {
            command.env(name, value);
        }
        command.output().expect("the binary runs")
    };

    let output = rotate(&[
        ("CAPSTATS_CREDENTIAL_KEY", &new_hex),
        ("CAPSTATS_CREDENTIAL_OLD_KEYS", &old_hex),
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("1 stored passwords: 1 re-sealed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("1 alert channels: 1 re-sealed, 0 failed"),
        "{stdout}"
    );
    let again = rotate(&[
        ("CAPSTATS_CREDENTIAL_KEY", &new_hex),
        ("CAPSTATS_CREDENTIAL_OLD_KEYS", &old_hex),
    ]);
    assert!(
        text(&again.stdout).contains("0 re-sealed, 1 already under the current key"),
        "{}",
        text(&again.stdout)
    );
    // The new key alone opens it now.
    let new = CredentialKeys::new(CredentialKey::from_hex(&new_hex).unwrap(), Vec::new());
    let stored = capstats_store::instances::sealed_passwords_after(
        &mut connection,
        capstats_capacity_model::InstanceId(0),
        10,
    )
    .unwrap();
    assert_eq!(
        new.open(created.id, &stored[0].sealed).unwrap(),
        "kept-secret"
    );
    use capstats_collectors::credentials::Binding;
    let channel = &capstats_store::alerts::channels_after(&mut connection, 0, 10).unwrap()[0];
    assert_eq!(channel.id, channel_id);
    assert_eq!(
        new.open_for(
            Binding::AlertChannelTarget(channel_id),
            &channel.sealed_target
        )
        .unwrap(),
        "https://oapi.dingtalk.com/robot/send?access_token=t0ken"
    );
    assert_eq!(
        new.open_for(
            Binding::AlertChannelSecret(channel_id),
            channel.sealed_secret.as_deref().unwrap()
        )
        .unwrap(),
        "SECsecret"
    );

    // Without the key that sealed a password, the command fails and says which instance.
    let unknown = rotate(&[("CAPSTATS_CREDENTIAL_KEY", &"0c".repeat(32))]);
    assert!(!unknown.status.success());
    let stderr = text(&unknown.stderr);
    assert!(
        stderr.contains(&format!("instance {}", created.id)),
        "{stderr}"
    );
    assert!(stderr.contains("CAPSTATS_CREDENTIAL_OLD_KEYS"), "{stderr}");
    let keyless = rotate(&[]);
    assert!(!keyless.status.success());
    assert!(
        text(&keyless.stderr).contains("CAPSTATS_CREDENTIAL_KEY is not set"),
        "{}",
        text(&keyless.stderr)
    );
}

#[test]
fn reports_rank_growth_both_ways_and_forecast_known_lines() {
    let database = crate::common::database();
    // 60 days ending yesterday: orders grows 100 MB a day, logs shrinks 10, users grows 5.
    let yesterday = chrono::Utc::now().date_naive() - chrono::Days::new(1);
    let mut csv =
        "instance_name,db_type,database_name,collected_date,size_mb,data_size_mb,log_size_mb\n"
            .to_owned();
    for day in 0..60_i64 {
        let date = yesterday - chrono::Days::new(59 - day as u64);
        for (instance, name, start, slope) in [
            ("alpha", "orders", 10_000, 100),
            ("alpha", "logs", 5_000, -10),
            ("beta", "users", 100, 5),
        ] {
            csv.push_str(&format!(
                "{instance},mysql,{name},{date},{},,\n",
                start + slope * day
            ));
        }
    }
    let file = write_file("report.csv", &csv);
    let output = worker(
        &database.url(),
        &["import-stats", file.to_str().unwrap(), "--create-instances"],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    std::fs::remove_file(file).ok();
    let from = (yesterday - chrono::Days::new(70)).to_string();
    let to = yesterday.to_string();
    let output = worker(
        &database.url(),
        &[
            "aggregate",
            "--period-type",
            "weekly",
            "--from",
            &from,
            "--to",
            &to,
        ],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));

    let json = |arguments: &[&str]| -> Vec<serde_json::Value> {
        let output = worker(&database.url(), arguments);
        assert!(
            output.status.success(),
            "{arguments:?}: {}",
            text(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
            panic!(
                "{arguments:?} printed no JSON ({error}): {}",
                text(&output.stdout)
            )
        })
    };
    let names = |rows: &[serde_json::Value]| -> Vec<String> {
        rows.iter()
            .map(|row| row["database_name"].as_str().unwrap().to_owned())
            .collect()
    };
    let growth = [
        "report",
        "growth",
        "--period-type",
        "weekly",
        "--periods",
        "4",
        "--json",
    ];
    assert_eq!(names(&json(&growth)), ["orders", "users", "logs"]);
    let mut ascending = growth.to_vec();
    ascending.extend(["--order", "asc"]);
    assert_eq!(names(&json(&ascending)), ["logs", "users", "orders"]);
    let mut by_percent = growth.to_vec();
    by_percent.extend(["--sort", "growth-percent"]);
    let rows = json(&by_percent);
    assert_eq!(names(&rows), ["users", "orders", "logs"]);
    assert!(
        rows.iter()
            .all(|row| row["growth_mb"].is_i64() && row["is_partial"].is_boolean())
    );

    let forecasts = json(&["report", "forecast", "--json"]);
    let orders = forecasts
        .iter()
        .find(|row| row["database_name"] == "orders")
        .unwrap();
    assert_eq!(orders["slope_mb_per_day"], 100.0);
    assert_eq!(orders["r_squared"], 1.0);
    assert_eq!(orders["published"], true);
    // No key has a capacity limit here, so none can fill up.
    assert_eq!(
        json(&["report", "forecast", "--with-capacity-limit", "--json"]),
        Vec::<serde_json::Value>::new()
    );
    let beta = json(&[
        "report",
        "forecast",
        "--level",
        "instance",
        "--instance",
        "beta",
        "--json",
    ]);
    assert_eq!(beta.len(), 1);
    assert_eq!(beta[0]["instance_name"], "beta");
    assert_eq!(beta[0]["database_name"], serde_json::Value::Null);
    assert_eq!(beta[0]["slope_mb_per_day"], 5.0);

    // Tables for people, and an unknown name is an error rather than an empty report.
    let output = worker(
        &database.url(),
        &[
            "report",
            "growth",
            "--period-type",
            "weekly",
            "--periods",
            "4",
        ],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("days until full") && stdout.contains("3 of 3 ranked"),
        "{stdout}"
    );
    let output = worker(
        &database.url(),
        &["report", "forecast", "--instance", "nope"],
    );
    assert!(!output.status.success());
    assert_eq!(
        text(&output.stderr).trim(),
        "capstats-worker: --instance nope: no such instance"
    );
    // Instance rows have no database name: the flag is refused, not dropped.
    let output = worker(
        &database.url(),
        &[
            "report",
            "growth",
            "--level",
            "instance",
            "--database",
            "orders",
        ],
    );
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("--database selects databases"),
        "{}",
        text(&output.stderr)
    );
}

/// The rows of a CSV file, read with a real CSV reader: the header, then each record.
fn csv_rows(bytes: &[u8]) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_reader(bytes);
    let header = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = reader
        .records()
        .map(|record| record.unwrap().iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}

#[test]
fn exported_samples_import_back_to_the_same_samples_and_views_export_to_named_files() {
    let source = crate::common::database();
    let output = worker(
        &source.url(),
        &[
            "seed-demo",
            "--instances",
            "3",
            "--databases-per-instance",
            "4",
            "--days",
            "40",
        ],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let yesterday = chrono::Utc::now().date_naive() - chrono::Days::new(1);
    let from = (yesterday - chrono::Days::new(39)).to_string();

    // Samples out, into a fresh database, and out again: the same file, and the same rows
    // in the sample table.
    let directory = std::env::temp_dir().join(format!("capstats-export-{}", std::process::id()));
    std::fs::create_dir_all(&directory).unwrap();
    let exported = directory.join("samples.csv");
    let output = worker(
        &source.url(),
        &[
            "export",
            "samples",
            "--from",
            &from,
            "--output",
            exported.to_str().unwrap(),
        ],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains("rows written to"),
        "{}",
        text(&output.stderr)
    );
    let first = std::fs::read(&exported).unwrap();
    let (header, rows) = csv_rows(&first);
    assert_eq!(
        header,
        capstats_services::import::COLUMNS
            .map(str::to_owned)
            .to_vec()
    );
    let stored = capstats_test_support::count(
        &source.url(),
        "SELECT count(*) AS count FROM database_size_stats",
    );
    assert_eq!(rows.len() as i64, stored, "every sample");
    let target = crate::common::database();
    let output = worker(
        &target.url(),
        &[
            "import-stats",
            exported.to_str().unwrap(),
            "--create-instances",
        ],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let output = worker(
        &target.url(),
        &["export", "samples", "--from", &from, "--output", "-"],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        text(&output.stdout),
        text(&first),
        "the imported samples export to the same file"
    );
    let samples = "SELECT count(*) AS count FROM (
             SELECT i.name, s.database_name, s.collected_date, s.size_mb, s.data_size_mb,
                    s.log_size_mb
             FROM database_size_stats s JOIN instances i ON i.id = s.instance_id
             EXCEPT
             SELECT * FROM other) difference";
    // Compared in the target database against the source's rows, copied over as text.
    {
        use diesel::{Connection, RunQueryDsl};
        let mut connection = diesel::PgConnection::establish(&target.url()).unwrap();
        diesel::sql_query(
            "CREATE TABLE other (name text, database_name text, collected_date date,
                                 size_mb bigint, data_size_mb bigint, log_size_mb bigint)",
        )
        .execute(&mut connection)
        .unwrap();
        for row in &rows {
            let cell = |index: usize| {
                if row[index].is_empty() {
                    "NULL".to_owned()
                } else {
                    format!("'{}'", row[index].replace('\'', "''"))
                }
            };
            diesel::sql_query(format!(
                "INSERT INTO other VALUES ({}, {}, {}, {}, {}, {})",
                cell(0),
                cell(2),
                cell(3),
                cell(4),
                cell(5),
                cell(6)
            ))
            .execute(&mut connection)
            .unwrap();
        }
    }
    assert_eq!(
        capstats_test_support::count(&target.url(), samples),
        0,
        "no sample differs"
    );

    // A view goes to the file the API would name, in the current directory.
    let output = Command::new(env!("CARGO_BIN_EXE_capstats-worker"))
        .args([
            "aggregate",
            "--period-type",
            "weekly",
            "--from",
            &from,
            "--to",
            &yesterday.to_string(),
        ])
        .env("DATABASE_URL", source.url())
        .env("CAPSTATS_TIMEZONE", "UTC")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let output = Command::new(env!("CARGO_BIN_EXE_capstats-worker"))
        .args([
            "export",
            "aggregates",
            "--level",
            "instance",
            "--period-type",
            "weekly",
            "--from",
            &from,
        ])
        .env("DATABASE_URL", source.url())
        .env("CAPSTATS_TIMEZONE", "UTC")
        .current_dir(&directory)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let today = chrono::Utc::now().date_naive();
    let named = directory.join(format!(
        "capstats-instance-aggregates-weekly-{from}_{today}.csv"
    ));
    let (header, rows) = csv_rows(&std::fs::read(&named).unwrap());
    assert_eq!(header[..3], ["instance_id", "instance_name", "db_type"]);
    let weekly = capstats_test_support::count(
        &source.url(),
        "SELECT count(*) AS count FROM instance_size_aggregations WHERE period_type = 'weekly'",
    );
    assert_eq!(rows.len() as i64, weekly);

    // Past the bound nothing is written, not even a partial file.
    let refused = directory.join("refused.csv");
    let output = Command::new(env!("CARGO_BIN_EXE_capstats-worker"))
        .args([
            "export",
            "samples",
            "--from",
            &from,
            "--output",
            refused.to_str().unwrap(),
        ])
        .env("DATABASE_URL", source.url())
        .env("CAPSTATS_TIMEZONE", "UTC")
        .env("CAPSTATS_EXPORT_MAXIMUM_ROWS", "10")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("an export holds at most 10"),
        "{}",
        text(&output.stderr)
    );
    assert!(!refused.exists());
    assert!(!directory.join("refused.csv.partial").exists());
    std::fs::remove_dir_all(directory).ok();
}

#[test]
fn alert_rules_are_managed_from_json_files() {
    let database = crate::common::database();
    let url = database.url();
    let key = "0d".repeat(32);
    let run = |arguments: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_capstats-worker"))
            .args(arguments)
            .env("DATABASE_URL", &url)
            .env("CAPSTATS_TIMEZONE", "UTC")
            .env("CAPSTATS_LOG", "warn")
            .env("CAPSTATS_CREDENTIAL_KEY", &key)
            .output()
            .expect("the binary runs")
    };
    let rule = write_file(
        "rule.json",
        r#"{"name": "orders grow", "level": "database",
            "condition": {"metric": "growth_percent", "above": 20},
            "scope": {"database_names": ["orders"]},
            "severity": "critical",
            "channels": [{"kind": "wecom", "url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=wecom-key"}]}"#,
    );
    let added = run(&["alerts", "rules", "add", rule.to_str().unwrap()]);
    assert!(added.status.success(), "{}", text(&added.stderr));
    let listed = text(&run(&["alerts", "rules", "list"]).stdout);
    assert!(listed.contains("orders grow"), "{listed}");
    assert!(
        listed.contains("growth_percent > 20 (3 × monthly)"),
        "{listed}"
    );
    assert!(listed.contains("https://qyapi.weixin.qq.com/…"), "{listed}");
    assert!(!listed.contains("wecom-key"), "{listed}");
    let id = capstats_test_support::count(&url, "SELECT max(id) AS count FROM alert_rules");

    // Bad bodies are refused naming each field, and fields a rule does not have too.
    let bad = write_file(
        "bad-rule.json",
        r#"{"name": "x", "level": "instance", "condition": {"metric": "size_mb"},
            "severity": "urgent", "channels": []}"#,
    );
    let refused = run(&["alerts", "rules", "add", bad.to_str().unwrap()]);
    assert!(!refused.status.success());
    let error = text(&refused.stderr);
    for field in ["severity", "condition.above", "channels"] {
        assert!(error.contains(field), "{field}: {error}");
    }
    let stray = write_file(
        "stray-rule.json",
        r#"{"name": "x", "level": "instance", "condition": {"metric": "size_mb", "above": 1, "window": 3},
            "severity": "info", "channels": [{"kind": "email", "to": "dba@example.com"}]}"#,
    );
    let refused = run(&["alerts", "rules", "add", stray.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("condition.window"),
        "{}",
        text(&refused.stderr)
    );
    assert_eq!(
        capstats_test_support::count(&url, "SELECT count(*) FROM alert_rules"),
        1
    );

    // A notification that failed for good is sent again on request, with a new job; one
    // that is not failed is refused by name.
    {
        use diesel::connection::SimpleConnection;
        let mut connection = database.connection();
        connection
            .batch_execute(&format!(
                "INSERT INTO instances (id, name, db_type) OVERRIDING SYSTEM VALUE
                     VALUES (900, 'watched', 'mysql');
                 INSERT INTO alert_events (id, rule_id, instance_id, database_name, state, value,
                     first_seen_at, last_seen_at)
                 VALUES (70, {id}, 900, 'orders', 'open', 25, now(), now());
                 INSERT INTO alert_notifications (id, event_id, channel_id, channel_kind,
                     event_state, idempotency_key, status, attempts, last_error, job_id)
                 SELECT 80, 70, id, 'wecom', 'open', 'k-80', 'failed', 5,
                     'the receiver answered HTTP 502', 'gone'
                 FROM alert_channels WHERE rule_id = {id};
                 INSERT INTO alert_notifications (id, event_id, channel_id, channel_kind,
                     event_state, idempotency_key, status, attempts, job_id)
                 SELECT 81, 70, id, 'wecom', 'open', 'k-81', 'pending', 1,
                     '01JXPRUNEDJOB0000000000000'
                 FROM alert_channels WHERE rule_id = {id};"
            ))
            .unwrap();
    }
    let listed = text(&run(&["alerts", "events"]).stdout);
    assert!(
        listed.contains(
            "#80 open wecom failed (5 attempts; last error: the receiver answered HTTP 502)"
        ),
        "{listed}"
    );
    let retried = run(&["alerts", "retry-notification", "80"]);
    assert!(retried.status.success(), "{}", text(&retried.stderr));
    assert!(
        text(&retried.stdout).contains("notification 80 is pending again; 1 deliveries enqueued"),
        "{}",
        text(&retried.stdout)
    );
    assert_eq!(
        capstats_test_support::count(
            &url,
            "SELECT count(*) FROM alert_notifications n JOIN apalis.jobs j ON j.id = n.job_id
             WHERE n.id = 80 AND n.status = 'pending' AND n.attempts = 0
               AND n.last_error = 'the receiver answered HTTP 502'
               AND j.job_type = 'capstats_alerts'"
        ),
        1
    );
    let again = run(&["alerts", "retry-notification", "81"]);
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("notification 81 is not failed"),
        "{}",
        text(&again.stderr)
    );
    // A pending notification whose job is gone (pruned, or failed before recording an attempt)
    // is released for a new dispatch; one whose job is queued keeps it.
    let released = std::thread::spawn({
        let url = url.clone();
        move || {
            tokio::runtime::Runtime::new().unwrap().block_on(async {
                let pool = capstats_queue::job_store::connect(&url, 1).await.unwrap();
                capstats_queue::job_store::release_notifications_of_ended_jobs(&pool)
                    .await
                    .unwrap()
            })
        }
    })
    .join()
    .unwrap();
    assert_eq!(released, vec![81]);

    let replaced = run(&[
        "alerts",
        "rules",
        "replace",
        &id.to_string(),
        stray.to_str().unwrap(),
    ]);
    assert!(!replaced.status.success());
    let events = run(&["alerts", "events", "--state", "resolved"]);
    assert!(events.status.success(), "{}", text(&events.stderr));
    assert!(
        text(&events.stdout).contains("0 of 0 events"),
        "{}",
        text(&events.stdout)
    );
    let deleted = run(&["alerts", "rules", "delete", &id.to_string()]);
    assert!(deleted.status.success(), "{}", text(&deleted.stderr));
    let again = run(&["alerts", "rules", "delete", &id.to_string()]);
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains(&format!("alert rule {id} not found")),
        "{}",
        text(&again.stderr)
    );
}

#[test]
fn collect_refuses_a_named_instance_it_cannot_read_instead_of_skipping_it() {
    use diesel::RunQueryDsl;
    let database = crate::common::database();
    // A demo instance: a host under .invalid and no connection user.
    let output = worker(&database.url(), &["seed-demo", "--instances", "1"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    #[derive(diesel::QueryableByName)]
    struct Name {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }
    let name = diesel::sql_query("SELECT name FROM instances ORDER BY id LIMIT 1")
        .get_result::<Name>(&mut database.connection())
        .unwrap()
        .name;
    // And one it can read: this machine's PostgreSQL, trusted without a password.
    crate::common::local_postgres_instance(&mut database.connection(), "local-postgres", 5432);
    let output = worker(
        &database.url(),
        &[
            "collect",
            "--instance",
            "local-postgres",
            "--instance",
            &name,
        ],
    );
    assert!(!output.status.success(), "{}", text(&output.stdout));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!("instance `{name}` cannot be collected")),
        "{stderr}"
    );
}
