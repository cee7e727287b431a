//! Notifications of event changes: queueing them, dispatching their deliveries, and
//! recording each delivery attempt.

use chrono::Utc;
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text};

use super::{ChannelRecord, StoredEvent, StoredRule, find_event, find_rule};
use crate::StoreError;
use crate::schema::alert_notifications;

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
