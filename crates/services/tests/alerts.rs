//! Alert evaluation against a real database: each metric's value equals what the planning
//! views say for the same key, a session is evaluated once, and keys that stop tripping
//! their rule (or stop being watched) resolve with a notification per channel.

use chrono::{Days, Utc};

use capstats_aggregation_core::forecast::ForecastSettings;
use capstats_capacity_model::{
    AggregationLevel, AlertChannel, AlertCondition, AlertMetric, AlertRuleSpec, AlertScope,
    ChannelKind, Comparison, Decimal, InstanceId, PeriodType, Severity,
};
use capstats_collectors::credentials::CredentialKey;
use capstats_services::NoProgress;
use capstats_services::alerts::{create_rule, evaluate_after_session};
use capstats_services::payloads::{AggregationJob, AggregationWork, PAYLOAD_VERSION, Trigger};
use capstats_services::planning::{ForecastOptions, GrowthSort, SortDirection};
use capstats_store::aggregates::{AggregateFilter, PageRequest};
use capstats_store::alerts::{self, EventFilter, StoredEvent};

fn key() -> CredentialKey {
    CredentialKey::from_hex(&"0e".repeat(32)).unwrap()
}

fn rule(
    name: &str,
    level: AggregationLevel,
    condition: AlertCondition,
    scope: AlertScope,
) -> AlertRuleSpec {
    AlertRuleSpec {
        name: name.into(),
        level,
        condition,
        scope,
        severity: Severity::Warning,
        channels: vec![
            AlertChannel {
                kind: ChannelKind::Webhook,
                target: "https://hooks.example.com/capstats".into(),
                secret: Some("s".into()),
            },
            AlertChannel {
                kind: ChannelKind::Email,
                target: "dba@example.com".into(),
                secret: None,
            },
        ],
    }
}

fn condition(metric: AlertMetric, comparison: Comparison, threshold: i64) -> AlertCondition {
    AlertCondition {
        metric,
        comparison,
        threshold: Decimal::from(threshold),
        period_type: if metric == AlertMetric::GrowthPercent {
            PeriodType::Monthly
        } else {
            PeriodType::Daily
        },
        periods: if metric == AlertMetric::GrowthPercent {
            3
        } else {
            1
        },
    }
}

fn events_of(connection: &mut capstats_store::PgConnection, rule_id: i64) -> Vec<StoredEvent> {
    alerts::list_events(
        connection,
        &EventFilter {
            rule_id: Some(rule_id),
            ..EventFilter::default()
        },
        1000,
        0,
    )
    .unwrap()
    .0
}

