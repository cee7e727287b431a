//! Reading events and their notifications for the API, and the last sample days the
//! evaluation of silence rules compares against.

use bigdecimal::BigDecimal;
use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Date, Nullable, Text};

use capstats_capacity_model::{
    AggregationLevel, AlertMetric, DbType, Decimal, InstanceId, Period, PeriodType, Severity,
};

use super::{EventKey, corrupt, to_decimal};
use crate::StoreError;
use crate::schema::{alert_channels, alert_notifications};

/// A stored event with what the API shows of it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Its id.
    pub id: i64,
    /// Its rule.
    pub rule_id: i64,
    /// The rule's name.
    pub rule_name: String,
    /// The rule's severity.
    pub severity: Severity,
    /// The rule's metric.
    pub metric: AlertMetric,
    /// The rule's level.
    pub level: AggregationLevel,
    /// The instance.
    pub instance_id: InstanceId,
    /// Its name, when it still exists.
    pub instance_name: Option<String>,
    /// Its engine, when it still exists.
    pub db_type: Option<DbType>,
    /// The database (database-level rules).
    pub database_name: Option<String>,
    /// `open` or `resolved`.
    pub state: String,
    /// The value that tripped the rule, as last seen.
    pub value: Decimal,
    /// Its period.
    pub period: Option<Period>,
    /// First seen.
    pub first_seen_at: DateTime<Utc>,
    /// Last seen.
    pub last_seen_at: DateTime<Utc>,
    /// When it resolved.
    pub resolved_at: Option<DateTime<Utc>>,
    /// What notifications tell besides the value.
    pub detail: serde_json::Value,
}

/// A notification as the API shows it with its event.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct NotificationStatus {
    /// Its id.
    pub id: i64,
    /// The channel's kind.
    pub channel_kind: String,
    /// The channel's displayable target, when it still exists.
    pub channel_target: Option<String>,
    /// The state change it tells of.
    pub event_state: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// Attempts so far.
    pub attempts: i32,
    /// The last attempt's error.
    pub last_error: Option<String>,
    /// When it was delivered.
    pub delivered_at: Option<DateTime<Utc>>,
}

#[derive(QueryableByName)]
struct EventRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    rule_id: i64,
    #[diesel(sql_type = Text)]
    rule_name: String,
    #[diesel(sql_type = Text)]
    severity: String,
    #[diesel(sql_type = Text)]
    metric: String,
    #[diesel(sql_type = Text)]
    level: String,
    #[diesel(sql_type = BigInt)]
    instance_id: i64,
    #[diesel(sql_type = Nullable<Text>)]
    instance_name: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    db_type: Option<String>,
    #[diesel(sql_type = Text)]
    database_name: String,
    #[diesel(sql_type = Text)]
    state: String,
    #[diesel(sql_type = diesel::sql_types::Numeric)]
    value: BigDecimal,
    #[diesel(sql_type = Nullable<Text>)]
    period_type: Option<String>,
    #[diesel(sql_type = Nullable<Date>)]
    period_start: Option<NaiveDate>,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    first_seen_at: DateTime<Utc>,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    last_seen_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<diesel::sql_types::Timestamptz>)]
    resolved_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = diesel::sql_types::Jsonb)]
    detail: serde_json::Value,
}

impl EventRow {
    fn into_event(self) -> Result<StoredEvent, StoreError> {
        let period = match (self.period_type, self.period_start) {
            (Some(period_type), Some(start)) => Some(
                Period::starting_on(period_type.parse::<PeriodType>().map_err(corrupt)?, start)
                    .map_err(corrupt)?,
            ),
            _ => None,
        };
        Ok(StoredEvent {
            id: self.id,
            rule_id: self.rule_id,
            rule_name: self.rule_name,
            severity: self.severity.parse().map_err(corrupt)?,
            metric: self.metric.parse().map_err(corrupt)?,
            level: self.level.parse().map_err(corrupt)?,
            instance_id: InstanceId(self.instance_id),
            instance_name: self.instance_name,
            db_type: self
                .db_type
                .map(|text| text.parse().map_err(corrupt))
                .transpose()?,
            database_name: (!self.database_name.is_empty()).then_some(self.database_name),
            state: self.state,
            value: to_decimal(&self.value)?,
            period,
            first_seen_at: self.first_seen_at,
            last_seen_at: self.last_seen_at,
            resolved_at: self.resolved_at,
            detail: self.detail,
        })
    }
}

const EVENT_COLUMNS: &str = "e.id, e.rule_id, r.name AS rule_name, r.severity, r.metric, r.level,
    e.instance_id, i.name AS instance_name, i.db_type, e.database_name, e.state, e.value,
    e.period_type, e.period_start, e.first_seen_at, e.last_seen_at, e.resolved_at, e.detail
    FROM alert_events e
    JOIN alert_rules r ON r.id = e.rule_id
    LEFT JOIN instances i ON i.id = e.instance_id";

/// Event `id`.
pub fn find_event(
    connection: &mut PgConnection,
    id: i64,
) -> Result<Option<StoredEvent>, StoreError> {
    diesel::sql_query(format!("SELECT {EVENT_COLUMNS} WHERE e.id = $1"))
        .bind::<BigInt, _>(id)
        .get_result::<EventRow>(connection)
        .optional()?
        .map(EventRow::into_event)
        .transpose()
}

/// Which events to list; absent fields do not narrow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// `open` or `resolved`.
    pub state: Option<String>,
    /// Of this rule.
    pub rule_id: Option<i64>,
    /// Of this instance.
    pub instance_id: Option<InstanceId>,
    /// Of rules of this severity.
    pub severity: Option<Severity>,
}

