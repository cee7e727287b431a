//! Alert rules as the API and the command line read them (`POST /alerts/rules`, `capstats-worker
//! alerts rules add FILE`): the JSON body, its defaults, and every problem named by its field.

use serde::Deserialize;

use crate::{
    AggregationLevel, AlertChannel, AlertCondition, AlertMetric, AlertRuleSpec, AlertScope,
    ChannelKind, Comparison, DbType, Decimal, InstanceId, PeriodType, RuleProblem, Severity,
};

fn problem(
    field: impl Into<String>,
    code: &'static str,
    message: impl Into<String>,
) -> RuleProblem {
    RuleProblem {
        field: field.into(),
        code,
        message: message.into(),
    }
}

/// `condition` of a rule: the metric, exactly one of `above` and `below`, and the window.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertConditionInput {
    /// `growth_percent`, `days_until_full`, `size_mb` or `no_samples_days`.
    #[cfg_attr(feature = "openapi", schema(value_type = AlertMetric))]
    pub metric: String,
    /// Fires when the value is greater than this (percent, days or MB as the metric measures).
    pub above: Option<f64>,
    /// Fires when the value is less than this (`no_samples_days` takes `above` only).
    pub below: Option<f64>,
    /// The periods of growth and size (default `monthly` for `growth_percent`, `daily`
    /// otherwise).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<PeriodType>))]
    pub period_type: Option<String>,
    /// How many periods the growth window has, 1–366 (default 3 for `growth_percent`; the
    /// other metrics take 1).
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 366))]
    pub periods: Option<i64>,
}

/// `scope` of a rule: every list narrows, an empty or absent one does not.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertScopeInput {
    /// Only instances of these engines.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<DbType>>))]
    pub db_types: Option<Vec<String>>,
    /// Only these instances.
    pub instance_ids: Option<Vec<i64>>,
    /// Only databases of these names (database-level rules).
    pub database_names: Option<Vec<String>>,
}

/// A channel of a rule: a URL for the robots and webhooks, an address for mail.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertChannelInput {
    /// `webhook`, `dingtalk`, `wecom`, `feishu` or `email`.
    #[cfg_attr(feature = "openapi", schema(value_type = ChannelKind))]
    pub kind: String,
    /// The URL (all kinds but `email`): stored sealed, never shown again in full (robot URLs
    /// carry their access token).
    #[cfg_attr(feature = "openapi", schema(max_length = 2048))]
    pub url: Option<String>,
    /// The mail address (`email`).
    #[cfg_attr(feature = "openapi", schema(max_length = 254))]
    pub to: Option<String>,
    /// The signing secret: the webhook's HMAC-SHA256 key, the DingTalk robot's "加签" secret
    /// or the Feishu bot's signature secret. Stored sealed, never returned.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 512))]
    pub secret: Option<String>,
}

/// `POST /alerts/rules` and `PUT /alerts/rules/{id}` (a replacement: channels are named in
/// full again, since their URLs and secrets are never shown).
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertRuleInput {
    /// Unique name (1–100 characters).
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 100, pattern = "{name}")
    )]
    pub name: String,
    /// `instance` (totals) or `database`.
    #[cfg_attr(feature = "openapi", schema(value_type = AggregationLevel))]
    pub level: String,
    /// When it fires.
    pub condition: AlertConditionInput,
    /// Which keys it watches (all when absent).
    pub scope: Option<AlertScopeInput>,
    /// `info`, `warning` or `critical`.
    #[cfg_attr(feature = "openapi", schema(value_type = Severity))]
    pub severity: String,
    /// Where notifications go: 1–10 channels.
    pub channels: Vec<AlertChannelInput>,
}

fn parsed<T: std::str::FromStr>(
    problems: &mut Vec<RuleProblem>,
    field: &str,
    text: &str,
    expected: &str,
) -> Option<T> {
    match text.parse() {
        Ok(value) => Some(value),
        Err(_) => {
            problems.push(problem(
                field,
                "invalid_choice",
                format!("unknown value `{text}`; expected {expected}"),
            ));
            None
        }
    }
}

