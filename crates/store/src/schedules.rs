//! Persistent schedules and the ticks claimed for them (claims themselves are made by the
//! scheduler in `jobs`, in the same transaction as the job they enqueue).

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::StoreError;
use crate::schema::{schedule_ticks, schedules};

/// A schedule as stored.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = schedules)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct Schedule {
    /// Unique name.
    pub name: String,
    /// The job each tick enqueues (`aggregate_capacity`, `refresh_stale_periods`, …).
    pub job_name: String,
    /// Cron expression, 5 or 6 fields.
    pub cron_expression: String,
    /// IANA zone of the expression; `None` means the business time zone.
    pub time_zone: Option<String>,
    /// Paused schedules claim no ticks.
    pub is_paused: bool,
    /// `skip`, `run_once` or `catch_up`.
    pub misfire_policy: String,
    /// Most missed ticks `catch_up` runs.
    pub catch_up_limit: i32,
    /// What the schedule is for.
    pub description: String,
    /// Ticks before this instant never count.
    pub ticks_from: DateTime<Utc>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A schedule to create.
#[derive(Debug, Clone, PartialEq, Eq, Insertable)]
#[diesel(table_name = schedules)]
pub struct NewSchedule {
    /// Unique name.
    pub name: String,
    /// The job each tick enqueues.
    pub job_name: String,
    /// Cron expression (validated by the caller).
    pub cron_expression: String,
    /// IANA zone, or `None` for the business time zone.
    pub time_zone: Option<String>,
    /// `skip`, `run_once` or `catch_up`.
    pub misfire_policy: String,
    /// Most missed ticks `catch_up` runs.
    pub catch_up_limit: i32,
    /// What it is for.
    pub description: String,
}

/// Every schedule, by name.
pub fn list_schedules(connection: &mut PgConnection) -> Result<Vec<Schedule>, StoreError> {
    Ok(schedules::table
        .order(schedules::name)
        .select(Schedule::as_select())
        .load(connection)?)
}

/// One schedule.
pub fn get_schedule(connection: &mut PgConnection, name: &str) -> Result<Schedule, StoreError> {
    schedules::table
        .find(name)
        .select(Schedule::as_select())
        .first(connection)
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("schedule `{name}`")))
}

/// Creates a schedule; a taken name is a conflict.
pub fn create_schedule(
    connection: &mut PgConnection,
    new: &NewSchedule,
) -> Result<Schedule, StoreError> {
    let created = diesel::insert_into(schedules::table)
        .values(new)
        .returning(Schedule::as_returning())
        .get_result(connection)
        .map_err(StoreError::from);
    match created {
        Err(error) if error.is_unique_violation() => Err(StoreError::Conflict(format!(
            "a schedule named `{}` already exists",
            new.name
        ))),
        other => other,
    }
}

/// Pauses or resumes a schedule. Resuming counts ticks from now: the ticks of the pause are
/// not missed, they were not wanted.
pub fn set_paused(
    connection: &mut PgConnection,
    name: &str,
    paused: bool,
) -> Result<Schedule, StoreError> {
    let query = diesel::update(schedules::table.find(name));
    let updated = if paused {
        query
            .set((
                schedules::is_paused.eq(true),
                schedules::updated_at.eq(diesel::dsl::now),
            ))
            .returning(Schedule::as_returning())
            .get_result(connection)
            .optional()?
    } else {
        query
            .set((
                schedules::is_paused.eq(false),
                schedules::ticks_from.eq(diesel::dsl::now),
                schedules::updated_at.eq(diesel::dsl::now),
            ))
            .returning(Schedule::as_returning())
            .get_result(connection)
            .optional()?
    };
    updated.ok_or_else(|| StoreError::NotFound(format!("schedule `{name}`")))
}

/// What to change of a schedule; `None` leaves a setting as it is. Validation is the
/// caller's (`capstats_services::control::update_schedule`).
#[derive(Debug, Clone, Default, PartialEq, Eq, AsChangeset)]
#[diesel(table_name = schedules)]
pub struct ScheduleChange {
    /// A new cron expression.
    pub cron_expression: Option<String>,
    /// A new zone: `Some(None)` reads the expression in the business zone again.
    pub time_zone: Option<Option<String>>,
    /// A new misfire policy.
    pub misfire_policy: Option<String>,
    /// A new catch-up limit.
    pub catch_up_limit: Option<i32>,
}

