//! CSV exports of every capacity view, of the runs and of the samples: one definition of
//! each file's columns, written row by row to any [`Write`](std::io::Write), shared by the
//! API's `format=csv` answers and `capstats-worker export`.
//!
//! Every file is UTF-8 with a header row; dates are ISO (`2026-12-06`), instants RFC 3339 in
//! UTC, sizes whole MiB, percents two decimals (`12.30`), and a missing value an empty
//! cell. The lists and the samples are read from the database one row at a time, so an
//! export of millions of rows runs in flat memory; the other views are bounded by the number
//! of keys (or lines and periods) and are ranked in memory as their JSON answers are.

mod capacity;
mod csv_file;
mod file_names;
mod runs;
mod samples;

pub use capacity::{aggregates, forecasts, growth, series};
pub use file_names::{
    aggregates_file_name, forecast_file_name, growth_file_name, samples_file_name,
    series_file_name, session_records_file_name, sessions_file_name,
};
pub use runs::{session_records, sessions};
pub use samples::samples;

use crate::ServiceError;

/// Refuses an export of `rows` rows when that is more than `maximum`
/// (`CAPSTATS_EXPORT_MAXIMUM_ROWS`), before anything is written, so that an export always
/// ends complete.
pub fn check_row_count(rows: i64, maximum: i64) -> Result<(), ServiceError> {
    if rows > maximum {
        return Err(ServiceError::ExportTooLarge { rows, maximum });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde::Serialize;

    use super::capacity::{
        DatabaseAggregateRecord, GrowthColumns, InstanceAggregateRecord, KeyColumns, SeriesRecord,
    };
    use super::check_row_count;
    use super::csv_file::header_of;
    use super::runs::{InstanceRecordRow, SessionRecordRow};
    use crate::planning::ForecastSummary;

    /// The header of `Record`'s files, joined as the file writes it.
    fn header<Record: Serialize + Default>() -> String {
        header_of::<Record>()
            .unwrap()
            .iter()
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The columns are the files' contract with their readers: any change in name
    /// or order shows here.
    #[test]
    fn every_file_has_its_columns_in_order() {
        assert_eq!(
            header::<InstanceAggregateRecord>(),
            "instance_id,instance_name,db_type,period_type,period_start,period_end,total_size_mb,avg_size_mb,max_size_mb,min_size_mb,data_count,expected_count,is_partial,database_count,avg_database_count,max_database_count,min_database_count,total_size_change_mb,total_size_change_percent,database_count_change,database_count_change_percent,growth_rate,trend_direction,yoy_change_mb,yoy_change_percent"
        );
        assert_eq!(
            header::<DatabaseAggregateRecord>(),
            "instance_id,instance_name,db_type,database_name,period_type,period_start,period_end,avg_size_mb,max_size_mb,min_size_mb,data_count,expected_count,is_partial,avg_data_size_mb,max_data_size_mb,min_data_size_mb,avg_log_size_mb,max_log_size_mb,min_log_size_mb,size_change_mb,size_change_percent,data_size_change_mb,data_size_change_percent,log_size_change_mb,log_size_change_percent,growth_rate,yoy_change_mb,yoy_change_percent,yoy_data_change_mb,yoy_data_change_percent,yoy_log_change_mb,yoy_log_change_percent"
        );
        assert_eq!(
            header::<SeriesRecord>(),
            "rank,instance_id,instance_name,db_type,database_name,period_type,period_start,period_end,metric,unit,value,data_count,expected_count,is_partial"
        );
        let forecast = "as_of,horizon_days,points,window_start,window_end,slope_mb_per_day,fitted_size_mb,r_squared,projected_size_mb,lower_mb,upper_mb,capacity_limit_mb,days_until_full,published,withheld_reason";
        assert_eq!(
            header::<(KeyColumns, GrowthColumns, ForecastSummary)>(),
            format!(
                "instance_id,instance_name,db_type,database_name,period_type,first_period_start,first_size_mb,last_period_start,last_size_mb,growth_mb,growth_percent,last_data_count,last_expected_count,is_partial,{forecast}"
            )
        );
        assert_eq!(
            header::<(KeyColumns, ForecastSummary)>(),
            format!("instance_id,instance_name,db_type,database_name,{forecast}")
        );
        assert_eq!(
            header::<SessionRecordRow>(),
            "id,sync_category,sync_type,status,triggered_by,total_instances,successful_instances,failed_instances,cancelled_instances,progress_percentage,error_message,worker_name,job_id,created_at,started_at,completed_at,parameters"
        );
        assert_eq!(
            header::<InstanceRecordRow>(),
            "session_id,instance_id,instance_name,status,items_synced,error_message,started_at,completed_at,detail"
        );
    }

    #[test]
    fn an_export_past_the_bound_is_refused_before_it_starts() {
        assert!(check_row_count(5_000_000, 5_000_000).is_ok());
        let refused = check_row_count(5_000_001, 5_000_000).unwrap_err();
        assert!(
            refused.to_string().contains("5000001"),
            "names the count: {refused}"
        );
    }
}