/// The events of `filter`, most recently seen first, with how many match in all.
pub fn list_events(
    connection: &mut PgConnection,
    filter: &EventFilter,
    limit: i64,
    offset: i64,
) -> Result<(Vec<StoredEvent>, i64), StoreError> {
    const CONDITION: &str = "($1::text IS NULL OR e.state = $1)
        AND ($2::bigint IS NULL OR e.rule_id = $2)
        AND ($3::bigint IS NULL OR e.instance_id = $3)
        AND ($4::text IS NULL OR r.severity = $4)";
    let state = filter.state.clone();
    let rule_id = filter.rule_id;
    let instance_id = filter.instance_id.map(|id| id.0);
    let severity = filter.severity.map(|severity| severity.as_str().to_owned());
    #[derive(QueryableByName)]
    struct Total {
        #[diesel(sql_type = BigInt)]
        total: i64,
    }
    let total = diesel::sql_query(format!(
        "SELECT count(*) AS total FROM alert_events e JOIN alert_rules r ON r.id = e.rule_id \
         WHERE {CONDITION}"
    ))
    .bind::<Nullable<Text>, _>(state.clone())
    .bind::<Nullable<BigInt>, _>(rule_id)
    .bind::<Nullable<BigInt>, _>(instance_id)
    .bind::<Nullable<Text>, _>(severity.clone())
    .get_result::<Total>(connection)?
    .total;
    let rows: Vec<EventRow> = diesel::sql_query(format!(
        "SELECT {EVENT_COLUMNS} WHERE {CONDITION} ORDER BY e.last_seen_at DESC, e.id DESC \
         LIMIT $5 OFFSET $6"
    ))
    .bind::<Nullable<Text>, _>(state)
    .bind::<Nullable<BigInt>, _>(rule_id)
    .bind::<Nullable<BigInt>, _>(instance_id)
    .bind::<Nullable<Text>, _>(severity)
    .bind::<BigInt, _>(limit)
    .bind::<BigInt, _>(offset)
    .load(connection)?;
    let events = rows
        .into_iter()
        .map(EventRow::into_event)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((events, total))
}

/// The notifications of events `event_ids`, by event, oldest first.
pub fn notifications_of(
    connection: &mut PgConnection,
    event_ids: &[i64],
) -> Result<Vec<(i64, NotificationStatus)>, StoreError> {
    Ok(alert_notifications::table
        .left_join(alert_channels::table)
        .filter(alert_notifications::event_id.eq_any(event_ids))
        .order((alert_notifications::event_id, alert_notifications::id))
        .select((
            alert_notifications::event_id,
            (
                alert_notifications::id,
                alert_notifications::channel_kind,
                alert_channels::display_target.nullable(),
                alert_notifications::event_state,
                alert_notifications::status,
                alert_notifications::attempts,
                alert_notifications::last_error,
                alert_notifications::delivered_at,
            ),
        ))
        .load::<(i64, NotificationStatus)>(connection)?)
}

/// The day of the last sample of every active key of `level` (instances: the latest day any
/// of its databases was seen; databases: their own), for the instances of `instance_ids` and
/// engines `db_types` (all when empty). An instance without any sample counts from the day it
/// was registered, so that a collector that never reported is not silent forever.
pub fn last_sample_days(
    connection: &mut PgConnection,
    level: AggregationLevel,
    instance_ids: &[InstanceId],
    db_types: &[DbType],
) -> Result<Vec<(EventKey, NaiveDate)>, StoreError> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        instance_id: i64,
        #[diesel(sql_type = Text)]
        database_name: String,
        #[diesel(sql_type = Date)]
        last_day: NaiveDate,
    }
    let sql = match level {
        AggregationLevel::Instance => {
            "SELECT i.id AS instance_id, '' AS database_name,
                    coalesce(max(d.last_seen_date), (i.created_at AT TIME ZONE 'UTC')::date) AS last_day
             FROM instances i
             LEFT JOIN instance_databases d ON d.instance_id = i.id
             WHERE i.is_active AND i.deleted_at IS NULL
               AND (cardinality($1::bigint[]) = 0 OR i.id = ANY($1))
               AND (cardinality($2::text[]) = 0 OR i.db_type = ANY($2))
             GROUP BY i.id
             ORDER BY i.id"
        }
        AggregationLevel::Database => {
            "SELECT i.id AS instance_id, d.database_name, d.last_seen_date AS last_day
             FROM instances i
             JOIN instance_databases d ON d.instance_id = i.id
             WHERE i.is_active AND i.deleted_at IS NULL AND d.is_active AND d.deleted_at IS NULL
               AND (cardinality($1::bigint[]) = 0 OR i.id = ANY($1))
               AND (cardinality($2::text[]) = 0 OR i.db_type = ANY($2))
             ORDER BY i.id, d.database_name"
        }
    };
    let rows: Vec<Row> = diesel::sql_query(sql)
        .bind::<diesel::sql_types::Array<BigInt>, _>(
            instance_ids.iter().map(|id| id.0).collect::<Vec<_>>(),
        )
        .bind::<diesel::sql_types::Array<Text>, _>(
            db_types
                .iter()
                .map(|db_type| db_type.as_str())
                .collect::<Vec<_>>(),
        )
        .load(connection)?;
    Ok(rows
        .into_iter()
        .map(|row| {
            (
                (InstanceId(row.instance_id), row.database_name),
                row.last_day,
            )
        })
        .collect())
}
