//! The calendar: period types and the inclusive date windows they cut time into.
//!
//! Every window is a closed interval `[start, end]` of business dates. Weeks are ISO weeks
//! (Monday to Sunday) and may span two years; quarters start in January, April, July and October.

use std::fmt;

use chrono::{Datelike, Days, Months, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// The first business date capstats accepts. Earlier dates are rejected as input so that the
/// calendar arithmetic below never leaves the range of [`NaiveDate`].
pub const EARLIEST_SUPPORTED_DATE: NaiveDate = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap();
/// The last business date capstats accepts.
pub const LATEST_SUPPORTED_DATE: NaiveDate = NaiveDate::from_ymd_opt(9998, 12, 31).unwrap();

/// Rejects dates outside [`EARLIEST_SUPPORTED_DATE`] ..= [`LATEST_SUPPORTED_DATE`].
pub fn validate_supported_date(date: NaiveDate) -> Result<NaiveDate, ValidationError> {
    if (EARLIEST_SUPPORTED_DATE..=LATEST_SUPPORTED_DATE).contains(&date) {
        Ok(date)
    } else {
        Err(ValidationError::DateOutOfRange {
            date,
            earliest: EARLIEST_SUPPORTED_DATE,
            latest: LATEST_SUPPORTED_DATE,
        })
    }
}

crate::named_enum! {
    /// The granularity of an aggregation.
    PeriodType, error: ValidationError =
        |text: &str| ValidationError::UnknownPeriodType(text.to_owned()), {
        /// One calendar day.
        Daily => "daily",
        /// One ISO week, Monday to Sunday.
        Weekly => "weekly",
        /// One calendar month.
        Monthly => "monthly",
        /// One calendar quarter (January, April, July, October).
        Quarterly => "quarterly",
        /// One calendar year.
        Yearly => "yearly",
    }
}

impl PeriodType {
    /// The unit PostgreSQL's `date_trunc` uses for this period type.
    pub fn truncation_unit(self) -> &'static str {
        match self {
            Self::Daily => "day",
            Self::Weekly => "week",
            Self::Monthly => "month",
            Self::Quarterly => "quarter",
            Self::Yearly => "year",
        }
    }

    /// The length of one period as a PostgreSQL interval literal.
    pub fn interval_literal(self) -> &'static str {
        match self {
            Self::Daily => "1 day",
            Self::Weekly => "7 days",
            Self::Monthly => "1 month",
            Self::Quarterly => "3 months",
            Self::Yearly => "1 year",
        }
    }

    /// The distance from a period to the same period a year earlier ([`Period::year_earlier`])
    /// as a PostgreSQL interval literal: 52 weeks for weeks, a year for the longer types;
    /// `None` for days, which have no year-over-year change.
    pub fn year_over_year_interval(self) -> Option<&'static str> {
        match self {
            Self::Daily => None,
            Self::Weekly => Some("364 days"),
            Self::Monthly | Self::Quarterly | Self::Yearly => Some("1 year"),
        }
    }

    /// The most days a period of this type can span.
    pub fn maximum_days(self) -> u32 {
        match self {
            Self::Daily => 1,
            Self::Weekly => 7,
            Self::Monthly => 31,
            Self::Quarterly => 92,
            Self::Yearly => 366,
        }
    }

    /// The first day of the period of this type that contains `date`.
    fn start_of(self, date: NaiveDate) -> NaiveDate {
        match self {
            Self::Daily => date,
            Self::Weekly => date - Days::new(u64::from(date.weekday().num_days_from_monday())),
            Self::Monthly => first_of_month(date.year(), date.month()),
            Self::Quarterly => first_of_month(date.year(), (date.month0() / 3) * 3 + 1),
            Self::Yearly => first_of_month(date.year(), 1),
        }
    }

    /// The first day after the period of this type that starts on `start`.
    fn next_start(self, start: NaiveDate) -> NaiveDate {
        let next = match self {
            Self::Daily => start.checked_add_days(Days::new(1)),
            Self::Weekly => start.checked_add_days(Days::new(7)),
            Self::Monthly => start.checked_add_months(Months::new(1)),
            Self::Quarterly => start.checked_add_months(Months::new(3)),
            Self::Yearly => start.checked_add_months(Months::new(12)),
        };
        next.expect("calendar arithmetic stays far inside chrono's date range")
    }
}

