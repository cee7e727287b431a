//! CSV exports over HTTP: every exportable view answers `format=csv` and `Accept: text/csv`
//! with the rows, filters and order of its JSON, read back with a real CSV reader; paging
//! parameters and unknown formats are refused by name; the row bound answers before anything
//! is written; and an export far larger than memory streams in flat memory from the real
//! binary.

use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde_json::Value;

use crate::common::{ApiProcess, PASSWORD, TestApp};

/// A CSV answer: its headers and its records by column name.
struct CsvAnswer {
    content_type: String,
    file_name: String,
    header: Vec<String>,
    rows: Vec<csv::StringRecord>,
    bytes: Vec<u8>,
}

impl CsvAnswer {
    /// The values of `column`, in row order.
    fn column(&self, column: &str) -> Vec<String> {
        let index = self
            .header
            .iter()
            .position(|name| name == column)
            .unwrap_or_else(|| panic!("no column {column} in {:?}", self.header));
        self.rows.iter().map(|row| row[index].to_owned()).collect()
    }
}

/// GETs `path` (under `/api/v1`) with `accept`, expecting a CSV file.
async fn csv_of(app: &TestApp, client: &Client, path: &str, accept: Option<&str>) -> CsvAnswer {
    let mut request = client.get(format!("{}{path}", app.base));
    if let Some(accept) = accept {
        request = request.header("Accept", accept);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|value| value.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let content_type = header("content-type");
    let disposition = header("content-disposition");
    let bytes = response.bytes().await.unwrap().to_vec();
    assert_eq!(
        status,
        StatusCode::OK,
        "{path}: {}",
        String::from_utf8_lossy(&bytes)
    );
    let file_name = disposition
        .strip_prefix("attachment; filename=\"")
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or_else(|| panic!("{path}: Content-Disposition {disposition:?}"))
        .to_owned();
    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    let header = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = reader
        .records()
        .collect::<Result<Vec<_>, _>>()
        .unwrap_or_else(|error| panic!("{path}: not CSV: {error}"));
    CsvAnswer {
        content_type,
        file_name,
        header,
        rows,
        bytes,
    }
}

/// The `field` of each item of a JSON list answer, as text (`""` for null).
fn json_column(items: &Value, field: &str) -> Vec<String> {
    items
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {items}"))
        .iter()
        .map(|item| match &item[field] {
            Value::Null => String::new(),
            Value::String(text) => text.clone(),
            other => other.to_string(),
        })
        .collect()
}

/// A JSON percent as the files write it (two decimals).
fn two_decimals(values: Vec<String>) -> Vec<String> {
    values
        .into_iter()
        .map(|value| {
            if value.is_empty() {
                value
            } else {
                format!("{:.2}", value.parse::<f64>().unwrap())
            }
        })
        .collect()
}

#[actix_web::test]
async fn every_view_exports_the_rows_filters_and_order_of_its_json() {
    let app = TestApp::spawn(1000).await;
    let (viewer, _) = app.login("viewer").await;
    let today = chrono::Utc::now().date_naive();

    // The lists: every row of the filter, in the list's order, its values as in the JSON.
    for (level, keys) in [
        ("instances", vec!["instance_id", "period_start"]),
        (
            "databases",
            vec!["instance_id", "database_name", "period_start"],
        ),
    ] {
        let query = "period_type=weekly&db_type=mysql&db_type=postgresql&time_range=60";
        let json = app
            .get_ok(&viewer, &format!("/capacity/{level}?{query}&get_all=true"))
            .await;
        let items = &json["data"]["items"];
        assert!(
            items.as_array().unwrap().len() > 3,
            "the seeded fleet has weekly rows: {json}"
        );
        let exported = csv_of(
            &app,
            &viewer,
            &format!("/capacity/{level}?{query}&format=csv"),
            None,
        )
        .await;
        assert_eq!(exported.content_type, "text/csv; charset=utf-8");
        let level_name = level.trim_end_matches('s');
        assert!(
            exported
                .file_name
                .starts_with(&format!("capstats-{level_name}-aggregates-weekly-")),
            "{}",
            exported.file_name
        );
        for key in keys {
            assert_eq!(
                exported.column(key),
                json_column(items, key),
                "{level} {key}"
            );
        }
        let (size, change) = if level == "instances" {
            ("total_size_mb", "total_size_change_percent")
        } else {
            ("avg_size_mb", "size_change_percent")
        };
        assert_eq!(exported.column(size), json_column(items, size));
        assert_eq!(
            exported.column(change),
            two_decimals(json_column(items, change)),
            "percents have two decimals"
        );
        assert_eq!(
            exported.column("is_partial"),
            json_column(items, "is_partial")
        );
        // `Accept: text/csv` is the same file.
        let accepted = csv_of(
            &app,
            &viewer,
            &format!("/capacity/{level}?{query}"),
            Some("application/json;q=0.5, text/csv"),
        )
        .await;
        assert_eq!(accepted.bytes, exported.bytes);
    }

    // A series: one row per line and period, lines in rank order, values as plotted.
    let query = "period_type=weekly&periods=6&top=2&metric=total_size_mb";
    let json = app
        .get_ok(&viewer, &format!("/capacity/instances/series?{query}"))
        .await;
    let exported = csv_of(
        &app,
        &viewer,
        &format!("/capacity/instances/series?{query}&format=csv"),
        None,
    )
    .await;
    let labels: Vec<String> = json["data"]["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|label| label.as_str().unwrap().to_owned())
        .collect();
    let mut expected = Vec::new();
    for (rank, line) in json["data"]["series"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        for (index, value) in line["values"].as_array().unwrap().iter().enumerate() {
            if line["data_counts"][index].is_null() {
                continue;
            }
            expected.push(vec![
                (rank + 1).to_string(),
                line["instance_id"].to_string(),
                labels[index].clone(),
                value.to_string(),
                line["partial"][index].to_string(),
            ]);
        }
    }
    assert!(!expected.is_empty());
    let rows: Vec<Vec<String>> = (0..exported.rows.len())
        .map(|row| {
            ["rank", "instance_id", "period_start", "value", "is_partial"]
                .iter()
                .map(|column| exported.column(column)[row].clone())
                .collect()
        })
        .collect();
    assert_eq!(rows, expected);
    assert_eq!(exported.column("unit")[0], "MB");

    // The growth leaderboard: every key in rank order, or the first `limit`.
    let query = "period_type=weekly&periods=4&sort=growth_percent&order=asc";
    let json = app
        .get_ok(
            &viewer,
            &format!("/capacity/databases/growth?{query}&limit=200"),
        )
        .await;
    let items = &json["data"]["items"];
    let exported = csv_of(
        &app,
        &viewer,
        &format!("/capacity/databases/growth?{query}&format=csv"),
        None,
    )
    .await;
    for column in [
        "instance_id",
        "database_name",
        "growth_mb",
        "days_until_full",
    ] {
        assert_eq!(
            exported.column(column),
            json_column(items, column),
            "{column}"
        );
    }
    assert_eq!(
        exported.column("growth_percent"),
        two_decimals(json_column(items, "growth_percent"))
    );
    let first_two = csv_of(
        &app,
        &viewer,
        &format!("/capacity/databases/growth?{query}&format=csv&limit=2"),
        None,
    )
    .await;
    assert_eq!(
        first_two.column("database_name"),
        exported.column("database_name")[..2].to_vec()
    );

    // Forecasts.
    let json = app
        .get_ok(
            &viewer,
            "/capacity/instances/forecast?horizon_days=10&limit=200",
        )
        .await;
    let exported = csv_of(
        &app,
        &viewer,
        "/capacity/instances/forecast?horizon_days=10&format=csv",
        None,
    )
    .await;
    assert_eq!(
        exported.file_name,
        format!("capstats-instance-forecast-{today}-10d.csv")
    );
    for column in [
        "instance_id",
        "projected_size_mb",
        "published",
        "withheld_reason",
    ] {
        assert_eq!(
            exported.column(column),
            json_column(&json["data"]["items"], column),
            "{column}"
        );
    }

    // The runs and one run's records.
    let json = app.get_ok(&viewer, "/sync-sessions?limit=200").await;
    let exported = csv_of(&app, &viewer, "/sync-sessions?format=csv", None).await;
    assert_eq!(
        exported.column("id"),
        json_column(&json["data"]["items"], "id")
    );
    assert_eq!(
        exported.column("status"),
        json_column(&json["data"]["items"], "status")
    );
    let id = exported.column("id")[0].clone();
    let json = app.get_ok(&viewer, &format!("/sync-sessions/{id}")).await;
    let exported = csv_of(
        &app,
        &viewer,
        &format!("/sync-sessions/{id}?format=csv"),
        None,
    )
    .await;
    assert_eq!(
        exported.file_name,
        format!("capstats-sync-session-{id}-records.csv")
    );
    assert_eq!(
        exported.column("instance_id"),
        json_column(&json["data"]["records"], "instance_id")
    );
    assert!(
        exported
            .column("session_id")
            .iter()
            .all(|value| *value == id)
    );
    app.stop().await;
}

#[actix_web::test]
async fn paging_unknown_formats_and_the_row_bound_are_refused_by_name() {
    let app = TestApp::spawn_with(|settings| {
        settings.login_attempts_per_minute = 1000;
        settings.export_maximum_rows = 20;
    })
    .await;
    let (viewer, _) = app.login("viewer").await;
    for (path, field) in [
        ("/capacity/databases?format=xml", "format"),
        ("/capacity/databases?format=csv&page=2", "page"),
        ("/capacity/databases?format=csv&limit=5", "limit"),
        ("/capacity/instances?format=csv&get_all=true", "get_all"),
        ("/capacity/databases/growth?format=csv&page=2", "page"),
        ("/capacity/instances/forecast?format=csv&limit=0", "limit"),
        ("/sync-sessions?format=csv&limit=5", "limit"),
        // The daily rows of the last 31 days of 3 × 3 databases: more than 20.
        ("/capacity/databases?format=csv", "format"),
    ] {
        let (status, body) = app.get(&viewer, path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        let fields = json_column(&body["errors"], "field");
        assert!(fields.contains(&field.to_owned()), "{path}: {body}");
    }
    let (status, body) = app.get(&viewer, "/capacity/databases?format=csv").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errors"][0]["code"], "too_many_rows", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("at most 20"),
        "{body}"
    );
    // Within the bound the same view exports.
    let exported = csv_of(
        &app,
        &viewer,
        "/capacity/databases?format=csv&time_range=1&end_date=2000-01-01",
        None,
    )
    .await;
    assert!(exported.rows.is_empty(), "a header and no rows");
    assert_eq!(exported.header[0], "instance_id");
    let (status, body) = app.get(&viewer, "/sync-sessions/999999?format=csv").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = app
        .get(
            &app.anonymous(),
            "/capacity/databases?format=csv&time_range=1",
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "exports need a sign-in");
    app.stop().await;
}

/// Rows of the export measured for memory: about 31 MB of CSV, ten times what the memory
/// bound allows to grow.
const LARGE_EXPORT_ROWS: i64 = 300_000;

#[actix_web::test]
async fn a_large_export_streams_in_flat_memory_ends_short_when_cut_and_frees_the_slot_of_a_client_that_leaves()
 {
    let app = TestApp::spawn(1000).await;
    // Daily database rows for 2,000 databases over 100 days, straight into the table.
    let url = app.database.url();
    std::thread::spawn(move || {
        use diesel::{Connection, RunQueryDsl};
        let mut connection = diesel::PgConnection::establish(&url).unwrap();
        capstats_store::partitions::ensure_partitions(
            &mut connection,
            &[capstats_store::partitions::PartitionedTable::DatabaseSizeAggregations],
            (1..=4).map(|month| chrono::NaiveDate::from_ymd_opt(2020, month, 1).unwrap()),
        )
        .unwrap();
        diesel::sql_query(format!(
            "INSERT INTO database_size_aggregations
                 (instance_id, database_name, period_type, period_start, period_end,
                  avg_size_mb, max_size_mb, min_size_mb, data_count, calculated_at,
                  expected_count, is_partial)
             SELECT (SELECT min(id) FROM instances), 'bulk_' || database_number, 'daily',
                    day, day, 1000 + database_number, 1000 + database_number,
                    1000 + database_number, 1, now(), 1, false
             FROM generate_series(1, {}) AS database_number,
                  generate_series(date '2020-01-01', date '2020-04-09', interval '1 day') AS day",
            LARGE_EXPORT_ROWS / 100
        ))
        .execute(&mut connection)
        .unwrap();
    })
    .join()
    .unwrap();
    let log_path =
        std::env::temp_dir().join(format!("capstats-api-export-{}.log", std::process::id()));
    let api = ApiProcess::start_with_log(
        &app.database.url(),
        &[("CAPSTATS_LOG", "info")],
        std::fs::File::create(&log_path).unwrap(),
    )
    .await;
    let client = crate::common::cookie_client();
    let response = client
        .post(format!("{}/auth/login", api.base))
        .json(&serde_json::json!({"username": "viewer", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let export = format!(
        "{}/capacity/databases?format=csv&start_date=2020-01-01&end_date=2020-04-30",
        api.base
    );
    // One small export first, so that lazily allocated buffers count in the baseline.
    let warm = client
        .get(format!("{export}&database_name=bulk_1"))
        .send()
        .await
        .unwrap();
    assert_eq!(warm.status(), StatusCode::OK);
    warm.bytes().await.unwrap();
    let before = api.resident_megabytes();
    let mut response = client.get(&export).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut peak = before;
    let mut bytes = 0_usize;
    let mut lines = 0_usize;
    while let Some(chunk) = response.chunk().await.unwrap() {
        bytes += chunk.len();
        lines += chunk.iter().filter(|byte| **byte == b'\n').count();
        peak = peak.max(api.resident_megabytes());
    }
    assert_eq!(
        lines as i64,
        LARGE_EXPORT_ROWS + 1,
        "every row and the header"
    );
    assert!(bytes > 25_000_000, "{bytes} bytes");
    assert!(
        peak.saturating_sub(before) < 24,
        "resident memory grew from {before} to {peak} MiB while {} MB streamed",
        bytes / 1_000_000
    );

    // The database connection of an export is cut after the first bytes: the status is sent,
    // so the body must end short (an error for the client, never a file that looks whole),
    // and the cause is logged once.
    let mut response = client.get(&export).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.chunk().await.unwrap().expect("a first chunk");
    let terminated = capstats_test_support::count(
        &app.database.url(),
        "SELECT count(pg_terminate_backend(pid)) AS count FROM pg_stat_activity
         WHERE datname = current_database()
           AND query LIKE '%ORDER BY aggregate.period_start DESC%'
           AND query NOT LIKE '%pg_terminate_backend%'",
    );
    assert_eq!(terminated, 1, "the export's query was running");
    let ending = loop {
        match response.chunk().await {
            Ok(Some(_)) => continue,
            Ok(None) => break "a clean end",
            Err(_) => break "an error",
        }
    };
    assert_eq!(
        ending, "an error",
        "a cut export must not end like a whole file"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let failures = loop {
        let log = std::fs::read_to_string(&log_path).unwrap();
        let failures: Vec<String> = log
            .lines()
            .filter(|line| line.contains("the export failed after it started"))
            .map(str::to_owned)
            .collect();
        if !failures.is_empty() || Instant::now() > deadline {
            break failures;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(failures.len(), 1, "logged once: {failures:?}");
    assert!(
        capstats_test_support::names_a_lost_connection(&failures[0]),
        "with its real cause: {}",
        failures[0]
    );
    assert!(
        failures[0].contains("capstats-database-aggregates-daily-2020-01-01_2020-04-30.csv"),
        "in the export's span, which names its file: {}",
        failures[0]
    );

    // Exports may hold half the pool (the binary's default of 8 connections: 4 at once).
    // Clients that stop reading keep theirs; one more is asked to come back later.
    let mut stalled = Vec::new();
    for _ in 0..4 {
        let response = client.get(&export).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        stalled.push(response);
    }
    let refused = client.get(&export).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key("retry-after"));
    let refusal: Value = refused.json().await.unwrap();
    assert_eq!(refusal["message_code"], "RATE_LIMIT_EXCEEDED", "{refusal}");
    assert!(
        refusal["message"]
            .as_str()
            .unwrap()
            .starts_with("too many exports are running"),
        "{refusal}"
    );
    // JSON reads go on meanwhile.
    let listed = client
        .get(format!("{}/capacity/databases?limit=5", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), StatusCode::OK);
    // The clients leave: their slots come back once the server notices.
    drop(stalled);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let again = client
            .get(format!("{export}&database_name=bulk_2"))
            .send()
            .await
            .unwrap();
        if again.status() == StatusCode::OK {
            assert_eq!(again.text().await.unwrap().lines().count(), 101);
            break;
        }
        assert_eq!(again.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(
            Instant::now() < deadline,
            "the slots of clients that left never came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(api);
    let _ = std::fs::remove_file(&log_path);
    app.stop().await;
}
