//! The metric definitions of DESIGN §5, on exact integers.
//!
//! Every stored number is a quotient of integer sums. Computing it as one exact fraction and
//! rounding it once, half away from zero, gives the same digits as PostgreSQL's `numeric`
//! `div`/`mod` arithmetic in `store`, whatever the magnitudes.
//!
//! Why `i128` is wide enough: a key has at most one sample per day and a period at most 366
//! days, and every stored size is a non-negative `bigint` (< 2⁶³). Sums are therefore below
//! 366 · 2⁶³ ≈ 3.4 · 10²¹, the cross products used for changes below 1.3 · 10²⁴ and, scaled by
//! 10⁴ for a percentage with two decimals, below 1.3 · 10²⁸ — far from `i128::MAX` ≈ 1.7 · 10³⁸.

use capstats_capacity_model::{
    DatabaseSizeAggregate, DatabaseSizeSample, Decimal, InstanceId, InstanceSizeAggregate,
    InstanceSizeSample, Period, TrendDirection,
};
use chrono::NaiveDate;

use crate::calendar::completeness;

/// Divides exactly and rounds the quotient half away from zero.
///
/// ```
/// use capstats_aggregation_core::metrics::divide_rounded;
/// assert_eq!(divide_rounded(5, 2), 3);
/// assert_eq!(divide_rounded(-5, 2), -3);
/// assert_eq!(divide_rounded(7, 3), 2);
/// assert_eq!(divide_rounded(-7, -2), 4);
/// ```
///
/// # Panics
///
/// When `denominator` is zero.
pub fn divide_rounded(numerator: i128, denominator: i128) -> i128 {
    assert!(denominator != 0, "division by zero");
    let quotient = numerator / denominator;
    let remainder = numerator % denominator;
    if 2 * remainder.abs() >= denominator.abs() {
        quotient + numerator.signum() * denominator.signum()
    } else {
        quotient
    }
}

/// A value with two decimals from a number of hundredths.
fn hundredths(value: i128) -> Decimal {
    Decimal::try_from_i128_with_scale(value, 2)
        .expect("values bounded as in the module documentation fit in 96 bits")
}

/// Narrows a rounded megabyte value; the bounds in the module documentation keep it in range.
fn whole(value: i128) -> i64 {
    i64::try_from(value).expect("a rounded mean or change of bigint values fits in i64")
}

/// The exact mean of at least one value, kept as a fraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mean {
    sum: i128,
    count: i128,
}

impl Mean {
    /// The mean rounded to a whole number.
    pub fn rounded(self) -> i64 {
        whole(divide_rounded(self.sum, self.count))
    }

    /// The mean rounded to two decimals.
    pub fn rounded_to_hundredths(self) -> Decimal {
        hundredths(divide_rounded(self.sum * 100, self.count))
    }

    /// `round(self − previous)` with both means exact.
    pub fn change_from(self, previous: Mean) -> i64 {
        whole(divide_rounded(
            self.sum * previous.count - previous.sum * self.count,
            self.count * previous.count,
        ))
    }

    /// `round2((self − previous) / previous × 100)`, or `None` when `previous` is zero.
    pub fn percent_change_from(self, previous: Mean) -> Option<Decimal> {
        let denominator = previous.sum * self.count;
        (denominator != 0).then(|| {
            hundredths(divide_rounded(
                (self.sum * previous.count - previous.sum * self.count) * 10_000,
                denominator,
            ))
        })
    }
}

/// Count, sum and extremes of a series of values, ignoring nulls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    /// Number of (non-null) values.
    pub count: i64,
    /// Their exact sum.
    pub sum: i128,
    /// The largest value, if any.
    pub maximum: Option<i64>,
    /// The smallest value, if any.
    pub minimum: Option<i64>,
}

impl Summary {
    /// Adds a value; `None` is ignored like SQL aggregates ignore nulls.
    pub fn push(&mut self, value: Option<i64>) {
        let Some(value) = value else { return };
        self.count += 1;
        self.sum += i128::from(value);
        self.maximum = Some(self.maximum.map_or(value, |maximum| maximum.max(value)));
        self.minimum = Some(self.minimum.map_or(value, |minimum| minimum.min(value)));
    }

