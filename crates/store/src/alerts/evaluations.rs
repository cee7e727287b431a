//! Evaluations run after sessions and the events they open, see again and resolve.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Date, Nullable, Text};

use capstats_capacity_model::{Decimal, InstanceId, Period};

use super::to_big_decimal;
use crate::StoreError;
use crate::schema::{alert_evaluations, alert_events};

/// Claims the evaluation of the rules after session `session_id`: `false` when it was
/// already claimed (its job delivered twice); the claim commits with the caller's transaction.
/// Evaluations of different sessions then wait for each other (a transaction-scoped advisory
/// lock): two at once would both open the same key's event, or one would write back an event
/// the other just resolved.
pub fn claim_evaluation(
    connection: &mut PgConnection,
    session_id: i64,
) -> Result<bool, StoreError> {
    let inserted = diesel::insert_into(alert_evaluations::table)
        .values((
            alert_evaluations::session_id.eq(session_id),
            alert_evaluations::rules.eq(0),
            alert_evaluations::opened.eq(0),
            alert_evaluations::updated.eq(0),
            alert_evaluations::resolved.eq(0),
        ))
        .on_conflict_do_nothing()
        .execute(connection)?;
    if inserted > 0 {
        diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
            .bind::<BigInt, _>(EVALUATION_LOCK)
            .execute(connection)?;
    }
    Ok(inserted > 0)
}

/// The advisory lock key that serializes alert evaluations ("capsalrt" in ASCII).
const EVALUATION_LOCK: i64 = 0x6361_7073_616c_7274;

/// What an evaluation changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct EvaluationCounts {
    /// Rules evaluated.
    pub rules: i32,
    /// Events opened.
    pub opened: i32,
    /// Open events seen again.
    pub updated: i32,
    /// Events resolved.
    pub resolved: i32,
    /// Rules that could not be evaluated (their errors are logged).
    pub failed: i32,
}

/// Records what the evaluation after `session_id` did.
pub fn finish_evaluation(
    connection: &mut PgConnection,
    session_id: i64,
    counts: EvaluationCounts,
) -> Result<(), StoreError> {
    diesel::update(alert_evaluations::table.find(session_id))
        .set((
            alert_evaluations::rules.eq(counts.rules),
            alert_evaluations::opened.eq(counts.opened),
            alert_evaluations::updated.eq(counts.updated),
            alert_evaluations::resolved.eq(counts.resolved),
        ))
        .execute(connection)?;
    Ok(())
}

/// The instances alert rules watch: active and not deleted.
pub fn watched_instance_ids(
    connection: &mut PgConnection,
) -> Result<std::collections::BTreeSet<InstanceId>, StoreError> {
    use crate::schema::instances;
    Ok(instances::table
        .filter(instances::is_active)
        .filter(instances::deleted_at.is_null())
        .select(instances::id)
        .load::<i64>(connection)?
        .into_iter()
        .map(InstanceId)
        .collect())
}

/// The key of an event: an instance (`database_name` empty) or one of its databases.
pub type EventKey = (InstanceId, String);

/// The open events of rule `rule_id`: their id by key.
pub fn open_events(
    connection: &mut PgConnection,
    rule_id: i64,
) -> Result<std::collections::BTreeMap<EventKey, i64>, StoreError> {
    Ok(alert_events::table
        .filter(alert_events::rule_id.eq(rule_id))
        .filter(alert_events::state.eq("open"))
        .select((
            alert_events::instance_id,
            alert_events::database_name,
            alert_events::id,
        ))
        .load::<(i64, String, i64)>(connection)?
        .into_iter()
        .map(|(instance, database, id)| ((InstanceId(instance), database), id))
        .collect())
}

/// The evaluation that changes events: the session it follows and when it ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvaluationMoment {
    /// The session whose evaluation it is.
    pub session_id: i64,
    /// When it ran.
    pub at: DateTime<Utc>,
}