fn first_of_month(year: i32, month: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, 1).expect("the first of a month always exists")
}

fn day_before(date: NaiveDate) -> NaiveDate {
    date.pred_opt()
        .expect("calendar arithmetic stays far inside chrono's date range")
}

/// One calendar window `[start, end]` of a [`PeriodType`].
///
/// A `Period` is always aligned: its start is the first day of a period of its type and its end
/// the last day of the same period. The only ways to obtain one are the constructors below, so
/// an unaligned window cannot exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "PeriodFields", into = "PeriodFields")]
pub struct Period {
    period_type: PeriodType,
    start: NaiveDate,
    end: NaiveDate,
}

impl Period {
    /// The period of `period_type` that contains `date`.
    ///
    /// Weeks are ISO weeks (Monday to Sunday), so a week can span two years:
    ///
    /// ```
    /// use capstats_capacity_model::{Period, PeriodType};
    /// use chrono::NaiveDate;
    ///
    /// let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
    /// // 1 January 2026 is a Thursday of ISO week 1, which began on Monday 29 December 2025.
    /// let week = Period::containing(PeriodType::Weekly, date(2026, 1, 1));
    /// assert_eq!((week.start(), week.end()), (date(2025, 12, 29), date(2026, 1, 4)));
    /// // February of a leap year.
    /// let february = Period::containing(PeriodType::Monthly, date(2024, 2, 10));
    /// assert_eq!((february.end(), february.day_count()), (date(2024, 2, 29), 29));
    /// let quarter = Period::containing(PeriodType::Quarterly, date(2025, 12, 31));
    /// assert_eq!(quarter.start(), date(2025, 10, 1));
    /// ```
    ///
    /// # Panics
    ///
    /// Only for dates within a few years of the ends of chrono's range (±262,000 years); input
    /// is checked against [`EARLIEST_SUPPORTED_DATE`] and [`LATEST_SUPPORTED_DATE`] long before.
    pub fn containing(period_type: PeriodType, date: NaiveDate) -> Self {
        let start = period_type.start_of(date);
        let end = day_before(period_type.next_start(start));
        Self {
            period_type,
            start,
            end,
        }
    }

    /// The period containing `today`; its end may lie in the future.
    pub fn current(period_type: PeriodType, today: NaiveDate) -> Self {
        Self::containing(period_type, today)
    }

    /// The most recent period that ended before `today` (for daily periods: yesterday).
    ///
    /// ```
    /// use capstats_capacity_model::{Period, PeriodType};
    /// use chrono::NaiveDate;
    ///
    /// let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
    /// let today = date(2026, 1, 1);
    /// assert_eq!(Period::last_complete(PeriodType::Daily, today).start(), date(2025, 12, 31));
    /// assert_eq!(Period::last_complete(PeriodType::Yearly, today).start(), date(2025, 1, 1));
    /// // The week containing 1 January 2026 is still running: the last complete week ended
    /// // on Sunday 28 December.
    /// assert_eq!(Period::last_complete(PeriodType::Weekly, today).end(), date(2025, 12, 28));
    /// ```
    pub fn last_complete(period_type: PeriodType, today: NaiveDate) -> Self {
        Self::current(period_type, today).previous()
    }

