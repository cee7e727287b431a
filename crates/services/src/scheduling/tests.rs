//! Cron parsing, tick planning under each misfire policy, and ticks across daylight-saving
//! transitions.

use super::*;
use chrono::TimeZone;

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

#[test]
fn five_fields_mean_minutes_and_unix_weekdays() {
    let cron: CronExpression = "0 4 * * *".parse().unwrap();
    let zone = chrono_tz::Asia::Shanghai;
    // 04:00 in Shanghai is 20:00 UTC the day before.
    assert_eq!(
        cron.next_after(at("2026-11-26T12:00:00Z"), zone),
        Some(at("2026-11-26T20:00:00Z"))
    );
    // Unix weekday 1 is Monday; 2026-11-30 is a Monday.
    let monday: CronExpression = "30 9 * * 1".parse().unwrap();
    assert_eq!(
        monday.next_after(at("2026-11-26T00:00:00Z"), chrono_tz::UTC),
        Some(at("2026-11-30T09:30:00Z"))
    );
    let weekend: CronExpression = "0 12 * * 6-7".parse().unwrap();
    let ticks: Vec<_> = weekend
        .ticks_after(at("2026-11-26T00:00:00Z"), chrono_tz::UTC)
        .take(2)
        .collect();
    assert_eq!(
        ticks,
        vec![at("2026-11-28T12:00:00Z"), at("2026-11-29T12:00:00Z")]
    );
    let sunday_zero: CronExpression = "0 12 * * 0".parse().unwrap();
    assert_eq!(
        sunday_zero.next_after(at("2026-11-26T00:00:00Z"), chrono_tz::UTC),
        Some(at("2026-11-29T12:00:00Z"))
    );
}

#[test]
fn six_fields_have_seconds_first() {
    let cron: CronExpression = "*/2 * * * * *".parse().unwrap();
    let ticks: Vec<_> = cron
        .ticks_after(at("2026-11-26T00:00:00Z"), chrono_tz::UTC)
        .take(2)
        .collect();
    assert_eq!(
        ticks,
        vec![at("2026-11-26T00:00:02Z"), at("2026-11-26T00:00:04Z")]
    );
    // Weekdays are Unix numbers as in the five-field form: 1-5 is Monday to Friday.
    let weekdays: CronExpression = "0 30 9 * * 1-5".parse().unwrap();
    let ticks: Vec<_> = weekdays
        .ticks_after(at("2026-11-27T12:00:00Z"), chrono_tz::UTC)
        .take(2)
        .collect();
    // 2026-11-27 is a Friday: the next runs are Monday and Tuesday.
    assert_eq!(
        ticks,
        vec![at("2026-11-30T09:30:00Z"), at("2026-12-01T09:30:00Z")]
    );
    let five: CronExpression = "30 9 * * 0".parse().unwrap();
    let six: CronExpression = "0 30 9 * * 0".parse().unwrap();
    assert_eq!(
        five.next_after(at("2026-11-27T12:00:00Z"), chrono_tz::UTC),
        six.next_after(at("2026-11-27T12:00:00Z"), chrono_tz::UTC)
    );
}

#[test]
fn bad_expressions_are_explained() {
    for (text, expected) in [
        ("* * *", "3 fields"),
        ("61 * * * *", "invalid cron expression `61 * * * *`"),
        ("0 0 * * 9", "day of week 9"),
        ("0 0 31 2 *", "never fires"),
    ] {
        let error = text.parse::<CronExpression>().unwrap_err().to_string();
        assert!(error.contains(expected), "{text}: {error}");
    }
}

#[test]
fn on_time_ticks_are_enqueued_and_missed_ones_follow_the_policy() {
    let every_two: CronExpression = "*/2 * * * * *".parse().unwrap();
    let zone = chrono_tz::UTC;
    let cursor = at("2026-11-26T00:00:00Z");
    let now = at("2026-11-26T00:00:11Z");
    let grace = Duration::from_secs(3);
    // Ticks 2, 4, 6 are missed (older than 8 s), 8 and 10 are on time.
    let plan = |policy| plan_ticks(&every_two, zone, policy, cursor, now, grace);
    assert_eq!(
        plan(MisfirePolicy::Skip),
        TickPlan {
            enqueue: vec![at("2026-11-26T00:00:08Z"), at("2026-11-26T00:00:10Z")],
            skip: Some(at("2026-11-26T00:00:06Z")),
        }
    );
    assert_eq!(
        plan(MisfirePolicy::RunOnce).enqueue,
        vec![
            at("2026-11-26T00:00:06Z"),
            at("2026-11-26T00:00:08Z"),
            at("2026-11-26T00:00:10Z")
        ]
    );
    assert_eq!(
        plan(MisfirePolicy::CatchUp { limit: 2 }).enqueue,
        vec![
            at("2026-11-26T00:00:04Z"),
            at("2026-11-26T00:00:06Z"),
            at("2026-11-26T00:00:08Z"),
            at("2026-11-26T00:00:10Z")
        ]
    );
    // Nothing due: nothing planned.
    assert_eq!(
        plan_ticks(&every_two, zone, MisfirePolicy::RunOnce, now, now, grace),
        TickPlan::default()
    );
}

