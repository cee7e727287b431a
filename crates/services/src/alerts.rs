//! Alerts: managing rules (their channels sealed under the credential key), evaluating every
//! rule after a session (once per session, however often its job is delivered), and
//! delivering each change of an event's state to each channel of its rule (once per
//! idempotency key; a retry after a failure resends the same notification).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};

use capstats_aggregation_core::metrics::growth_percent;
use capstats_capacity_model::{
    AggregationLevel, AlertChannel, AlertContext, AlertMetric, AlertObservation, AlertRuleSpec,
    AlertTransition, ChannelKind, Comparison, Decimal, InstanceId, Period, alert_transitions,
};
use capstats_collectors::credentials::{Binding, CredentialKey, CredentialKeys};
use capstats_notifications::{
    Destination, Notice, NoticeEvent, NoticeKey, NoticeRule, NoticeState, Sender,
};
use capstats_store::aggregates::{self, AggregateFilter, KeySelection};
use capstats_store::alerts::{
    self, ChannelRecord, EvaluationCounts, EvaluationMoment, EventKey, PendingDelivery, RuleFields,
    Sighting, StoredEvent, StoredRule,
};
use capstats_store::{Connection, ConnectionPool, PgConnection};

use crate::planning::{ForecastOptions, KeyForecast, forecasts, period_window};
use crate::{JobQueue, ServiceError};

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

/// What may be shown of a channel's target: a mail address in full, a URL only as its scheme
/// and host (robot URLs carry their access token in the path or query).
pub fn display_target(channel: &AlertChannel) -> String {
    if channel.kind == ChannelKind::Email {
        return channel.target.clone();
    }
    match url::Url::parse(&channel.target) {
        Ok(url) => format!(
            "{}://{}{}/…",
            url.scheme(),
            url.host_str().unwrap_or(""),
            url.port()
                .map(|port| format!(":{port}"))
                .unwrap_or_default()
        ),
        Err(_) => "(not a URL)".into(),
    }
}

fn checked(spec: &AlertRuleSpec) -> Result<(), ServiceError> {
    match spec.problems().first() {
        None => Ok(()),
        Some(problem) => Err(ServiceError::InvalidRequest(format!(
            "{}: {}",
            problem.field, problem.message
        ))),
    }
}

fn fields_of(spec: &AlertRuleSpec) -> RuleFields {
    RuleFields {
        name: spec.name.trim().to_owned(),
        level: spec.level,
        condition: spec.condition.clone(),
        scope: spec.scope.clone(),
        severity: spec.severity,
    }
}

/// The channels of `spec`, each under a fresh id with its target and secret sealed bound to
/// that id.
fn sealed_channels(
    connection: &mut PgConnection,
    key: &CredentialKey,
    spec: &AlertRuleSpec,
) -> Result<Vec<ChannelRecord>, ServiceError> {
    let ids = alerts::reserve_channel_ids(connection, spec.channels.len())?;
    Ok(spec
        .channels
        .iter()
        .zip(ids)
        .map(|(channel, id)| ChannelRecord {
            id,
            kind: channel.kind,
            sealed_target: key.seal_for(Binding::AlertChannelTarget(id), &channel.target),
            display_target: display_target(channel),
            sealed_secret: channel
                .secret
                .as_deref()
                .map(|secret| key.seal_for(Binding::AlertChannelSecret(id), secret)),
        })
        .collect())
}

/// Stores a new rule, its channels sealed under `key`.
pub fn create_rule(
    connection: &mut PgConnection,
    key: &CredentialKey,
    spec: &AlertRuleSpec,
) -> Result<StoredRule, ServiceError> {
    checked(spec)?;
    let channels = sealed_channels(connection, key, spec)?;
    Ok(alerts::create_rule(
        connection,
        &fields_of(spec),
        &channels,
    )?)
}

/// Replaces rule `id` and its channels (the API never shows a channel's URL or secret, so a
/// replacement names them again). Its open events stay open and are evaluated by the new
/// condition after the next session.
pub fn replace_rule(
    connection: &mut PgConnection,
    key: &CredentialKey,
    id: i64,
    spec: &AlertRuleSpec,
) -> Result<StoredRule, ServiceError> {
    checked(spec)?;
    connection.transaction(|connection| {
        let channels = sealed_channels(connection, key, spec)?;
        alerts::replace_rule(connection, id, &fields_of(spec), &channels)?
            .ok_or_else(|| ServiceError::NotFound(format!("alert rule {id}")))
    })
}