/// A threshold as written (the shortest decimal of the JSON number), two decimals, halves
/// away from zero as every stored percent.
fn decimal(problems: &mut Vec<RuleProblem>, field: &str, value: f64) -> Option<Decimal> {
    match value.to_string().parse::<Decimal>() {
        Ok(value) if value.abs() <= Decimal::from(1_000_000_000_000_i64) => Some(
            value.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero),
        ),
        _ => {
            problems.push(problem(
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
    pub fn into_spec(self) -> Result<AlertRuleSpec, Vec<RuleProblem>> {
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
                problems.push(problem(
                    "condition.below",
                    "invalid",
                    "give either above or below, not both",
                ));
                None
            }
            (None, None) => {
                problems.push(problem(
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
                    problems.push(problem(
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
        // A channel that cannot be read stays in the list as a stand-in, so that the problems
        // of the others keep their index.
        let mut channels = Vec::new();
        let mut channels_read = true;
        for (index, channel) in self.channels.into_iter().enumerate() {
            let kind = parsed::<ChannelKind>(
                &mut problems,
                &format!("channels[{index}].kind"),
                &channel.kind,
                "webhook, dingtalk, wecom, feishu or email",
            );
            let (wanted, unwanted, target, stray) = if kind == Some(ChannelKind::Email) {
                ("to", "url", channel.to, channel.url)
            } else {
                ("url", "to", channel.url, channel.to)
            };
            if let Some(kind) = kind
                && stray.is_some()
            {
                problems.push(problem(
                    format!("channels[{index}].{unwanted}"),
                    "invalid",
                    format!("a {kind} channel takes `{wanted}`, not `{unwanted}`"),
                ));
            }
            if target.is_none()
                && let Some(kind) = kind
            {
                problems.push(problem(
                    format!("channels[{index}].{wanted}"),
                    "required",
                    format!("a {kind} channel needs `{wanted}`"),
                ));
            }
            match (kind, target) {
                (Some(kind), Some(target)) => channels.push(AlertChannel {
                    kind,
                    target,
                    secret: channel.secret,
                }),
                (kind, _) => {
                    channels_read = false;
                    let kind = kind.unwrap_or(ChannelKind::Webhook);
                    channels.push(AlertChannel {
                        kind,
                        target: if kind == ChannelKind::Email {
                            "stand-in@example.com".into()
                        } else {
                            "https://stand-in.example.com/".into()
                        },
                        secret: None,
                    });
                }
            }
        }
        // A field that could not be read is checked no further; the rest of the rule is
        // checked with a stand-in for it, so that one answer names every problem.
        let condition_read =
            metric.is_some() && threshold.is_some() && period_type.is_some() && periods.is_some();
        let complete = level.is_some() && severity.is_some() && condition_read && channels_read;
        let level = level.unwrap_or(AggregationLevel::Database);
        let severity = severity.unwrap_or(Severity::Info);
        let metric = metric.unwrap_or(AlertMetric::SizeMb);
        let (comparison, threshold) = threshold.unwrap_or((Comparison::Above, Decimal::ZERO));
        let period_type = period_type.unwrap_or(PeriodType::Daily);
        let periods = periods.unwrap_or(1);
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
        // The model names the threshold; the body calls it by its comparison.
        let threshold_field = match comparison {
            Comparison::Above => "condition.above",
            Comparison::Below => "condition.below",
        };
        for mut found in spec.problems() {
            found.field = found.field.replace("condition.threshold", threshold_field);
            let named = |field: &str| {
                problems
                    .iter()
                    .any(|problem: &RuleProblem| problem.field.starts_with(field))
            };
            // A stand-in's own consequences are not problems of the body.
            if !named(&found.field) && (condition_read || !found.field.starts_with("condition")) {
                problems.push(found);
            }
        }
        if complete && problems.is_empty() {
            Ok(spec)
        } else {
            Err(problems)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(body: serde_json::Value) -> Result<AlertRuleSpec, Vec<String>> {
        serde_json::from_value::<AlertRuleInput>(body)
            .unwrap()
            .into_spec()
            .map_err(|problems| problems.into_iter().map(|problem| problem.field).collect())
    }

    #[test]
    fn defaults_follow_the_metric() {
        let growth = read(serde_json::json!({
            "name": "grows", "level": "database", "severity": "warning",
            "condition": {"metric": "growth_percent", "above": 12.345},
            "channels": [{"kind": "email", "to": "dba@example.com"}]
        }))
        .unwrap();
        assert_eq!(growth.condition.period_type, PeriodType::Monthly);
        assert_eq!(growth.condition.periods, 3);
        assert_eq!(growth.condition.threshold.to_string(), "12.35");
        let silent = read(serde_json::json!({
            "name": "silent", "level": "instance", "severity": "critical",
            "condition": {"metric": "no_samples_days", "above": 2},
            "channels": [{"kind": "webhook", "url": "https://hooks.example.com/x"}]
        }))
        .unwrap();
        assert_eq!(silent.condition.period_type, PeriodType::Daily);
        assert_eq!(silent.condition.periods, 1);
        assert_eq!(silent.condition.comparison, Comparison::Above);
    }

    #[test]
    fn every_problem_is_named_at_its_own_index() {
        let problems = read(serde_json::json!({
            "name": "x", "level": "planet", "severity": "loud",
            "condition": {"metric": "size_mb", "above": 1, "below": 2},
            "channels": [
                {"kind": "pager", "url": "https://pager.example.com"},
                {"kind": "webhook", "to": "dba@example.com"},
                {"kind": "email", "to": "not an address"},
                {"kind": "wecom", "url": "https://qyapi.example.com/send?key=k", "secret": "s"}
            ]
        }))
        .unwrap_err();
        for field in [
            "level",
            "severity",
            "condition.below",
            "channels[0].kind",
            "channels[1].to",
            "channels[1].url",
            "channels[2].to",
            "channels[3].secret",
        ] {
            assert!(
                problems.contains(&field.to_owned()),
                "{field}: {problems:?}"
            );
        }
        assert!(!problems.contains(&"channels".to_owned()), "{problems:?}");
        assert!(
            !problems.contains(&"channels[0].url".to_owned()),
            "{problems:?}"
        );
        // Without channels at all, that is the problem.
        let none = read(serde_json::json!({
            "name": "x", "level": "instance", "severity": "info",
            "condition": {"metric": "size_mb", "above": 1}, "channels": []
        }))
        .unwrap_err();
        assert_eq!(none, vec!["channels".to_owned()]);
    }
}
