//! Alert rules and their channels, sealed under the credential key and re-sealed when it rotates.

use capstats_capacity_model::{AlertChannel, AlertRuleSpec, ChannelKind};
use capstats_collectors::credentials::{Binding, CredentialKey, CredentialKeys};
use capstats_store::alerts::{self, ChannelRecord, RuleFields, StoredRule};
use capstats_store::{Connection, ConnectionPool, PgConnection};

use crate::ServiceError;

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
