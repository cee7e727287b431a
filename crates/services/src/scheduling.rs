//! Cron expressions and the ticks a scheduler claims — pure functions, no I/O.
//!
//! Expressions have 5 fields (minute precision, Unix style: `minute hour day-of-month month
//! day-of-week`, day-of-week 0 or 7 = Sunday) or 6 fields (seconds first). Ticks are computed in
//! the schedule's time zone and handled in UTC.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Offset, Timelike, Utc};
use chrono_tz::Tz;

use crate::ServiceError;

/// How far back a scheduler looks for ticks missed while every worker was down. Older misfires
/// are ignored, so that a long outage of a per-second schedule does not need millions of steps.
pub const MISFIRE_LOOKBACK: Duration = Duration::from_secs(7 * 24 * 3600);

/// A validated cron expression.
#[derive(Clone)]
pub struct CronExpression {
    source: String,
    schedule: cron::Schedule,
}

impl fmt::Debug for CronExpression {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "CronExpression({:?})", self.source)
    }
}

impl fmt::Display for CronExpression {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.source)
    }
}

impl PartialEq for CronExpression {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

const DAY_NAMES: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/// Translates a Unix day-of-week field (0–7, 0 and 7 = Sunday) into names, which the `cron`
/// crate reads unambiguously (its numbers start at 1 = Sunday).
fn unix_day_of_week(field: &str) -> Result<String, String> {
    let name = |number: &str| -> Result<&'static str, String> {
        match number.parse::<usize>() {
            Ok(day @ 0..=6) => Ok(DAY_NAMES[day]),
            Ok(7) => Ok("Sun"),
            Ok(_) => Err(format!("day of week {number} is not between 0 and 7")),
            // Names, `*` and `?` stay as they are.
            Err(_) => Ok(""),
        }
    };
    let mut items = Vec::new();
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, Some(step)),
            None => (item, None),
        };
        let translated = match range.split_once('-') {
            Some((low, high)) => match (name(low)?, name(high)?) {
                ("", _) | (_, "") => range.to_owned(),
                (low_name, _) if high == "7" && low != "0" && low != "7" => {
                    if step.is_some() {
                        return Err(format!(
                            "day-of-week range {range} with a step is not supported"
                        ));
                    }
                    items.push(format!("{low_name}-Sat"));
                    "Sun".to_owned()
                }
                (low_name, high_name) => format!("{low_name}-{high_name}"),
            },
            None => match name(range)? {
                "" => range.to_owned(),
                day => day.to_owned(),
            },
        };
        items.push(match step {
            Some(step) => format!("{translated}/{step}"),
            None => translated,
        });
    }
    Ok(items.join(","))
}

impl FromStr for CronExpression {
    type Err = ServiceError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: String| {
            ServiceError::InvalidRequest(format!("invalid cron expression `{text}`: {reason}"))
        };
        let fields: Vec<&str> = text.split_whitespace().collect();
        let six_fields = match fields.len() {
            5 => {
                let day_of_week = unix_day_of_week(fields[4]).map_err(invalid)?;
                format!(
                    "0 {} {} {} {} {day_of_week}",
                    fields[0], fields[1], fields[2], fields[3]
                )
            }
            // Weekdays are Unix numbers in both forms, so that adding a seconds field never
            // shifts the days a schedule fires on.
            6 => {
                let day_of_week = unix_day_of_week(fields[5]).map_err(invalid)?;
                format!("{} {day_of_week}", fields[..5].join(" "))
            }
            count => {
                return Err(invalid(format!(
                    "{count} fields; expected 5 (minute hour day month weekday) or 6 (seconds first)"
                )));
            }
        };
        let schedule =
            cron::Schedule::from_str(&six_fields).map_err(|error| invalid(error.to_string()))?;
        if schedule.upcoming(Utc).next().is_none() {
            return Err(invalid("it never fires".into()));
        }
        Ok(Self {
            source: fields.join(" "),
            schedule,
        })
    }
}

