//! Alert rules and their channels, whose targets and secrets are stored sealed.

use bigdecimal::BigDecimal;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::BigInt;

use capstats_capacity_model::{
    AggregationLevel, AlertCondition, AlertMetric, AlertScope, ChannelKind, Comparison, DbType,
    InstanceId, Severity,
};

use super::{corrupt, to_big_decimal, to_decimal};
use crate::StoreError;
use crate::schema::{alert_channels, alert_rules};

/// A rule as it is written: everything but its channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleFields {
    /// Unique name.
    pub name: String,
    /// Instances or databases.
    pub level: AggregationLevel,
    /// When it fires.
    pub condition: AlertCondition,
    /// Which keys it watches.
    pub scope: AlertScope,
    /// How urgent its events are.
    pub severity: Severity,
}

/// A channel as it is written: its id (reserved with [`reserve_channel_ids`], or the id of
/// the channel it keeps) and its sealed target and secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelRecord {
    /// Its id.
    pub id: i64,
    /// Its kind.
    pub kind: ChannelKind,
    /// The URL or address, sealed.
    pub sealed_target: Vec<u8>,
    /// What may be shown of the target.
    pub display_target: String,
    /// The secret, sealed.
    pub sealed_secret: Option<Vec<u8>>,
}

/// A stored rule with its channels, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRule {
    /// Its id.
    pub id: i64,
    /// Its fields.
    pub fields: RuleFields,
    /// Its channels, in order.
    pub channels: Vec<ChannelRecord>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last replaced.
    pub updated_at: DateTime<Utc>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = alert_rules)]
#[diesel(check_for_backend(diesel::pg::Pg))]
struct RuleRow {
    id: i64,
    name: String,
    level: String,
    metric: String,
    comparison: String,
    threshold: BigDecimal,
    period_type: String,
    periods: i32,
    scope_db_types: Vec<Option<String>>,
    scope_instance_ids: Vec<Option<i64>>,
    scope_database_names: Vec<Option<String>>,
    severity: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = alert_channels)]
#[diesel(check_for_backend(diesel::pg::Pg))]
struct ChannelRow {
    id: i64,
    rule_id: i64,
    kind: String,
    sealed_target: Vec<u8>,
    display_target: String,
    sealed_secret: Option<Vec<u8>>,
}