#[test]
fn misfires_older_than_the_lookback_are_ignored() {
    let daily: CronExpression = "0 4 * * *".parse().unwrap();
    let now = Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap();
    let cursor = now - chrono::Duration::days(30);
    let plan = plan_ticks(
        &daily,
        chrono_tz::UTC,
        MisfirePolicy::CatchUp { limit: 100 },
        cursor,
        now,
        Duration::from_secs(60),
    );
    assert_eq!(plan.enqueue.len(), 7);
}

/// Every tick of `expression` in `zone` on the local days `day - 1 ..= day + 1`, as
/// local wall-clock times with their offsets.
fn around(expression: &str, zone: &str, day: &str) -> Vec<String> {
    let day: chrono::NaiveDate = day.parse().unwrap();
    preview_ticks(
        &expression.parse().unwrap(),
        zone.parse().unwrap(),
        day - chrono::Days::new(1),
        3,
    )
    .into_iter()
    .map(|tick| tick.local)
    .collect()
}

#[test]
fn daily_ticks_fire_once_per_day_across_both_2026_transitions() {
    // (zone, transition day, expression, the three ticks around it).
    let cases = [
        (
            "Europe/Berlin",
            "2026-03-29",
            "0 2 * * *",
            [
                "2026-03-28T02:00:00+01:00",
                "2026-03-29T03:00:00+02:00",
                "2026-03-30T02:00:00+02:00",
            ],
        ),
        (
            "Europe/Berlin",
            "2026-03-29",
            "30 2 * * *",
            [
                "2026-03-28T02:30:00+01:00",
                "2026-03-29T03:00:00+02:00",
                "2026-03-30T02:30:00+02:00",
            ],
        ),
        (
            "Europe/Berlin",
            "2026-03-29",
            "0 3 * * *",
            [
                "2026-03-28T03:00:00+01:00",
                "2026-03-29T03:00:00+02:00",
                "2026-03-30T03:00:00+02:00",
            ],
        ),
        (
            "Europe/Berlin",
            "2026-10-25",
            "0 2 * * *",
            [
                "2026-10-24T02:00:00+02:00",
                "2026-10-25T02:00:00+02:00",
                "2026-10-26T02:00:00+01:00",
            ],
        ),
        (
            "Europe/Berlin",
            "2026-10-25",
            "30 2 * * *",
            [
                "2026-10-24T02:30:00+02:00",
                "2026-10-25T02:30:00+02:00",
                "2026-10-26T02:30:00+01:00",
            ],
        ),
        (
            "Europe/Berlin",
            "2026-10-25",
            "0 3 * * *",
            [
                "2026-10-24T03:00:00+02:00",
                "2026-10-25T03:00:00+01:00",
                "2026-10-26T03:00:00+01:00",
            ],
        ),
        (
            "America/New_York",
            "2026-03-08",
            "0 2 * * *",
            [
                "2026-03-07T02:00:00-05:00",
                "2026-03-08T03:00:00-04:00",
                "2026-03-09T02:00:00-04:00",
            ],
        ),
        (
            "America/New_York",
            "2026-03-08",
            "30 2 * * *",
            [
                "2026-03-07T02:30:00-05:00",
                "2026-03-08T03:00:00-04:00",
                "2026-03-09T02:30:00-04:00",
            ],
        ),
        (
            "America/New_York",
            "2026-03-08",
            "0 3 * * *",
            [
                "2026-03-07T03:00:00-05:00",
                "2026-03-08T03:00:00-04:00",
                "2026-03-09T03:00:00-04:00",
            ],
        ),
        (
            "America/New_York",
            "2026-11-01",
            "0 2 * * *",
            [
                "2026-10-31T02:00:00-04:00",
                "2026-11-01T02:00:00-05:00",
                "2026-11-02T02:00:00-05:00",
            ],
        ),
        (
            "America/New_York",
            "2026-11-01",
            "30 2 * * *",
            [
                "2026-10-31T02:30:00-04:00",
                "2026-11-01T02:30:00-05:00",
                "2026-11-02T02:30:00-05:00",
            ],
        ),
        (
            "America/New_York",
            "2026-11-01",
            "0 3 * * *",
            [
                "2026-10-31T03:00:00-04:00",
                "2026-11-01T03:00:00-05:00",
                "2026-11-02T03:00:00-05:00",
            ],
        ),
        // New York repeats 01:00–01:59: the first occurrence (EDT) fires, the second not.
        (
            "America/New_York",
            "2026-11-01",
            "30 1 * * *",
            [
                "2026-10-31T01:30:00-04:00",
                "2026-11-01T01:30:00-04:00",
                "2026-11-02T01:30:00-05:00",
            ],
        ),
    ];
    for (zone, day, expression, expected) in cases {
        assert_eq!(
            around(expression, zone, day),
            expected,
            "{expression} in {zone} around {day}"
        );
    }
}

