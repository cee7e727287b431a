//! Embedding `aggregation-core`: feed a quarter of samples for two databases into the engine
//! and print the weekly and monthly rollups capstats would store for them.
//!
//! Run with `cargo run -p aggregation-core --example embed`.

use capstats_aggregation_core::{AggregationEngine, EngineError, PeriodType};
use capstats_capacity_model::{DatabaseSizeSample, InstanceId};
use chrono::{Days, NaiveDate};

fn main() -> Result<(), EngineError> {
    let first_day = NaiveDate::from_ymd_opt(2025, 1, 1).expect("valid date");
    // The quarter has ended by 1 April: its periods are judged complete or partial then.
    let mut engine =
        AggregationEngine::as_of(NaiveDate::from_ymd_opt(2025, 4, 1).expect("valid date"));
    for offset in 0..90u64 {
        let date = first_day + Days::new(offset);
        let growth = i64::try_from(offset).expect("small offset");
        // "orders" grows by 12 MB a day; "audit" is purged on the first of every month.
        engine.record(DatabaseSizeSample {
            instance_id: InstanceId(1),
            database_name: "orders".into(),
            collected_date: date,
            size_mb: 20_000 + 12 * growth,
            data_size_mb: Some(18_000 + 11 * growth),
            log_size_mb: Some(2_000 + growth),
        })?;
        let day_of_month = i64::from(chrono::Datelike::day(&date));
        engine.record(DatabaseSizeSample {
            instance_id: InstanceId(1),
            database_name: "audit".into(),
            collected_date: date,
            size_mb: 500 + 40 * day_of_month,
            data_size_mb: None,
            log_size_mb: None,
        })?;
    }

    let (from, to) = engine.date_range().expect("samples were recorded");
    for period_type in [PeriodType::Weekly, PeriodType::Monthly] {
        let output = engine.aggregate_range(period_type, from, to)?;
        println!("{period_type} database rollups:");
        for row in &output.databases {
            println!(
                "  {} {:<7} avg {:>6} MB  max {:>6} MB  change {:>6} MB ({} %){}",
                row.period.start(),
                row.database_name,
                row.avg_size_mb,
                row.max_size_mb,
                row.size_change_mb.map_or("-".into(), |mb| mb.to_string()),
                row.size_change_percent
                    .map_or("-".into(), |percent| percent.to_string()),
                if row.completeness.is_partial {
                    format!(
                        "  partial: {} of {} days",
                        row.data_count, row.completeness.expected_count
                    )
                } else {
                    String::new()
                },
            );
        }
        println!("{period_type} instance rollups:");
        for row in &output.instances {
            println!(
                "  {} total {:>6} MB  databases {}  trend {}",
                row.period.start(),
                row.total_size_mb,
                row.avg_database_count,
                row.trend_direction
                    .map_or("-".into(), |trend| trend.to_string()),
            );
        }
    }
    Ok(())
}
