//! Alerts as stored: rules with their (sealed) channels, the evaluations run after sessions,
//! the events they open and resolve, and the notifications each change of an event sends.
//! Sealing and opening channel targets is the caller's business; this module stores bytes.

use bigdecimal::BigDecimal;
use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Date, Nullable, Text};

use capstats_capacity_model::{
    AggregationLevel, AlertCondition, AlertMetric, AlertScope, ChannelKind, Comparison, DbType,
    Decimal, InstanceId, Period, PeriodType, Severity,
};

use crate::StoreError;
use crate::schema::{
    alert_channels, alert_evaluations, alert_events, alert_notifications, alert_rules,
};

/// A rule as it is written: everything but its channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleFields {
    /// Unique name.
    pub name: String,
    /// Instances or databases.
    pub level: AggregationLevel,
    /// When it fires.
    pub condition: AlertCondition,
    /// Which keys it watches.
    pub scope: AlertScope,
    /// How urgent its events are.
    pub severity: Severity,
}

/// A channel as it is written: its id (reserved with [`reserve_channel_ids`], or the id of
/// the channel it keeps) and its sealed target and secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelRecord {
    /// Its id.
    pub id: i64,
    /// Its kind.
    pub kind: ChannelKind,
    /// The URL or address, sealed.
    pub sealed_target: Vec<u8>,
    /// What may be shown of the target.
    pub display_target: String,
    /// The secret, sealed.
    pub sealed_secret: Option<Vec<u8>>,
}

/// A stored rule with its channels, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRule {
    /// Its id.
    pub id: i64,
    /// Its fields.
    pub fields: RuleFields,
    /// Its channels, in order.
    pub channels: Vec<ChannelRecord>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last replaced.
    pub updated_at: DateTime<Utc>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = alert_rules)]
#[diesel(check_for_backend(diesel::pg::Pg))]
struct RuleRow {
    id: i64,
    name: String,
    level: String,
    metric: String,
    comparison: String,
    threshold: BigDecimal,
    period_type: String,
    periods: i32,
    scope_db_types: Vec<Option<String>>,
    scope_instance_ids: Vec<Option<i64>>,
    scope_database_names: Vec<Option<String>>,
    severity: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = alert_channels)]
#[diesel(check_for_backend(diesel::pg::Pg))]
struct ChannelRow {
    id: i64,
    rule_id: i64,
    kind: String,
    sealed_target: Vec<u8>,
    display_target: String,
    sealed_secret: Option<Vec<u8>>,
}

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("stored alert is inconsistent: {what}"))
}

fn to_decimal(value: &BigDecimal) -> Result<Decimal, StoreError> {
    value.to_string().parse::<Decimal>().map_err(corrupt)
}

fn to_big_decimal(value: Decimal) -> BigDecimal {
    value
        .to_string()
        .parse()
        .expect("a decimal's text is a big decimal")
}