/// Deletes rule `id` with its events and notifications.
pub fn delete_rule(connection: &mut PgConnection, id: i64) -> Result<(), ServiceError> {
    if alerts::delete_rule(connection, id)? {
        Ok(())
    } else {
        Err(ServiceError::NotFound(format!("alert rule {id}")))
    }
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

/// Enqueues a delivery job for every pending notification without one; how many it enqueued.
/// Each notification is claimed for its job before the job is pushed, so that concurrent
/// dispatches (evaluations, the sweeper, the command line) give it one job; a crash between
/// claim and push leaves a claim without a job, which the sweeper releases.
pub async fn dispatch_notifications(
    store: &ConnectionPool,
    queue: &dyn JobQueue,
) -> Result<usize, ServiceError> {
    let mut dispatched = 0;
    loop {
        let pending = capstats_store::run_blocking(store, |connection| {
            alerts::undispatched_notifications(connection, 100)
        })
        .await?;
        if pending.is_empty() {
            return Ok(dispatched);
        }
        for notification_id in pending {
            let job_id = crate::new_job_id();
            let claimed = capstats_store::run_blocking(store, {
                let job_id = job_id.clone();
                move |connection| alerts::claim_notification(connection, notification_id, &job_id)
            })
            .await?;
            if !claimed {
                continue;
            }
            let job = crate::payloads::Job::Alert(crate::payloads::AlertJob::Deliver {
                version: crate::payloads::PAYLOAD_VERSION,
                notification_id,
            });
            if let Err(failure) = queue.enqueue(&job, &job_id).await {
                // Given back, so that the next dispatch tries again; should this fail too,
                // the sweeper releases the claim.
                let _ = capstats_store::run_blocking(store, move |connection| {
                    alerts::unclaim_notification(connection, notification_id, &job_id)
                })
                .await;
                return Err(ServiceError::Queue(failure));
            }
            dispatched += 1;
        }
    }
}

/// How one delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Sent now.
    Sent,
    /// Nothing to do: already delivered or failed for good, being delivered by another
    /// attempt, or gone with its rule.
    Skipped(String),
    /// This attempt failed; the text is the error recorded on the notification.
    Failed {
        /// The error.
        error: String,
        /// Whether another attempt follows.
        retried: bool,
    },
}

/// Where notifications come from and link to.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// Opens the channels' sealed targets and secrets.
    pub keys: Option<CredentialKeys>,
    /// Sends.
    pub sender: Sender,
    /// The address of the capacity page, without a trailing slash.
    pub public_url: String,
    /// Attempts a notification gets.
    pub max_attempts: i32,
}

impl DeliverySettings {
    /// From the configuration: the collectors' keys open the channels, the SMTP server and
    /// the public address as configured, as many attempts as any job gets.
    pub fn from_settings(
        settings: &capstats_settings::Settings,
        keys: Option<CredentialKeys>,
    ) -> Result<Self, ServiceError> {
        let sender = Sender::new(&capstats_notifications::SenderSettings {
            timeout: std::time::Duration::from_secs(settings.notification_timeout_seconds),
            smtp_url: settings.smtp_url.clone(),
            smtp_from: settings.smtp_from.clone(),
        })?;
        Ok(Self {
            keys,
            sender,
            public_url: settings.public_url(),
            max_attempts: i32::try_from(settings.job_max_attempts).unwrap_or(i32::MAX),
        })
    }
}

/// The capacity page showing the event's key: its level, period type, instance and database.
pub fn capacity_link(
    public_url: &str,
    event: &StoredEvent,
    period_type: capstats_capacity_model::PeriodType,
) -> String {
    let mut url = format!(
        "{public_url}/capacity/{}?period_type={}&instance_id={}",
        match event.level {
            AggregationLevel::Instance => "instances",
            AggregationLevel::Database => "databases",
        },
        period_type,
        event.instance_id.0
    );
    if let Some(database) = &event.database_name {
        url.push_str("&database_name=");
        url.push_str(
            &url::form_urlencoded::byte_serialize(database.as_bytes()).collect::<String>(),
        );
    }
    url
}

/// The notice of a pending delivery.
pub fn notice_of(pending: &PendingDelivery, public_url: &str) -> Notice {
    let event = &pending.event;
    let rule = &pending.rule.fields;
    let condition = &rule.condition;
    Notice {
        idempotency_key: pending.idempotency_key.clone(),
        rule: NoticeRule {
            id: pending.rule.id,
            name: rule.name.clone(),
            severity: rule.severity,
            level: rule.level,
            metric: condition.metric,
            comparison: condition.comparison,
            threshold: condition.threshold,
            period_type: condition.period_type,
            periods: condition.periods,
        },
        key: NoticeKey {
            instance_id: event.instance_id.0,
            instance_name: event.instance_name.clone(),
            db_type: event.db_type,
            database_name: event.database_name.clone(),
        },
        event: NoticeEvent {
            id: event.id,
            state: if pending.event_state == "open" {
                NoticeState::Open
            } else {
                NoticeState::Resolved
            },
            value: event.value,
            period_type: event.period.map(|period| period.period_type()),
            period_start: event.period.map(|period| period.start()),
            period_end: event.period.map(|period| period.end()),
            first_seen_at: event.first_seen_at,
            last_seen_at: event.last_seen_at,
            resolved_at: event.resolved_at,
        },
        context: serde_json::from_value(event.detail.clone()).unwrap_or_default(),
        summary: String::new(),
        link: capacity_link(public_url, event, condition.period_type),
    }
    .summarized()
}

