//! Alert rules and events as the API reads and writes them.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use capstats_capacity_model::{
    AggregationLevel, AlertContext, AlertMetric, ChannelKind, Comparison, DbType, Decimal,
    PeriodType, Severity,
};
use capstats_store::alerts::{NotificationStatus, StoredEvent, StoredRule};

/// A rule's condition as stored.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AlertConditionItem {
    /// What it measures.
    pub metric: AlertMetric,
    /// The threshold it fires above, if it fires above.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::dto::numbers::exact_optional"
    )]
    #[schema(value_type = Option<f64>)]
    pub above: Option<Decimal>,
    /// The threshold it fires below, if it fires below.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::dto::numbers::exact_optional"
    )]
    #[schema(value_type = Option<f64>)]
    pub below: Option<Decimal>,
    /// The periods of growth and size.
    pub period_type: PeriodType,
    /// How many periods the growth window has.
    pub periods: u16,
}

/// A rule's scope as stored (empty lists do not narrow).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AlertScopeItem {
    /// Only instances of these engines.
    pub db_types: Vec<DbType>,
    /// Only these instances.
    pub instance_ids: Vec<i64>,
    /// Only databases of these names.
    pub database_names: Vec<String>,
}

/// A channel as the API shows it: never its full URL or its secret.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AlertChannelItem {
    /// Its id.
    pub id: i64,
    /// Its kind.
    pub kind: ChannelKind,
    /// A mail address in full; a URL as its scheme and host only (`https://oapi.dingtalk.com/…`).
    pub target: String,
    /// Whether a signing secret is stored.
    pub has_secret: bool,
}

/// A rule.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AlertRuleItem {
    /// Its id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// Instances or databases.
    pub level: AggregationLevel,
    /// When it fires.
    pub condition: AlertConditionItem,
    /// Which keys it watches.
    pub scope: AlertScopeItem,
    /// How urgent its events are.
    pub severity: Severity,
    /// Where its notifications go.
    pub channels: Vec<AlertChannelItem>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last replaced.
    pub updated_at: DateTime<Utc>,
}

impl From<StoredRule> for AlertRuleItem {
    fn from(rule: StoredRule) -> Self {
        let fields = rule.fields;
        let condition = fields.condition;
        let (above, below) = match condition.comparison {
            Comparison::Above => (Some(condition.threshold), None),
            Comparison::Below => (None, Some(condition.threshold)),
        };
        Self {
            id: rule.id,
            name: fields.name,
            level: fields.level,
            condition: AlertConditionItem {
                metric: condition.metric,
                above,
                below,
                period_type: condition.period_type,
                periods: condition.periods,
            },
            scope: AlertScopeItem {
                db_types: fields.scope.db_types,
                instance_ids: fields.scope.instance_ids.iter().map(|id| id.0).collect(),
                database_names: fields.scope.database_names,
            },
            severity: fields.severity,
            channels: rule
                .channels
                .into_iter()
                .map(|channel| AlertChannelItem {
                    id: channel.id,
                    kind: channel.kind,
                    target: channel.display_target,
                    has_secret: channel.sealed_secret.is_some(),
                })
                .collect(),
            created_at: rule.created_at,
            updated_at: rule.updated_at,
        }
    }
}

/// The rule an event belongs to.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AlertEventRule {
    /// Its id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// Its severity.
    pub severity: Severity,
    /// Its metric.
    pub metric: AlertMetric,
    /// Its level.
    pub level: AggregationLevel,
}

/// The instance an event is about.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AlertEventInstance {
    /// Its id.
    pub id: i64,
    /// Its name (absent when it was deleted).
    pub name: Option<String>,
    /// Its engine.
    pub db_type: Option<DbType>,
}

/// A notification of an event: one per change of its state and channel.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AlertNotificationItem {
    /// Its id.
    pub id: i64,
    /// The channel's kind.
    pub channel_kind: String,
    /// The channel's target as shown (absent when the rule no longer has the channel).
    pub channel_target: Option<String>,
    /// The change it tells of: `open` or `resolved`.
    pub event_state: String,
    /// `pending` (not yet sent, or failed with attempts left), `delivered` or `failed`.
    pub status: String,
    /// Attempts so far.
    pub attempts: i32,
    /// The last attempt's error.
    pub last_error: Option<String>,
    /// When it was delivered.
    pub delivered_at: Option<DateTime<Utc>>,
}

impl From<NotificationStatus> for AlertNotificationItem {
    fn from(status: NotificationStatus) -> Self {
        Self {
            id: status.id,
            channel_kind: status.channel_kind,
            channel_target: status.channel_target,
            event_state: status.event_state,
            status: status.status,
            attempts: status.attempts,
            last_error: status.last_error,
            delivered_at: status.delivered_at,
        }
    }
}

/// An alert event: a key that tripped a rule, open until it no longer does.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AlertEventItem {
    /// Its id.
    pub id: i64,
    /// `open` or `resolved`.
    pub state: String,
    /// The rule.
    pub rule: AlertEventRule,
    /// The instance.
    pub instance: AlertEventInstance,
    /// The database (database-level rules).
    pub database_name: Option<String>,
    /// The value that tripped the rule, as last seen.
    #[serde(serialize_with = "crate::dto::numbers::exact")]
    #[schema(value_type = f64)]
    pub value: Decimal,
    /// The type of the value's period.
    pub period_type: Option<PeriodType>,
    /// The first day of the value's period.
    pub period_start: Option<NaiveDate>,
    /// Its last day.
    pub period_end: Option<NaiveDate>,
    /// When the key was first seen tripping the rule.
    pub first_seen_at: DateTime<Utc>,
    /// When it was last seen.
    pub last_seen_at: DateTime<Utc>,
    /// When it resolved.
    pub resolved_at: Option<DateTime<Utc>>,
    /// What notifications tell besides the value: the window's sizes, the forecast, the last
    /// sample's day (the fields known).
    #[schema(value_type = Object)]
    pub context: AlertContext,
    /// Its notifications, oldest first, with their delivery attempts and last error.
    pub notifications: Vec<AlertNotificationItem>,
}

impl AlertEventItem {
    /// The item of `event` with its notifications.
    pub fn new(event: StoredEvent, notifications: Vec<NotificationStatus>) -> Self {
        Self {
            id: event.id,
            state: event.state,
            rule: AlertEventRule {
                id: event.rule_id,
                name: event.rule_name,
                severity: event.severity,
                metric: event.metric,
                level: event.level,
            },
            instance: AlertEventInstance {
                id: event.instance_id.0,
                name: event.instance_name,
                db_type: event.db_type,
            },
            database_name: event.database_name,
            value: event.value,
            period_type: event.period.map(|period| period.period_type()),
            period_start: event.period.map(|period| period.start()),
            period_end: event.period.map(|period| period.end()),
            first_seen_at: event.first_seen_at,
            last_seen_at: event.last_seen_at,
            resolved_at: event.resolved_at,
            context: serde_json::from_value(event.detail).unwrap_or_default(),
            notifications: notifications.into_iter().map(Into::into).collect(),
        }
    }
}
