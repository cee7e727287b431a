//! Export of the collected database samples, in the columns the samples import reads back.

use std::io::Write;

use chrono::NaiveDate;

use capstats_store::PgConnection;
use capstats_store::samples::{self, LabelledSample};

use super::check_row_count;
use super::csv_file::CsvFile;
use crate::ServiceError;

/// Writes the database samples collected from `from` to `to` (of `instance_ids`, or of every
/// instance when empty) as a file `capstats-worker import-stats` reads back (its columns,
/// [`crate::import::COLUMNS`]); how many rows were written. Refused past `maximum_rows`.
pub fn samples(
    connection: &mut PgConnection,
    from: NaiveDate,
    to: NaiveDate,
    instance_ids: &[capstats_capacity_model::InstanceId],
    maximum_rows: i64,
    output: impl Write,
) -> Result<u64, ServiceError> {
    check_row_count(
        samples::count_samples_between(connection, from, to, instance_ids)?,
        maximum_rows,
    )?;
    let mut file = CsvFile::with_header(output, crate::import::COLUMNS)?;
    samples::for_each_labelled_sample(connection, from, to, instance_ids, |sample| {
        let LabelledSample {
            instance_name,
            db_type,
            database_name,
            collected_date,
            size_mb,
            data_size_mb,
            log_size_mb,
        } = sample;
        file.row(&(
            instance_name,
            db_type,
            database_name,
            collected_date,
            size_mb,
            data_size_mb,
            log_size_mb,
        ))
    })?;
    file.finish()
}
