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
mod tests;
