//! Alert rules and events as the API reads and writes them.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use capstats_capacity_model::{
    AggregationLevel, AlertChannel, AlertCondition, AlertContext, AlertMetric, AlertRuleSpec,
    AlertScope, ChannelKind, Comparison, DbType, Decimal, InstanceId, PeriodType, Severity,
};
use capstats_store::alerts::{NotificationStatus, StoredEvent, StoredRule};

use crate::error::FieldError;

/// `condition` of a rule: the metric, exactly one of `above` and `below`, and the window.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct AlertConditionInput {
    /// `growth_percent`, `days_until_full`, `size_mb` or `no_samples_days`.
    #[schema(value_type = AlertMetric)]
    pub metric: String,
    /// Fires when the value is greater than this (percent, days or MB as the metric measures).
    pub above: Option<f64>,
    /// Fires when the value is less than this (`no_samples_days` takes `above` only).
    pub below: Option<f64>,
    /// The periods of growth and size (default `monthly` for `growth_percent`, `daily`
    /// otherwise).
    #[schema(value_type = Option<PeriodType>)]
    pub period_type: Option<String>,
    /// How many periods the growth window has, 1–366 (default 3 for `growth_percent`; the
    /// other metrics take 1).
    #[schema(minimum = 1, maximum = 366)]
    pub periods: Option<i64>,
}

/// `scope` of a rule: every list narrows, an empty or absent one does not.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct AlertScopeInput {
    /// Only instances of these engines.
    #[schema(value_type = Option<Vec<DbType>>)]
    pub db_types: Option<Vec<String>>,
    /// Only these instances.
    pub instance_ids: Option<Vec<i64>>,
    /// Only databases of these names (database-level rules).
    pub database_names: Option<Vec<String>>,
}

/// A channel of a rule: a URL for the robots and webhooks, an address for mail.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct AlertChannelInput {
    /// `webhook`, `dingtalk`, `wecom`, `feishu` or `email`.
    #[schema(value_type = ChannelKind)]
    pub kind: String,
    /// The URL (all kinds but `email`): stored sealed, never shown again in full (robot URLs
    /// carry their access token).
    #[schema(max_length = 2048)]
    pub url: Option<String>,
    /// The mail address (`email`).
    #[schema(max_length = 254)]
    pub to: Option<String>,
    /// The signing secret: the webhook's HMAC-SHA256 key, the DingTalk robot's "加签" secret
    /// or the Feishu bot's signature secret. Stored sealed, never returned.
    #[schema(min_length = 1, max_length = 512)]
    pub secret: Option<String>,
}

/// `POST /alerts/rules` and `PUT /alerts/rules/{id}` (a replacement: channels are named in
/// full again, since their URLs and secrets are never shown).
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct AlertRuleInput {
    /// Unique name (1–100 characters).
    #[schema(min_length = 1, max_length = 100, pattern = "{name}")]
    pub name: String,
    /// `instance` (totals) or `database`.
    #[schema(value_type = AggregationLevel)]
    pub level: String,
    /// When it fires.
    pub condition: AlertConditionInput,
    /// Which keys it watches (all when absent).
    pub scope: Option<AlertScopeInput>,
    /// `info`, `warning` or `critical`.
    #[schema(value_type = Severity)]
    pub severity: String,
    /// Where notifications go: 1–10 channels.
    pub channels: Vec<AlertChannelInput>,
}

fn parsed<T: std::str::FromStr>(
    problems: &mut Vec<FieldError>,
    field: &str,
    text: &str,
    expected: &str,
) -> Option<T> {
    match text.parse() {
        Ok(value) => Some(value),
        Err(_) => {
            problems.push(FieldError::new(
                field,
                "invalid_choice",
                format!("unknown value `{text}`; expected {expected}"),
            ));
            None
        }
    }
}

fn decimal(problems: &mut Vec<FieldError>, field: &str, value: f64) -> Option<Decimal> {
    match Decimal::try_from(value) {
        Ok(value) if value.abs() <= Decimal::from(1_000_000_000_000_i64) => Some(value.round_dp(2)),
        _ => {
            problems.push(FieldError::new(
                field,
                "out_of_range",
                format!("{value} is not a threshold between -10^12 and 10^12"),
            ));
            None
        }
    }
}