/// Applies `change` to schedule `name` and returns it. A new expression or zone counts ticks
/// from now on, so that the new timing does not look like a backlog of missed ticks.
pub fn update_schedule(
    connection: &mut PgConnection,
    name: &str,
    change: &ScheduleChange,
) -> Result<Schedule, StoreError> {
    connection.transaction(|connection| {
        let retimed = change.cron_expression.is_some() || change.time_zone.is_some();
        let found = if change == &ScheduleChange::default() {
            get_schedule(connection, name)?
        } else {
            diesel::update(schedules::table.find(name))
                .set((change, schedules::updated_at.eq(diesel::dsl::now)))
                .returning(Schedule::as_returning())
                .get_result(connection)
                .optional()?
                .ok_or_else(|| StoreError::NotFound(format!("schedule `{name}`")))?
        };
        if !retimed {
            return Ok(found);
        }
        Ok(diesel::update(schedules::table.find(name))
            .set(schedules::ticks_from.eq(diesel::dsl::now))
            .returning(Schedule::as_returning())
            .get_result(connection)?)
    })
}

/// A claimed tick.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = schedule_ticks)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct Tick {
    /// The schedule.
    pub schedule_name: String,
    /// The tick's instant.
    pub tick_at: DateTime<Utc>,
    /// The session its job opened, once it runs.
    pub session_id: Option<i64>,
    /// The job enqueued for it.
    pub job_id: Option<String>,
    /// The worker that claimed it.
    pub claimed_by: String,
    /// When it was claimed.
    pub claimed_at: DateTime<Utc>,
    /// `enqueued` or `skipped`.
    pub status: String,
}

/// The cursor of every schedule: its latest claimed tick, or the instant its ticks count from
/// when later.
pub fn cursors(
    connection: &mut PgConnection,
) -> Result<std::collections::HashMap<String, DateTime<Utc>>, StoreError> {
    let latest: Vec<(String, Option<DateTime<Utc>>)> = schedule_ticks::table
        .group_by(schedule_ticks::schedule_name)
        .select((
            schedule_ticks::schedule_name,
            diesel::dsl::max(schedule_ticks::tick_at),
        ))
        .load(connection)?;
    let mut cursors: std::collections::HashMap<String, DateTime<Utc>> = list_schedules(connection)?
        .into_iter()
        .map(|schedule| (schedule.name, schedule.ticks_from))
        .collect();
    for (name, tick) in latest {
        if let (Some(cursor), Some(tick)) = (cursors.get_mut(&name), tick) {
            *cursor = (*cursor).max(tick);
        }
    }
    Ok(cursors)
}

/// The most recent enqueued tick of a schedule, if any.
pub fn last_enqueued_tick(
    connection: &mut PgConnection,
    name: &str,
) -> Result<Option<Tick>, StoreError> {
    Ok(schedule_ticks::table
        .filter(schedule_ticks::schedule_name.eq(name))
        .filter(schedule_ticks::status.eq("enqueued"))
        .order(schedule_ticks::tick_at.desc())
        .select(Tick::as_select())
        .first(connection)
        .optional()?)
}

/// The ticks of a schedule, oldest first.
pub fn ticks_of(connection: &mut PgConnection, name: &str) -> Result<Vec<Tick>, StoreError> {
    Ok(schedule_ticks::table
        .filter(schedule_ticks::schedule_name.eq(name))
        .order(schedule_ticks::tick_at)
        .select(Tick::as_select())
        .load(connection)?)
}

/// Links the tick whose job is `job_id` to the session the job opened.
pub fn link_tick_session(
    connection: &mut PgConnection,
    job_id: &str,
    session_id: i64,
) -> Result<(), StoreError> {
    diesel::update(schedule_ticks::table.filter(schedule_ticks::job_id.eq(job_id)))
        .set(schedule_ticks::session_id.eq(session_id))
        .execute(connection)?;
    Ok(())
}

/// Deletes ticks older than `before`, keeping each schedule's latest (its cursor). Returns how
/// many were deleted.
pub fn prune_ticks(
    connection: &mut PgConnection,
    before: DateTime<Utc>,
) -> Result<usize, StoreError> {
    Ok(diesel::sql_query(
        "DELETE FROM schedule_ticks tick
         WHERE tick.tick_at < $1
           AND tick.tick_at < (SELECT max(latest.tick_at) FROM schedule_ticks latest
                               WHERE latest.schedule_name = tick.schedule_name)",
    )
    .bind::<diesel::sql_types::Timestamptz, _>(before)
    .execute(connection)?)
}