    /// The exact mean, or `None` without values.
    pub fn mean(&self) -> Option<Mean> {
        (self.count > 0).then_some(Mean {
            sum: self.sum,
            count: i128::from(self.count),
        })
    }
}

/// The three series of one database over one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DatabaseWindow {
    /// `size_mb` values.
    pub size: Summary,
    /// Non-null `data_size_mb` values.
    pub data_size: Summary,
    /// Non-null `log_size_mb` values.
    pub log_size: Summary,
}

impl DatabaseWindow {
    /// Summarises samples; the caller passes only the samples of one database and window.
    pub fn from_samples<'a>(samples: impl IntoIterator<Item = &'a DatabaseSizeSample>) -> Self {
        let mut window = Self::default();
        for sample in samples {
            window.size.push(Some(sample.size_mb));
            window.data_size.push(sample.data_size_mb);
            window.log_size.push(sample.log_size_mb);
        }
        window
    }
}

/// `(change_mb, change_percent)` of a series against the previous window's series.
fn changes(current: &Summary, previous: &Summary) -> (Option<i64>, Option<Decimal>) {
    match (current.mean(), previous.mean()) {
        (Some(current), Some(previous)) => (
            Some(current.change_from(previous)),
            current.percent_change_from(previous),
        ),
        _ => (None, None),
    }
}

/// The database-level aggregate of one database for `period`, from the summaries of its
/// samples in `period`, in `period.previous()` and — for the types with a year-over-year
/// change, `None` otherwise — in `period.year_earlier()`, with its completeness as of business
/// date `as_of`. `None` when `current` has no samples: no row is stored for a database without
/// samples in the period.
pub fn database_aggregate(
    instance_id: InstanceId,
    database_name: &str,
    period: Period,
    current: &DatabaseWindow,
    previous: &DatabaseWindow,
    year_earlier: Option<&DatabaseWindow>,
    as_of: NaiveDate,
) -> Option<DatabaseSizeAggregate> {
    let size_mean = current.size.mean()?;
    let year_earlier = year_earlier.copied().unwrap_or_default();
    let (yoy_change_mb, yoy_change_percent) = changes(&current.size, &year_earlier.size);
    let (yoy_data_change_mb, yoy_data_change_percent) =
        changes(&current.data_size, &year_earlier.data_size);
    let (yoy_log_change_mb, yoy_log_change_percent) =
        changes(&current.log_size, &year_earlier.log_size);
    let (size_change_mb, size_change_percent) = changes(&current.size, &previous.size);
    let (data_size_change_mb, data_size_change_percent) =
        changes(&current.data_size, &previous.data_size);
    let (log_size_change_mb, log_size_change_percent) =
        changes(&current.log_size, &previous.log_size);
    Some(DatabaseSizeAggregate {
        instance_id,
        database_name: database_name.to_owned(),
        period,
        avg_size_mb: size_mean.rounded(),
        max_size_mb: current.size.maximum?,
        min_size_mb: current.size.minimum?,
        data_count: current.size.count,
        avg_data_size_mb: current.data_size.mean().map(Mean::rounded),
        max_data_size_mb: current.data_size.maximum,
        min_data_size_mb: current.data_size.minimum,
        avg_log_size_mb: current.log_size.mean().map(Mean::rounded),
        max_log_size_mb: current.log_size.maximum,
        min_log_size_mb: current.log_size.minimum,
        size_change_mb,
        size_change_percent,
        data_size_change_mb,
        data_size_change_percent,
        log_size_change_mb,
        log_size_change_percent,
        growth_rate: size_change_percent,
        yoy_change_mb,
        yoy_change_percent,
        yoy_data_change_mb,
        yoy_data_change_percent,
        yoy_log_change_mb,
        yoy_log_change_percent,
        completeness: completeness(&period, current.size.count, as_of),
    })
}

/// The two daily series of one instance over one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InstanceWindow {
    /// Daily `total_size_mb` values.
    pub total_size: Summary,
    /// Daily `database_count` values.
    pub database_count: Summary,
}

impl InstanceWindow {
    /// Summarises daily totals; the caller passes only one instance's days of one window.
    pub fn from_samples<'a>(samples: impl IntoIterator<Item = &'a InstanceSizeSample>) -> Self {
        let mut window = Self::default();
        for sample in samples {
            window.total_size.push(Some(sample.total_size_mb));
            window.database_count.push(Some(sample.database_count));
        }
        window
    }
}

