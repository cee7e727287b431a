//! `make bench-alerts`: how the cost of evaluating alert rules after a session grows with the
//! fleet.
//!
//! For each fleet size (`CAPSTATS_BENCH_SIZES`, default `100,400,1600` instances, × 10
//! databases × 120 days from `seed-demo`, fixed seed, ending yesterday, aggregated daily and
//! monthly by a due run) it creates one rule per metric — database growth over 3 months, instance
//! size, instance days until full (every instance given a limit), database silence — each with
//! a webhook channel and a threshold every key trips, and measures `evaluate_after_session`:
//!
//! - **first** — the first evaluation: every key opens an event and records a notification;
//! - **steady** — the next session's: every event is seen again (the nightly case);
//! - per rule, the steady evaluation of that rule alone (the others deleted for the round).
//!
//! Rounds (`CAPSTATS_BENCH_ROUNDS`, default 3) take the median; the first evaluation is timed
//! once per size after resetting the events. `CAPSTATS_BENCH_KEEP=1` reuses the seeded
//! databases (`capstats_alerts_<size>`).

#[expect(
    dead_code,
    reason = "this benchmark uses the seeded database and the median, not the aggregation floor"
)]
mod support;

use std::time::{Duration, Instant};

use anyhow::Context;
use capstats_aggregation_core::forecast::ForecastSettings;
use capstats_capacity_model::{
    AggregationLevel, AlertChannel, AlertCondition, AlertMetric, AlertRuleSpec, AlertScope,
    ChannelKind, Comparison, Decimal, PeriodType, Severity,
};
use capstats_collectors::credentials::CredentialKey;
use capstats_services::alerts::{create_rule, evaluate_after_session};
use capstats_services::payloads::{AggregationJob, AggregationWork, PAYLOAD_VERSION, Trigger};
use capstats_services::planning::ForecastOptions;
use capstats_services::runs::{RunSettings, execute};
use capstats_services::seed::SeedOptions;
use capstats_store::PgConnection;
use chrono::{Days, Utc};
use diesel::connection::SimpleConnection;

use support::{median, seeded_database};

const DATABASES_PER_INSTANCE: u32 = 10;

fn rule(name: &str, level: AggregationLevel, metric: AlertMetric, threshold: i64) -> AlertRuleSpec {
    let growth = metric == AlertMetric::GrowthPercent;
    AlertRuleSpec {
        name: name.into(),
        level,
        condition: AlertCondition {
            metric,
            comparison: if metric == AlertMetric::DaysUntilFull {
                Comparison::Below
            } else {
                Comparison::Above
            },
            threshold: Decimal::from(threshold),
            period_type: if growth {
                PeriodType::Monthly
            } else {
                PeriodType::Daily
            },
            periods: if growth { 3 } else { 1 },
        },
        scope: AlertScope::default(),
        severity: Severity::Warning,
        channels: vec![AlertChannel {
            kind: ChannelKind::Webhook,
            target: "https://hooks.example.com/capstats".into(),
            secret: None,
        }],
    }
}

/// The rules of the benchmark, each tripped by every key it watches.
fn rules() -> Vec<AlertRuleSpec> {
    vec![
        rule(
            "database growth",
            AggregationLevel::Database,
            AlertMetric::GrowthPercent,
            -1_000_000,
        ),
        rule(
            "instance size",
            AggregationLevel::Instance,
            AlertMetric::SizeMb,
            0,
        ),
        rule(
            "instance days until full",
            AggregationLevel::Instance,
            AlertMetric::DaysUntilFull,
            1_000_000,
        ),
        rule(
            "database silence",
            AggregationLevel::Database,
            AlertMetric::NoSamplesDays,
            0,
        ),
    ]
}

fn clear_alerts(connection: &mut PgConnection) -> anyhow::Result<()> {
    connection.batch_execute(
        "TRUNCATE alert_notifications, alert_events, alert_evaluations, alert_channels, alert_rules
         CASCADE",
    )?;
    Ok(())
}

struct SizeResult {
    instances: u32,
    keys: i64,
    first: Duration,
    steady: Duration,
    per_rule: Vec<(String, Duration)>,
}

