//! Ending a session: a requested cancellation, a run finished from its records or failed as
//! a whole, and the final status stored.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use capstats_sync_session::{RecordStatus, SessionStatus, roll_up};

use super::{names, refresh_counters, session_status};
use crate::StoreError;
use crate::schema::{sync_instance_records, sync_sessions};

/// Asks a session to stop and returns its status afterwards: a pending session is cancelled
/// at once with all its records; a running one stops between chunks.
pub fn request_cancel(
    connection: &mut PgConnection,
    session_id: i64,
) -> Result<SessionStatus, StoreError> {
    connection.transaction(|connection| {
        let status = session_status(connection, session_id)?;
        if status.is_terminal() {
            return Ok(status);
        }
        diesel::update(sync_sessions::table.find(session_id))
            .filter(sync_sessions::cancel_requested_at.is_null())
            .set(sync_sessions::cancel_requested_at.eq(diesel::dsl::now))
            .execute(connection)?;
        if status == SessionStatus::Pending {
            // Nothing ran: the session is cancelled whatever its records say.
            finalize(
                connection,
                session_id,
                true,
                Some((SessionStatus::Cancelled, None)),
            )
        } else {
            Ok(status)
        }
    })
}

/// Whether a cancellation has been requested.
pub fn cancel_requested(
    connection: &mut PgConnection,
    session_id: i64,
) -> Result<bool, StoreError> {
    let requested: Option<Option<DateTime<Utc>>> = sync_sessions::table
        .find(session_id)
        .select(sync_sessions::cancel_requested_at)
        .first(connection)
        .optional()?;
    Ok(requested
        .ok_or_else(|| StoreError::NotFound(format!("sync session {session_id}")))?
        .is_some())
}

/// Ends a running session whose records are not in progress (refused otherwise): when a
/// cancellation was requested, records not started become `cancelled`; the records roll up into the final status (see `capstats_sync_session::roll_up`),
/// which is stored and returned.
pub fn finish_session(
    connection: &mut PgConnection,
    session_id: i64,
) -> Result<SessionStatus, StoreError> {
    connection.transaction(|connection| {
        let status = session_status(connection, session_id)?;
        if status != SessionStatus::Running {
            return Err(capstats_sync_session::TransitionError::SessionNotRunning(status).into());
        }
        // A record still in progress must be completed or failed by its worker first.
        let counters = refresh_counters(connection, session_id)?;
        if counters.running > 0 {
            return Err(capstats_sync_session::TransitionError::RecordsStillOpen {
                open: counters.open(),
            }
            .into());
        }
        let cancel = cancel_requested(connection, session_id)?;
        finalize(connection, session_id, cancel, None)
    })
}

/// Closes a session whose run cannot continue (its worker died, its job failed before any
/// record started): open records fail with `reason`, and the session becomes `failed` with
/// it as the error message.
pub fn fail_session(
    connection: &mut PgConnection,
    session_id: i64,
    reason: &str,
) -> Result<(), StoreError> {
    connection.transaction(|connection| {
        let status = session_status(connection, session_id)?;
        if !status.can_become(SessionStatus::Failed) {
            return Err(capstats_sync_session::TransitionError::Session {
                from: status,
                to: SessionStatus::Failed,
            }
            .into());
        }
        diesel::update(sync_instance_records::table)
            .filter(sync_instance_records::session_id.eq(session_id))
            .filter(sync_instance_records::status.eq_any(names(
                RecordStatus::predecessors(RecordStatus::Failed),
                RecordStatus::as_str,
            )))
            .set((
                sync_instance_records::status.eq(RecordStatus::Failed.as_str()),
                sync_instance_records::error_message.eq(reason),
                sync_instance_records::completed_at.eq(diesel::dsl::now),
                sync_instance_records::updated_at.eq(diesel::dsl::now),
            ))
            .execute(connection)?;
        finalize(
            connection,
            session_id,
            false,
            Some((SessionStatus::Failed, Some(reason))),
        )
        .map(drop)
    })
}

/// Moves open records as the ending requires and stores the session's final status: `forced`
/// (with an error message) when given, else the roll-up of the records.
fn finalize(
    connection: &mut PgConnection,
    session_id: i64,
    cancel: bool,
    forced: Option<(SessionStatus, Option<&str>)>,
) -> Result<SessionStatus, StoreError> {
    if cancel {
        diesel::update(sync_instance_records::table)
            .filter(sync_instance_records::session_id.eq(session_id))
            .filter(sync_instance_records::status.eq_any(names(
                RecordStatus::predecessors(RecordStatus::Cancelled),
                RecordStatus::as_str,
            )))
            .set((
                sync_instance_records::status.eq(RecordStatus::Cancelled.as_str()),
                sync_instance_records::completed_at.eq(diesel::dsl::now),
                sync_instance_records::updated_at.eq(diesel::dsl::now),
            ))
            .execute(connection)?;
    }
    let counters = refresh_counters(connection, session_id)?;
    let (target, message) = match forced {
        Some((status, message)) => (status, message),
        None => (roll_up(&counters, cancel)?, None),
    };
    diesel::update(sync_sessions::table.find(session_id))
        .set((
            sync_sessions::status.eq(target.as_str()),
            sync_sessions::error_message.eq(message),
            sync_sessions::completed_at.eq(diesel::dsl::now),
            sync_sessions::updated_at.eq(diesel::dsl::now),
        ))
        .execute(connection)?;
    Ok(target)
}