    /// The period of `period_type` that starts on `start`, or an error if none does.
    pub fn starting_on(period_type: PeriodType, start: NaiveDate) -> Result<Self, ValidationError> {
        let period = Self::containing(period_type, start);
        if period.start == start {
            Ok(period)
        } else {
            Err(ValidationError::NotAPeriodStart {
                period_type: period_type.as_str(),
                date: start,
            })
        }
    }

    /// The periods of `period_type` whose start lies in `[from, to]`, oldest first.
    ///
    /// A period that starts before `from` is not included even if it overlaps the range; this
    /// is what "aggregate every period from `from` to `to`" means in the commands.
    ///
    /// ```
    /// use capstats_capacity_model::{Period, PeriodType};
    /// use chrono::NaiveDate;
    ///
    /// let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
    /// let starts: Vec<NaiveDate> =
    ///     Period::starting_between(PeriodType::Monthly, date(2025, 1, 15), date(2025, 4, 1))
    ///         .map(|period| period.start())
    ///         .collect();
    /// assert_eq!(starts, [date(2025, 2, 1), date(2025, 3, 1), date(2025, 4, 1)]);
    /// ```
    pub fn starting_between(
        period_type: PeriodType,
        from: NaiveDate,
        to: NaiveDate,
    ) -> PeriodsStartingBetween {
        let first = Self::containing(period_type, from);
        let next = if first.start < from {
            first.next()
        } else {
            first
        };
        PeriodsStartingBetween {
            next,
            last_start: to,
        }
    }

    /// The period of the same type immediately before this one. It is always a full period: the
    /// quarter before a quarter is three months long.
    ///
    /// ```
    /// use capstats_capacity_model::{Period, PeriodType};
    /// use chrono::NaiveDate;
    ///
    /// let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
    /// let first_quarter = Period::containing(PeriodType::Quarterly, date(2026, 2, 1));
    /// let previous = first_quarter.previous();
    /// assert_eq!((previous.start(), previous.end()), (date(2025, 10, 1), date(2025, 12, 31)));
    /// assert_eq!(previous.next(), first_quarter);
    /// ```
    pub fn previous(&self) -> Self {
        Self::containing(self.period_type, day_before(self.start))
    }

    /// The same period one year earlier, which year-over-year changes compare with: the week
    /// 52 weeks earlier (the same weekdays), the month, quarter or year twelve months
    /// earlier. `None` for daily periods, which have no year-over-year change, and before the
    /// first representable year.
    ///
    /// ```
    /// use capstats_capacity_model::{Period, PeriodType};
    /// use chrono::NaiveDate;
    ///
    /// let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
    /// let march = Period::containing(PeriodType::Monthly, date(2026, 3, 10));
    /// assert_eq!(march.year_earlier().unwrap().start(), date(2025, 3, 1));
    /// let week = Period::containing(PeriodType::Weekly, date(2026, 12, 2));
    /// assert_eq!(week.year_earlier().unwrap().start(), date(2025, 12, 1));
    /// assert_eq!(Period::containing(PeriodType::Daily, date(2026, 3, 10)).year_earlier(), None);
    /// ```
    pub fn year_earlier(&self) -> Option<Self> {
        let start = match self.period_type {
            PeriodType::Daily => return None,
            PeriodType::Weekly => self.start.checked_sub_days(chrono::Days::new(364))?,
            PeriodType::Monthly | PeriodType::Quarterly | PeriodType::Yearly => {
                self.start.checked_sub_months(chrono::Months::new(12))?
            }
        };
        Some(Self::containing(self.period_type, start))
    }

    /// The `count` periods of `period_type` ending with the one containing `date`, oldest
    /// first (at least that one).
    ///
    /// ```
    /// use capstats_capacity_model::{Period, PeriodType};
    /// use chrono::NaiveDate;
    ///
    /// let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
    /// let window = Period::ending_with(PeriodType::Monthly, date(2026, 3, 10), 3);
    /// let starts: Vec<NaiveDate> = window.iter().map(Period::start).collect();
    /// assert_eq!(starts, [date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)]);
    /// ```
    pub fn ending_with(period_type: PeriodType, date: NaiveDate, count: usize) -> Vec<Self> {
        let mut window = vec![Self::containing(period_type, date)];
        while window.len() < count {
            let earlier = window[window.len() - 1].previous();
            window.push(earlier);
        }
        window.reverse();
        window
    }

