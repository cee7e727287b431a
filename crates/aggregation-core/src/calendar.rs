//! The calendar: which windows exist and which of them a run has to compute.
//!
//! The window arithmetic itself lives on [`Period`] (in `capacity-model`, so that every crate
//! shares one type); this module adds the scheduling rules built on it.

use chrono::NaiveDate;

pub use capstats_capacity_model::{Completeness, Period, PeriodType};

/// The periods of `period_type` a scheduled run on business date `today` has to compute,
/// oldest first.
///
/// Candidates are the last complete period and the `horizon − 1` complete periods before it
/// (the bounded catch-up of DESIGN §5a); a candidate is skipped when `is_up_to_date` says the
/// ledger already holds it and it is not stale. A `horizon` of 0 is treated as 1: the last
/// complete period is always a candidate.
///
/// ```
/// use capstats_aggregation_core::{due_periods, Period, PeriodType};
/// use chrono::NaiveDate;
///
/// let today = NaiveDate::from_ymd_opt(2025, 4, 2).unwrap();
/// let march = Period::last_complete(PeriodType::Monthly, today);
/// // Only March is recorded: February and January are caught up, March is skipped.
/// let due = due_periods(PeriodType::Monthly, today, 3, |period| *period == march);
/// let starts: Vec<_> = due.iter().map(|period| period.start().to_string()).collect();
/// assert_eq!(starts, ["2025-01-01", "2025-02-01"]);
/// ```
pub fn due_periods(
    period_type: PeriodType,
    today: NaiveDate,
    horizon: usize,
    is_up_to_date: impl Fn(&Period) -> bool,
) -> Vec<Period> {
    let last = Period::last_complete(period_type, today);
    let mut candidates = Period::ending_with(period_type, last.start(), horizon.max(1));
    candidates.retain(|period| !is_up_to_date(period));
    candidates
}

/// The completeness of `period` with `data_count` daily samples, as of business date `today`.
///
/// It depends on `today`: every aggregate is stored with its completeness as of the day it was
/// computed, and the scheduled runs refresh the stored figures of the periods that were still
/// partial (`capstats_store::aggregation::refresh_completeness`), so that they hold as of the
/// current business day.
///
/// ```
/// use capstats_aggregation_core::calendar::{completeness, Period, PeriodType};
/// use chrono::NaiveDate;
///
/// let day = |d| NaiveDate::from_ymd_opt(2026, 12, d).unwrap();
/// let december = Period::containing(PeriodType::Monthly, day(1));
/// // On 6 December, with one day of data: partial, 1 of 6 days so far.
/// let seen = completeness(&december, 1, day(6));
/// assert_eq!((seen.expected_count, seen.is_partial), (6, true));
/// // November, complete with its 30 days, read in December.
/// let november = december.previous();
/// assert!(!completeness(&november, 30, day(6)).is_partial);
/// assert!(completeness(&november, 29, day(6)).is_partial);
/// ```
pub fn completeness(period: &Period, data_count: i64, today: NaiveDate) -> Completeness {
    // A period ending today has not ended: today's samples may still come.
    let ended = period.end() < today;
    let expected_count = if ended {
        i64::from(period.day_count())
    } else if period.start() > today {
        0
    } else {
        (today - period.start()).num_days() + 1
    };
    Completeness {
        expected_count,
        is_partial: !ended || data_count < expected_count,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_due_when_everything_is_recorded() {
        let today = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
        for period_type in PeriodType::ALL {
            assert!(due_periods(period_type, today, 5, |_| true).is_empty());
        }
    }

    #[test]
    fn the_last_complete_period_is_always_a_candidate() {
        let today = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
        let due = due_periods(PeriodType::Daily, today, 0, |_| false);
        assert_eq!(due, vec![Period::last_complete(PeriodType::Daily, today)]);
        let due = due_periods(PeriodType::Weekly, today, 3, |_| false);
        assert_eq!(due.len(), 3);
        assert_eq!(due[2], Period::last_complete(PeriodType::Weekly, today));
        assert_eq!(due[0].next(), due[1]);
    }
}
