//! The audit trail: who signed in (or tried), who changed tokens, credentials and anything else
//! through the API, with which token, and how it ended.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::StoreError;
use crate::schema::audit_events;

/// How an audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It was carried out.
    Success,
    /// It failed or was refused for its input (wrong password, invalid body, conflict).
    Failure,
    /// The caller was not allowed to do it.
    Denied,
}

impl Outcome {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Denied => "denied",
        }
    }

    /// The outcome an HTTP status stands for.
    pub fn from_http_status(status: u16) -> Self {
        match status {
            200..=399 => Self::Success,
            401 | 403 => Self::Denied,
            _ => Self::Failure,
        }
    }
}

/// An event to record, and what a recorded one holds beside its id and time.
#[derive(Debug, Clone, Default, PartialEq, Insertable, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = audit_events)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct NewAuditEvent {
    /// What happened: `auth.login`, `auth.token.create`, `instance.update`, ….
    pub action: String,
    /// `success`, `failure` or `denied` (see [`Outcome::as_str`]).
    pub outcome: String,
    /// The acting user, when known.
    pub user_id: Option<i64>,
    /// The user's name, or the name a failed sign-in tried.
    pub username: Option<String>,
    /// The API token the request was made with.
    pub token_id: Option<i64>,
    /// The client's address as the API determined it.
    pub client_address: Option<String>,
    /// The request's `X-Request-ID`.
    pub request_id: Option<String>,
    /// The HTTP method.
    pub http_method: Option<String>,
    /// The route template (`/api/v1/instances/{id}`).
    pub http_route: Option<String>,
    /// The response status.
    pub http_status: Option<i32>,
    /// What was acted on (`instance 12`).
    pub target: Option<String>,
    /// Anything else worth keeping (never a secret).
    pub detail: serde_json::Value,
}

/// A recorded event.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = audit_events)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct AuditEvent {
    /// Its id (increasing).
    pub id: i64,
    /// When.
    pub occurred_at: DateTime<Utc>,
    /// What was recorded.
    #[diesel(embed)]
    #[serde(flatten)]
    pub event: NewAuditEvent,
}

/// Which events to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Actions starting with this text (`auth.` for every sign-in and token event).
    pub action_prefix: Option<String>,
    /// Events of this user name.
    pub username: Option<String>,
    /// Events of this outcome (`success`, `failure`, `denied`).
    pub outcome: Option<String>,
    /// Events at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Events before this time.
    pub until: Option<DateTime<Utc>>,
}

/// Records one event.
pub fn record(connection: &mut PgConnection, event: &NewAuditEvent) -> Result<(), StoreError> {
    diesel::insert_into(audit_events::table)
        .values(event)
        .execute(connection)?;
    Ok(())
}

fn filtered(filter: &AuditFilter) -> audit_events::BoxedQuery<'static, diesel::pg::Pg> {
    let mut query = audit_events::table.into_boxed();
    if let Some(prefix) = &filter.action_prefix {
        // LIKE wildcards in the prefix are matched literally.
        let escaped = prefix
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        query = query.filter(audit_events::action.like(format!("{escaped}%")));
    }
    if let Some(username) = &filter.username {
        query = query.filter(audit_events::username.eq(username.clone()));
    }
    if let Some(outcome) = &filter.outcome {
        query = query.filter(audit_events::outcome.eq(outcome.clone()));
    }
    if let Some(since) = filter.since {
        query = query.filter(audit_events::occurred_at.ge(since));
    }
    if let Some(until) = filter.until {
        query = query.filter(audit_events::occurred_at.lt(until));
    }
    query
}

/// One page of matching events, newest first, and the number of all matching events.
pub fn list(
    connection: &mut PgConnection,
    filter: &AuditFilter,
    offset: i64,
    limit: i64,
) -> Result<(Vec<AuditEvent>, i64), StoreError> {
    let total = filtered(filter).count().get_result(connection)?;
    let events = filtered(filter)
        .order((audit_events::occurred_at.desc(), audit_events::id.desc()))
        .offset(offset)
        .limit(limit)
        .select(AuditEvent::as_select())
        .load(connection)?;
    Ok((events, total))
}

/// Deletes events older than `before`; returns how many.
pub fn prune(connection: &mut PgConnection, before: DateTime<Utc>) -> Result<usize, StoreError> {
    Ok(
        diesel::delete(audit_events::table.filter(audit_events::occurred_at.lt(before)))
            .execute(connection)?,
    )
}
