//! Calendar windows: leap days, ISO weeks across years, alignment, parsing, and tiling properties.

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
        Period::starting_between(PeriodType::Yearly, date(2025, 1, 2), date(2025, 12, 31)).count(),
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
