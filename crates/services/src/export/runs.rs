//! Exports of the runs: the sync sessions and one session's per-instance records.

use std::io::Write;

use serde::Serialize;

use capstats_store::PgConnection;
use capstats_store::sessions::{self, Session, SessionFilter, SessionRecord};

use super::check_row_count;
use super::csv_file::{CsvFile, instant, two_decimals};
use crate::ServiceError;

/// A row of the sessions file.
#[derive(Default, Serialize)]
pub(super) struct SessionRecordRow {
    id: i64,
    sync_category: &'static str,
    sync_type: &'static str,
    status: &'static str,
    triggered_by: String,
    total_instances: u64,
    successful_instances: u64,
    failed_instances: u64,
    cancelled_instances: u64,
    progress_percentage: Option<String>,
    error_message: Option<String>,
    worker_name: Option<String>,
    job_id: Option<String>,
    created_at: Option<String>,
    started_at: Option<String>,
    completed_at: Option<String>,
    parameters: String,
}

impl From<Session> for SessionRecordRow {
    fn from(session: Session) -> Self {
        Self {
            id: session.id,
            sync_category: session.sync_category.as_str(),
            sync_type: session.sync_type.as_str(),
            status: session.status.as_str(),
            triggered_by: session.triggered_by,
            total_instances: session.total_instances,
            successful_instances: session.successful_instances,
            failed_instances: session.failed_instances,
            cancelled_instances: session.cancelled_instances,
            progress_percentage: two_decimals(Some(session.progress_percentage)),
            error_message: session.error_message,
            worker_name: session.worker_name,
            job_id: session.job_id,
            created_at: instant(Some(session.created_at)),
            started_at: instant(session.started_at),
            completed_at: instant(session.completed_at),
            parameters: session.parameters.to_string(),
        }
    }
}

/// Writes every session matching `filter`, newest first; how many rows were written.
/// Refused past `maximum_rows`.
pub fn sessions(
    connection: &mut PgConnection,
    filter: &SessionFilter,
    maximum_rows: i64,
    output: impl Write,
) -> Result<u64, ServiceError> {
    check_row_count(sessions::count_sessions(connection, filter)?, maximum_rows)?;
    let mut file = CsvFile::new::<SessionRecordRow>(output)?;
    sessions::for_each_session(connection, filter, |session| {
        file.row(&SessionRecordRow::from(session))
    })?;
    file.finish()
}

/// A row of a session's records file.
#[derive(Default, Serialize)]
pub(super) struct InstanceRecordRow {
    session_id: i64,
    instance_id: i64,
    instance_name: String,
    status: &'static str,
    items_synced: i64,
    error_message: Option<String>,
    started_at: Option<String>,
    completed_at: Option<String>,
    detail: Option<String>,
}

/// Writes the per-instance records of session `session_id`, by instance; how many rows were
/// written. An unknown session is [`ServiceError::NotFound`].
pub fn session_records(
    connection: &mut PgConnection,
    session_id: i64,
    output: impl Write,
) -> Result<u64, ServiceError> {
    // Answers not found for an unknown id, as the session's JSON does.
    sessions::get_session(connection, session_id)?;
    let records: Vec<SessionRecord> = sessions::session_records(connection, session_id)?;
    let mut file = CsvFile::new::<InstanceRecordRow>(output)?;
    for record in records {
        let detail = record
            .detail
            .map(|detail| serde_json::to_string(&detail))
            .transpose()
            .map_err(|error| ServiceError::Output(error.into()))?;
        file.row(&InstanceRecordRow {
            session_id,
            instance_id: record.instance_id.0,
            instance_name: record.instance_name,
            status: record.status.as_str(),
            items_synced: record.items_synced,
            error_message: record.error_message,
            started_at: instant(record.started_at),
            completed_at: instant(record.completed_at),
            detail,
        })?;
    }
    file.finish()
}