impl AlertRuleInput {
    /// The rule it describes, or every problem named by its field.
    pub fn into_spec(self) -> Result<AlertRuleSpec, Vec<FieldError>> {
        let mut problems = Vec::new();
        let level =
            parsed::<AggregationLevel>(&mut problems, "level", &self.level, "instance or database");
        let severity = parsed::<Severity>(
            &mut problems,
            "severity",
            &self.severity,
            "info, warning or critical",
        );
        let condition = self.condition;
        let metric = parsed::<AlertMetric>(
            &mut problems,
            "condition.metric",
            &condition.metric,
            "growth_percent, days_until_full, size_mb or no_samples_days",
        );
        let threshold = match (condition.above, condition.below) {
            (Some(above), None) => decimal(&mut problems, "condition.above", above)
                .map(|value| (Comparison::Above, value)),
            (None, Some(below)) => decimal(&mut problems, "condition.below", below)
                .map(|value| (Comparison::Below, value)),
            (Some(_), Some(_)) => {
                problems.push(FieldError::new(
                    "condition.below",
                    "invalid",
                    "give either above or below, not both",
                ));
                None
            }
            (None, None) => {
                problems.push(FieldError::new(
                    "condition.above",
                    "required",
                    "give above or below",
                ));
                None
            }
        };
        let growth = metric == Some(AlertMetric::GrowthPercent);
        let period_type = match &condition.period_type {
            Some(text) => parsed::<PeriodType>(
                &mut problems,
                "condition.period_type",
                text,
                "daily, weekly, monthly, quarterly or yearly",
            ),
            None if growth => Some(PeriodType::Monthly),
            None => Some(PeriodType::Daily),
        };
        let periods = match condition.periods {
            Some(periods) => match u16::try_from(periods) {
                Ok(periods) => Some(periods),
                Err(_) => {
                    problems.push(FieldError::new(
                        "condition.periods",
                        "out_of_range",
                        format!("{periods} is not between 1 and 366"),
                    ));
                    None
                }
            },
            None if growth => Some(3),
            None => Some(1),
        };
        let scope = self.scope.unwrap_or_default();
        let db_types = scope
            .db_types
            .unwrap_or_default()
            .iter()
            .enumerate()
            .filter_map(|(index, text)| {
                parsed::<DbType>(
                    &mut problems,
                    &format!("scope.db_types[{index}]"),
                    text,
                    "mysql, postgresql, sqlserver or oracle",
                )
            })
            .collect();
        let mut channels = Vec::new();
        for (index, channel) in self.channels.into_iter().enumerate() {
            let Some(kind) = parsed::<ChannelKind>(
                &mut problems,
                &format!("channels[{index}].kind"),
                &channel.kind,
                "webhook, dingtalk, wecom, feishu or email",
            ) else {
                continue;
            };
            let (wanted, unwanted, target, stray) = if kind == ChannelKind::Email {
                ("to", "url", channel.to, channel.url)
            } else {
                ("url", "to", channel.url, channel.to)
            };
            if stray.is_some() {
                problems.push(FieldError::new(
                    format!("channels[{index}].{unwanted}"),
                    "invalid",
                    format!("a {kind} channel takes `{wanted}`, not `{unwanted}`"),
                ));
            }
            match target {
                Some(target) => channels.push(AlertChannel {
                    kind,
                    target,
                    secret: channel.secret,
                }),
                None => problems.push(FieldError::new(
                    format!("channels[{index}].{wanted}"),
                    "required",
                    format!("a {kind} channel needs `{wanted}`"),
                )),
            }
        }
        let (
            Some(level),
            Some(severity),
            Some(metric),
            Some((comparison, threshold)),
            Some(period_type),
            Some(periods),
        ) = (level, severity, metric, threshold, period_type, periods)
        else {
            return Err(problems);
        };
        let spec = AlertRuleSpec {
            name: self.name,
            level,
            condition: AlertCondition {
                metric,
                comparison,
                threshold,
                period_type,
                periods,
            },
            scope: AlertScope {
                db_types,
                instance_ids: scope
                    .instance_ids
                    .unwrap_or_default()
                    .into_iter()
                    .map(InstanceId)
                    .collect(),
                database_names: scope.database_names.unwrap_or_default(),
            },
            severity,
            channels,
        };
        problems.extend(spec.problems().into_iter().map(|problem| {
            FieldError::new(
                problem.field.replace(
                    "condition.threshold",
                    match comparison {
                        Comparison::Above => "condition.above",
                        Comparison::Below => "condition.below",
                    },
                ),
                problem.code,
                problem.message,
            )
        }));
        if problems.is_empty() {
            Ok(spec)
        } else {
            Err(problems)
        }
    }
}

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