    /// The period of the same type immediately after this one.
    pub fn next(&self) -> Self {
        Self::containing(self.period_type, self.period_type.next_start(self.start))
    }

    /// The type of the period.
    pub fn period_type(&self) -> PeriodType {
        self.period_type
    }

    /// The first day of the window.
    pub fn start(&self) -> NaiveDate {
        self.start
    }

    /// The last day of the window (inclusive).
    pub fn end(&self) -> NaiveDate {
        self.end
    }

    /// Whether `date` lies inside the window.
    pub fn contains(&self, date: NaiveDate) -> bool {
        self.start <= date && date <= self.end
    }

    /// The number of days in the window.
    pub fn day_count(&self) -> u32 {
        u32::try_from((self.end - self.start).num_days() + 1)
            .expect("a period spans between 1 and 366 days")
    }
}

impl fmt::Display for Period {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{} {}..{}",
            self.period_type, self.start, self.end
        )
    }
}

/// The serialized form of a [`Period`]; deserializing checks that the start is aligned.
#[derive(Serialize, Deserialize)]
struct PeriodFields {
    period_type: PeriodType,
    period_start: NaiveDate,
    period_end: NaiveDate,
}

impl From<Period> for PeriodFields {
    fn from(period: Period) -> Self {
        Self {
            period_type: period.period_type,
            period_start: period.start,
            period_end: period.end,
        }
    }
}

impl TryFrom<PeriodFields> for Period {
    type Error = ValidationError;

    fn try_from(fields: PeriodFields) -> Result<Self, Self::Error> {
        let period = Period::starting_on(fields.period_type, fields.period_start)?;
        if period.end != fields.period_end {
            return Err(ValidationError::NotAPeriodStart {
                period_type: fields.period_type.as_str(),
                date: fields.period_start,
            });
        }
        Ok(period)
    }
}

/// Iterator returned by [`Period::starting_between`].
#[derive(Debug, Clone)]
pub struct PeriodsStartingBetween {
    next: Period,
    last_start: NaiveDate,
}

impl Iterator for PeriodsStartingBetween {
    type Item = Period;

