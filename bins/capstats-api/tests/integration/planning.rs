//! Capacity planning over HTTP: forecasts and days until full, the growth leaderboard in both
//! directions with paging and ties, capacity limits, and their validation — on histories whose
//! answers are known (exact straight lines).

use chrono::{Days, NaiveDate, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::TestApp;
use capstats_capacity_model::{
    AggregationLevel, DatabaseSizeSample, InstanceId, Period, PeriodType,
};

/// Days of history, ending yesterday: more than a year, so that weeks have a year-earlier week.
const DAYS: u64 = 400;

/// The databases: (instance index, name, size on the first day, MB per day).
const DATABASES: [(usize, &str, i64, i64); 5] = [
    (0, "fast", 10_000, 100),
    (0, "shrinking", 20_000, -50),
    (0, "flat", 5_000, 0),
    (1, "steady", 500, 10),
    // Ties with "steady" on growth in MB; ranked after it by instance id, then name.
    (1, "twin", 3_000, 10),
];

fn yesterday() -> NaiveDate {
    Utc::now().date_naive() - Days::new(1)
}

fn first_day() -> NaiveDate {
    yesterday() - Days::new(DAYS - 1)
}

/// The size of database `index` of [`DATABASES`] on `date`.
fn size_on(index: usize, date: NaiveDate) -> i64 {
    let (_, _, start, slope) = DATABASES[index];
    start + slope * (date - first_day()).num_days()
}

/// Two instances with the databases of [`DATABASES`], sampled every day of the history, and
/// their daily and weekly aggregates.
fn seed(url: &str) {
    use diesel::Connection;
    let mut connection = diesel::PgConnection::establish(url).unwrap();
    let instances: Vec<InstanceId> = ["planning-a", "planning-b"]
        .iter()
        .map(|name| {
            capstats_store::instances::create_instance(
                &mut connection,
                &capstats_store::instances::NewInstance {
                    name: (*name).to_owned(),
                    db_type: capstats_capacity_model::DbType::Postgresql,
                    host: None,
                    port: None,
                    description: None,
                },
            )
            .unwrap()
            .id
        })
        .collect();
    let mut samples = Vec::new();
    for offset in 0..DAYS {
        let date = first_day() + Days::new(offset);
        for (index, (instance, name, _, _)) in DATABASES.iter().enumerate() {
            samples.push(capstats_store::samples::NewDatabaseSample {
                sample: DatabaseSizeSample {
                    instance_id: instances[*instance],
                    database_name: (*name).to_owned(),
                    collected_date: date,
                    size_mb: size_on(index, date),
                    data_size_mb: None,
                    log_size_mb: None,
                },
                collected_at: Utc::now(),
            });
        }
    }
    capstats_store::samples::write_database_samples(&mut connection, &samples).unwrap();
    let pool = capstats_store::build_pool(url, 2, std::time::Duration::from_secs(10)).unwrap();
    for period_type in [PeriodType::Daily, PeriodType::Weekly] {
        capstats_services::backfill::run_backfill(
            &pool,
            &capstats_services::backfill::BackfillRequest {
                period_type,
                from: first_day(),
                to: yesterday(),
                levels: AggregationLevel::ALL.to_vec(),
                triggered_by: "test".into(),
                sync_type: capstats_sync_session::SyncType::ManualTask,
                parallelism: 1,
                samples_kept_from: None,
                today: chrono::Utc::now().date_naive(),
            },
            &capstats_services::NoProgress,
        )
        .unwrap();
    }
}

/// The rounded (half away from zero) mean size of database `index` over the days of `period`
/// up to yesterday: the stored weekly average.
fn weekly_average(index: usize, period: Period) -> i64 {
    let days: Vec<NaiveDate> = period
        .start()
        .iter_days()
        .take_while(|day| *day <= period.end() && *day <= yesterday())
        .filter(|day| *day >= first_day())
        .collect();
    let sum: i64 = days.iter().map(|day| size_on(index, *day)).sum();
    let count = days.len() as i64;
    // Sizes are positive: half away from zero is half up.
    (2 * sum + count) / (2 * count)
}

fn names(body: &Value) -> Vec<String> {
    body["data"]["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {body}"))
        .iter()
        .map(|item| item["database_name"].as_str().unwrap().to_owned())
        .collect()
}

