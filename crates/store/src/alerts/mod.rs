//! Alerts as stored: rules with their (sealed) channels, the evaluations run after sessions,
//! the events they open and resolve, and the notifications each change of an event sends.
//! Sealing and opening channel targets is the caller's business; this module stores bytes.

use bigdecimal::BigDecimal;

use capstats_capacity_model::Decimal;

use crate::StoreError;

mod evaluations;
mod notifications;
mod reads;
mod rules;

pub use evaluations::{
    EvaluationCounts, EvaluationMoment, EventKey, Sighting, claim_evaluation, finish_evaluation,
    open_event, open_events, resolve_event, see_events_again, watched_instance_ids,
};
pub use notifications::{
    PendingDelivery, claim_notification, lock_notification, queue_notifications, record_attempt,
    retry_notification, unclaim_notification, undispatched_notifications,
};
pub use reads::{
    EventFilter, NotificationStatus, StoredEvent, find_event, last_sample_days, list_events,
    notifications_of,
};
pub use rules::{
    ChannelRecord, RuleFields, StoredRule, channels_after, create_rule, delete_rule, find_rule,
    list_rules, replace_rule, replace_sealed_channel, reserve_channel_ids,
};

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
