//! Reading sessions and their records: one, the latest, a filtered page, and the open run an
//! equal request should wait for.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use capstats_capacity_model::InstanceId;

use super::*;
use crate::StoreError;
use crate::schema::{sync_instance_records, sync_sessions};

#[derive(Queryable, Selectable)]
#[diesel(table_name = sync_sessions)]
#[diesel(check_for_backend(diesel::pg::Pg))]
struct SessionRow {
    id: i64,
    sync_category: String,
    sync_type: String,
    status: String,
    triggered_by: String,
    requested_by_token_id: Option<i64>,
    parameters: serde_json::Value,
    total_instances: i64,
    successful_instances: i64,
    failed_instances: i64,
    cancelled_instances: i64,
    progress_percentage: bigdecimal::BigDecimal,
    error_message: Option<String>,
    worker_name: Option<String>,
    job_id: Option<String>,
    heartbeat_at: Option<DateTime<Utc>>,
    cancel_requested_at: Option<DateTime<Utc>>,
    started_at: Option<DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

impl TryFrom<SessionRow> for Session {
    type Error = StoreError;

    fn try_from(row: SessionRow) -> Result<Self, StoreError> {
        let count = |value: i64| u64::try_from(value).unwrap_or_default();
        Ok(Session {
            id: row.id,
            sync_category: row.sync_category.parse().map_err(corrupt)?,
            sync_type: row.sync_type.parse().map_err(corrupt)?,
            status: row.status.parse().map_err(corrupt)?,
            triggered_by: row.triggered_by,
            requested_by_token_id: row.requested_by_token_id,
            parameters: row.parameters,
            total_instances: count(row.total_instances),
            successful_instances: count(row.successful_instances),
            failed_instances: count(row.failed_instances),
            cancelled_instances: count(row.cancelled_instances),
            progress_percentage: row
                .progress_percentage
                .to_string()
                .parse()
                .map_err(corrupt)?,
            error_message: row.error_message,
            worker_name: row.worker_name,
            job_id: row.job_id,
            heartbeat_at: row.heartbeat_at,
            cancel_requested_at: row.cancel_requested_at,
            started_at: row.started_at,
            completed_at: row.completed_at,
            created_at: row.created_at,
        })
    }
}

/// One session.
pub fn get_session(connection: &mut PgConnection, session_id: i64) -> Result<Session, StoreError> {
    sync_sessions::table
        .find(session_id)
        .select(SessionRow::as_select())
        .first(connection)
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("sync session {session_id}")))?
        .try_into()
}

/// The most recent sessions, newest first.
pub fn list_sessions(
    connection: &mut PgConnection,
    limit: i64,
    offset: i64,
) -> Result<Vec<Session>, StoreError> {
    sync_sessions::table
        .order(sync_sessions::id.desc())
        .limit(limit)
        .offset(offset)
        .select(SessionRow::as_select())
        .load(connection)?
        .into_iter()
        .map(Session::try_from)
        .collect()
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = sync_instance_records)]
#[diesel(check_for_backend(diesel::pg::Pg))]
struct RecordRow {
    instance_id: i64,
    instance_name: String,
    status: String,
    items_synced: i64,
    error_message: Option<String>,
    detail: Option<serde_json::Value>,
    started_at: Option<DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
}

/// The records of a session, ordered by instance id.
pub fn session_records(
    connection: &mut PgConnection,
    session_id: i64,
) -> Result<Vec<SessionRecord>, StoreError> {
    sync_instance_records::table
        .filter(sync_instance_records::session_id.eq(session_id))
        .order(sync_instance_records::instance_id)
        .select(RecordRow::as_select())
        .load(connection)?
        .into_iter()
        .map(|row| {
            Ok(SessionRecord {
                instance_id: InstanceId(row.instance_id),
                instance_name: row.instance_name,
                status: row.status.parse().map_err(corrupt)?,
                items_synced: row.items_synced,
                error_message: row.error_message,
                detail: row
                    .detail
                    .map(serde_json::from_value)
                    .transpose()
                    .map_err(corrupt)?,
                started_at: row.started_at,
                completed_at: row.completed_at,
            })
        })
        .collect()
}