impl RuleRow {
    fn into_rule(self, channels: Vec<ChannelRecord>) -> Result<StoredRule, StoreError> {
        let db_types = self
            .scope_db_types
            .into_iter()
            .flatten()
            .map(|text| text.parse::<DbType>().map_err(corrupt))
            .collect::<Result<_, _>>()?;
        Ok(StoredRule {
            id: self.id,
            fields: RuleFields {
                name: self.name,
                level: self.level.parse().map_err(corrupt)?,
                condition: AlertCondition {
                    metric: self.metric.parse::<AlertMetric>().map_err(corrupt)?,
                    comparison: self.comparison.parse::<Comparison>().map_err(corrupt)?,
                    threshold: to_decimal(&self.threshold)?,
                    period_type: self.period_type.parse().map_err(corrupt)?,
                    periods: u16::try_from(self.periods).map_err(corrupt)?,
                },
                scope: AlertScope {
                    db_types,
                    instance_ids: self
                        .scope_instance_ids
                        .into_iter()
                        .flatten()
                        .map(InstanceId)
                        .collect(),
                    database_names: self.scope_database_names.into_iter().flatten().collect(),
                },
                severity: self.severity.parse().map_err(corrupt)?,
            },
            channels,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

impl ChannelRow {
    fn into_record(self) -> Result<ChannelRecord, StoreError> {
        Ok(ChannelRecord {
            id: self.id,
            kind: self.kind.parse().map_err(corrupt)?,
            sealed_target: self.sealed_target,
            display_target: self.display_target,
            sealed_secret: self.sealed_secret,
        })
    }
}

/// `count` fresh channel ids, so that a channel's values can be sealed bound to its id before
/// the row is written.
pub fn reserve_channel_ids(
    connection: &mut PgConnection,
    count: usize,
) -> Result<Vec<i64>, StoreError> {
    #[derive(QueryableByName)]
    struct Reserved {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let reserved: Vec<Reserved> = diesel::sql_query(
        "SELECT nextval('alert_channels_id_seq') AS id FROM generate_series(1, $1)",
    )
    .bind::<BigInt, _>(i64::try_from(count).unwrap_or(0))
    .load(connection)?;
    Ok(reserved.into_iter().map(|row| row.id).collect())
}

/// The columns of a rule as written.
#[derive(Insertable, AsChangeset)]
#[diesel(table_name = alert_rules)]
struct RuleRecord<'a> {
    name: &'a str,
    level: &'static str,
    metric: &'static str,
    comparison: &'static str,
    threshold: BigDecimal,
    period_type: &'static str,
    periods: i32,
    scope_db_types: Vec<Option<String>>,
    scope_instance_ids: Vec<Option<i64>>,
    scope_database_names: Vec<Option<String>>,
    severity: &'static str,
}

fn rule_values(fields: &RuleFields) -> RuleRecord<'_> {
    let condition = &fields.condition;
    let scope = &fields.scope;
    RuleRecord {
        name: &fields.name,
        level: fields.level.as_str(),
        metric: condition.metric.as_str(),
        comparison: condition.comparison.as_str(),
        threshold: to_big_decimal(condition.threshold),
        period_type: condition.period_type.as_str(),
        periods: i32::from(condition.periods),
        scope_db_types: scope
            .db_types
            .iter()
            .map(|db_type| Some(db_type.as_str().to_owned()))
            .collect(),
        scope_instance_ids: scope.instance_ids.iter().map(|id| Some(id.0)).collect(),
        scope_database_names: scope.database_names.iter().cloned().map(Some).collect(),
        severity: fields.severity.as_str(),
    }
}

fn name_taken(error: StoreError, name: &str) -> StoreError {
    if error.is_unique_violation() {
        StoreError::Conflict(format!("an alert rule named `{name}` already exists"))
    } else {
        error
    }
}

fn write_channels(
    connection: &mut PgConnection,
    rule_id: i64,
    channels: &[ChannelRecord],
) -> Result<(), StoreError> {
    for (position, channel) in channels.iter().enumerate() {
        diesel::insert_into(alert_channels::table)
            .values((
                alert_channels::id.eq(channel.id),
                alert_channels::rule_id.eq(rule_id),
                alert_channels::position.eq(i32::try_from(position).unwrap_or(i32::MAX)),
                alert_channels::kind.eq(channel.kind.as_str()),
                alert_channels::sealed_target.eq(&channel.sealed_target),
                alert_channels::display_target.eq(&channel.display_target),
                alert_channels::sealed_secret.eq(&channel.sealed_secret),
            ))
            .execute(connection)?;
    }
    Ok(())
}

/// Stores a new rule with its channels; a taken name is a conflict.
pub fn create_rule(
    connection: &mut PgConnection,
    fields: &RuleFields,
    channels: &[ChannelRecord],
) -> Result<StoredRule, StoreError> {
    connection.transaction(|connection| {
        let id: i64 = diesel::insert_into(alert_rules::table)
            .values(rule_values(fields))
            .returning(alert_rules::id)
            .get_result(connection)
            .map_err(|error| name_taken(error.into(), &fields.name))?;
        write_channels(connection, id, channels)?;
        find_rule(connection, id)?.ok_or_else(|| StoreError::NotFound(format!("alert rule {id}")))
    })
}

/// Replaces rule `id` and its channels (channels it no longer lists are deleted; their past
/// notifications stay, without a channel). `None` when there is no such rule.
pub fn replace_rule(
    connection: &mut PgConnection,
    id: i64,
    fields: &RuleFields,
    channels: &[ChannelRecord],
) -> Result<Option<StoredRule>, StoreError> {
    connection.transaction(|connection| {
        let updated = diesel::update(alert_rules::table.find(id))
            .set((
                rule_values(fields),
                alert_rules::updated_at.eq(diesel::dsl::now),
            ))
            .execute(connection)
            .map_err(|error| name_taken(error.into(), &fields.name))?;
        if updated == 0 {
            return Ok(None);
        }
        diesel::delete(alert_channels::table.filter(alert_channels::rule_id.eq(id)))
            .execute(connection)?;
        write_channels(connection, id, channels)?;
        find_rule(connection, id)
    })
}

/// Deletes rule `id` with its channels, events and notifications; whether it existed.
pub fn delete_rule(connection: &mut PgConnection, id: i64) -> Result<bool, StoreError> {
    Ok(diesel::delete(alert_rules::table.find(id)).execute(connection)? > 0)
}

fn channels_of(
    connection: &mut PgConnection,
    rule_ids: &[i64],
) -> Result<Vec<(i64, ChannelRecord)>, StoreError> {
    alert_channels::table
        .filter(alert_channels::rule_id.eq_any(rule_ids))
        .order((alert_channels::rule_id, alert_channels::position))
        .select(ChannelRow::as_select())
        .load(connection)?
        .into_iter()
        .map(|row| Ok((row.rule_id, row.into_record()?)))
        .collect()
}

/// Every rule with its channels, by id.
pub fn list_rules(connection: &mut PgConnection) -> Result<Vec<StoredRule>, StoreError> {
    let rows: Vec<RuleRow> = alert_rules::table
        .order(alert_rules::id)
        .select(RuleRow::as_select())
        .load(connection)?;
    let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
    let mut channels = channels_of(connection, &ids)?.into_iter().peekable();
    rows.into_iter()
        .map(|row| {
            let mut own = Vec::new();
            while let Some((_, channel)) = channels.next_if(|(rule_id, _)| *rule_id == row.id) {
                own.push(channel);
            }
            row.into_rule(own)
        })
        .collect()
}

/// Rule `id` with its channels.
pub fn find_rule(connection: &mut PgConnection, id: i64) -> Result<Option<StoredRule>, StoreError> {
    let Some(row) = alert_rules::table
        .find(id)
        .select(RuleRow::as_select())
        .first(connection)
        .optional()?
    else {
        return Ok(None);
    };
    let channels = channels_of(connection, &[id])?
        .into_iter()
        .map(|(_, channel)| channel)
        .collect();
    row.into_rule(channels).map(Some)
}

/// Every stored channel with an id above `after`, `limit` of them, by id (key rotation).
pub fn channels_after(
    connection: &mut PgConnection,
    after: i64,
    limit: i64,
) -> Result<Vec<ChannelRecord>, StoreError> {
    alert_channels::table
        .filter(alert_channels::id.gt(after))
        .order(alert_channels::id)
        .limit(limit)
        .select(ChannelRow::as_select())
        .load(connection)?
        .into_iter()
        .map(ChannelRow::into_record)
        .collect()
}

/// Replaces a channel's sealed values if they are still `current` (key rotation); whether
/// it did.
pub fn replace_sealed_channel(
    connection: &mut PgConnection,
    current: &ChannelRecord,
    sealed_target: &[u8],
    sealed_secret: Option<&[u8]>,
) -> Result<bool, StoreError> {
    let query = diesel::update(
        alert_channels::table
            .filter(alert_channels::id.eq(current.id))
            .filter(alert_channels::sealed_target.eq(&current.sealed_target)),
    );
    let updated = match &current.sealed_secret {
        Some(secret) => query
            .filter(alert_channels::sealed_secret.eq(secret))
            .set((
                alert_channels::sealed_target.eq(sealed_target),
                alert_channels::sealed_secret.eq(sealed_secret),
            ))
            .execute(connection)?,
        None => query
            .filter(alert_channels::sealed_secret.is_null())
            .set((
                alert_channels::sealed_target.eq(sealed_target),
                alert_channels::sealed_secret.eq(sealed_secret),
            ))
            .execute(connection)?,
    };
    Ok(updated > 0)
}

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

/// Records one notification of event `event_id`'s change to `state` per channel; the ids of
/// those recorded (a change already notified is not notified again).
pub fn queue_notifications(
    connection: &mut PgConnection,
    event_id: i64,
    state: &str,
    channels: &[ChannelRecord],
) -> Result<Vec<i64>, StoreError> {
    let mut ids = Vec::new();
    for channel in channels {
        let id: Option<i64> = diesel::insert_into(alert_notifications::table)
            .values((
                alert_notifications::event_id.eq(event_id),
                alert_notifications::channel_id.eq(channel.id),
                alert_notifications::channel_kind.eq(channel.kind.as_str()),
                alert_notifications::event_state.eq(state),
                alert_notifications::idempotency_key
                    .eq(format!("capstats-alert-{event_id}-{state}-{}", channel.id)),
                alert_notifications::status.eq("pending"),
            ))
            .on_conflict_do_nothing()
            .returning(alert_notifications::id)
            .get_result(connection)
            .optional()?;
        ids.extend(id);
    }
    Ok(ids)
}

/// Pending notifications no delivery job was enqueued for, oldest first, `limit` of them.
pub fn undispatched_notifications(
    connection: &mut PgConnection,
    limit: i64,
) -> Result<Vec<i64>, StoreError> {
    Ok(alert_notifications::table
        .filter(alert_notifications::status.eq("pending"))
        .filter(alert_notifications::job_id.is_null())
        .order(alert_notifications::id)
        .limit(limit)
        .select(alert_notifications::id)
        .load(connection)?)
}

/// Makes failed notification `id` pending again, with a fresh attempt budget and without a
/// job (the next dispatch enqueues one); its last error stays until an attempt succeeds.
/// Whether it was failed.
pub fn retry_notification(connection: &mut PgConnection, id: i64) -> Result<bool, StoreError> {
    Ok(diesel::update(
        alert_notifications::table
            .find(id)
            .filter(alert_notifications::status.eq("failed")),
    )
    .set((
        alert_notifications::status.eq("pending"),
        alert_notifications::attempts.eq(0),
        alert_notifications::job_id.eq(None::<String>),
    ))
    .execute(connection)?
        > 0)
}

/// Claims pending notification `id` for the delivery job `job_id`, before the job is
/// enqueued: `false` when another dispatch claimed it first. A claim whose job never gets
/// enqueued (a crash in between) is released by the sweeper, which finds no live job.
pub fn claim_notification(
    connection: &mut PgConnection,
    id: i64,
    job_id: &str,
) -> Result<bool, StoreError> {
    Ok(diesel::update(
        alert_notifications::table
            .find(id)
            .filter(alert_notifications::status.eq("pending"))
            .filter(alert_notifications::job_id.is_null()),
    )
    .set(alert_notifications::job_id.eq(job_id))
    .execute(connection)?
        > 0)
}

/// Gives back the claim of notification `id` by job `job_id`, whose enqueueing failed.
pub fn unclaim_notification(
    connection: &mut PgConnection,
    id: i64,
    job_id: &str,
) -> Result<(), StoreError> {
    diesel::update(
        alert_notifications::table
            .find(id)
            .filter(alert_notifications::job_id.eq(job_id)),
    )
    .set(alert_notifications::job_id.eq(None::<String>))
    .execute(connection)?;
    Ok(())
}

/// Everything a delivery needs: the notification, its event, rule, key and channel.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingDelivery {
    /// The notification's id.
    pub id: i64,
    /// Its idempotency key.
    pub idempotency_key: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// Attempts so far.
    pub attempts: i32,
    /// The state change it tells of: `open` or `resolved`.
    pub event_state: String,
    /// The event.
    pub event: StoredEvent,
    /// The rule as it is now.
    pub rule: StoredRule,
    /// The channel (gone when the rule no longer lists it).
    pub channel: Option<ChannelRecord>,
}

/// Locks notification `id` for delivery (`FOR UPDATE SKIP LOCKED`, in the caller's
/// transaction): `None` when it does not exist or another delivery holds it.
pub fn lock_notification(
    connection: &mut PgConnection,
    id: i64,
) -> Result<Option<PendingDelivery>, StoreError> {
    let Some((id, event_id, channel_id, idempotency_key, status, attempts, event_state)) =
        alert_notifications::table
            .find(id)
            .select((
                alert_notifications::id,
                alert_notifications::event_id,
                alert_notifications::channel_id,
                alert_notifications::idempotency_key,
                alert_notifications::status,
                alert_notifications::attempts,
                alert_notifications::event_state,
            ))
            .for_update()
            .skip_locked()
            .first::<(i64, i64, Option<i64>, String, String, i32, String)>(connection)
            .optional()?
    else {
        return Ok(None);
    };
    let event = find_event(connection, event_id)?
        .ok_or_else(|| StoreError::NotFound(format!("alert event {event_id}")))?;
    let rule = find_rule(connection, event.rule_id)?
        .ok_or_else(|| StoreError::NotFound(format!("alert rule {}", event.rule_id)))?;
    let channel = channel_id.and_then(|channel_id| {
        rule.channels
            .iter()
            .find(|channel| channel.id == channel_id)
            .cloned()
    });
    Ok(Some(PendingDelivery {
        id,
        idempotency_key,
        status,
        attempts,
        event_state,
        event,
        rule,
        channel,
    }))
}

/// Records an attempt of notification `id`: delivered, or its error (and `failed` when no
/// attempt is left). A delivery keeps the last error of the attempts before it.
pub fn record_attempt(
    connection: &mut PgConnection,
    id: i64,
    error: Option<&str>,
    attempts_left: bool,
) -> Result<(), StoreError> {
    let status = match (error, attempts_left) {
        (None, _) => "delivered",
        (Some(_), true) => "pending",
        (Some(_), false) => "failed",
    };
    diesel::update(alert_notifications::table.find(id))
        .set((
            alert_notifications::attempts.eq(alert_notifications::attempts + 1),
            alert_notifications::status.eq(status),
            // A success keeps the error of the attempt before it: the event shows that the
            // notification went out on its second try, and why the first failed.
            alert_notifications::last_error.eq(diesel::dsl::sql::<Nullable<Text>>("coalesce(")
                .bind::<Nullable<Text>, _>(error)
                .sql(", last_error)")),
            alert_notifications::delivered_at.eq(error.is_none().then(Utc::now)),
        ))
        .execute(connection)?;
    Ok(())
}

/// A stored event with what the API shows of it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Its id.
    pub id: i64,
    /// Its rule.
    pub rule_id: i64,
    /// The rule's name.
    pub rule_name: String,
    /// The rule's severity.
    pub severity: Severity,
    /// The rule's metric.
    pub metric: AlertMetric,
    /// The rule's level.
    pub level: AggregationLevel,
    /// The instance.
    pub instance_id: InstanceId,
    /// Its name, when it still exists.
    pub instance_name: Option<String>,
    /// Its engine, when it still exists.
    pub db_type: Option<DbType>,
    /// The database (database-level rules).
    pub database_name: Option<String>,
    /// `open` or `resolved`.
    pub state: String,
    /// The value that tripped the rule, as last seen.
    pub value: Decimal,
    /// Its period.
    pub period: Option<Period>,
    /// First seen.
    pub first_seen_at: DateTime<Utc>,
    /// Last seen.
    pub last_seen_at: DateTime<Utc>,
    /// When it resolved.
    pub resolved_at: Option<DateTime<Utc>>,
    /// What notifications tell besides the value.
    pub detail: serde_json::Value,
}

/// A notification as the API shows it with its event.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct NotificationStatus {
    /// Its id.
    pub id: i64,
    /// The channel's kind.
    pub channel_kind: String,
    /// The channel's displayable target, when it still exists.
    pub channel_target: Option<String>,
    /// The state change it tells of.
    pub event_state: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// Attempts so far.
    pub attempts: i32,
    /// The last attempt's error.
    pub last_error: Option<String>,
    /// When it was delivered.
    pub delivered_at: Option<DateTime<Utc>>,
}