#[test]
fn evaluation_agrees_with_the_planning_views_runs_once_per_session_and_resolves() {
    let database = capstats_test_support::TestDatabase::new();
    let mut connection = database.connection();
    let today = Utc::now().date_naive();
    let yesterday = today.checked_sub_days(Days::new(1)).unwrap();
    capstats_services::seed::seed_demo(
        &mut connection,
        &capstats_services::seed::SeedOptions {
            instances: 3,
            databases_per_instance: 3,
            days: 120,
            end_date: yesterday,
            seed: 5,
        },
        &NoProgress,
    )
    .unwrap();
    // One more instance whose single database grows 10 MB a day: a line a forecast fits.
    let linear = capstats_store::instances::create_instance(
        &mut connection,
        &capstats_store::instances::NewInstance {
            name: "linear".into(),
            db_type: capstats_capacity_model::DbType::Postgresql,
            host: None,
            port: None,
            description: None,
        },
    )
    .unwrap()
    .id;
    let samples: Vec<_> = (0..120_u64)
        .map(|days_before| capstats_store::samples::NewDatabaseSample {
            sample: capstats_capacity_model::DatabaseSizeSample {
                instance_id: linear,
                database_name: "ledger".into(),
                collected_date: yesterday.checked_sub_days(Days::new(days_before)).unwrap(),
                size_mb: 50_000 - 10 * days_before as i64,
                data_size_mb: None,
                log_size_mb: None,
            },
            collected_at: Utc::now(),
        })
        .collect();
    capstats_store::samples::write_database_samples(&mut connection, &samples).unwrap();
    let run = AggregationJob {
        version: PAYLOAD_VERSION,
        work: AggregationWork::Due {
            logical_date: today,
            skip_up_to_date: false,
        },
        trigger: Trigger::manual("test", None),
        session_id: None,
    };
    let run_settings = capstats_services::runs::RunSettings {
        chunk_size: 50,
        chunk_pause: std::time::Duration::ZERO,
        catch_up_periods: 6,
        sample_retention_months: 0,
        period_types: vec![PeriodType::Daily, PeriodType::Monthly],
        time_zone: chrono_tz::UTC,
    };
    capstats_services::runs::execute(&mut connection, &run, "alerts-test", "test", &run_settings)
        .unwrap();
    let options = ForecastOptions {
        as_of: today,
        horizon_days: 30,
        settings: ForecastSettings::default(),
    };
    let database_name = capstats_store::aggregates::growth(
        &mut connection,
        AggregationLevel::Database,
        &AggregateFilter {
            period_type: PeriodType::Daily,
            start: yesterday,
            end: yesterday,
            instance_ids: Vec::new(),
            db_types: Vec::new(),
            database_name: None,
        },
    )
    .unwrap()[0]
        .database_name
        .clone()
        .unwrap();

    // Growth of one database name, everywhere: a threshold every value passes.
    let growth = create_rule(
        &mut connection,
        &key(),
        &rule(
            "growth",
            AggregationLevel::Database,
            condition(AlertMetric::GrowthPercent, Comparison::Above, -1_000_000),
            AlertScope {
                database_names: vec![database_name.clone()],
                ..AlertScope::default()
            },
        ),
    )
    .unwrap();
    // Silence of every instance: a day since yesterday's sample.
    let silent = create_rule(
        &mut connection,
        &key(),
        &rule(
            "silent",
            AggregationLevel::Instance,
            condition(AlertMetric::NoSamplesDays, Comparison::Above, 0),
            AlertScope::default(),
        ),
    )
    .unwrap();
    // Days until full of instances with a limit: only the one given a limit, 100 MB above
    // its size yesterday, is watched.
    let first_instance = InstanceId(capstats_test_support::count(
        &database.url(),
        "SELECT min(id) AS count FROM instances",
    ));
    capstats_store::instances::update_instance(
        &mut connection,
        linear,
        &capstats_store::instances::InstanceChanges {
            capacity_limit_mb: Some(Some(50_100)),
            ..Default::default()
        },
    )
    .unwrap();
    let filling = create_rule(
        &mut connection,
        &key(),
        &rule(
            "filling",
            AggregationLevel::Instance,
            condition(AlertMetric::DaysUntilFull, Comparison::Below, 30),
            AlertScope::default(),
        ),
    )
    .unwrap();

    let counts = evaluate_after_session(&mut connection, 1, &options, Utc::now())
        .unwrap()
        .expect("a first evaluation");
    assert_eq!(counts.rules, 3);
    assert_eq!(counts.failed, 0);
    // The same session again: nothing happens.
    assert_eq!(
        evaluate_after_session(&mut connection, 1, &options, Utc::now()).unwrap(),
        None
    );

    // Growth: one event per instance with that database, its value the leaderboard's.
    let window = capstats_capacity_model::Period::ending_with(PeriodType::Monthly, today, 3);
    let leaderboard = capstats_services::planning::growth_leaderboard(
        &mut connection,
        AggregationLevel::Database,
        &AggregateFilter {
            period_type: PeriodType::Monthly,
            start: window[0].start(),
            end: window[2].start(),
            instance_ids: Vec::new(),
            db_types: Vec::new(),
            database_name: Some(database_name.clone()),
        },
        (GrowthSort::GrowthPercent, SortDirection::Descending),
        &options,
        PageRequest {
            page: 1,
            limit: 1000,
        },
    )
    .unwrap();
    let growth_events = events_of(&mut connection, growth.id);
    assert_eq!(growth_events.len(), leaderboard.entries.len());
    assert_eq!(growth_events.len(), 3);
    for event in &growth_events {
        let entry = leaderboard
            .entries
            .iter()
            .find(|entry| entry.key.instance.id == event.instance_id)
            .unwrap();
        assert_eq!(Some(event.value), entry.growth_percent);
        assert_eq!(event.database_name.as_deref(), Some(database_name.as_str()));
        assert_eq!(event.period, Some(entry.key.last_period));
        assert_eq!(
            event.detail["growth_mb"],
            serde_json::json!(entry.growth_mb),
            "{}",
            event.detail
        );
    }

    // Silence: one day for every instance, each with its last sample's day.
    let silent_events = events_of(&mut connection, silent.id);
    assert_eq!(silent_events.len(), 4);
    for event in &silent_events {
        assert_eq!(event.value, Decimal::ONE);
        assert_eq!(
            event.detail["last_sample_day"],
            serde_json::json!(yesterday.to_string())
        );
    }

    // Days until full: only the instance with a limit, as its published forecast says.
    let forecasts = capstats_services::planning::forecasts(
        &mut connection,
        AggregationLevel::Instance,
        &AggregateFilter {
            period_type: PeriodType::Daily,
            start: today,
            end: today,
            instance_ids: vec![linear],
            db_types: Vec::new(),
            database_name: None,
        },
        capstats_services::planning::KeySelection::Every,
        &options,
    )
    .unwrap();
    assert!(
        forecasts[0].forecast.published,
        "{:?}",
        forecasts[0].forecast
    );
    let days = forecasts[0].forecast.days_until_full.unwrap();
    // 50,000 MB yesterday, 50,010 today: 90 MB left at 10 MB a day.
    assert_eq!(days, 9);
    let filling_events = events_of(&mut connection, filling.id);
    assert_eq!(filling_events.len(), 1);
    assert_eq!(filling_events[0].instance_id, linear);
    assert_eq!(filling_events[0].value, Decimal::from(days));
    assert_eq!(filling_events[0].detail["capacity_limit_mb"], 50_100);
    // Every opened event has one notification per channel, pending.
    let all: Vec<i64> = growth_events
        .iter()
        .chain(&silent_events)
        .chain(&filling_events)
        .map(|event| event.id)
        .collect();
    let notifications = alerts::notifications_of(&mut connection, &all).unwrap();
    assert_eq!(notifications.len(), all.len() * 2);
    assert!(
        notifications
            .iter()
            .all(|(_, notification)| notification.status == "pending"
                && notification.event_state == "open")
    );

    // A deactivated instance is no longer watched: its events resolve and say so.
    capstats_store::instances::update_instance(
        &mut connection,
        first_instance,
        &capstats_store::instances::InstanceChanges {
            is_active: Some(false),
            ..Default::default()
        },
    )
    .unwrap();
    let counts = evaluate_after_session(&mut connection, 2, &options, Utc::now())
        .unwrap()
        .unwrap();
    let resolved: Vec<StoredEvent> = [growth.id, silent.id, filling.id]
        .into_iter()
        .flat_map(|rule_id| events_of(&mut connection, rule_id))
        .filter(|event| event.state == "resolved")
        .collect();
    assert!(!resolved.is_empty());
    assert!(
        resolved
            .iter()
            .all(|event| event.instance_id == first_instance)
    );
    assert_eq!(counts.resolved as usize, resolved.len());
    let resolved_ids: Vec<i64> = resolved.iter().map(|event| event.id).collect();
    let told = alerts::notifications_of(&mut connection, &resolved_ids).unwrap();
    assert_eq!(
        told.iter()
            .filter(|(_, notification)| notification.event_state == "resolved")
            .count(),
        resolved.len() * 2
    );
    // The others are still open, seen again.
    assert_eq!(counts.updated as usize, all.len() - resolved.len());

    // Two sessions ending together on two workers: their evaluations take turns. While one
    // holds its claim, the other waits on the evaluation lock (seen in pg_locks), and runs
    // once the first commits.
    create_rule(
        &mut connection,
        &key(),
        &rule(
            "size",
            AggregationLevel::Database,
            condition(AlertMetric::SizeMb, Comparison::Above, 0),
            AlertScope::default(),
        ),
    )
    .unwrap();
    let url = database.url();
    let mut holder = <capstats_store::PgConnection as diesel::Connection>::establish(&url).unwrap();
    let waiter = diesel::Connection::transaction(&mut holder, |holder| {
        assert!(alerts::claim_evaluation(holder, 10)?);
        let waiter = std::thread::spawn({
            let url = url.clone();
            let options = options.clone();
            move || {
                let mut connection =
                    <capstats_store::PgConnection as diesel::Connection>::establish(&url).unwrap();
                evaluate_after_session(&mut connection, 11, &options, Utc::now())
                    .unwrap()
                    .unwrap()
            }
        });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while capstats_test_support::count(
            &url,
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
        ) == 0
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the second evaluation did not wait for the first"
            );
            assert!(
                !waiter.is_finished(),
                "the second evaluation ran beside the first"
            );
            std::thread::yield_now();
        }
        Ok::<_, capstats_store::StoreError>(waiter)
    })
    .unwrap();
    let counts = waiter.join().unwrap();
    assert_eq!(counts.failed, 0);
}
