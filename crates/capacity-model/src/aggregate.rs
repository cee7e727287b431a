//! The aggregate records capstats stores, one per key and period.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::{InstanceId, Period, ValidationError};

crate::named_enum! {
    /// Which source table an aggregate is computed from.
    AggregationLevel, error: ValidationError =
        |text: &str| ValidationError::UnknownAggregationLevel(text.to_owned()), {
        /// Per database, from `database_size_stats` into `database_size_aggregations`.
        Database => "database",
        /// Per instance, from `instance_size_stats` into `instance_size_aggregations`.
        Instance => "instance",
    }
}

crate::named_enum! {
    /// How an instance's total size moved against the previous period.
    TrendDirection, error: ValidationError =
        |text: &str| ValidationError::UnknownTrendDirection(text.to_owned()), {
        /// Growth rate above +5 %.
        Growing => "growing",
        /// Growth rate below −5 %.
        Shrinking => "shrinking",
        /// Growth rate between −5 % and +5 % inclusive.
        Stable => "stable",
    }
}

impl TrendDirection {
    /// The growth rate (in percent) above which an instance counts as growing, and whose
    /// negation it must fall below to count as shrinking.
    pub const THRESHOLD_PERCENT: i64 = 5;

    /// Classifies a growth rate given in percent.
    pub fn from_growth_rate(growth_rate_percent: Decimal) -> Self {
        let threshold = Decimal::from(Self::THRESHOLD_PERCENT);
        if growth_rate_percent > threshold {
            Self::Growing
        } else if growth_rate_percent < -threshold {
            Self::Shrinking
        } else {
            Self::Stable
        }
    }
}

/// How complete a stored period's data is, as of a business date (the rule is
/// `aggregation-core::calendar::completeness`). Stored with every aggregate and refreshed as
/// the days pass, so that a period with one day of data never reads as a complete one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Completeness {
    /// The days a complete period has samples for: all of its days once it has ended, its
    /// days from its start up to the business date while it runs (0 when it starts later).
    pub expected_count: i64,
    /// Whether the numbers may still change or miss days: the period has not ended, or it has
    /// fewer daily samples than `expected_count` (a missed collection must not read as zero
    /// growth).
    pub is_partial: bool,
}

/// The rollup of one database over one period (a row of `database_size_aggregations`).
///
/// Megabyte values are whole numbers rounded half away from zero; percentages carry two
/// decimals. Change columns compare exact means with those of the previous period and are
/// `None` when the previous period has no samples (percentages also when its mean is zero).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseSizeAggregate {
    /// The instance the database lives on.
    pub instance_id: InstanceId,
    /// The database's name.
    pub database_name: String,
    /// The period aggregated.
    pub period: Period,
    /// Rounded mean of `size_mb`.
    pub avg_size_mb: i64,
    /// Largest `size_mb`.
    pub max_size_mb: i64,
    /// Smallest `size_mb`.
    pub min_size_mb: i64,
    /// Number of samples (days) in the period.
    pub data_count: i64,
    /// Rounded mean of the non-null `data_size_mb` values.
    pub avg_data_size_mb: Option<i64>,
    /// Largest non-null `data_size_mb`.
    pub max_data_size_mb: Option<i64>,
    /// Smallest non-null `data_size_mb`.
    pub min_data_size_mb: Option<i64>,
    /// Rounded mean of the non-null `log_size_mb` values.
    pub avg_log_size_mb: Option<i64>,
    /// Largest non-null `log_size_mb`.
    pub max_log_size_mb: Option<i64>,
    /// Smallest non-null `log_size_mb`.
    pub min_log_size_mb: Option<i64>,
    /// Rounded difference of the mean size against the previous period.
    pub size_change_mb: Option<i64>,
    /// That difference in percent of the previous mean.
    pub size_change_percent: Option<Decimal>,
    /// Rounded difference of the mean data size against the previous period.
    pub data_size_change_mb: Option<i64>,
    /// That difference in percent of the previous mean data size.
    pub data_size_change_percent: Option<Decimal>,
    /// Rounded difference of the mean log size against the previous period.
    pub log_size_change_mb: Option<i64>,
    /// That difference in percent of the previous mean log size.
    pub log_size_change_percent: Option<Decimal>,
    /// Equal to `size_change_percent`.
    pub growth_rate: Option<Decimal>,
    /// Rounded difference of the mean size against the same period one year earlier
    /// ([`Period::year_earlier`]); `None` for daily periods and when that period has no
    /// samples.
    pub yoy_change_mb: Option<i64>,
    /// That difference in percent of the mean a year earlier.
    pub yoy_change_percent: Option<Decimal>,
    /// The same for the mean data size.
    pub yoy_data_change_mb: Option<i64>,
    /// That difference in percent.
    pub yoy_data_change_percent: Option<Decimal>,
    /// The same for the mean log size.
    pub yoy_log_change_mb: Option<i64>,
    /// That difference in percent.
    pub yoy_log_change_percent: Option<Decimal>,
    /// How complete the period's samples are.
    #[serde(flatten)]
    pub completeness: Completeness,
}

