//! Alert rules: what is watched (a metric of instances or databases against a threshold), on
//! which keys, how severe it is and where a notification goes — and the checks a rule must
//! pass before it is stored, each problem named by its field.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::{AggregationLevel, DbType, InstanceId, PeriodType, ValidationError};

crate::named_enum! {
    /// What a rule's condition measures.
    AlertMetric, error: ValidationError =
        |text: &str| ValidationError::UnknownChoice { field: "condition.metric", value: text.to_owned(), expected: "growth_percent, days_until_full, size_mb or no_samples_days" }, {
        /// Growth of the size over the last `periods` periods of `period_type`, in percent of
        /// the first (the growth leaderboard's `growth_percent`).
        GrowthPercent => "growth_percent",
        /// Days until the forecast reaches the capacity limit (keys with a published
        /// forecast reaching a limit only).
        DaysUntilFull => "days_until_full",
        /// The size in the latest period of `period_type`, MB.
        SizeMb => "size_mb",
        /// Days since the key's last sample: a silent collector must not look like zero
        /// growth.
        NoSamplesDays => "no_samples_days",
    }
}

crate::named_enum! {
    /// How a value is compared with a rule's threshold.
    Comparison, error: ValidationError =
        |text: &str| ValidationError::UnknownChoice { field: "condition", value: text.to_owned(), expected: "above or below" }, {
        /// Fires when the value is greater than the threshold.
        Above => "above",
        /// Fires when the value is less than the threshold.
        Below => "below",
    }
}

crate::named_enum! {
    /// How urgent a rule's events are.
    Severity, error: ValidationError =
        |text: &str| ValidationError::UnknownChoice { field: "severity", value: text.to_owned(), expected: "info, warning or critical" }, {
        /// For the record.
        Info => "info",
        /// Someone should look soon.
        Warning => "warning",
        /// Someone should act now.
        Critical => "critical",
    }
}

crate::named_enum! {
    /// Where a notification is delivered.
    ChannelKind, error: ValidationError =
        |text: &str| ValidationError::UnknownChoice { field: "channels[].kind", value: text.to_owned(), expected: "webhook, dingtalk, wecom, feishu or email" }, {
        /// A generic HTTP endpoint: a documented JSON body, optionally signed (HMAC-SHA256).
        Webhook => "webhook",
        /// A DingTalk robot (its signed URL when a secret is given).
        Dingtalk => "dingtalk",
        /// A WeCom (WeChat Work) robot.
        Wecom => "wecom",
        /// A Feishu (Lark) robot (signed when a secret is given).
        Feishu => "feishu",
        /// Mail through the configured SMTP server.
        Email => "email",
    }
}

/// When a rule fires: `metric` compared with `threshold`, over the last `periods` periods of
/// `period_type` where the metric has a window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertCondition {
    /// What is measured.
    pub metric: AlertMetric,
    /// Above or below.
    pub comparison: Comparison,
    /// The threshold: percent, days or MB as the metric measures.
    pub threshold: Decimal,
    /// The periods of growth and size (default monthly for growth, daily for size).
    pub period_type: PeriodType,
    /// How many periods the growth window has (1–366; 1 for the others).
    pub periods: u16,
}

impl AlertCondition {
    /// Whether `value` trips the condition.
    pub fn holds(&self, value: Decimal) -> bool {
        match self.comparison {
            Comparison::Above => value > self.threshold,
            Comparison::Below => value < self.threshold,
        }
    }
}

/// Which keys a rule watches; an empty list does not narrow.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertScope {
    /// Only instances of these engines.
    pub db_types: Vec<DbType>,
    /// Only these instances.
    pub instance_ids: Vec<InstanceId>,
    /// Only databases of these names (database level).
    pub database_names: Vec<String>,
}

/// A destination of a rule's notifications.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertChannel {
    /// Its kind.
    pub kind: ChannelKind,
    /// The URL (robots, webhooks) or the mail address (`email`).
    pub target: String,
    /// The signing secret (webhook HMAC, DingTalk and Feishu signatures), if any.
    pub secret: Option<String>,
}

/// The longest rule name.
pub const ALERT_RULE_NAME_MAX_CHARACTERS: usize = 100;

/// The most channels a rule notifies.
pub const ALERT_CHANNELS_MAX: usize = 10;

/// A rule as it is created or replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRuleSpec {
    /// Its name, unique.
    pub name: String,
    /// Instances (totals) or databases.
    pub level: AggregationLevel,
    /// When it fires.
    pub condition: AlertCondition,
    /// Which keys it watches.
    pub scope: AlertScope,
    /// How urgent its events are.
    pub severity: Severity,
    /// Where its notifications go (at least one).
    pub channels: Vec<AlertChannel>,
}

