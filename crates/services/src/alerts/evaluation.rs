//! Evaluating every rule after a session: observing its metric, opening and resolving its events.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};

use capstats_aggregation_core::metrics::growth_percent;
use capstats_capacity_model::{
    AlertContext, AlertMetric, AlertObservation, AlertTransition, Comparison, Decimal, InstanceId,
    Period, alert_transitions,
};
use capstats_store::aggregates::{self, AggregateFilter, KeySelection};
use capstats_store::alerts::{
    self, EvaluationCounts, EvaluationMoment, EventKey, RuleFields, Sighting, StoredRule,
};
use capstats_store::{Connection, PgConnection};

use crate::ServiceError;
use crate::planning::{ForecastOptions, KeyForecast, forecasts, period_window};

/// The forecast horizon notifications quote, days (the API's default).
pub const NOTIFIED_HORIZON_DAYS: u32 = 30;

/// The forecasts the rules are evaluated with, made on `as_of`: notifications quote
/// [`NOTIFIED_HORIZON_DAYS`] ahead, or half the configured window when that is shorter. A
/// forecast is withheld past half the days it covers, and a withheld one has no fill date, so
/// with a window under 60 days a horizon of 30 would leave every `days_until_full` rule
/// unable to fire.
pub fn evaluation_options(
    settings: &capstats_settings::Settings,
    as_of: NaiveDate,
) -> ForecastOptions {
    let horizon_days = NOTIFIED_HORIZON_DAYS.min(settings.forecast_window_days / 2);
    ForecastOptions::new(settings, as_of, horizon_days)
}

/// What one rule observed of its keys, with the context each notification tells.
struct Observed {
    observations: Vec<AlertObservation<EventKey>>,
    contexts: BTreeMap<EventKey, AlertContext>,
}

fn key_of(instance: InstanceId, database: Option<String>) -> EventKey {
    (instance, database.unwrap_or_default())
}

/// The window of the last `periods` periods of `period_type` ending with the one containing
/// `end`, over the rule's instances and engines.
fn window_filter(rule: &RuleFields, end: NaiveDate, periods: u16) -> AggregateFilter {
    let (first, last) = period_window(rule.condition.period_type, end, periods);
    AggregateFilter {
        period_type: rule.condition.period_type,
        start: first.start(),
        end: last.start(),
        instance_ids: rule.scope.instance_ids.clone(),
        db_types: rule.scope.db_types.clone(),
        database_name: None,
    }
}

fn in_scope(rule: &RuleFields, key: &EventKey) -> bool {
    rule.scope.database_names.is_empty() || rule.scope.database_names.contains(&key.1)
}

fn forecast_context(context: &mut AlertContext, found: &KeyForecast, options: &ForecastOptions) {
    let forecast = &found.forecast;
    context.capacity_limit_mb = forecast.capacity_limit_mb;
    if forecast.published {
        context.projected_size_mb = forecast.projected_size_mb;
        context.horizon_days = Some(options.horizon_days);
        context.days_until_full = forecast.days_until_full;
    }
}