/// The rollup of one instance over one period (a row of `instance_size_aggregations`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceSizeAggregate {
    /// The instance.
    pub instance_id: InstanceId,
    /// The period aggregated.
    pub period: Period,
    /// Rounded mean of the daily totals.
    pub total_size_mb: i64,
    /// Rounded mean size per database: Σ daily totals / Σ daily database counts. Kept for
    /// parity with the reference implementation; `None` when no database was counted.
    pub avg_size_mb: Option<i64>,
    /// Largest daily total.
    pub max_size_mb: i64,
    /// Smallest daily total.
    pub min_size_mb: i64,
    /// Number of days sampled in the period.
    pub data_count: i64,
    /// Rounded mean of the daily database counts.
    pub database_count: i64,
    /// Mean of the daily database counts with two decimals.
    pub avg_database_count: Decimal,
    /// Largest daily database count.
    pub max_database_count: i64,
    /// Smallest daily database count.
    pub min_database_count: i64,
    /// Rounded difference of the mean total against the previous period.
    pub total_size_change_mb: Option<i64>,
    /// That difference in percent of the previous mean total.
    pub total_size_change_percent: Option<Decimal>,
    /// Rounded difference of the mean database count against the previous period.
    pub database_count_change: Option<i64>,
    /// That difference in percent of the previous mean database count.
    pub database_count_change_percent: Option<Decimal>,
    /// Equal to `total_size_change_percent`.
    pub growth_rate: Option<Decimal>,
    /// Classification of `growth_rate`; `None` when it is `None`.
    pub trend_direction: Option<TrendDirection>,
    /// Rounded difference of the mean total against the same period one year earlier
    /// ([`Period::year_earlier`]); `None` for daily periods and when that period has no
    /// samples.
    pub yoy_change_mb: Option<i64>,
    /// That difference in percent of the mean total a year earlier.
    pub yoy_change_percent: Option<Decimal>,
    /// How complete the period's days are.
    #[serde(flatten)]
    pub completeness: Completeness,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trend_thresholds_are_exclusive() {
        let rate = |text: &str| text.parse::<Decimal>().unwrap();
        assert_eq!(
            TrendDirection::from_growth_rate(rate("5.00")),
            TrendDirection::Stable
        );
        assert_eq!(
            TrendDirection::from_growth_rate(rate("5.01")),
            TrendDirection::Growing
        );
        assert_eq!(
            TrendDirection::from_growth_rate(rate("-5.00")),
            TrendDirection::Stable
        );
        assert_eq!(
            TrendDirection::from_growth_rate(rate("-5.01")),
            TrendDirection::Shrinking
        );
        assert_eq!(
            TrendDirection::from_growth_rate(rate("0")),
            TrendDirection::Stable
        );
    }

    #[test]
    fn level_and_trend_names_round_trip() {
        for level in AggregationLevel::ALL {
            assert_eq!(level.as_str().parse::<AggregationLevel>(), Ok(level));
        }
        for direction in [
            TrendDirection::Growing,
            TrendDirection::Shrinking,
            TrendDirection::Stable,
        ] {
            assert_eq!(direction.as_str().parse::<TrendDirection>(), Ok(direction));
        }
    }
}
