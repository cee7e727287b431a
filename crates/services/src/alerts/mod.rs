//! Alerts: managing rules (their channels sealed under the credential key), evaluating every
//! rule after a session (once per session, however often its job is delivered), and
//! delivering each change of an event's state to each channel of its rule (once per
//! idempotency key; a retry after a failure resends the same notification).

mod delivery;
mod evaluation;
mod rules;

pub use delivery::{
    Delivery, DeliverySettings, capacity_link, deliver, dispatch_notifications, notice_of,
};
pub use evaluation::{NOTIFIED_HORIZON_DAYS, evaluate_after_session, evaluation_options};
pub use rules::{create_rule, delete_rule, display_target, replace_rule, rotate_channel_key};