/// What an evaluation saw of a key.
#[derive(Debug, Clone, PartialEq)]
pub struct Sighting {
    /// The metric's value.
    pub value: Decimal,
    /// Its period.
    pub period: Option<Period>,
    /// What a notification tells besides the value.
    pub detail: serde_json::Value,
}

/// Opens an event of rule `rule_id` for `key`; its id.
pub fn open_event(
    connection: &mut PgConnection,
    rule_id: i64,
    key: &EventKey,
    sighting: &Sighting,
    moment: EvaluationMoment,
) -> Result<i64, StoreError> {
    Ok(diesel::insert_into(alert_events::table)
        .values((
            alert_events::rule_id.eq(rule_id),
            alert_events::instance_id.eq(key.0.0),
            alert_events::database_name.eq(&key.1),
            alert_events::state.eq("open"),
            alert_events::value.eq(to_big_decimal(sighting.value)),
            alert_events::period_type
                .eq(sighting.period.map(|period| period.period_type().as_str())),
            alert_events::period_start.eq(sighting.period.map(|period| period.start())),
            alert_events::first_seen_at.eq(moment.at),
            alert_events::last_seen_at.eq(moment.at),
            alert_events::opened_by_session_id.eq(moment.session_id),
            alert_events::last_session_id.eq(moment.session_id),
            alert_events::detail.eq(&sighting.detail),
        ))
        .returning(alert_events::id)
        .get_result(connection)?)
}

/// Open events seen again, in one statement: each event's value, period and context, and the
/// evaluation that saw them. One statement rather than one per
/// event: a steady evaluation sees every open event again.
pub fn see_events_again(
    connection: &mut PgConnection,
    sightings: &[(i64, Sighting)],
    moment: EvaluationMoment,
) -> Result<(), StoreError> {
    if sightings.is_empty() {
        return Ok(());
    }
    use diesel::sql_types::{Array, Timestamptz};
    let ids: Vec<i64> = sightings.iter().map(|(id, _)| *id).collect();
    let values: Vec<String> = sightings
        .iter()
        .map(|(_, sighting)| sighting.value.to_string())
        .collect();
    let period_types: Vec<Option<&str>> = sightings
        .iter()
        .map(|(_, sighting)| sighting.period.map(|period| period.period_type().as_str()))
        .collect();
    let period_starts: Vec<Option<NaiveDate>> = sightings
        .iter()
        .map(|(_, sighting)| sighting.period.map(|period| period.start()))
        .collect();
    let details: Vec<String> = sightings
        .iter()
        .map(|(_, sighting)| sighting.detail.to_string())
        .collect();
    diesel::sql_query(
        "UPDATE alert_events event SET
             value = seen.value::numeric,
             period_type = seen.period_type,
             period_start = seen.period_start,
             detail = seen.detail::jsonb,
             last_seen_at = $6,
             last_session_id = $7
         FROM unnest($1::bigint[], $2::text[], $3::text[], $4::date[], $5::text[])
              AS seen (id, value, period_type, period_start, detail)
         WHERE event.id = seen.id AND event.state = 'open'",
    )
    .bind::<Array<BigInt>, _>(ids)
    .bind::<Array<Text>, _>(values)
    .bind::<Array<Nullable<Text>>, _>(period_types)
    .bind::<Array<Nullable<Date>>, _>(period_starts)
    .bind::<Array<Text>, _>(details)
    .bind::<Timestamptz, _>(moment.at)
    .bind::<BigInt, _>(moment.session_id)
    .execute(connection)?;
    Ok(())
}

/// Resolves open event `event_id`.
pub fn resolve_event(
    connection: &mut PgConnection,
    event_id: i64,
    moment: EvaluationMoment,
) -> Result<(), StoreError> {
    diesel::update(
        alert_events::table
            .find(event_id)
            .filter(alert_events::state.eq("open")),
    )
    .set((
        alert_events::state.eq("resolved"),
        alert_events::resolved_at.eq(moment.at),
        alert_events::last_session_id.eq(moment.session_id),
    ))
    .execute(connection)?;
    Ok(())
}
