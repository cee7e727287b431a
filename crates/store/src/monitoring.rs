//! Numbers for monitoring (the API's `/metrics`), read from the database so that every process
//! reports the same state whichever process did the work.

use diesel::prelude::*;
use diesel::sql_types::{Double, Text};

use crate::StoreError;

/// One labelled number.
#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub struct Labelled {
    /// First label.
    #[diesel(sql_type = Text)]
    pub first: String,
    /// Second label (empty when unused).
    #[diesel(sql_type = Text)]
    pub second: String,
    /// Third label (empty when unused).
    #[diesel(sql_type = Text)]
    pub third: String,
    /// The value.
    #[diesel(sql_type = Double)]
    pub value: f64,
}

/// The state of runs, jobs and ticks.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    /// Sessions of the last 24 hours: category, type, status → count.
    pub sessions: Vec<Labelled>,
    /// Duration in seconds of the last finished run: category, type → seconds.
    pub last_run_seconds: Vec<Labelled>,
    /// When the last completed run ended: category, type → Unix time in seconds.
    pub last_completed_at: Vec<Labelled>,
    /// When the last completed run of each schedule's ticks ended: schedule → Unix time in
    /// seconds. Unlike `last_completed_at`, a stale refresh (also a scheduled aggregation)
    /// never stands in for a missing nightly run.
    pub schedule_last_completed_at: Vec<Labelled>,
    /// How long the oldest stale period has waited for its refresh, in seconds (0 without
    /// one): one unlabelled row.
    pub oldest_stale_seconds: Vec<Labelled>,
    /// Rows written by runs of the last 24 hours: category → rows.
    pub rows_written: Vec<Labelled>,
    /// Jobs in the job store: queue, status → count.
    pub jobs: Vec<Labelled>,
    /// Attempts beyond the first: queue → count.
    pub retries: Vec<Labelled>,
    /// Ticks of the last 24 hours: schedule, status → count.
    pub ticks: Vec<Labelled>,
}

/// Reads a [`Snapshot`].
pub fn snapshot(connection: &mut PgConnection) -> Result<Snapshot, StoreError> {
    let load = |connection: &mut PgConnection, sql: &str| -> Result<Vec<Labelled>, StoreError> {
        Ok(diesel::sql_query(sql).load(connection)?)
    };
    Ok(Snapshot {
        sessions: load(
            connection,
            "SELECT sync_category AS first, sync_type AS second, status AS third, count(*)::float8 AS value
             FROM sync_sessions WHERE created_at > now() - interval '1 day' GROUP BY 1, 2, 3",
        )?,
        last_run_seconds: load(
            connection,
            "SELECT DISTINCT ON (sync_category, sync_type) sync_category AS first,
                    sync_type AS second, '' AS third,
                    extract(epoch FROM completed_at - started_at)::float8 AS value
             FROM sync_sessions WHERE completed_at IS NOT NULL AND started_at IS NOT NULL
             ORDER BY sync_category, sync_type, completed_at DESC",
        )?,
        last_completed_at: load(
            connection,
            "SELECT sync_category AS first, sync_type AS second, '' AS third,
                    extract(epoch FROM max(completed_at))::float8 AS value
             FROM sync_sessions WHERE status = 'completed' AND completed_at IS NOT NULL
             GROUP BY 1, 2",
        )?,
        // Through the session each tick's job opened last (the tick's link, kept by retries);
        // ticks are pruned to a bounded number per schedule.
        schedule_last_completed_at: load(
            connection,
            "SELECT tick.schedule_name AS first, '' AS second, '' AS third,
                    extract(epoch FROM max(session.completed_at))::float8 AS value
             FROM schedule_ticks tick
             JOIN sync_sessions session ON session.id = tick.session_id
             WHERE session.status = 'completed' AND session.completed_at IS NOT NULL
             GROUP BY 1",
        )?,
        oldest_stale_seconds: load(
            connection,
            "SELECT '' AS first, '' AS second, '' AS third,
                    coalesce(extract(epoch FROM now() - min(stale_since)), 0)::float8 AS value
             FROM aggregation_ledger WHERE stale_since IS NOT NULL",
        )?,
        rows_written: load(
            connection,
            "SELECT session.sync_category AS first, '' AS second, '' AS third,
                    coalesce(sum(record.items_synced), 0)::float8 AS value
             FROM sync_sessions session
             JOIN sync_instance_records record ON record.session_id = session.id
             WHERE session.created_at > now() - interval '1 day' GROUP BY 1",
        )?,
        jobs: load(
            connection,
            "SELECT job_type AS first, status AS second, '' AS third, count(*)::float8 AS value
             FROM apalis.jobs GROUP BY 1, 2",
        )?,
        retries: load(
            connection,
            "SELECT job_type AS first, '' AS second, '' AS third,
                    coalesce(sum(greatest(attempts - 1, 0)), 0)::float8 AS value
             FROM apalis.jobs GROUP BY 1",
        )?,
        ticks: load(
            connection,
            "SELECT schedule_name AS first, status AS second, '' AS third, count(*)::float8 AS value
             FROM schedule_ticks WHERE tick_at > now() - interval '1 day' GROUP BY 1, 2",
        )?,
    })
}
