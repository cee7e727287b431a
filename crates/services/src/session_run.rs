//! The life cycle of a run's sync session, written once for every kind of run (current, due,
//! refresh, backfill, collection): open the session — adopting the one created when the job
//! was enqueued while it is still pending, else creating one — start and finish its records,
//! send heartbeats, honour cancellation, and end it: finished (its records roll up into the
//! status) or failed with the real error.
//!
//! The transitions themselves are `capstats_sync_session`'s rules, which `store::sessions`
//! applies in SQL; this type only decides which of them a run takes and when.

use capstats_capacity_model::InstanceId;
use capstats_store::sessions::{self, JobSessionStart, NewSession, RecordOutcome};
use capstats_store::{PgConnection, StoreError, schedules};
use std::time::Instant;

use capstats_sync_session::{Counters, SessionStatus, SyncCategory, SyncType};

/// How a run comes to its session.
#[derive(Debug, Clone)]
pub struct SessionRequest {
    /// The session created when the job was enqueued, adopted while it is still pending.
    pub adopt: Option<i64>,
    /// The session to create when there is none to adopt.
    pub new: NewSession,
    /// The records of a created session, one per instance.
    pub instances: Vec<(InstanceId, String)>,
    /// Whether a schedule's tick started the run: the tick (found by the session's job id)
    /// then points at the created session.
    pub link_tick: bool,
}

/// The active instances as session records: what a run of every active instance records.
pub fn active_records(
    connection: &mut PgConnection,
) -> Result<Vec<(InstanceId, String)>, StoreError> {
    Ok(capstats_store::instances::active_instances(connection)?
        .into_iter()
        .map(|instance| (instance.id, instance.name))
        .collect())
}

/// What opening found.
#[derive(Debug)]
pub enum OpenedRun {
    /// Run, recording into this session.
    Run(SessionRun),
    /// The session was cancelled while its job was queued: nothing is to run.
    Cancelled(i64),
}

/// What became of a queued session a run tried to start.
enum Adoption {
    /// Started: the run records into it.
    Run(SessionRun),
    /// Cancelled while queued: nothing is to run.
    Cancelled(i64),
    /// Not pending (ended by an earlier attempt, or gone).
    NotPending,
}

/// A run's session while the run goes on: its id, and what the run's metrics are labelled with.
/// Every step takes the connection the run works on, so that synchronous runs (on their own
/// connection) and asynchronous ones (one pooled connection per step) share it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionRun {
    id: i64,
    category: SyncCategory,
    sync_type: SyncType,
    started: Instant,
}

impl SessionRun {
    /// Opens the session of a run on `worker_name`: the pending session of `request.adopt`,
    /// else the one queued for this attempt when the job's previous one failed, else a new
    /// one with `request.instances` as its records. A session cancelled while queued is not
    /// replaced; one an earlier attempt ended is.
    pub fn open(
        connection: &mut PgConnection,
        worker_name: &str,
        request: &SessionRequest,
    ) -> Result<OpenedRun, StoreError> {
        let mut adoption = match request.adopt {
            Some(id) => Self::adopt(connection, id, worker_name, &request.new)?,
            None => Adoption::NotPending,
        };
        // Only when the job's own session cannot be run: the one queued for this attempt.
        if matches!(adoption, Adoption::NotPending)
            && let Some(job_id) = request.new.job_id.as_deref()
            && let Some(id) = sessions::queued_session_of_job(connection, job_id)?
            && Some(id) != request.adopt
        {
            adoption = Self::adopt(connection, id, worker_name, &request.new)?;
        }
        let run = match adoption {
            Adoption::Run(run) => run,
            Adoption::Cancelled(id) => return Ok(OpenedRun::Cancelled(id)),
            Adoption::NotPending => {
                Self::create(connection, worker_name, &request.new, &request.instances)?
            }
        };
        if let (true, Some(job_id)) = (request.link_tick, request.new.job_id.as_deref()) {
            schedules::link_tick_session(connection, job_id, run.id)?;
        }
        Ok(OpenedRun::Run(run))
    }

    /// Starts the queued session `id` for a run of the kind `new` describes, if it is pending.
    fn adopt(
        connection: &mut PgConnection,
        id: i64,
        worker_name: &str,
        new: &NewSession,
    ) -> Result<Adoption, StoreError> {
        Ok(
            match sessions::start_job_session(connection, id, worker_name)? {
                JobSessionStart::Started => Adoption::Run(Self::started(id, new)),
                JobSessionStart::Cancelled => {
                    tracing::info!(
                        session_id = id,
                        "the session was cancelled while queued; not running"
                    );
                    Adoption::Cancelled(id)
                }
                JobSessionStart::Ended(status) => {
                    tracing::info!(
                        session_id = id,
                        %status,
                        "an earlier attempt of this job ended its session"
                    );
                    Adoption::NotPending
                }
                JobSessionStart::Missing => Adoption::NotPending,
            },
        )
    }