/// Every key of the rule's scope with the metric's value (or `None` when it cannot be told).
fn observe(
    connection: &mut PgConnection,
    rule: &RuleFields,
    options: &ForecastOptions,
) -> Result<Observed, ServiceError> {
    let today = options.as_of;
    let level = rule.level;
    let mut observations = Vec::new();
    let mut contexts = BTreeMap::new();
    match rule.condition.metric {
        AlertMetric::GrowthPercent | AlertMetric::SizeMb => {
            // Size: the latest period with an aggregate among the last three (today's period
            // may not be aggregated yet).
            let periods = match rule.condition.metric {
                AlertMetric::GrowthPercent => rule.condition.periods,
                _ => 3,
            };
            let filter = window_filter(rule, today, periods);
            for growth in aggregates::growth(connection, level, &filter)? {
                let key = key_of(growth.instance.id, growth.database_name.clone());
                if !in_scope(rule, &key) {
                    continue;
                }
                let percent = growth_percent(growth.first_size_mb, growth.last_size_mb);
                let value = match rule.condition.metric {
                    AlertMetric::GrowthPercent => percent,
                    _ => Some(Decimal::from(growth.last_size_mb)),
                };
                contexts.insert(
                    key.clone(),
                    AlertContext {
                        first_size_mb: Some(growth.first_size_mb),
                        last_size_mb: Some(growth.last_size_mb),
                        growth_mb: Some(growth.last_size_mb - growth.first_size_mb),
                        growth_percent: percent,
                        ..AlertContext::default()
                    },
                );
                observations.push(AlertObservation {
                    key,
                    value,
                    period: Some(growth.last_period),
                });
            }
        }
        AlertMetric::DaysUntilFull => {
            let filter = window_filter(rule, today, 1);
            let limited = KeySelection::WithCapacityLimit;
            for found in forecasts(connection, level, &filter, limited, options)? {
                let key = key_of(found.instance.id, found.database_name.clone());
                if !in_scope(rule, &key) {
                    continue;
                }
                // A key without a capacity limit never fills up: it is not watched (an open
                // event of it resolves once its limit is removed).
                if found.forecast.capacity_limit_mb.is_none() {
                    continue;
                }
                let mut context = AlertContext::default();
                forecast_context(&mut context, &found, options);
                let condition = &rule.condition;
                let value = match (context.days_until_full, found.forecast.published) {
                    (Some(days), _) => Some(Decimal::from(days)),
                    // Published, and the line does not reach the limit within the forecast's
                    // reach: known not to fill up soon, which trips no "below" rule.
                    (None, true) if condition.comparison == Comparison::Below => {
                        Some(condition.threshold + Decimal::ONE)
                    }
                    // Withheld (too little or too irregular history): unknown.
                    _ => None,
                };
                contexts.insert(key.clone(), context);
                observations.push(AlertObservation {
                    key,
                    value,
                    period: None,
                });
            }
        }
        AlertMetric::NoSamplesDays => {
            for (key, last_day) in alerts::last_sample_days(
                connection,
                level,
                &rule.scope.instance_ids,
                &rule.scope.db_types,
            )? {
                if !in_scope(rule, &key) {
                    continue;
                }
                let days = (today - last_day).num_days().max(0);
                contexts.insert(
                    key.clone(),
                    AlertContext {
                        last_sample_day: Some(last_day),
                        ..AlertContext::default()
                    },
                );
                observations.push(AlertObservation {
                    key,
                    value: Some(Decimal::from(days)),
                    period: None,
                });
            }
        }
    }
    // Deactivated and deleted instances are not watched: their open events resolve.
    let watched = alerts::watched_instance_ids(connection)?;
    observations.retain(|observation| watched.contains(&observation.key.0));
    Ok(Observed {
        observations,
        contexts,
    })
}

/// Adds the forecast to the context of `keys` (growth and size rules; the forecast rule has
/// its own, and a silent key has none worth telling).
fn add_forecasts(
    connection: &mut PgConnection,
    rule: &RuleFields,
    options: &ForecastOptions,
    keys: &[EventKey],
    contexts: &mut BTreeMap<EventKey, AlertContext>,
) -> Result<(), ServiceError> {
    if keys.is_empty()
        || matches!(
            rule.condition.metric,
            AlertMetric::DaysUntilFull | AlertMetric::NoSamplesDays
        )
    {
        return Ok(());
    }
    let mut instance_ids: Vec<_> = keys.iter().map(|key| key.0).collect();
    instance_ids.sort();
    instance_ids.dedup();
    let filter = AggregateFilter {
        instance_ids,
        ..window_filter(rule, options.as_of, 1)
    };
    for found in forecasts(
        connection,
        rule.level,
        &filter,
        KeySelection::Every,
        options,
    )? {
        let key = key_of(found.instance.id, found.database_name.clone());
        if let Some(context) = contexts.get_mut(&key) {
            forecast_context(context, &found, options);
        }
    }
    Ok(())
}