#[derive(QueryableByName)]
struct EventRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    rule_id: i64,
    #[diesel(sql_type = Text)]
    rule_name: String,
    #[diesel(sql_type = Text)]
    severity: String,
    #[diesel(sql_type = Text)]
    metric: String,
    #[diesel(sql_type = Text)]
    level: String,
    #[diesel(sql_type = BigInt)]
    instance_id: i64,
    #[diesel(sql_type = Nullable<Text>)]
    instance_name: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    db_type: Option<String>,
    #[diesel(sql_type = Text)]
    database_name: String,
    #[diesel(sql_type = Text)]
    state: String,
    #[diesel(sql_type = diesel::sql_types::Numeric)]
    value: BigDecimal,
    #[diesel(sql_type = Nullable<Text>)]
    period_type: Option<String>,
    #[diesel(sql_type = Nullable<Date>)]
    period_start: Option<NaiveDate>,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    first_seen_at: DateTime<Utc>,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    last_seen_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<diesel::sql_types::Timestamptz>)]
    resolved_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = diesel::sql_types::Jsonb)]
    detail: serde_json::Value,
}

impl EventRow {
    fn into_event(self) -> Result<StoredEvent, StoreError> {
        let period = match (self.period_type, self.period_start) {
            (Some(period_type), Some(start)) => Some(
                Period::starting_on(period_type.parse::<PeriodType>().map_err(corrupt)?, start)
                    .map_err(corrupt)?,
            ),
            _ => None,
        };
        Ok(StoredEvent {
            id: self.id,
            rule_id: self.rule_id,
            rule_name: self.rule_name,
            severity: self.severity.parse().map_err(corrupt)?,
            metric: self.metric.parse().map_err(corrupt)?,
            level: self.level.parse().map_err(corrupt)?,
            instance_id: InstanceId(self.instance_id),
            instance_name: self.instance_name,
            db_type: self
                .db_type
                .map(|text| text.parse().map_err(corrupt))
                .transpose()?,
            database_name: (!self.database_name.is_empty()).then_some(self.database_name),
            state: self.state,
            value: to_decimal(&self.value)?,
            period,
            first_seen_at: self.first_seen_at,
            last_seen_at: self.last_seen_at,
            resolved_at: self.resolved_at,
            detail: self.detail,
        })
    }
}