/// A problem of a rule, named by the path of its field (`channels[1].url`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleProblem {
    /// The field's path.
    pub field: String,
    /// A stable code.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
}

impl AlertRuleSpec {
    /// Every problem of the rule (none when it may be stored).
    pub fn problems(&self) -> Vec<RuleProblem> {
        let mut problems = Vec::new();
        let mut problem = |field: String, code: &'static str, message: String| {
            problems.push(RuleProblem {
                field,
                code,
                message,
            });
        };
        let name = self.name.trim();
        if name.is_empty() {
            problem("name".into(), "required", "must not be empty".into());
        } else if self.name.chars().count() > ALERT_RULE_NAME_MAX_CHARACTERS {
            problem(
                "name".into(),
                "too_long",
                format!("at most {ALERT_RULE_NAME_MAX_CHARACTERS} characters"),
            );
        } else if let Err(error) = crate::validate_plain_text("name", &self.name) {
            problem("name".into(), "invalid", error.to_string());
        }
        let condition = &self.condition;
        match condition.metric {
            AlertMetric::GrowthPercent => {}
            AlertMetric::DaysUntilFull | AlertMetric::NoSamplesDays => {
                if condition.threshold < Decimal::ZERO
                    || condition.threshold.fract() != Decimal::ZERO
                {
                    problem(
                        "condition.threshold".into(),
                        "invalid",
                        format!("{} is a whole number of days", condition.metric),
                    );
                }
            }
            AlertMetric::SizeMb => {
                if condition.threshold < Decimal::ZERO {
                    problem(
                        "condition.threshold".into(),
                        "invalid",
                        "a size is not negative".into(),
                    );
                }
            }
        }
        if condition.metric == AlertMetric::NoSamplesDays
            && condition.comparison != Comparison::Above
        {
            problem(
                "condition.below".into(),
                "invalid",
                "no_samples_days fires above a number of days".into(),
            );
        }
        if !(1..=366).contains(&condition.periods) {
            problem(
                "condition.periods".into(),
                "out_of_range",
                format!("{} is not between 1 and 366", condition.periods),
            );
        } else if condition.metric != AlertMetric::GrowthPercent && condition.periods != 1 {
            problem(
                "condition.periods".into(),
                "invalid",
                format!("{} has no window of periods", condition.metric),
            );
        }
        if self.level == AggregationLevel::Instance && !self.scope.database_names.is_empty() {
            problem(
                "scope.database_names".into(),
                "invalid",
                "an instance-level rule watches instances, not databases".into(),
            );
        }
        for (index, name) in self.scope.database_names.iter().enumerate() {
            if name.is_empty() || name.chars().count() > crate::DATABASE_NAME_MAX_CHARACTERS {
                problem(
                    format!("scope.database_names[{index}]"),
                    "invalid",
                    "1 to 255 characters".into(),
                );
            }
        }
        if self.channels.is_empty() {
            problem("channels".into(), "required", "at least one channel".into());
        } else if self.channels.len() > ALERT_CHANNELS_MAX {
            problem(
                "channels".into(),
                "too_many",
                format!("at most {ALERT_CHANNELS_MAX} channels"),
            );
        }
        for (index, channel) in self.channels.iter().enumerate() {
            for (field, code, message) in channel.problems() {
                problem(format!("channels[{index}].{field}"), code, message);
            }
        }
        problems
    }
}

impl AlertChannel {
    /// The problems of the channel: its field (`url`, `to`, `secret`), code and message.
    fn problems(&self) -> Vec<(&'static str, &'static str, String)> {
        let mut problems = Vec::new();
        match self.kind {
            ChannelKind::Email => {
                let parts: Vec<&str> = self.target.split('@').collect();
                let plausible = parts.len() == 2
                    && !parts[0].is_empty()
                    && parts[1].contains('.')
                    && !self.target.chars().any(|character| {
                        character.is_whitespace()
                            || character.is_control()
                            || "<>,;\"".contains(character)
                    });
                if !plausible || self.target.len() > 254 {
                    problems.push((
                        "to",
                        "invalid",
                        "a mail address such as dba@example.com".into(),
                    ));
                }
                if self.secret.is_some() {
                    problems.push(("secret", "invalid", "mail takes no secret".into()));
                }
            }
            _ => {
                let lower = self.target.to_ascii_lowercase();
                let scheme_ok = lower.starts_with("https://") || lower.starts_with("http://");
                let host = lower
                    .split_once("://")
                    .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or(""))
                    .unwrap_or("");
                if !scheme_ok
                    || host.is_empty()
                    || self.target.len() > 2048
                    || self
                        .target
                        .chars()
                        .any(|character| character.is_whitespace() || character.is_control())
                {
                    problems.push(("url", "invalid", "an http:// or https:// URL".into()));
                }
                if self.kind == ChannelKind::Wecom && self.secret.is_some() {
                    problems.push((
                        "secret",
                        "invalid",
                        "WeCom robots take no secret (the key is in the URL)".into(),
                    ));
                }
            }
        }
        if let Some(secret) = &self.secret
            && (secret.is_empty() || secret.len() > 512)
        {
            problems.push(("secret", "invalid", "1 to 512 characters".into()));
        }
        problems
    }
}