/// Evaluates every rule after session `session_id`, in one transaction: opens, updates and
/// resolves events and records one notification per channel of each opened or resolved
/// event. `None` when the session was already evaluated (its job delivered twice).
pub fn evaluate_after_session(
    connection: &mut PgConnection,
    session_id: i64,
    options: &ForecastOptions,
    now: DateTime<Utc>,
) -> Result<Option<EvaluationCounts>, ServiceError> {
    connection.transaction(|connection| {
        if !alerts::claim_evaluation(connection, session_id)? {
            return Ok(None);
        }
        let mut counts = EvaluationCounts::default();
        for rule in alerts::list_rules(connection)? {
            counts.rules += 1;
            // Each rule in a savepoint of its own: one that cannot be evaluated (its error
            // logged with the rule) does not keep the others from theirs.
            let evaluated = connection.transaction(|connection| {
                evaluate_rule(connection, &rule, session_id, options, now)
            });
            match evaluated {
                Ok(changes) => {
                    counts.opened += changes.opened;
                    counts.updated += changes.updated;
                    counts.resolved += changes.resolved;
                }
                Err(error) => {
                    counts.failed += 1;
                    tracing::error!(
                        rule_id = rule.id,
                        rule = %rule.fields.name,
                        session_id,
                        error = %capstats_store::error_chain(&error),
                        "the alert rule could not be evaluated"
                    );
                }
            }
        }
        alerts::finish_evaluation(connection, session_id, counts)?;
        Ok(Some(counts))
    })
}

/// Evaluates one rule: what it changes.
fn evaluate_rule(
    connection: &mut PgConnection,
    rule: &StoredRule,
    session_id: i64,
    options: &ForecastOptions,
    now: DateTime<Utc>,
) -> Result<EvaluationCounts, ServiceError> {
    let mut counts = EvaluationCounts::default();
    let Observed {
        observations,
        mut contexts,
    } = observe(connection, &rule.fields, options)?;
    let open = alerts::open_events(connection, rule.id)?;
    let open_keys: BTreeSet<EventKey> = open.keys().cloned().collect();
    let transitions = alert_transitions(&rule.fields.condition, &observations, &open_keys);
    let tripped: Vec<EventKey> = transitions
        .iter()
        .filter_map(|transition| match transition {
            AlertTransition::Open { key, .. } | AlertTransition::StillOpen { key, .. } => {
                Some(key.clone())
            }
            AlertTransition::Resolve { .. } => None,
        })
        .collect();
    add_forecasts(connection, &rule.fields, options, &tripped, &mut contexts)?;
    let moment = EvaluationMoment {
        session_id,
        at: now,
    };
    let sighting = |key: &EventKey, value: Decimal, period: Option<Period>| Sighting {
        value,
        period,
        detail: serde_json::to_value(contexts.get(key).cloned().unwrap_or_default())
            .expect("a context serializes"),
    };
    let mut seen_again = Vec::new();
    for transition in transitions {
        match transition {
            AlertTransition::Open { key, value, period } => {
                let id = alerts::open_event(
                    connection,
                    rule.id,
                    &key,
                    &sighting(&key, value, period),
                    moment,
                )?;
                alerts::queue_notifications(connection, id, "open", &rule.channels)?;
                counts.opened += 1;
            }
            AlertTransition::StillOpen { key, value, period } => {
                seen_again.push((open[&key], sighting(&key, value, period)));
                counts.updated += 1;
            }
            AlertTransition::Resolve { key } => {
                let id = open[&key];
                alerts::resolve_event(connection, id, moment)?;
                alerts::queue_notifications(connection, id, "resolved", &rule.channels)?;
                counts.resolved += 1;
            }
        }
    }
    alerts::see_events_again(connection, &seen_again, moment)?;
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_evaluated_at_a_horizon_their_forecasts_can_publish() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
        let mut settings = capstats_settings::Settings::default();
        assert_eq!(evaluation_options(&settings, day).horizon_days, 30);
        // A 40-day window publishes at most 20 days ahead.
        settings.forecast_window_days = 40;
        assert_eq!(evaluation_options(&settings, day).horizon_days, 20);
    }
}