const EVENT_COLUMNS: &str = "e.id, e.rule_id, r.name AS rule_name, r.severity, r.metric, r.level,
    e.instance_id, i.name AS instance_name, i.db_type, e.database_name, e.state, e.value,
    e.period_type, e.period_start, e.first_seen_at, e.last_seen_at, e.resolved_at, e.detail
    FROM alert_events e
    JOIN alert_rules r ON r.id = e.rule_id
    LEFT JOIN instances i ON i.id = e.instance_id";

/// Event `id`.
pub fn find_event(
    connection: &mut PgConnection,
    id: i64,
) -> Result<Option<StoredEvent>, StoreError> {
    diesel::sql_query(format!("SELECT {EVENT_COLUMNS} WHERE e.id = $1"))
        .bind::<BigInt, _>(id)
        .get_result::<EventRow>(connection)
        .optional()?
        .map(EventRow::into_event)
        .transpose()
}

/// Which events to list; absent fields do not narrow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// `open` or `resolved`.
    pub state: Option<String>,
    /// Of this rule.
    pub rule_id: Option<i64>,
    /// Of this instance.
    pub instance_id: Option<InstanceId>,
    /// Of rules of this severity.
    pub severity: Option<Severity>,
}

/// The events of `filter`, most recently seen first, with how many match in all.
pub fn list_events(
    connection: &mut PgConnection,
    filter: &EventFilter,
    limit: i64,
    offset: i64,
) -> Result<(Vec<StoredEvent>, i64), StoreError> {
    const CONDITION: &str = "($1::text IS NULL OR e.state = $1)
        AND ($2::bigint IS NULL OR e.rule_id = $2)
        AND ($3::bigint IS NULL OR e.instance_id = $3)
        AND ($4::text IS NULL OR r.severity = $4)";
    let state = filter.state.clone();
    let rule_id = filter.rule_id;
    let instance_id = filter.instance_id.map(|id| id.0);
    let severity = filter.severity.map(|severity| severity.as_str().to_owned());
    #[derive(QueryableByName)]
    struct Total {
        #[diesel(sql_type = BigInt)]
        total: i64,
    }
    let total = diesel::sql_query(format!(
        "SELECT count(*) AS total FROM alert_events e JOIN alert_rules r ON r.id = e.rule_id \
         WHERE {CONDITION}"
    ))
    .bind::<Nullable<Text>, _>(state.clone())
    .bind::<Nullable<BigInt>, _>(rule_id)
    .bind::<Nullable<BigInt>, _>(instance_id)
    .bind::<Nullable<Text>, _>(severity.clone())
    .get_result::<Total>(connection)?
    .total;
    let rows: Vec<EventRow> = diesel::sql_query(format!(
        "SELECT {EVENT_COLUMNS} WHERE {CONDITION} ORDER BY e.last_seen_at DESC, e.id DESC \
         LIMIT $5 OFFSET $6"
    ))
    .bind::<Nullable<Text>, _>(state)
    .bind::<Nullable<BigInt>, _>(rule_id)
    .bind::<Nullable<BigInt>, _>(instance_id)
    .bind::<Nullable<Text>, _>(severity)
    .bind::<BigInt, _>(limit)
    .bind::<BigInt, _>(offset)
    .load(connection)?;
    let events = rows
        .into_iter()
        .map(EventRow::into_event)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((events, total))
}

