//! The file names of the exports: the view and its window, safe in headers and on disk.

use chrono::NaiveDate;

use capstats_capacity_model::AggregationLevel;
use capstats_store::aggregates::{AggregateFilter, MetricColumn};

/// The file name of a list's export: the level's aggregates, the period type and the
/// window (`capstats-database-aggregates-daily-2026-11-01_2026-11-30.csv`).
pub fn aggregates_file_name(level: AggregationLevel, filter: &AggregateFilter) -> String {
    file_name(&[
        &format!("{level}-aggregates"),
        filter.period_type.as_str(),
        &window(filter),
    ])
}

/// The file name of a series' export: the level, the metric, the period type and the window.
pub fn series_file_name(
    level: AggregationLevel,
    metric: MetricColumn,
    filter: &AggregateFilter,
) -> String {
    file_name(&[
        &format!("{level}-series"),
        metric.name(),
        filter.period_type.as_str(),
        &window(filter),
    ])
}

/// The file name of a growth leaderboard's export: the level, the period type and the window.
pub fn growth_file_name(level: AggregationLevel, filter: &AggregateFilter) -> String {
    file_name(&[
        &format!("{level}-growth"),
        filter.period_type.as_str(),
        &window(filter),
    ])
}

/// The file name of a forecasts' export: the level, the forecasts' day and the horizon.
pub fn forecast_file_name(level: AggregationLevel, as_of: NaiveDate, horizon_days: u32) -> String {
    file_name(&[
        &format!("{level}-forecast"),
        &as_of.to_string(),
        &format!("{horizon_days}d"),
    ])
}

/// The file name of the sessions' export, made on `today`.
pub fn sessions_file_name(today: NaiveDate) -> String {
    file_name(&["sync-sessions", &today.to_string()])
}

/// The file name of a session's records.
pub fn session_records_file_name(session_id: i64) -> String {
    file_name(&["sync-session", &session_id.to_string(), "records"])
}

/// The file name of the samples' export from `from` to `to`.
pub fn samples_file_name(from: NaiveDate, to: NaiveDate) -> String {
    file_name(&["samples", &format!("{from}_{to}")])
}

/// A filter's window of period starts, as file names show it.
fn window(filter: &AggregateFilter) -> String {
    format!("{}_{}", filter.start, filter.end)
}

/// The file name of an export: `capstats-` and the view's parts joined by `-`, with
/// anything but ASCII letters, digits, `-`, `_` and `.` replaced by `_`, so that it is safe in a
/// `Content-Disposition` header and on every file system.
fn file_name(parts: &[&str]) -> String {
    let joined: Vec<String> = parts
        .iter()
        .map(|part| {
            part.chars()
                .map(|character| {
                    if character.is_ascii_alphanumeric() || matches!(character, '_' | '.' | '-') {
                        character
                    } else {
                        '_'
                    }
                })
                .collect()
        })
        .collect();
    format!("capstats-{}.csv", joined.join("-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_name_the_view_and_window_and_keep_only_safe_characters() {
        let day = |text: &str| text.parse::<NaiveDate>().unwrap();
        let filter = AggregateFilter {
            period_type: capstats_capacity_model::PeriodType::Daily,
            start: day("2026-11-01"),
            end: day("2026-11-30"),
            instance_ids: Vec::new(),
            db_types: Vec::new(),
            database_name: None,
        };
        assert_eq!(
            aggregates_file_name(AggregationLevel::Database, &filter),
            "capstats-database-aggregates-daily-2026-11-01_2026-11-30.csv"
        );
        assert_eq!(
            series_file_name(
                AggregationLevel::Instance,
                MetricColumn::TotalSizeMb,
                &filter
            ),
            "capstats-instance-series-total_size_mb-daily-2026-11-01_2026-11-30.csv"
        );
        assert_eq!(
            forecast_file_name(AggregationLevel::Database, day("2026-12-06"), 30),
            "capstats-database-forecast-2026-12-06-30d.csv"
        );
        assert_eq!(
            session_records_file_name(7),
            "capstats-sync-session-7-records.csv"
        );
        assert_eq!(file_name(&["a\"b/c\r\n"]), "capstats-a_b_c__.csv");
    }
}
