//! Delivering notifications: a job for each pending one, then one send to its channel per attempt.

use capstats_capacity_model::AggregationLevel;
use capstats_collectors::credentials::{Binding, CredentialKeys};
use capstats_notifications::{
    Destination, Notice, NoticeEvent, NoticeKey, NoticeRule, NoticeState, Sender,
};
use capstats_store::alerts::{self, ChannelRecord, PendingDelivery, StoredEvent};
use capstats_store::{Connection, ConnectionPool};

use crate::{JobQueue, ServiceError};

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