fn destination(
    keys: Option<&CredentialKeys>,
    channel: &ChannelRecord,
) -> Result<Destination, String> {
    let keys = keys.ok_or_else(|| {
        "CAPSTATS_CREDENTIAL_KEY is not set: the channel's target cannot be opened".to_owned()
    })?;
    let open = |binding: Binding, sealed: &[u8]| {
        keys.open_for(binding, sealed)
            .map_err(|error| format!("the channel's sealed values do not open: {error}"))
    };
    Ok(Destination {
        kind: channel.kind,
        target: open(
            Binding::AlertChannelTarget(channel.id),
            &channel.sealed_target,
        )?,
        secret: channel
            .sealed_secret
            .as_deref()
            .map(|sealed| open(Binding::AlertChannelSecret(channel.id), sealed))
            .transpose()?,
    })
}

/// An error as it may be recorded: control characters replaced, at most 1,000 characters.
fn recordable(error: &str) -> String {
    error
        .chars()
        .map(|character| {
            if character.is_control() {
                ' '
            } else {
                character
            }
        })
        .take(1000)
        .collect()
}

/// One delivery attempt of notification `notification_id`. The notification's row stays
/// locked while it is sent, so two workers holding a job for it (a dispatch repeated after a
/// crash) never send it twice at once; a delivered one is not sent again.
pub async fn deliver(
    store: &ConnectionPool,
    settings: &DeliverySettings,
    notification_id: i64,
) -> Result<Delivery, ServiceError> {
    let settings = settings.clone();
    let runtime = tokio::runtime::Handle::current();
    capstats_store::run_blocking(store, move |connection| {
        connection.transaction(|connection| {
            let Some(pending) = alerts::lock_notification(connection, notification_id)? else {
                return Ok(Delivery::Skipped(
                    "gone with its rule, or another attempt is delivering it".into(),
                ));
            };
            if pending.status != "pending" {
                return Ok(Delivery::Skipped(format!("already {}", pending.status)));
            }
            let Some(channel) = &pending.channel else {
                alerts::record_attempt(
                    connection,
                    notification_id,
                    Some("the rule no longer has this channel"),
                    false,
                )?;
                return Ok(Delivery::Skipped(
                    "the rule no longer has this channel".into(),
                ));
            };
            let notice = notice_of(&pending, &settings.public_url);
            let sent = match destination(settings.keys.as_ref(), channel) {
                Ok(destination) => runtime
                    .block_on(settings.sender.send(&destination, &notice))
                    .map_err(|error| error.to_string()),
                Err(error) => Err(error),
            };
            // What a receiver answered ends up in the error: no NUL (PostgreSQL text cannot
            // hold it, and the attempt would not be recorded) nor other control characters.
            let sent = sent.map_err(|error| recordable(&error));
            let retried = pending.attempts + 1 < settings.max_attempts;
            alerts::record_attempt(
                connection,
                notification_id,
                sent.as_ref().err().map(String::as_str),
                retried,
            )?;
            Ok::<_, ServiceError>(match sent {
                Ok(()) => Delivery::Sent,
                Err(error) => Delivery::Failed { error, retried },
            })
        })
    })
    .await
}

/// Re-seals the channels of every rule not yet sealed under `keys`' current key; how many it
/// looked at, re-sealed and could not open.
pub async fn rotate_channel_key(
    store: &ConnectionPool,
    keys: &CredentialKeys,
    batch_size: i64,
) -> Result<(u64, u64, Vec<(i64, String)>), ServiceError> {
    let (mut examined, mut resealed, mut failed) = (0, 0, Vec::new());
    let mut after = 0;
    loop {
        let batch = capstats_store::run_blocking(store, move |connection| {
            alerts::channels_after(connection, after, batch_size.max(1))
        })
        .await?;
        let Some(last) = batch.last() else {
            return Ok((examined, resealed, failed));
        };
        after = last.id;
        let mut replacements = Vec::new();
        for channel in batch {
            examined += 1;
            let target = keys.reseal(
                Binding::AlertChannelTarget(channel.id),
                &channel.sealed_target,
            );
            let secret = channel
                .sealed_secret
                .as_deref()
                .map(|sealed| keys.reseal(Binding::AlertChannelSecret(channel.id), sealed))
                .transpose();
            match (target, secret) {
                (Ok(None), Ok(None | Some(None))) => {}
                (Ok(target), Ok(secret)) => {
                    let new_target = target.unwrap_or_else(|| channel.sealed_target.clone());
                    let new_secret = match secret {
                        Some(Some(resealed)) => Some(resealed),
                        _ => channel.sealed_secret.clone(),
                    };
                    replacements.push((channel, new_target, new_secret));
                }
                (Err(error), _) | (_, Err(error)) => failed.push((channel.id, error.to_string())),
            }
        }
        resealed += capstats_store::run_blocking(store, move |connection| {
            let mut replaced = 0;
            for (channel, target, secret) in &replacements {
                if alerts::replace_sealed_channel(connection, channel, target, secret.as_deref())? {
                    replaced += 1;
                }
            }
            Ok::<_, capstats_store::StoreError>(replaced)
        })
        .await?;
    }
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
