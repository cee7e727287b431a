#![doc = include_str!("../README.md")]

mod aggregate;
mod alert;
mod alert_input;
mod error;
mod instance;
mod named;
#[cfg(feature = "openapi")]
mod openapi;
mod period;
mod sample;

pub use aggregate::{
    AggregationLevel, Completeness, DatabaseSizeAggregate, InstanceSizeAggregate, TrendDirection,
};
pub use alert::{
    ALERT_CHANNELS_MAX, ALERT_RULE_NAME_MAX_CHARACTERS, AlertChannel, AlertCondition, AlertContext,
    AlertMetric, AlertObservation, AlertRuleSpec, AlertScope, AlertTransition, ChannelKind,
    Comparison, RuleProblem, Severity, alert_transitions,
};
pub use alert_input::{AlertChannelInput, AlertConditionInput, AlertRuleInput, AlertScopeInput};
pub use error::{
    NAME_PATTERN, PLAIN_TEXT_PATTERN, ValidationError, is_unsafe_character, validate_plain_text,
};
pub use instance::{DbType, InstanceId, TlsMode};
pub use period::{
    EARLIEST_SUPPORTED_DATE, LATEST_SUPPORTED_DATE, Period, PeriodType, PeriodsStartingBetween,
    validate_supported_date,
};
pub use rust_decimal::Decimal;
pub use sample::{
    DATABASE_NAME_MAX_CHARACTERS, DatabaseSizeSample, InstanceSizeSample, MAX_SIZE_MB, SampleDates,
};