    fn next(&mut self) -> Option<Period> {
        if self.next.start > self.last_start {
            return None;
        }
        let period = self.next;
        self.next = period.next();
        Some(period)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn date(year: i32, month: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(year, month, day).unwrap()
    }

    fn window(period_type: PeriodType, on: NaiveDate) -> (NaiveDate, NaiveDate) {
        let period = Period::containing(period_type, on);
        (period.start(), period.end())
    }

    #[test]
    fn leap_day_belongs_to_february_and_the_first_quarter() {
        let leap_day = date(2024, 2, 29);
        assert_eq!(window(PeriodType::Daily, leap_day), (leap_day, leap_day));
        assert_eq!(
            window(PeriodType::Monthly, leap_day),
            (date(2024, 2, 1), leap_day)
        );
        assert_eq!(
            window(PeriodType::Quarterly, leap_day),
            (date(2024, 1, 1), date(2024, 3, 31))
        );
        assert_eq!(
            window(PeriodType::Yearly, leap_day),
            (date(2024, 1, 1), date(2024, 12, 31))
        );
        assert_eq!(
            Period::containing(PeriodType::Yearly, leap_day).day_count(),
            366
        );
        assert_eq!(
            Period::containing(PeriodType::Monthly, date(2023, 2, 14)).day_count(),
            28
        );
        // The month after a leap-day February starts on the first of March.
        assert_eq!(
            Period::containing(PeriodType::Monthly, leap_day)
                .next()
                .start(),
            date(2024, 3, 1)
        );
    }

    #[test]
    fn iso_week_one_can_start_in_the_previous_year() {
        // 2025-01-01 is a Wednesday; ISO week 1 of 2025 runs from Monday 2024-12-30.
        assert_eq!(
            window(PeriodType::Weekly, date(2025, 1, 1)),
            (date(2024, 12, 30), date(2025, 1, 5))
        );
        assert_eq!(
            window(PeriodType::Weekly, date(2024, 12, 30)),
            (date(2024, 12, 30), date(2025, 1, 5))
        );
    }

    #[test]
    fn iso_week_fifty_three_can_end_in_the_next_year() {
        // 2020 has 53 ISO weeks; week 53 runs from 2020-12-28 to 2021-01-03.
        let week = Period::containing(PeriodType::Weekly, date(2021, 1, 3));
        assert_eq!(
            (week.start(), week.end()),
            (date(2020, 12, 28), date(2021, 1, 3))
        );
        assert_eq!(week.start().iso_week().week(), 53);
        assert_eq!(week.next().start(), date(2021, 1, 4));
        assert_eq!(week.next().start().iso_week().week(), 1);
        assert_eq!(week.previous().start(), date(2020, 12, 21));
    }

    #[test]
    fn quarter_and_year_ends() {
        assert_eq!(
            window(PeriodType::Quarterly, date(2025, 6, 30)),
            (date(2025, 4, 1), date(2025, 6, 30))
        );
        assert_eq!(
            window(PeriodType::Quarterly, date(2025, 7, 1)),
            (date(2025, 7, 1), date(2025, 9, 30))
        );
        assert_eq!(
            window(PeriodType::Quarterly, date(2025, 12, 31)),
            (date(2025, 10, 1), date(2025, 12, 31))
        );
        let first_quarter = Period::containing(PeriodType::Quarterly, date(2026, 1, 1));
        let previous = first_quarter.previous();
        // A full quarter, not the two months the reference implementation used.
        assert_eq!(
            (previous.start(), previous.end()),
            (date(2025, 10, 1), date(2025, 12, 31))
        );
        assert_eq!(
            Period::containing(PeriodType::Yearly, date(2025, 12, 31))
                .next()
                .start(),
            date(2026, 1, 1)
        );
    }

    #[test]
    fn last_complete_period_ended_before_today() {
        let today = date(2026, 1, 1);
        assert_eq!(
            Period::last_complete(PeriodType::Daily, today).start(),
            date(2025, 12, 31)
        );
        assert_eq!(
            window(
                PeriodType::Weekly,
                Period::last_complete(PeriodType::Weekly, today).start()
            ),
            (date(2025, 12, 22), date(2025, 12, 28))
        );
        assert_eq!(
            Period::last_complete(PeriodType::Monthly, today).start(),
            date(2025, 12, 1)
        );
        assert_eq!(
            Period::last_complete(PeriodType::Quarterly, today).start(),
            date(2025, 10, 1)
        );
        assert_eq!(
            Period::last_complete(PeriodType::Yearly, today).start(),
            date(2025, 1, 1)
        );
        // On the first day of a period the current period has only just begun.
        let current = Period::current(PeriodType::Monthly, today);
        assert_eq!(
            (current.start(), current.end()),
            (date(2026, 1, 1), date(2026, 1, 31))
        );
    }

    #[test]
    fn starting_on_rejects_unaligned_dates() {
        assert!(Period::starting_on(PeriodType::Monthly, date(2025, 3, 1)).is_ok());
        assert_eq!(
            Period::starting_on(PeriodType::Monthly, date(2025, 3, 2)),
            Err(ValidationError::NotAPeriodStart {
                period_type: "monthly",
                date: date(2025, 3, 2)
            })
        );
        assert!(Period::starting_on(PeriodType::Weekly, date(2025, 3, 3)).is_ok());
        assert!(Period::starting_on(PeriodType::Weekly, date(2025, 3, 4)).is_err());
    }

    #[test]
    fn starting_between_includes_only_periods_starting_in_range() {
        let months: Vec<_> =
            Period::starting_between(PeriodType::Monthly, date(2025, 1, 15), date(2025, 4, 1))
                .map(|period| period.start())
                .collect();
        assert_eq!(
            months,
            vec![date(2025, 2, 1), date(2025, 3, 1), date(2025, 4, 1)]
        );
        assert_eq!(
            Period::starting_between(PeriodType::Yearly, date(2025, 1, 2), date(2025, 12, 31))
                .count(),
            0
        );
    }

    #[test]
    fn serde_uses_explicit_field_names_and_validates() {
        let period = Period::containing(PeriodType::Weekly, date(2025, 1, 1));
        let json = serde_json::to_string(&period).unwrap();
        assert_eq!(
            json,
            r#"{"period_type":"weekly","period_start":"2024-12-30","period_end":"2025-01-05"}"#
        );
        assert_eq!(serde_json::from_str::<Period>(&json).unwrap(), period);
        let unaligned =
            r#"{"period_type":"weekly","period_start":"2024-12-31","period_end":"2025-01-06"}"#;
        assert!(serde_json::from_str::<Period>(unaligned).is_err());
    }

    #[test]
    fn period_type_parses_case_insensitively_and_rejects_others() {
        assert_eq!("Monthly".parse::<PeriodType>(), Ok(PeriodType::Monthly));
        assert_eq!(
            "hourly".parse::<PeriodType>(),
            Err(ValidationError::UnknownPeriodType("hourly".into()))
        );
    }

    fn any_period_type() -> impl Strategy<Value = PeriodType> {
        prop::sample::select(PeriodType::ALL.to_vec())
    }

    fn any_date() -> impl Strategy<Value = NaiveDate> {
        // 1900-01-01 ..= 2199-12-31 as days from the common era.
        (693_596i32..=803_533).prop_map(|day| NaiveDate::from_num_days_from_ce_opt(day).unwrap())
    }

    proptest! {
        #[test]
        fn containing_period_contains_the_date(period_type in any_period_type(), day in any_date()) {
            let period = Period::containing(period_type, day);
            prop_assert!(period.contains(day));
            prop_assert!(period.day_count() <= period_type.maximum_days());
            prop_assert_eq!(Period::starting_on(period_type, period.start()), Ok(period));
            prop_assert_eq!(Period::containing(period_type, period.end()), period);
        }

        #[test]
        fn neighbours_are_adjacent(period_type in any_period_type(), day in any_date()) {
            let period = Period::containing(period_type, day);
            prop_assert_eq!(period.previous().end().succ_opt().unwrap(), period.start());
            prop_assert_eq!(period.end().succ_opt().unwrap(), period.next().start());
            prop_assert_eq!(period.previous().next(), period);
            prop_assert_eq!(period.next().previous(), period);
        }

        #[test]
        fn periods_between_tile_the_range(
            period_type in any_period_type(),
            from in any_date(),
            length in 0u64..800,
        ) {
            let to = from + Days::new(length);
            let periods: Vec<_> = Period::starting_between(period_type, from, to).collect();
            for pair in periods.windows(2) {
                prop_assert_eq!(pair[0].next(), pair[1]);
            }
            for period in &periods {
                prop_assert!(from <= period.start() && period.start() <= to);
            }
            // Nothing is missed at either end.
            match periods.first() {
                Some(first) => prop_assert!(first.previous().start() < from),
                None => {
                    let around = Period::containing(period_type, from);
                    prop_assert!(around.start() < from && around.next().start() > to);
                }
            }
            if let Some(last) = periods.last() {
                prop_assert!(last.next().start() > to);
            }
        }
    }
}
