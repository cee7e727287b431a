//! The CSV file writer every export shares, and how its cells write decimals and instants.

use std::io::Write;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use capstats_capacity_model::Decimal;

use crate::ServiceError;

/// A CSV file being written: its header row first, then one row per record.
pub(super) struct CsvFile<W: Write> {
    writer: csv::Writer<W>,
    rows: u64,
}

impl<W: Write> CsvFile<W> {
    /// A file of `Record` rows, headed by the record type's field names in their order (as
    /// the CSV writer derives them, so that the header cannot drift from the rows, and is
    /// written even when no row follows).
    pub(super) fn new<Record: Serialize + Default>(output: W) -> Result<Self, ServiceError> {
        Self::with_header(output, &header_of::<Record>()?)
    }

    /// A file headed by `columns`, for rows that name no fields (tuples).
    pub(super) fn with_header<I, T>(output: W, columns: I) -> Result<Self, ServiceError>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        let mut writer = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(output);
        writer.write_record(columns).map_err(output_error)?;
        Ok(Self { writer, rows: 0 })
    }

    pub(super) fn row(&mut self, record: &impl Serialize) -> Result<(), ServiceError> {
        self.writer.serialize(record).map_err(output_error)?;
        self.rows += 1;
        Ok(())
    }

    /// Flushes the file; how many rows it has.
    pub(super) fn finish(mut self) -> Result<u64, ServiceError> {
        self.writer.flush().map_err(ServiceError::Output)?;
        Ok(self.rows)
    }
}

fn output_error(error: csv::Error) -> ServiceError {
    ServiceError::Output(error.into())
}

/// The header row the CSV writer derives from `Record`'s fields: serialized once with its
/// default value, then read back.
pub(super) fn header_of<Record: Serialize + Default>() -> Result<csv::StringRecord, ServiceError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.serialize(Record::default()).map_err(output_error)?;
    let written = writer
        .into_inner()
        .map_err(|error| ServiceError::Output(error.into_error()))?;
    let mut reader = csv::Reader::from_reader(written.as_slice());
    Ok(reader.headers().map_err(output_error)?.clone())
}

/// A percent (or another two-decimal figure, such as a mean count) as the files write it: two
/// decimals, halves away from zero (as the SQL's `round` and the engine round).
pub(super) fn two_decimals(value: Option<Decimal>) -> Option<String> {
    value.map(|value| {
        let rounded =
            value.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
        format!("{rounded:.2}")
    })
}

/// An instant as the files write it: RFC 3339 in UTC, to the second.
pub(super) fn instant(value: Option<DateTime<Utc>>) -> Option<String> {
    value.map(|at| at.to_rfc3339_opts(SecondsFormat::Secs, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percents_have_two_decimals_and_instants_are_utc() {
        let decimal = |text: &str| Some(text.parse::<Decimal>().unwrap());
        assert_eq!(two_decimals(decimal("12.3")).as_deref(), Some("12.30"));
        assert_eq!(two_decimals(decimal("-0.005")).as_deref(), Some("-0.01"));
        assert_eq!(two_decimals(decimal("0.125")).as_deref(), Some("0.13"));
        assert_eq!(two_decimals(decimal("-0.001")).as_deref(), Some("0.00"));
        assert_eq!(two_decimals(decimal("7")).as_deref(), Some("7.00"));
        assert_eq!(two_decimals(None), None);
        let at = DateTime::parse_from_rfc3339("2026-12-06T14:30:05+01:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(instant(Some(at)).as_deref(), Some("2026-12-06T13:30:05Z"));
    }
}