#[test]
fn half_hourly_ticks_cover_every_wall_clock_time_once_on_transition_days() {
    // (zone, transition day, the repeated or skipped hour's local start, its UTC start of
    // the second occurrence, if repeated).
    let cases = [
        ("Europe/Berlin", "2026-03-29", None),
        (
            "Europe/Berlin",
            "2026-10-25",
            Some(("2026-10-25T01:00:00Z", "2026-10-25T02:00:00Z")),
        ),
        ("America/New_York", "2026-03-08", None),
        (
            "America/New_York",
            "2026-11-01",
            Some(("2026-11-01T06:00:00Z", "2026-11-01T07:00:00Z")),
        ),
    ];
    for (zone, day, repeated) in cases {
        let ticks = preview_ticks(
            &"*/30 * * * *".parse().unwrap(),
            zone.parse().unwrap(),
            day.parse().unwrap(),
            1,
        );
        let utc: Vec<DateTime<Utc>> = ticks.iter().map(|tick| tick.utc).collect();
        assert!(
            utc.windows(2).all(|pair| pair[0] < pair[1]),
            "{zone} {day}: {ticks:?}"
        );
        let locals: std::collections::BTreeSet<String> = ticks
            .iter()
            .map(|tick| tick.local[11..16].to_owned())
            .collect();
        match repeated {
            // 02:00 and 02:30 do not exist: both fire as the 03:00 tick, once.
            None => {
                assert_eq!(ticks.len(), 46, "{zone} {day}: {ticks:?}");
                assert!(!locals.contains("02:00") && !locals.contains("02:30"));
                assert_eq!(
                    ticks
                        .iter()
                        .filter(|tick| tick.local[11..16] == *"03:00")
                        .count(),
                    1
                );
            }
            // Every wall-clock time once; nothing in the repeated hour's second occurrence.
            Some((from, to)) => {
                assert_eq!(ticks.len(), 48, "{zone} {day}: {ticks:?}");
                assert_eq!(locals.len(), 48);
                let (from, to) = (at(from), at(to));
                assert!(
                    utc.iter().all(|tick| *tick < from || *tick >= to),
                    "{zone} {day}: {ticks:?}"
                );
            }
        }
    }
}

#[test]
fn the_scheduler_plans_one_tick_for_a_repeated_or_skipped_time() {
    let cron: CronExpression = "30 2 * * *".parse().unwrap();
    let zone: Tz = "Europe/Berlin".parse().unwrap();
    // A scheduler evaluating every minute through each transition night enqueues each
    // night's tick once.
    for (night, expected) in [
        ("2026-03-28T23:00:00Z", "2026-03-29T01:00:00Z"),
        ("2026-10-24T22:00:00Z", "2026-10-25T00:30:00Z"),
    ] {
        let mut cursor = at(night);
        let mut enqueued = Vec::new();
        for minute in 0..(5 * 60) {
            let now = at(night) + chrono::Duration::minutes(minute);
            let plan = plan_ticks(
                &cron,
                zone,
                MisfirePolicy::Skip,
                cursor,
                now,
                Duration::from_secs(120),
            );
            if let Some(last) = plan.enqueue.last() {
                cursor = *last;
            }
            enqueued.extend(plan.enqueue);
        }
        assert_eq!(enqueued, vec![at(expected)], "the night after {night}");
    }
}

#[test]
fn durations_parse() {
    assert_eq!(
        parse_duration("7d").unwrap(),
        Duration::from_secs(7 * 86_400)
    );
    assert!(parse_duration("soon").is_err());
}