/// The notifications of events `event_ids`, by event, oldest first.
pub fn notifications_of(
    connection: &mut PgConnection,
    event_ids: &[i64],
) -> Result<Vec<(i64, NotificationStatus)>, StoreError> {
    Ok(alert_notifications::table
        .left_join(alert_channels::table)
        .filter(alert_notifications::event_id.eq_any(event_ids))
        .order((alert_notifications::event_id, alert_notifications::id))
        .select((
            alert_notifications::event_id,
            (
                alert_notifications::id,
                alert_notifications::channel_kind,
                alert_channels::display_target.nullable(),
                alert_notifications::event_state,
                alert_notifications::status,
                alert_notifications::attempts,
                alert_notifications::last_error,
                alert_notifications::delivered_at,
            ),
        ))
        .load::<(i64, NotificationStatus)>(connection)?)
}

/// The day of the last sample of every active key of `level` (instances: the latest day any
/// of its databases was seen; databases: their own), for the instances of `instance_ids` and
/// engines `db_types` (all when empty). An instance without any sample counts from the day it
/// was registered, so that a collector that never reported is not silent forever.
pub fn last_sample_days(
    connection: &mut PgConnection,
    level: AggregationLevel,
    instance_ids: &[InstanceId],
    db_types: &[DbType],
) -> Result<Vec<(EventKey, NaiveDate)>, StoreError> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        instance_id: i64,
        #[diesel(sql_type = Text)]
        database_name: String,
        #[diesel(sql_type = Date)]
        last_day: NaiveDate,
    }
    let sql = match level {
        AggregationLevel::Instance => {
            "SELECT i.id AS instance_id, '' AS database_name,
                    coalesce(max(d.last_seen_date), (i.created_at AT TIME ZONE 'UTC')::date) AS last_day
             FROM instances i
             LEFT JOIN instance_databases d ON d.instance_id = i.id
             WHERE i.is_active AND i.deleted_at IS NULL
               AND (cardinality($1::bigint[]) = 0 OR i.id = ANY($1))
               AND (cardinality($2::text[]) = 0 OR i.db_type = ANY($2))
             GROUP BY i.id
             ORDER BY i.id"
        }
        AggregationLevel::Database => {
            "SELECT i.id AS instance_id, d.database_name, d.last_seen_date AS last_day
             FROM instances i
             JOIN instance_databases d ON d.instance_id = i.id
             WHERE i.is_active AND i.deleted_at IS NULL AND d.is_active AND d.deleted_at IS NULL
               AND (cardinality($1::bigint[]) = 0 OR i.id = ANY($1))
               AND (cardinality($2::text[]) = 0 OR i.db_type = ANY($2))
             ORDER BY i.id, d.database_name"
        }
    };
    let rows: Vec<Row> = diesel::sql_query(sql)
        .bind::<diesel::sql_types::Array<BigInt>, _>(
            instance_ids.iter().map(|id| id.0).collect::<Vec<_>>(),
        )
        .bind::<diesel::sql_types::Array<Text>, _>(
            db_types
                .iter()
                .map(|db_type| db_type.as_str())
                .collect::<Vec<_>>(),
        )
        .load(connection)?;
    Ok(rows
        .into_iter()
        .map(|row| {
            (
                (InstanceId(row.instance_id), row.database_name),
                row.last_day,
            )
        })
        .collect())
}