fn main() -> anyhow::Result<()> {
    let sizes = support::sizes()?;
    let rounds = support::rounds();
    let keep = support::keep();
    let mut results = Vec::new();
    for instances in sizes {
        results.push(measure_size(instances, rounds, keep)?);
    }
    println!();
    println!(
        "| instances | keys watched | first evaluation | steady evaluation | steady µs per key | {} |",
        results[0]
            .per_rule
            .iter()
            .map(|(name, _)| name.as_str())
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!(
        "|---|---|---|---|---|{}",
        "---|".repeat(results[0].per_rule.len())
    );
    for result in &results {
        println!(
            "| {} | {} | {:.0} ms | {:.0} ms | {:.1} | {} |",
            result.instances,
            result.keys,
            result.first.as_secs_f64() * 1000.0,
            result.steady.as_secs_f64() * 1000.0,
            result.steady.as_secs_f64() * 1e6 / result.keys.max(1) as f64,
            result
                .per_rule
                .iter()
                .map(|(_, time)| format!("{:.0} ms", time.as_secs_f64() * 1000.0))
                .collect::<Vec<_>>()
                .join(" | ")
        );
    }
    Ok(())
}

fn measure_size(instances: u32, rounds: usize, keep: bool) -> anyhow::Result<SizeResult> {
    let today = Utc::now().date_naive();
    let yesterday = today.checked_sub_days(Days::new(1)).expect("a date");
    let name = format!("capstats_alerts_{instances}");
    let (url, mut connection) = seeded_database(
        &name,
        &SeedOptions {
            instances,
            databases_per_instance: DATABASES_PER_INSTANCE,
            days: 120,
            end_date: yesterday,
            seed: 11,
        },
        keep,
    )?;
    let aggregated: i64 = capstats_test_support::count(
        &url,
        "SELECT count(*) FROM instance_size_aggregations WHERE period_type = 'monthly'",
    );
    if aggregated == 0 {
        let started = Instant::now();
        execute(
            &mut connection,
            &AggregationJob {
                version: PAYLOAD_VERSION,
                work: AggregationWork::Due {
                    logical_date: today,
                    skip_up_to_date: false,
                },
                trigger: Trigger::manual("bench", None),
                session_id: None,
            },
            "bench-alerts",
            "bench",
            &RunSettings {
                chunk_size: 50,
                chunk_pause: Duration::ZERO,
                catch_up_periods: 4,
                sample_retention_months: 0,
                period_types: vec![PeriodType::Daily, PeriodType::Monthly],
                time_zone: chrono_tz::UTC,
            },
        )?;
        connection.batch_execute("ANALYZE")?;
        println!(
            "{name}: aggregated in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    connection.batch_execute("UPDATE instances SET capacity_limit_mb = 100000000")?;
    let key = CredentialKey::from_hex(&"0f".repeat(32))?;
    let options = ForecastOptions {
        as_of: today,
        horizon_days: 30,
        settings: ForecastSettings::default(),
    };
    let mut session = 0_i64;
    let mut evaluate = |connection: &mut PgConnection| -> anyhow::Result<Duration> {
        session += 1;
        let started = Instant::now();
        evaluate_after_session(connection, session, &options, Utc::now())?
            .context("a new session is evaluated")?;
        Ok(started.elapsed())
    };

    // All rules: the first evaluation opens every event, the next ones see them again.
    clear_alerts(&mut connection)?;
    for spec in rules() {
        create_rule(&mut connection, &key, &spec)?;
    }
    let first = evaluate(&mut connection)?;
    let keys = capstats_test_support::count(&url, "SELECT count(*) FROM alert_events");
    let steady = median(
        &(0..rounds)
            .map(|_| evaluate(&mut connection))
            .collect::<anyhow::Result<Vec<_>>>()?,
    );
    // Each rule alone, in its steady state.
    let mut per_rule = Vec::new();
    for spec in rules() {
        clear_alerts(&mut connection)?;
        create_rule(&mut connection, &key, &spec)?;
        evaluate(&mut connection)?;
        let time = median(
            &(0..rounds)
                .map(|_| evaluate(&mut connection))
                .collect::<anyhow::Result<Vec<_>>>()?,
        );
        per_rule.push((spec.name, time));
    }
    println!(
        "{name}: {keys} keys; first {:.0} ms, steady {:.0} ms",
        first.as_secs_f64() * 1000.0,
        steady.as_secs_f64() * 1000.0
    );
    Ok(SizeResult {
        instances,
        keys,
        first,
        steady,
        per_rule,
    })
}