/// The instance-level aggregate of one instance for `period`, from the summaries of its daily
/// totals in `period`, in `period.previous()` and — for the types with a year-over-year
/// change, `None` otherwise — in `period.year_earlier()`, with its completeness as of business
/// date `as_of`. `None` when `current` has no days.
pub fn instance_aggregate(
    instance_id: InstanceId,
    period: Period,
    current: &InstanceWindow,
    previous: &InstanceWindow,
    year_earlier: Option<&InstanceWindow>,
    as_of: NaiveDate,
) -> Option<InstanceSizeAggregate> {
    let total_mean = current.total_size.mean()?;
    let (yoy_change_mb, yoy_change_percent) = changes(
        &current.total_size,
        &year_earlier.copied().unwrap_or_default().total_size,
    );
    let count_mean = current.database_count.mean()?;
    let (total_size_change_mb, total_size_change_percent) =
        changes(&current.total_size, &previous.total_size);
    let (database_count_change, database_count_change_percent) =
        changes(&current.database_count, &previous.database_count);
    let counted_databases = current.database_count.sum;
    Some(InstanceSizeAggregate {
        instance_id,
        period,
        total_size_mb: total_mean.rounded(),
        avg_size_mb: (counted_databases != 0)
            .then(|| whole(divide_rounded(current.total_size.sum, counted_databases))),
        max_size_mb: current.total_size.maximum?,
        min_size_mb: current.total_size.minimum?,
        data_count: current.total_size.count,
        database_count: count_mean.rounded(),
        avg_database_count: count_mean.rounded_to_hundredths(),
        max_database_count: current.database_count.maximum?,
        min_database_count: current.database_count.minimum?,
        total_size_change_mb,
        total_size_change_percent,
        database_count_change,
        database_count_change_percent,
        growth_rate: total_size_change_percent,
        trend_direction: total_size_change_percent.map(TrendDirection::from_growth_rate),
        yoy_change_mb,
        yoy_change_percent,
        completeness: completeness(&period, current.total_size.count, as_of),
    })
}

/// Growth over a window, `round2((last − first) / first × 100)` half away from zero, or `None`
/// when `first` is zero (the growth leaderboard's `growth_percent`).
///
/// ```
/// use capstats_aggregation_core::metrics::growth_percent;
/// assert_eq!(growth_percent(200, 250).unwrap().to_string(), "25.00");
/// assert_eq!(growth_percent(3, 2).unwrap().to_string(), "-33.33");
/// assert_eq!(growth_percent(0, 5), None);
/// ```
pub fn growth_percent(first: i64, last: i64) -> Option<Decimal> {
    // The percent change of two means of one value each.
    let single = |value: i64| Mean {
        sum: i128::from(value),
        count: 1,
    };
    single(last).percent_change_from(single(first))
}

#[cfg(test)]
mod tests {
    use super::*;
    use capstats_capacity_model::PeriodType;
    use proptest::prelude::*;

    fn mean(values: &[i64]) -> Mean {
        let mut summary = Summary::default();
        for value in values {
            summary.push(Some(*value));
        }
        summary.mean().unwrap()
    }

