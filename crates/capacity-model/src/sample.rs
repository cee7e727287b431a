//! Size samples as they are collected: one per database and day, and the per-instance daily
//! totals derived from them.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::{InstanceId, ValidationError, validate_supported_date};

/// The longest database name capstats stores, in characters.
pub const DATABASE_NAME_MAX_CHARACTERS: usize = 255;

/// The size of one database of one instance on one business date (a row of
/// `database_size_stats`). Sizes are whole megabytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DatabaseSizeSample {
    /// The instance the database lives on.
    pub instance_id: InstanceId,
    /// The database's name on that instance.
    pub database_name: String,
    /// The business date the sample describes.
    pub collected_date: NaiveDate,
    /// Total size of the database in MB.
    pub size_mb: i64,
    /// Size of the data files in MB, if the engine reports it.
    pub data_size_mb: Option<i64>,
    /// Size of the log files in MB, if the engine reports it.
    pub log_size_mb: Option<i64>,
}

/// The dates a new sample may have: not after today (the current business date) and, when
/// the sample retention drops old samples, not before the first day it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleDates {
    /// The current business date.
    pub today: NaiveDate,
    /// The first day the sample retention keeps (`None`: every day).
    pub kept_from: Option<NaiveDate>,
}

impl SampleDates {
    /// Any supported date up to `today`.
    pub fn until(today: NaiveDate) -> Self {
        Self {
            today,
            kept_from: None,
        }
    }
}

impl DatabaseSizeSample {
    /// Checks the sample as input: a non-empty name of at most
    /// [`DATABASE_NAME_MAX_CHARACTERS`] characters, non-negative sizes, data and log parts not
    /// larger than the total, and a supported date within `dates`. Returns the first problem
    /// found; [`problems`](Self::problems) has them all.
    pub fn validate(&self, dates: SampleDates) -> Result<(), ValidationError> {
        first(self.problems(dates))
    }

    /// Every problem of the sample as input (see [`validate`](Self::validate)): at most one
    /// for its name, one for its total, one for each part and one for its date.
    pub fn problems(&self, dates: SampleDates) -> Vec<ValidationError> {
        let mut problems = Vec::new();
        if let Err(problem) = self.validate_name() {
            problems.push(problem);
        }
        problems.extend(self.size_problems());
        match validate_supported_date(self.collected_date) {
            Err(problem) => problems.push(problem),
            Ok(date) if date > dates.today => {
                problems.push(ValidationError::DateInFuture {
                    date,
                    today: dates.today,
                });
            }
            Ok(date) => {
                if let Some(kept_from) = dates.kept_from.filter(|kept_from| date < *kept_from) {
                    problems.push(ValidationError::DateBeforeRetention { date, kept_from });
                }
            }
        }
        problems
    }

    fn validate_name(&self) -> Result<(), ValidationError> {
        if self.database_name.trim().is_empty() {
            return Err(ValidationError::EmptyDatabaseName);
        }
        let length = self.database_name.chars().count();
        if length > DATABASE_NAME_MAX_CHARACTERS {
            return Err(ValidationError::DatabaseNameTooLong {
                length,
                maximum: DATABASE_NAME_MAX_CHARACTERS,
            });
        }
        crate::validate_plain_text("database_name", &self.database_name)
    }

    /// Checks only the sizes: none negative or above [`MAX_SIZE_MB`], no part larger than the
    /// total. Returns the first problem found.
    pub fn validate_sizes(&self) -> Result<(), ValidationError> {
        first(self.size_problems())
    }

    fn size_problems(&self) -> Vec<ValidationError> {
        let mut problems = Vec::new();
        if self.size_mb < 0 {
            problems.push(ValidationError::NegativeSize {
                field: "size_mb",
                value: self.size_mb,
            });
        } else if self.size_mb > MAX_SIZE_MB {
            problems.push(ValidationError::SizeTooLarge {
                field: "size_mb",
                value: self.size_mb,
                maximum: MAX_SIZE_MB,
            });
        }
        for (field, part) in [
            ("data_size_mb", self.data_size_mb),
            ("log_size_mb", self.log_size_mb),
        ] {
            let Some(value) = part else { continue };
            if value < 0 {
                problems.push(ValidationError::NegativeSize { field, value });
            } else if value > self.size_mb {
                problems.push(ValidationError::PartExceedsTotal {
                    field,
                    value,
                    total: self.size_mb,
                });
            }
        }
        problems
    }
}

fn first(problems: Vec<ValidationError>) -> Result<(), ValidationError> {
    problems.into_iter().next().map_or(Ok(()), Err)
}

/// The largest size in MiB a sample may have: 1 EiB. Instance totals add up to 10,000 such
/// values per day and means multiply them, so a bound far below `i64::MAX` keeps every sum in
/// range (an unbounded value made the instance total overflow: a 500 instead of a 400).
pub const MAX_SIZE_MB: i64 = 1 << 40;