fn item<'a>(body: &'a Value, name: &str) -> &'a Value {
    body["data"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["database_name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {body}"))
}

fn assert_field_error(status: StatusCode, body: &Value, field: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors: {body}"))
        .iter()
        .filter_map(|error| error["field"].as_str())
        .collect();
    assert!(fields.contains(&field), "{field} not named: {body}");
}

/// Each `(query, field)` of `cases` sent to `path` answers 400 naming `field`.
async fn assert_each_refused(
    app: &TestApp,
    client: &reqwest::Client,
    path: &str,
    cases: &[(&str, &str)],
) {
    for (query, field) in cases {
        let (status, body) = app.get(client, &format!("{path}?{query}")).await;
        assert_field_error(status, &body, field);
    }
}

#[actix_web::test]
async fn forecasts_project_known_lines_and_count_the_days_until_full() {
    let app = TestApp::spawn_seeded(seed, |_| {}).await;
    let (admin, csrf) = app.login("admin").await;
    let (viewer, viewer_csrf) = app.login("viewer").await;

    // The databases' inventory ids, and a limit on "fast" that its line reaches in 10 days:
    // fitted today (one day after the last sample) at last + 100, then 100 MB a day.
    let options = app.get_ok(&viewer, "/databases/options").await;
    let id_of = |name: &str| {
        options["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|database| database["database_name"] == name)
            .unwrap()["id"]
            .as_i64()
            .unwrap()
    };
    let fast_last = size_on(0, yesterday());
    // Half a day short of ten days' growth, so that no rounding of the fit can move the day.
    let limit = fast_last + 100 + 950;
    let path = format!("/databases/{}/capacity-limit", id_of("fast"));
    let (status, body) = app
        .put(
            &viewer,
            &viewer_csrf,
            &path,
            json!({"capacity_limit_mb": limit}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "only admins set limits: {body}"
    );
    for bad in [
        json!({"capacity_limit_mb": 0}),
        json!({"capacity_limit_mb": -5}),
        json!({"capacity_limit_mb": 1.5}),
        json!({"capacity_limit_mb": "1000"}),
        json!({}),
    ] {
        let (status, body) = app.put(&admin, &csrf, &path, bad).await;
        assert_field_error(status, &body, "capacity_limit_mb");
    }
    let (status, body) = app
        .put(
            &admin,
            &csrf,
            "/databases/999999/capacity-limit",
            json!({"capacity_limit_mb": 5}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = app
        .put(&admin, &csrf, &path, json!({"capacity_limit_mb": limit}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["capacity_limit_mb"], limit);
    // "shrinking" gets a limit it never reaches (written as JSON Schema's integer allows).
    let shrinking_path = format!("/databases/{}/capacity-limit", id_of("shrinking"));
    let (status, body) = app
        .put(
            &admin,
            &csrf,
            &shrinking_path,
            json!({"capacity_limit_mb": 30_000.0}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["capacity_limit_mb"], 30_000);

    let body = app
        .get_ok(&viewer, "/capacity/databases/forecast?horizon_days=30")
        .await;
    assert_eq!(body["data"]["total"], 5, "{body}");
    // Fewest days until full first, the rest by instance id and name.
    assert_eq!(
        names(&body),
        ["fast", "flat", "shrinking", "steady", "twin"]
    );
    let fast = item(&body, "fast");
    assert_eq!(fast["published"], true, "{fast}");
    assert_eq!(fast["slope_mb_per_day"], 100.0);
    assert_eq!(fast["r_squared"], 1.0);
    assert_eq!(fast["fitted_size_mb"], fast_last + 100);
    assert_eq!(fast["projected_size_mb"], fast_last + 100 + 3_000);
    assert_eq!(fast["capacity_limit_mb"], limit);
    assert_eq!(fast["days_until_full"], 10);
    assert_eq!(
        fast["points"], 89,
        "the 90-day window ending today holds 89 sampled days"
    );
    assert!(fast["lower_mb"].as_i64().unwrap() <= fast["projected_size_mb"].as_i64().unwrap());
    let shrinking = item(&body, "shrinking");
    assert_eq!(shrinking["slope_mb_per_day"], -50.0);
    assert_eq!(
        shrinking["days_until_full"],
        Value::Null,
        "a shrinking line never fills up"
    );
    assert_eq!(
        item(&body, "flat")["published"],
        true,
        "a flat line fits perfectly"
    );

    // Only the keys with a limit, each as the whole list shows it; at the instance level no
    // instance has one.
    let limited = app
        .get_ok(
            &viewer,
            "/capacity/databases/forecast?horizon_days=30&with_capacity_limit=true",
        )
        .await;
    assert_eq!(limited["data"]["total"], 2, "{limited}");
    assert_eq!(names(&limited), ["fast", "shrinking"]);
    for name in ["fast", "shrinking"] {
        assert_eq!(item(&limited, name), item(&body, name));
    }
    let none = app
        .get_ok(
            &viewer,
            "/capacity/instances/forecast?with_capacity_limit=true",
        )
        .await;
    assert_eq!(none["data"]["total"], 0, "{none}");
    let every = app
        .get_ok(
            &viewer,
            "/capacity/databases/forecast?horizon_days=30&with_capacity_limit=false",
        )
        .await;
    assert_eq!(every["data"]["total"], 5, "{every}");
    let (status, refused) = app
        .get(
            &viewer,
            "/capacity/databases/forecast?with_capacity_limit=maybe",
        )
        .await;
    assert_field_error(status, &refused, "with_capacity_limit");

    // Past half the points' span the projection is withheld, and says why.
    let body = app
        .get_ok(&viewer, "/capacity/databases/forecast?horizon_days=60")
        .await;
    let fast = item(&body, "fast");
    assert_eq!(fast["published"], false);
    assert_eq!(fast["withheld_reason"], "horizon_too_long");
    assert_eq!(fast["projected_size_mb"], Value::Null);
    assert_eq!(fast["days_until_full"], Value::Null);
    assert!(
        fast["withheld_detail"]
            .as_str()
            .is_some_and(|text| !text.is_empty())
    );
    // Too few points: a forecast made 100 days ago sees 10 sampled days.
    let early = first_day() + Days::new(10);
    let body = app
        .get_ok(
            &viewer,
            &format!("/capacity/databases/forecast?as_of={early}&database_name=fast"),
        )
        .await;
    assert_eq!(
        item(&body, "fast")["withheld_reason"],
        "too_few_points",
        "{body}"
    );

    // Filters and paging.
    let body = app
        .get_ok(&viewer, "/capacity/databases/forecast?database_name=twin")
        .await;
    assert_eq!(names(&body), ["twin"]);
    let body = app
        .get_ok(&viewer, "/capacity/databases/forecast?limit=2&page=2")
        .await;
    assert_eq!(names(&body), ["shrinking", "steady"]);
    assert_eq!(body["data"]["pages"], 3);

    // Instance level: the totals (a: 35,000 + 50 MB a day; b: 3,500 + 20), and a limit on
    // the instance set, refused and cleared through the inventory API.
    let body = app.get_ok(&viewer, "/instances").await;
    let instance_a = body["data"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|instance| instance["name"] == "planning-a")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let total_last: i64 = (0..3).map(|index| size_on(index, yesterday())).sum();
    let instance_path = format!("/instances/{instance_a}");
    let (status, body) = app
        .put(
            &admin,
            &csrf,
            &instance_path,
            json!({"capacity_limit_mb": 0}),
        )
        .await;
    assert_field_error(status, &body, "capacity_limit_mb");
    let instance_limit = total_last + 50 + 50 * 20 - 25;
    let (status, body) = app
        .put(
            &admin,
            &csrf,
            &instance_path,
            json!({"capacity_limit_mb": instance_limit}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["capacity_limit_mb"], instance_limit);
    let body = app
        .get_ok(&viewer, "/capacity/instances/forecast?horizon_days=10")
        .await;
    let first = &body["data"]["items"][0];
    assert_eq!(first["instance_id"], instance_a, "{body}");
    assert_eq!(first["database_name"], Value::Null);
    assert_eq!(first["slope_mb_per_day"], 50.0);
    assert_eq!(first["days_until_full"], 20);
    // Describing the instance again leaves the limit; null clears it.
    let (status, body) = app
        .put(&admin, &csrf, &instance_path, json!({"description": "x"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["capacity_limit_mb"], instance_limit);
    let (status, body) = app
        .put(
            &admin,
            &csrf,
            &instance_path,
            json!({"capacity_limit_mb": null}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["capacity_limit_mb"], Value::Null);

    // Invalid parameters name themselves; unknown ids are 404.
    assert_each_refused(
        &app,
        &viewer,
        "/capacity/databases/forecast",
        &[
            ("horizon_days=0", "horizon_days"),
            ("horizon_days=3661", "horizon_days"),
            ("as_of=yesterday", "as_of"),
            ("page=0", "page"),
        ],
    )
    .await;
    let (status, _) = app
        .get(&viewer, "/capacity/instances/forecast?instance_id=999999")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .get(&viewer, "/capacity/databases/forecast?database_id=999999")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.stop().await;
}

#[actix_web::test]
async fn the_growth_leaderboard_ranks_both_ways_with_ties_paging_and_partial_periods() {
    let app = TestApp::spawn_seeded(seed, |_| {}).await;
    let (viewer, _) = app.login("viewer").await;
    let base = "/capacity/databases/growth?period_type=weekly&periods=4";

    let body = app.get_ok(&viewer, base).await;
    assert_eq!(body["data"]["total"], 5);
    // Growth in MB, largest first; steady and twin tie at 10 MB a day and go by name.
    assert_eq!(
        names(&body),
        ["fast", "steady", "twin", "flat", "shrinking"]
    );
    // The numbers: the first week of the window (four weeks ending with this one) and the
    // last one with samples, as stored.
    let today = Utc::now().date_naive();
    let this_week = Period::containing(PeriodType::Weekly, today);
    let first_week = this_week.previous().previous().previous();
    let last_week = Period::containing(PeriodType::Weekly, yesterday());
    let fast = item(&body, "fast");
    let (first, last) = (weekly_average(0, first_week), weekly_average(0, last_week));
    assert_eq!(fast["first_period_start"], first_week.start().to_string());
    assert_eq!(fast["last_period_start"], last_week.start().to_string());
    assert_eq!(fast["first_size_mb"], first);
    assert_eq!(fast["last_size_mb"], last);
    assert_eq!(fast["growth_mb"], last - first);
    // Each item's forecast is its key's forecast in the full list (the page fits its own
    // databases only).
    let forecasts = app
        .get_ok(&viewer, "/capacity/databases/forecast?horizon_days=30")
        .await;
    for entry in body["data"]["items"].as_array().unwrap() {
        let name = entry["database_name"].as_str().unwrap();
        let forecast = item(&forecasts, name);
        for (field, value) in forecast.as_object().unwrap() {
            assert_eq!(&entry[field], value, "{name} {field}");
        }
    }
    let percent = capstats_aggregation_core::metrics::growth_percent(first, last).unwrap();
    assert_eq!(
        fast["growth_percent"].as_f64(),
        percent.to_string().parse::<f64>().ok()
    );
    // The last week is partial while it has not ended (this week), complete otherwise.
    let days_so_far = last_week
        .start()
        .iter_days()
        .take_while(|day| *day <= yesterday())
        .count();
    assert_eq!(fast["last_data_count"], days_so_far);
    assert_eq!(fast["is_partial"], last_week.end() >= today, "{fast}");
    assert_eq!(
        fast["last_expected_count"],
        if last_week.end() >= today {
            (today - last_week.start()).num_days() + 1
        } else {
            7
        }
    );
    // Lists and series carry the same completeness.
    let body = app
        .get_ok(
            &viewer,
            "/capacity/databases?period_type=weekly&database_name=fast&limit=2",
        )
        .await;
    let newest = &body["data"]["items"][0];
    assert_eq!(newest["period_start"], last_week.start().to_string());
    assert_eq!(newest["is_partial"], fast["is_partial"]);
    assert_eq!(newest["expected_count"], fast["last_expected_count"]);
    assert_eq!(body["data"]["items"][1]["is_partial"], false, "{body}");
    assert_eq!(body["data"]["items"][1]["expected_count"], 7);
    // Year over year: the week before the newest against the week 52 weeks before it, exact.
    let complete_week = last_week.previous();
    let year_earlier = complete_week.year_earlier().unwrap();
    let (now, then) = (
        weekly_average(0, complete_week),
        weekly_average(0, year_earlier),
    );
    let compared = &body["data"]["items"][1];
    assert_eq!(compared["period_start"], complete_week.start().to_string());
    assert_eq!(compared["yoy_change_mb"], now - then);
    assert_eq!(now - then, 100 * 364, "a year of 100 MB a day");
    let yoy_percent = capstats_aggregation_core::metrics::growth_percent(then, now).unwrap();
    assert_eq!(
        compared["yoy_change_percent"].as_f64(),
        yoy_percent.to_string().parse::<f64>().ok()
    );
    let body = app.get_ok(&viewer,
            "/capacity/databases/series?period_type=weekly&periods=3&database_name=fast&metric=yoy_change_percent").await;
    assert_eq!(body["data"]["unit"], "%");
    let position = body["data"]["labels"]
        .as_array()
        .unwrap()
        .iter()
        .position(|label| label == &Value::from(complete_week.start().to_string()))
        .expect("the complete week is among the labels");
    assert_eq!(
        body["data"]["series"][0]["values"][position].as_f64(),
        compared["yoy_change_percent"].as_f64(),
        "{body}"
    );
    // Daily rows have no year-over-year change.
    let body = app
        .get_ok(
            &viewer,
            "/capacity/databases?period_type=daily&database_name=fast&limit=1",
        )
        .await;
    assert_eq!(body["data"]["items"][0]["yoy_change_mb"], Value::Null);
    let body = app
        .get_ok(
            &viewer,
            "/capacity/databases/series?period_type=weekly&periods=3&database_name=fast",
        )
        .await;
    let line = &body["data"]["series"][0];
    let this_week_has_data = last_week == this_week;
    assert_eq!(
        line["partial"],
        json!([false, false, this_week_has_data]),
        "{body}"
    );
    assert_eq!(body["data"]["expected_counts"][0], 7);
    assert_eq!(line["data_counts"][0], 7);
    // Forecast fields come with every item.
    assert_eq!(fast["slope_mb_per_day"], 100.0);
    assert_eq!(fast["published"], true);

    // Top shrinkers: the same ranking reversed, ties still by key.
    let body = app.get_ok(&viewer, &format!("{base}&order=asc")).await;
    assert_eq!(
        names(&body),
        ["shrinking", "flat", "steady", "twin", "fast"]
    );
    // By percent: steady grows 10 MB a day on about 1,450 MB, fast 100 on 19,500, twin 10 on
    // 3,950.
    let body = app
        .get_ok(&viewer, &format!("{base}&sort=growth_percent"))
        .await;
    assert_eq!(
        names(&body),
        ["steady", "fast", "twin", "flat", "shrinking"]
    );
    let steady: f64 = item(&body, "steady")["growth_percent"].as_f64().unwrap();
    let twin: f64 = item(&body, "twin")["growth_percent"].as_f64().unwrap();
    assert!(steady > twin, "{body}");
    // Paging keeps the order.
    let body = app.get_ok(&viewer, &format!("{base}&limit=2&page=2")).await;
    assert_eq!(names(&body), ["twin", "flat"]);
    assert_eq!(body["data"]["has_next"], true);
    // By days until full: no limits set, so every key ties and goes by key.
    let body = app
        .get_ok(&viewer, &format!("{base}&sort=days_until_full"))
        .await;
    assert_eq!(
        names(&body),
        ["fast", "flat", "shrinking", "steady", "twin"]
    );

    // Instance level: a grows 50 MB a day, b 20.
    let body = app
        .get_ok(
            &viewer,
            "/capacity/instances/growth?period_type=weekly&periods=4",
        )
        .await;
    let order: Vec<&str> = body["data"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["instance_name"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["planning-a", "planning-b"]);

    assert_each_refused(
        &app,
        &viewer,
        "/capacity/databases/growth",
        &[
            ("sort=size", "sort"),
            ("order=sideways", "order"),
            ("periods=0", "periods"),
            ("period_type=hourly", "period_type"),
            ("horizon_days=0", "horizon_days"),
        ],
    )
    .await;
    let (status, _) = app
        .get(&viewer, "/capacity/databases/growth?instance_id=999999")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.stop().await;
}