    fn decimal(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    #[test]
    fn rounding_is_half_away_from_zero() {
        assert_eq!(mean(&[1, 2]).rounded(), 2); // 1.5
        assert_eq!(mean(&[1, 1, 2]).rounded(), 1); // 1.33
        assert_eq!(mean(&[2, 2, 1]).rounded(), 2); // 1.67
    }

    #[test]
    fn negative_halves_round_away_from_zero() {
        // 3.5 − 5 = −1.5 rounds to −2.
        assert_eq!(divide_rounded(-3, 2), -2);
        assert_eq!(mean(&[3, 4]).change_from(mean(&[5])), -2);
        assert_eq!(mean(&[1, 2]).rounded_to_hundredths(), decimal("1.50"));
        assert_eq!(mean(&[1, 1, 2]).rounded_to_hundredths(), decimal("1.33"));
        assert_eq!(mean(&[1, 2, 2]).rounded_to_hundredths(), decimal("1.67"));
    }

    #[test]
    fn percent_change_uses_exact_means() {
        // Means 100.5 and 100: +0.5 %.
        assert_eq!(
            mean(&[100, 101]).percent_change_from(mean(&[100])),
            Some(decimal("0.50"))
        );
        // Means 1 and 3: −66.666… % rounds to −66.67.
        assert_eq!(
            mean(&[1]).percent_change_from(mean(&[3])),
            Some(decimal("-66.67"))
        );
        // A previous mean of zero has no percentage.
        assert_eq!(mean(&[5]).percent_change_from(mean(&[0, 0])), None);
        assert_eq!(mean(&[5]).change_from(mean(&[0, 0])), 5);
    }

    #[test]
    fn largest_inputs_do_not_overflow() {
        let top = i64::MAX;
        let full_year = vec![top; 366];
        assert_eq!(mean(&full_year).rounded(), top);
        let mut one_in_a_year = vec![0; 365];
        one_in_a_year.push(1);
        // (MAX − 1/366) / (1/366) × 100 with two decimals.
        let percent = mean(&full_year)
            .percent_change_from(mean(&one_in_a_year))
            .unwrap();
        let expected = (i128::from(top) * 366 - 1) * 100;
        assert_eq!(
            percent,
            Decimal::try_from_i128_with_scale(expected * 100, 2).unwrap()
        );
        assert_eq!(mean(&[0]).change_from(mean(&full_year)), -top);
    }

    fn april(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 4, day).unwrap()
    }

    fn march() -> Period {
        Period::containing(
            PeriodType::Monthly,
            NaiveDate::from_ymd_opt(2025, 3, 1).unwrap(),
        )
    }

    #[test]
    fn database_aggregate_handles_null_parts_and_missing_previous() {
        let mut current = DatabaseWindow::default();
        for (size, data) in [(10, Some(8)), (11, None), (13, Some(9))] {
            current.size.push(Some(size));
            current.data_size.push(data);
            current.log_size.push(None);
        }
        let aggregate = database_aggregate(
            InstanceId(1),
            "db",
            march(),
            &current,
            &DatabaseWindow::default(),
            None,
            april(1),
        )
        .unwrap();
        // March has ended by April; three of its 31 days have samples.
        assert_eq!(
            (
                aggregate.completeness.expected_count,
                aggregate.completeness.is_partial
            ),
            (31, true)
        );
        assert_eq!(aggregate.avg_size_mb, 11); // 11.33
        assert_eq!((aggregate.max_size_mb, aggregate.min_size_mb), (13, 10));
        assert_eq!(aggregate.data_count, 3);
        assert_eq!(aggregate.avg_data_size_mb, Some(9)); // 8.5
        assert_eq!(aggregate.avg_log_size_mb, None);
        assert_eq!(aggregate.max_log_size_mb, None);
        assert_eq!(aggregate.size_change_mb, None);
        assert_eq!(aggregate.growth_rate, None);
        assert!(
            database_aggregate(
                InstanceId(1),
                "db",
                march(),
                &DatabaseWindow::default(),
                &current,
                Some(&current),
                april(1),
            )
            .is_none()
        );
    }

    #[test]
    fn data_change_needs_data_on_both_sides() {
        let mut previous = DatabaseWindow::default();
        previous.size.push(Some(10));
        previous.data_size.push(None);
        previous.log_size.push(Some(2));
        let mut current = DatabaseWindow::default();
        current.size.push(Some(12));
        current.data_size.push(Some(7));
        current.log_size.push(Some(3));
        let aggregate = database_aggregate(
            InstanceId(1),
            "db",
            march(),
            &current,
            &previous,
            Some(&previous),
            april(1),
        )
        .unwrap();
        assert_eq!(aggregate.size_change_mb, Some(2));
        // A year earlier is compared the same way, series by series.
        assert_eq!(aggregate.yoy_change_mb, Some(2));
        assert_eq!(aggregate.yoy_change_percent, Some(decimal("20.00")));
        assert_eq!(aggregate.yoy_data_change_mb, None);
        assert_eq!(aggregate.yoy_log_change_percent, Some(decimal("50.00")));
        assert_eq!(aggregate.size_change_percent, Some(decimal("20.00")));
        assert_eq!(aggregate.growth_rate, Some(decimal("20.00")));
        assert_eq!(aggregate.data_size_change_mb, None);
        assert_eq!(aggregate.log_size_change_mb, Some(1));
        assert_eq!(aggregate.log_size_change_percent, Some(decimal("50.00")));
    }