impl CronExpression {
    /// The ticks strictly after `after`, in order, computed in `zone` by the DST policy:
    /// the expression names wall-clock times, each of which fires once. A time that does not
    /// exist on a spring-forward day (02:30 when clocks jump from 02:00 to 03:00) fires at
    /// the first instant after the gap (03:00); a time that occurs twice on a fall-back day
    /// fires at its first occurrence only; times that land on the same instant fire once.
    ///
    /// The `cron` crate's own zoned iteration drops the first and doubles the second, so
    /// the expression is read in wall-clock time and each time is placed in `zone` here.
    pub fn ticks_after(
        &self,
        after: DateTime<Utc>,
        zone: Tz,
    ) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        // Wall-clock times as if they were UTC: the crate then iterates them without any zone.
        let wall_clock_start = after.with_timezone(&zone).naive_local().and_utc();
        let mut previous: Option<DateTime<Utc>> = None;
        self.schedule
            .after(&wall_clock_start)
            .map(move |wall_clock| first_instant_at_or_after(zone, wall_clock.naive_utc()))
            .filter(move |tick| {
                // Strictly after `after`, and each instant once (gap times share one).
                let fresh = *tick > after && previous.is_none_or(|last| *tick > last);
                if fresh {
                    previous = Some(*tick);
                }
                fresh
            })
    }

    /// The first tick after `after`.
    pub fn next_after(&self, after: DateTime<Utc>, zone: Tz) -> Option<DateTime<Utc>> {
        self.ticks_after(after, zone).next()
    }
}

/// The instant a wall-clock time of `zone` fires at: itself when it exists once, its first
/// occurrence when it exists twice (fall-back), and the first instant after the gap when it
/// does not exist (spring-forward). Gaps end on a whole minute in every zone in use, so the
/// search moves by minutes; it gives up after two days (no gap is that long) and falls back to
/// reading the time in the offset before the gap.
fn first_instant_at_or_after(zone: Tz, wall_clock: NaiveDateTime) -> DateTime<Utc> {
    use chrono::{LocalResult, TimeZone};
    let mut candidate = wall_clock;
    for _ in 0..=2 * 24 * 60 {
        match zone.from_local_datetime(&candidate) {
            LocalResult::Single(instant) => return instant.with_timezone(&Utc),
            LocalResult::Ambiguous(first, _) => return first.with_timezone(&Utc),
            LocalResult::None => {
                // Next whole minute.
                candidate = candidate
                    .with_second(0)
                    .and_then(|minute| minute.with_nanosecond(0))
                    .unwrap_or(candidate)
                    + chrono::Duration::minutes(1);
            }
        }
    }
    let before = zone.offset_from_utc_datetime(&(wall_clock - chrono::Duration::days(1)));
    (wall_clock - chrono::Duration::seconds(i64::from(before.fix().local_minus_utc()))).and_utc()
}

/// What a schedule does with ticks missed while no worker was running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MisfirePolicy {
    /// Run none of them.
    Skip,
    /// Run the latest of them once.
    RunOnce,
    /// Run the latest `limit` of them, oldest first.
    CatchUp {
        /// How many at most.
        limit: usize,
    },
}

impl MisfirePolicy {
    /// The policy stored as `name` with the schedule's catch-up limit.
    pub fn from_stored(name: &str, catch_up_limit: i32) -> Result<Self, ServiceError> {
        match name {
            "skip" => Ok(Self::Skip),
            "run_once" => Ok(Self::RunOnce),
            "catch_up" => Ok(Self::CatchUp {
                limit: usize::try_from(catch_up_limit.max(1)).unwrap_or(1),
            }),
            other => Err(ServiceError::InvalidRequest(format!(
                "unknown misfire policy `{other}`; expected skip, run_once or catch_up"
            ))),
        }
    }
}

/// The ticks a scheduler should claim now.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TickPlan {
    /// Ticks to claim and enqueue, oldest first.
    pub enqueue: Vec<DateTime<Utc>>,
    /// A missed tick to record as skipped (the latest one), so that the cursor moves past it.
    pub skip: Option<DateTime<Utc>>,
}