/// The newest pending or running aggregation session whose parameters have `work` as their
/// `work`, with its job id: the run an equal request should wait for instead of starting
/// another. Only a look: to create a session unless there is one, atomically, see
/// [`super::create_session_unless_open`].
pub fn open_session_with_work(
    connection: &mut PgConnection,
    work: &serde_json::Value,
) -> Result<Option<(i64, Option<String>)>, StoreError> {
    #[derive(QueryableByName)]
    struct Found {
        #[diesel(sql_type = BigInt)]
        id: i64,
        #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
        job_id: Option<String>,
    }
    let found: Option<Found> = diesel::sql_query(
        "SELECT id, job_id FROM sync_sessions
         WHERE sync_category = 'aggregation' AND status IN ('pending', 'running')
           AND parameters -> 'work' = $1
         ORDER BY id DESC LIMIT 1",
    )
    .bind::<diesel::sql_types::Jsonb, _>(work)
    .get_result(connection)
    .optional()?;
    Ok(found.map(|found| (found.id, found.job_id)))
}

/// Which sessions a list shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionFilter {
    /// Only these statuses.
    pub statuses: Vec<SessionStatus>,
    /// Only this category.
    pub sync_category: Option<SyncCategory>,
    /// Only this type.
    pub sync_type: Option<SyncType>,
}

/// One page of sessions, newest first, and how many match.
pub fn list_sessions_page(
    connection: &mut PgConnection,
    filter: &SessionFilter,
    page: i64,
    limit: i64,
) -> Result<(Vec<Session>, i64), StoreError> {
    let total = count_sessions(connection, filter)?;
    let sessions = filtered_sessions(filter)
        .order(sync_sessions::id.desc())
        .limit(limit)
        .offset((page.max(1) - 1) * limit)
        .select(SessionRow::as_select())
        .load(connection)?
        .into_iter()
        .map(Session::try_from)
        .collect::<Result<_, _>>()?;
    Ok((sessions, total))
}

/// How many sessions match `filter`.
pub fn count_sessions(
    connection: &mut PgConnection,
    filter: &SessionFilter,
) -> Result<i64, StoreError> {
    Ok(filtered_sessions(filter).count().get_result(connection)?)
}

/// Hands every session matching `filter` to `each`, newest first as
/// [`list_sessions_page`] orders them, one row in memory at a time (libpq's row-by-row mode).
pub fn for_each_session<E: From<StoreError>>(
    connection: &mut PgConnection,
    filter: &SessionFilter,
    mut each: impl FnMut(Session) -> Result<(), E>,
) -> Result<(), E> {
    let rows = filtered_sessions(filter)
        .order(sync_sessions::id.desc())
        .select(SessionRow::as_select())
        .load_iter::<SessionRow, diesel::pg::PgRowByRowLoadingMode>(connection)
        .map_err(StoreError::from)?;
    for row in rows {
        each(Session::try_from(row.map_err(StoreError::from)?)?)?;
    }
    Ok(())
}

/// The sessions matching `filter`, as a query to order, page or count.
fn filtered_sessions(filter: &SessionFilter) -> sync_sessions::BoxedQuery<'static, diesel::pg::Pg> {
    let mut query = sync_sessions::table.into_boxed();
    if !filter.statuses.is_empty() {
        let statuses: Vec<&'static str> = filter
            .statuses
            .iter()
            .map(|status| status.as_str())
            .collect();
        query = query.filter(sync_sessions::status.eq_any(statuses));
    }
    if let Some(category) = filter.sync_category {
        query = query.filter(sync_sessions::sync_category.eq(category.as_str()));
    }
    if let Some(sync_type) = filter.sync_type {
        query = query.filter(sync_sessions::sync_type.eq(sync_type.as_str()));
    }
    query
}