    #[test]
    fn instance_aggregate_follows_the_reference_definitions() {
        let day = |d| NaiveDate::from_ymd_opt(2025, 3, d).unwrap();
        let sample = |d, total, count| InstanceSizeSample {
            instance_id: InstanceId(4),
            collected_date: day(d),
            total_size_mb: total,
            database_count: count,
        };
        let current = InstanceWindow::from_samples(&[sample(1, 300, 3), sample(2, 330, 2)]);
        let previous = InstanceWindow::from_samples(&[sample(1, 300, 3)]);
        let aggregate =
            instance_aggregate(InstanceId(4), march(), &current, &previous, None, day(2)).unwrap();
        // Read on 2 March, March is running: two days so far, both sampled, still partial.
        assert_eq!(
            (
                aggregate.completeness.expected_count,
                aggregate.completeness.is_partial
            ),
            (2, true)
        );
        assert_eq!(
            (aggregate.yoy_change_mb, aggregate.yoy_change_percent),
            (None, None)
        );
        assert_eq!(aggregate.total_size_mb, 315);
        // Σ total / Σ count = 630 / 5.
        assert_eq!(aggregate.avg_size_mb, Some(126));
        assert_eq!(aggregate.database_count, 3); // 2.5 rounds up
        assert_eq!(aggregate.avg_database_count, decimal("2.50"));
        assert_eq!(
            (aggregate.max_database_count, aggregate.min_database_count),
            (3, 2)
        );
        assert_eq!(aggregate.total_size_change_mb, Some(15));
        assert_eq!(aggregate.total_size_change_percent, Some(decimal("5.00")));
        assert_eq!(aggregate.trend_direction, Some(TrendDirection::Stable));
        assert_eq!(aggregate.database_count_change, Some(-1)); // −0.5
        assert_eq!(
            aggregate.database_count_change_percent,
            Some(decimal("-16.67"))
        );

        let empty_days = InstanceWindow::from_samples(&[sample(1, 0, 0)]);
        let aggregate = instance_aggregate(
            InstanceId(4),
            march(),
            &empty_days,
            &InstanceWindow::default(),
            Some(&InstanceWindow::default()),
            april(1),
        )
        .unwrap();
        assert_eq!(aggregate.avg_size_mb, None);
        assert_eq!(aggregate.trend_direction, None);
    }

    /// Rounding half away from zero written differently: the sign times
    /// floor((2|n| + |d|) / 2|d|).
    fn reference_rounding(numerator: i128, denominator: i128) -> i128 {
        let sign = numerator.signum() * denominator.signum();
        sign * ((2 * numerator.abs() + denominator.abs()) / (2 * denominator.abs()))
    }

    proptest! {
        #[test]
        fn divide_rounded_matches_the_reference(
            numerator in -1_000_000_000i128..1_000_000_000,
            denominator in prop_oneof![-1000i128..-1, 1i128..1000],
        ) {
            prop_assert_eq!(
                divide_rounded(numerator, denominator),
                reference_rounding(numerator, denominator)
            );
        }

        #[test]
        fn rounded_mean_lies_between_the_extremes(values in prop::collection::vec(0i64..1_000_000_000_000, 1..366)) {
            let mut summary = Summary::default();
            for value in &values {
                summary.push(Some(*value));
            }
            let rounded = summary.mean().unwrap().rounded();
            prop_assert!(summary.minimum.unwrap() <= rounded && rounded <= summary.maximum.unwrap());
        }

        #[test]
        fn change_is_antisymmetric(
            first in prop::collection::vec(0i64..1_000_000, 1..40),
            second in prop::collection::vec(0i64..1_000_000, 1..40),
        ) {
            prop_assert_eq!(mean(&first).change_from(mean(&second)), -mean(&second).change_from(mean(&first)));
            prop_assert_eq!(mean(&first).change_from(mean(&first)), 0);
        }
    }
}