/// Plans the ticks of a schedule after `cursor` (its latest claimed tick, or the instant from
/// which it counts) up to `now`. Ticks at most `grace` old are on time and always enqueued;
/// older ones were missed and follow `policy`. Misfires older than [`MISFIRE_LOOKBACK`] are
/// ignored.
pub fn plan_ticks(
    cron: &CronExpression,
    zone: Tz,
    policy: MisfirePolicy,
    cursor: DateTime<Utc>,
    now: DateTime<Utc>,
    grace: Duration,
) -> TickPlan {
    let lookback = chrono::Duration::from_std(MISFIRE_LOOKBACK).expect("a week fits");
    let grace = chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::zero());
    let start = cursor.max(now - lookback);
    let on_time_from = now - grace;
    let keep_missed = match policy {
        MisfirePolicy::Skip | MisfirePolicy::RunOnce => 1,
        MisfirePolicy::CatchUp { limit } => limit,
    };
    let mut missed = std::collections::VecDeque::with_capacity(keep_missed);
    let mut plan = TickPlan::default();
    for tick in cron.ticks_after(start, zone) {
        if tick > now {
            break;
        }
        if tick >= on_time_from {
            plan.enqueue.push(tick);
        } else {
            if missed.len() == keep_missed {
                missed.pop_front();
            }
            missed.push_back(tick);
        }
    }
    match policy {
        MisfirePolicy::Skip => plan.skip = missed.pop_back(),
        MisfirePolicy::RunOnce | MisfirePolicy::CatchUp { .. } => {
            let mut enqueue: Vec<_> = missed.into_iter().collect();
            enqueue.append(&mut plan.enqueue);
            plan.enqueue = enqueue;
        }
    }
    plan
}

/// One tick of a preview: when it fires, in the schedule's zone (with the offset) and in UTC.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PreviewTick {
    /// The wall-clock time in the schedule's zone, RFC 3339 with its offset.
    pub local: String,
    /// The same instant in UTC.
    pub utc: DateTime<Utc>,
}

/// The ticks `cron` fires in `zone` on the `days` local days from `from` (its local midnight
/// on): [`CronExpression::ticks_after`], the scheduler's own iteration, so a preview shows
/// exactly what would be claimed, DST days included.
pub fn preview_ticks(
    cron: &CronExpression,
    zone: Tz,
    from: chrono::NaiveDate,
    days: u32,
) -> Vec<PreviewTick> {
    let local_midnight = |date: chrono::NaiveDate| {
        first_instant_at_or_after(zone, date.and_time(chrono::NaiveTime::MIN))
    };
    let start = local_midnight(from);
    let end = local_midnight(from + chrono::Days::new(u64::from(days)));
    cron.ticks_after(start - chrono::Duration::seconds(1), zone)
        .take_while(|tick| *tick < end)
        .map(|utc| PreviewTick {
            local: utc
                .with_timezone(&zone)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
            utc,
        })
        .collect()
}

/// Parses a duration such as `7d`, `12h` or `30m` (for `jobs prune --older-than`).
pub fn parse_duration(text: &str) -> Result<Duration, ServiceError> {
    humantime::parse_duration(text).map_err(|error| {
        ServiceError::InvalidRequest(format!(
            "`{text}` is not a duration like 7d, 12h or 30m: {error}"
        ))
    })
}

/// The zone a schedule's cron expression is read in.
pub fn schedule_zone(
    schedule: &capstats_store::schedules::Schedule,
    business: Tz,
) -> Result<Tz, ServiceError> {
    match &schedule.time_zone {
        None => Ok(business),
        Some(name) => name.parse().map_err(|_| {
            ServiceError::InvalidRequest(format!(
                "schedule `{}` has an unknown time zone `{name}`",
                schedule.name
            ))
        }),
    }
}

#[cfg(test)]
mod tests;