/// The total size of one instance on one business date (a row of `instance_size_stats`):
/// the sum of that day's database sizes and the number of databases sampled that day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct InstanceSizeSample {
    /// The instance.
    pub instance_id: InstanceId,
    /// The business date.
    pub collected_date: NaiveDate,
    /// Sum of `size_mb` over the databases sampled that day.
    pub total_size_mb: i64,
    /// Number of databases sampled that day.
    pub database_count: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> DatabaseSizeSample {
        DatabaseSizeSample {
            instance_id: InstanceId(1),
            database_name: "orders".into(),
            collected_date: NaiveDate::from_ymd_opt(2025, 5, 1).unwrap(),
            size_mb: 100,
            data_size_mb: Some(80),
            log_size_mb: None,
        }
    }

    #[test]
    fn accepts_a_plain_sample_including_zero_sizes() {
        let today = SampleDates::until(NaiveDate::from_ymd_opt(2025, 5, 1).unwrap());
        assert_eq!(sample().validate(today), Ok(()));
        let empty = DatabaseSizeSample {
            size_mb: 0,
            data_size_mb: Some(0),
            log_size_mb: Some(0),
            ..sample()
        };
        assert_eq!(empty.validate(today), Ok(()));
    }

    #[test]
    fn lists_every_problem_of_a_sample_not_only_the_first() {
        let today = SampleDates::until(NaiveDate::from_ymd_opt(2025, 5, 1).unwrap());
        let bad = DatabaseSizeSample {
            database_name: " ".into(),
            size_mb: -1,
            data_size_mb: Some(-2),
            log_size_mb: Some(5),
            collected_date: today.today.succ_opt().unwrap(),
            ..sample()
        };
        let fields: Vec<&str> = bad
            .problems(today)
            .iter()
            .map(ValidationError::field)
            .collect();
        assert_eq!(
            fields,
            [
                "database_name",
                "size_mb",
                "data_size_mb",
                "log_size_mb",
                "collected_date"
            ]
        );
        assert_eq!(bad.validate(today), Err(ValidationError::EmptyDatabaseName));
    }

    #[test]
    fn rejects_each_kind_of_bad_input_naming_the_field() {
        let today = SampleDates::until(NaiveDate::from_ymd_opt(2025, 5, 1).unwrap());
        let cases = [
            (
                DatabaseSizeSample {
                    database_name: "  ".into(),
                    ..sample()
                },
                "database_name",
            ),
            (
                DatabaseSizeSample {
                    database_name: "x".repeat(256),
                    ..sample()
                },
                "database_name",
            ),
            (
                DatabaseSizeSample {
                    size_mb: -1,
                    ..sample()
                },
                "size_mb",
            ),
            (
                DatabaseSizeSample {
                    data_size_mb: Some(101),
                    ..sample()
                },
                "data_size_mb",
            ),
            (
                DatabaseSizeSample {
                    log_size_mb: Some(-5),
                    ..sample()
                },
                "log_size_mb",
            ),
            (
                DatabaseSizeSample {
                    collected_date: NaiveDate::from_ymd_opt(2025, 5, 2).unwrap(),
                    ..sample()
                },
                "collected_date",
            ),
            (
                DatabaseSizeSample {
                    collected_date: NaiveDate::from_ymd_opt(1899, 12, 31).unwrap(),
                    ..sample()
                },
                "collected_date",
            ),
        ];
        for (bad, field) in cases {
            let error = bad.validate(today).expect_err("must be rejected");
            assert_eq!(error.field(), field, "{error}");
        }
        // A 255-character name is still fine.
        let longest = DatabaseSizeSample {
            database_name: "é".repeat(255),
            ..sample()
        };
        assert_eq!(longest.validate(today), Ok(()));
    }

    #[test]
    fn refuses_a_date_before_the_sample_retention_and_says_from_when_samples_are_kept() {
        let dates = SampleDates {
            today: NaiveDate::from_ymd_opt(2025, 5, 1).unwrap(),
            kept_from: NaiveDate::from_ymd_opt(2025, 5, 1),
        };
        assert_eq!(
            sample().validate(dates),
            Ok(()),
            "the first day kept is fine"
        );
        let old = DatabaseSizeSample {
            collected_date: NaiveDate::from_ymd_opt(2025, 4, 30).unwrap(),
            ..sample()
        };
        let error = old.validate(dates).expect_err("before the retention");
        assert_eq!(
            (error.field(), error.code()),
            ("collected_date", "before_retention")
        );
        assert!(
            error.to_string().contains("kept from 2025-05-01"),
            "{error}"
        );
        assert_eq!(old.validate(SampleDates::until(dates.today)), Ok(()));
    }
}