/// What one evaluation found for one key of a rule's scope: the metric's value in a period,
/// or `None` when it cannot be told (no published forecast, no limit, too little history).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertObservation<Key> {
    /// The key (an instance, or an instance's database).
    pub key: Key,
    /// The metric's value, if it can be told.
    pub value: Option<Decimal>,
    /// The period the value belongs to (the window's last period, or the day of the
    /// evaluation).
    pub period: Option<crate::Period>,
}

/// How an evaluation changes a rule's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertTransition<Key> {
    /// The key trips the condition and had no open event: one opens.
    Open {
        /// The key.
        key: Key,
        /// The value that tripped it.
        value: Decimal,
        /// Its period.
        period: Option<crate::Period>,
    },
    /// The key still trips the condition: its open event is seen again, with the new value.
    StillOpen {
        /// The key.
        key: Key,
        /// The value now.
        value: Decimal,
        /// Its period.
        period: Option<crate::Period>,
    },
    /// The key has an open event but no longer trips the condition (or left the rule's scope):
    /// the event resolves.
    Resolve {
        /// The key.
        key: Key,
    },
}

/// The transitions of one evaluation of `condition` over `observations` (one per key in the
/// rule's scope now), given the keys with an open event. A key whose value cannot be told
/// keeps its state: an unknown is neither a reason to alert nor proof that all is well (a
/// silent collector is `no_samples_days`' business). A key with an open event that is no
/// longer observed at all has left the scope (or its instance was deleted), and its event
/// resolves. Transitions come in key order.
pub fn alert_transitions<Key: Ord + Clone>(
    condition: &AlertCondition,
    observations: &[AlertObservation<Key>],
    open: &std::collections::BTreeSet<Key>,
) -> Vec<AlertTransition<Key>> {
    use std::collections::BTreeMap;
    let observed: BTreeMap<&Key, &AlertObservation<Key>> = observations
        .iter()
        .map(|observation| (&observation.key, observation))
        .collect();
    let mut keys: Vec<&Key> = observed.keys().copied().chain(open.iter()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|key| {
            let is_open = open.contains(key);
            match observed.get(key) {
                None if is_open => Some(AlertTransition::Resolve { key: key.clone() }),
                None => None,
                Some(AlertObservation { value: None, .. }) => None,
                Some(AlertObservation {
                    value: Some(value),
                    period,
                    ..
                }) => match (condition.holds(*value), is_open) {
                    (true, false) => Some(AlertTransition::Open {
                        key: key.clone(),
                        value: *value,
                        period: *period,
                    }),
                    (true, true) => Some(AlertTransition::StillOpen {
                        key: key.clone(),
                        value: *value,
                        period: *period,
                    }),
                    (false, true) => Some(AlertTransition::Resolve { key: key.clone() }),
                    (false, false) => None,
                },
            }
        })
        .collect()
}

/// What an evaluation saw of a key besides the metric's value, kept with its event so that a
/// notification can tell what grew, by how much and what the forecast says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertContext {
    /// The size in the window's first period, MB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_size_mb: Option<i64>,
    /// The size in its last period, MB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_size_mb: Option<i64>,
    /// `last_size_mb - first_size_mb`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub growth_mb: Option<i64>,
    /// That growth in percent of the first size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub growth_percent: Option<Decimal>,
    /// The day of the key's last sample.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sample_day: Option<chrono::NaiveDate>,
    /// The size the published forecast projects at its horizon, MB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projected_size_mb: Option<i64>,
    /// The forecast's horizon, days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub horizon_days: Option<u32>,
    /// Days until the forecast reaches the capacity limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days_until_full: Option<u32>,
    /// The key's capacity limit, MB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_limit_mb: Option<i64>,
}

#[cfg(test)]
mod tests;