    /// Creates the session `new` with a record per instance of `instances` and starts it on
    /// `worker_name`: for runs that have no queued session to adopt (a backfill).
    pub fn create(
        connection: &mut PgConnection,
        worker_name: &str,
        new: &NewSession,
        instances: &[(InstanceId, String)],
    ) -> Result<Self, StoreError> {
        let id = sessions::create_session(connection, new, instances)?;
        sessions::start_session(connection, id, worker_name)?;
        Ok(Self::started(id, new))
    }

    /// The run of session `id`, of the kind `new` describes, starting now.
    fn started(id: i64, new: &NewSession) -> Self {
        Self {
            id,
            category: new.sync_category,
            sync_type: new.sync_type,
            started: Instant::now(),
        }
    }

    /// Counts the run's end in the metrics.
    fn ended(self, outcome: SessionStatus) {
        crate::metrics::run_ended(
            self.category,
            self.sync_type,
            outcome,
            self.started.elapsed(),
        );
    }

    /// The session's id.
    pub fn id(self) -> i64 {
        self.id
    }

    /// The instances of the session's records, by id.
    pub fn instance_ids(
        self,
        connection: &mut PgConnection,
    ) -> Result<Vec<InstanceId>, StoreError> {
        Ok(sessions::session_records(connection, self.id)?
            .into_iter()
            .map(|record| record.instance_id)
            .collect())
    }

    /// Marks the records of `instance_ids` as running; returns the session's counters.
    pub fn start_records(
        self,
        connection: &mut PgConnection,
        instance_ids: &[InstanceId],
    ) -> Result<Counters, StoreError> {
        sessions::start_records(connection, self.id, instance_ids)
    }

    /// Stores the final outcome of records; returns the session's counters.
    pub fn finish_records(
        self,
        connection: &mut PgConnection,
        outcomes: &[RecordOutcome],
    ) -> Result<Counters, StoreError> {
        sessions::finish_records(connection, self.id, outcomes)
    }

    /// Records that the run is alive.
    pub fn heartbeat(self, connection: &mut PgConnection) -> Result<(), StoreError> {
        sessions::heartbeat(connection, self.id)
    }

    /// Records a sign of life and that `done` of `total` work items are done (see
    /// [`sessions::record_progress`]).
    pub fn record_progress(
        self,
        connection: &mut PgConnection,
        done: u64,
        total: u64,
    ) -> Result<(), StoreError> {
        sessions::record_progress(connection, self.id, done, total)
    }

    /// Whether somebody asked the run to stop; checked between work items.
    pub fn cancel_requested(self, connection: &mut PgConnection) -> Result<bool, StoreError> {
        sessions::cancel_requested(connection, self.id)
    }

    /// Ends the session: its records roll up into the final status, which is returned.
    pub fn finish(self, connection: &mut PgConnection) -> Result<SessionStatus, StoreError> {
        let status = sessions::finish_session(connection, self.id)?;
        self.ended(status);
        Ok(status)
    }

    /// Ends the session as failed by `error` (the whole cause chain becomes its error
    /// message; open records fail with it). Should even that fail — the database is gone —
    /// the sweeper closes the session once its heartbeats stop; the failure to close is
    /// logged here, the run's own error is the caller's to report.
    pub fn fail(self, connection: &mut PgConnection, error: &(dyn std::error::Error + 'static)) {
        self.fail_because(connection, &Self::failure_reason(error));
    }

    /// The error message [`SessionRun::fail`] records for `error`: its whole cause chain.
    pub fn failure_reason(error: &(dyn std::error::Error + 'static)) -> String {
        format!("run stopped: {}", capstats_store::error_chain(error))
    }

    /// [`SessionRun::fail`] with the reason already written (for a run that must hand its
    /// error on while the session is closed elsewhere, as the collection's tasks do).
    pub fn fail_because(self, connection: &mut PgConnection, reason: &str) {
        self.ended(SessionStatus::Failed);
        if let Err(closing) = sessions::fail_session(connection, self.id, reason) {
            tracing::error!(
                session_id = self.id,
                error = %capstats_store::error_chain(&closing),
                "could not close the session after an error (its connection may be what failed): a worker closes it with the failed attempt, else the sweeper does"
            );
        }
    }
}