impl RuleRow {
    fn into_rule(self, channels: Vec<ChannelRecord>) -> Result<StoredRule, StoreError> {
        let db_types = self
            .scope_db_types
            .into_iter()
            .flatten()
            .map(|text| text.parse::<DbType>().map_err(corrupt))
            .collect::<Result<_, _>>()?;
        Ok(StoredRule {
            id: self.id,
            fields: RuleFields {
                name: self.name,
                level: self.level.parse().map_err(corrupt)?,
                condition: AlertCondition {
                    metric: self.metric.parse::<AlertMetric>().map_err(corrupt)?,
                    comparison: self.comparison.parse::<Comparison>().map_err(corrupt)?,
                    threshold: to_decimal(&self.threshold)?,
                    period_type: self.period_type.parse().map_err(corrupt)?,
                    periods: u16::try_from(self.periods).map_err(corrupt)?,
                },
                scope: AlertScope {
                    db_types,
                    instance_ids: self
                        .scope_instance_ids
                        .into_iter()
                        .flatten()
                        .map(InstanceId)
                        .collect(),
                    database_names: self.scope_database_names.into_iter().flatten().collect(),
                },
                severity: self.severity.parse().map_err(corrupt)?,
            },
            channels,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

impl ChannelRow {
    fn into_record(self) -> Result<ChannelRecord, StoreError> {
        Ok(ChannelRecord {
            id: self.id,
            kind: self.kind.parse().map_err(corrupt)?,
            sealed_target: self.sealed_target,
            display_target: self.display_target,
            sealed_secret: self.sealed_secret,
        })
    }
}

/// `count` fresh channel ids, so that a channel's values can be sealed bound to its id before
/// the row is written.
pub fn reserve_channel_ids(
    connection: &mut PgConnection,
    count: usize,
) -> Result<Vec<i64>, StoreError> {
    #[derive(QueryableByName)]
    struct Reserved {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let reserved: Vec<Reserved> = diesel::sql_query(
        "SELECT nextval('alert_channels_id_seq') AS id FROM generate_series(1, $1)",
    )
    .bind::<BigInt, _>(i64::try_from(count).unwrap_or(0))
    .load(connection)?;
    Ok(reserved.into_iter().map(|row| row.id).collect())
}

/// The columns of a rule as written.
#[derive(Insertable, AsChangeset)]
#[diesel(table_name = alert_rules)]
struct RuleRecord<'a> {
    name: &'a str,
    level: &'static str,
    metric: &'static str,
    comparison: &'static str,
    threshold: BigDecimal,
    period_type: &'static str,
    periods: i32,
    scope_db_types: Vec<Option<String>>,
    scope_instance_ids: Vec<Option<i64>>,
    scope_database_names: Vec<Option<String>>,
    severity: &'static str,
}

fn rule_values(fields: &RuleFields) -> RuleRecord<'_> {
    let condition = &fields.condition;
    let scope = &fields.scope;
    RuleRecord {
        name: &fields.name,
        level: fields.level.as_str(),
        metric: condition.metric.as_str(),
        comparison: condition.comparison.as_str(),
        threshold: to_big_decimal(condition.threshold),
        period_type: condition.period_type.as_str(),
        periods: i32::from(condition.periods),
        scope_db_types: scope
            .db_types
            .iter()
            .map(|db_type| Some(db_type.as_str().to_owned()))
            .collect(),
        scope_instance_ids: scope.instance_ids.iter().map(|id| Some(id.0)).collect(),
        scope_database_names: scope.database_names.iter().cloned().map(Some).collect(),
        severity: fields.severity.as_str(),
    }
}

fn name_taken(error: StoreError, name: &str) -> StoreError {
    if error.is_unique_violation() {
        StoreError::Conflict(format!("an alert rule named `{name}` already exists"))
    } else {
        error
    }
}

fn write_channels(
    connection: &mut PgConnection,
    rule_id: i64,
    channels: &[ChannelRecord],
) -> Result<(), StoreError> {
    for (position, channel) in channels.iter().enumerate() {
        diesel::insert_into(alert_channels::table)
            .values((
                alert_channels::id.eq(channel.id),
                alert_channels::rule_id.eq(rule_id),
                alert_channels::position.eq(i32::try_from(position).unwrap_or(i32::MAX)),
                alert_channels::kind.eq(channel.kind.as_str()),
                alert_channels::sealed_target.eq(&channel.sealed_target),
                alert_channels::display_target.eq(&channel.display_target),
                alert_channels::sealed_secret.eq(&channel.sealed_secret),
            ))
            .execute(connection)?;
    }
    Ok(())
}

/// Stores a new rule with its channels; a taken name is a conflict.
pub fn create_rule(
    connection: &mut PgConnection,
    fields: &RuleFields,
    channels: &[ChannelRecord],
) -> Result<StoredRule, StoreError> {
    connection.transaction(|connection| {
        let id: i64 = diesel::insert_into(alert_rules::table)
            .values(rule_values(fields))
            .returning(alert_rules::id)
            .get_result(connection)
            .map_err(|error| name_taken(error.into(), &fields.name))?;
        write_channels(connection, id, channels)?;
        find_rule(connection, id)?.ok_or_else(|| StoreError::NotFound(format!("alert rule {id}")))
    })
}

/// Replaces rule `id` and its channels (channels it no longer lists are deleted; their past
/// notifications stay, without a channel). `None` when there is no such rule.
pub fn replace_rule(
    connection: &mut PgConnection,
    id: i64,
    fields: &RuleFields,
    channels: &[ChannelRecord],
) -> Result<Option<StoredRule>, StoreError> {
    connection.transaction(|connection| {
        let updated = diesel::update(alert_rules::table.find(id))
            .set((
                rule_values(fields),
                alert_rules::updated_at.eq(diesel::dsl::now),
            ))
            .execute(connection)
            .map_err(|error| name_taken(error.into(), &fields.name))?;
        if updated == 0 {
            return Ok(None);
        }
        diesel::delete(alert_channels::table.filter(alert_channels::rule_id.eq(id)))
            .execute(connection)?;
        write_channels(connection, id, channels)?;
        find_rule(connection, id)
    })
}

/// Deletes rule `id` with its channels, events and notifications; whether it existed.
pub fn delete_rule(connection: &mut PgConnection, id: i64) -> Result<bool, StoreError> {
    Ok(diesel::delete(alert_rules::table.find(id)).execute(connection)? > 0)
}

fn channels_of(
    connection: &mut PgConnection,
    rule_ids: &[i64],
) -> Result<Vec<(i64, ChannelRecord)>, StoreError> {
    alert_channels::table
        .filter(alert_channels::rule_id.eq_any(rule_ids))
        .order((alert_channels::rule_id, alert_channels::position))
        .select(ChannelRow::as_select())
        .load(connection)?
        .into_iter()
        .map(|row| Ok((row.rule_id, row.into_record()?)))
        .collect()
}

/// Every rule with its channels, by id.
pub fn list_rules(connection: &mut PgConnection) -> Result<Vec<StoredRule>, StoreError> {
    let rows: Vec<RuleRow> = alert_rules::table
        .order(alert_rules::id)
        .select(RuleRow::as_select())
        .load(connection)?;
    let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
    let mut channels = channels_of(connection, &ids)?.into_iter().peekable();
    rows.into_iter()
        .map(|row| {
            let mut own = Vec::new();
            while let Some((_, channel)) = channels.next_if(|(rule_id, _)| *rule_id == row.id) {
                own.push(channel);
            }
            row.into_rule(own)
        })
        .collect()
}

/// Rule `id` with its channels.
pub fn find_rule(connection: &mut PgConnection, id: i64) -> Result<Option<StoredRule>, StoreError> {
    let Some(row) = alert_rules::table
        .find(id)
        .select(RuleRow::as_select())
        .first(connection)
        .optional()?
    else {
        return Ok(None);
    };
    let channels = channels_of(connection, &[id])?
        .into_iter()
        .map(|(_, channel)| channel)
        .collect();
    row.into_rule(channels).map(Some)
}

/// Every stored channel with an id above `after`, `limit` of them, by id (key rotation).
pub fn channels_after(
    connection: &mut PgConnection,
    after: i64,
    limit: i64,
) -> Result<Vec<ChannelRecord>, StoreError> {
    alert_channels::table
        .filter(alert_channels::id.gt(after))
        .order(alert_channels::id)
        .limit(limit)
        .select(ChannelRow::as_select())
        .load(connection)?
        .into_iter()
        .map(ChannelRow::into_record)
        .collect()
}

/// Replaces a channel's sealed values if they are still `current` (key rotation); whether
/// it did.
pub fn replace_sealed_channel(
    connection: &mut PgConnection,
    current: &ChannelRecord,
    sealed_target: &[u8],
    sealed_secret: Option<&[u8]>,
) -> Result<bool, StoreError> {
    let query = diesel::update(
        alert_channels::table
            .filter(alert_channels::id.eq(current.id))
            .filter(alert_channels::sealed_target.eq(&current.sealed_target)),
    );
    let updated = match &current.sealed_secret {
        Some(secret) => query
            .filter(alert_channels::sealed_secret.eq(secret))
            .set((
                alert_channels::sealed_target.eq(sealed_target),
                alert_channels::sealed_secret.eq(sealed_secret),
            ))
            .execute(connection)?,
        None => query
            .filter(alert_channels::sealed_secret.is_null())
            .set((
                alert_channels::sealed_target.eq(sealed_target),
                alert_channels::sealed_secret.eq(sealed_secret),
            ))
            .execute(connection)?,
    };
    Ok(updated > 0)
}
