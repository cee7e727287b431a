//! The session state machine: transitions, counters, progress and roll-up.

use std::collections::BTreeMap;

use capstats_capacity_model::{Decimal, InstanceId};
use serde::{Deserialize, Serialize};

use crate::{RecordDetail, RecordStatus, SessionStatus};

/// A transition the rules do not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// The session cannot move from its status to the requested one.
    #[error("a {from} session cannot become {to}")]
    Session {
        /// Current status.
        from: SessionStatus,
        /// Requested status.
        to: SessionStatus,
    },
    /// The record cannot move from its status to the requested one.
    #[error("the record of instance {instance_id} is {from} and cannot become {to}")]
    Record {
        /// The record's instance.
        instance_id: InstanceId,
        /// Current status.
        from: RecordStatus,
        /// Requested status.
        to: RecordStatus,
    },
    /// Records may only be worked on while the session runs.
    #[error("records can only change while the session is running (it is {0})")]
    SessionNotRunning(SessionStatus),
    /// The session has no record for the instance.
    #[error("the session has no record for instance {0}")]
    UnknownRecord(InstanceId),
    /// A session cannot finish while records are still open and no cancellation was asked.
    #[error("{open} records are still pending or running and no cancellation was requested")]
    RecordsStillOpen {
        /// Number of pending or running records.
        open: u64,
    },
}

/// How many records are in each status. Kept consistent with the records by construction: it
/// is always computed from them, never incremented separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Counters {
    /// All records.
    pub total: u64,
    /// Not started.
    pub pending: u64,
    /// In progress.
    pub running: u64,
    /// Succeeded.
    pub completed: u64,
    /// Failed.
    pub failed: u64,
    /// Cancelled.
    pub cancelled: u64,
}

impl Counters {
    /// Counts the given record statuses.
    pub fn from_statuses(statuses: impl IntoIterator<Item = RecordStatus>) -> Self {
        let mut counters = Self::default();
        for status in statuses {
            counters.add(status, 1);
        }
        counters
    }

    /// Adds `count` records of `status`.
    pub fn add(&mut self, status: RecordStatus, count: u64) {
        self.total += count;
        match status {
            RecordStatus::Pending => self.pending += count,
            RecordStatus::Running => self.running += count,
            RecordStatus::Completed => self.completed += count,
            RecordStatus::Failed => self.failed += count,
            RecordStatus::Cancelled => self.cancelled += count,
        }
    }

    /// Records in a final status.
    pub fn finished(&self) -> u64 {
        self.completed + self.failed + self.cancelled
    }

    /// Records still pending or running.
    pub fn open(&self) -> u64 {
        self.pending + self.running
    }

    /// Records done (completed or failed) in percent of all records, with two decimals
    /// (rounded half up). Cancelled records were never done, so a session cancelled after two
    /// of five records stays at 40 %, telling how much of its work happened. A session
    /// without records is at 0 %.
    pub fn progress_percentage(&self) -> Decimal {
        share_done(self.completed + self.failed, self.total)
    }
}

/// `done` of `total` as a percentage with two decimals (rounded half up, at most 100); 0 when
/// there is nothing to do. Also what a run whose work items are not its records (a backfill's
/// batches) reports while it runs.
pub fn share_done(done: u64, total: u64) -> Decimal {
    if total == 0 {
        return Decimal::ZERO;
    }
    let done = u128::from(done.min(total));
    let total = u128::from(total);
    let hundredths = (done * 20_000 + total) / (2 * total);
    Decimal::from_i128_with_scale(
        i128::try_from(hundredths).expect("at most 10000 hundredths"),
        2,
    )
}

/// The final status of a session from its records: `cancelled` when a cancellation left
/// records undone, else `failed` when any record failed, else `completed`.
///
/// Errors when records are still open and no cancellation was requested: such a session is
/// not finished.
pub fn roll_up(
    counters: &Counters,
    cancel_requested: bool,
) -> Result<SessionStatus, TransitionError> {
    if counters.open() > 0 && !cancel_requested {
        return Err(TransitionError::RecordsStillOpen {
            open: counters.open(),
        });
    }
    Ok(if counters.cancelled > 0 || counters.open() > 0 {
        SessionStatus::Cancelled
    } else if counters.failed > 0 {
        SessionStatus::Failed
    } else {
        SessionStatus::Completed
    })
}

/// One instance's record in an in-memory session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordState {
    /// The record's status.
    pub status: RecordStatus,
    /// The error that failed it, if any.
    pub error: Option<String>,
    /// What was done for the instance.
    pub detail: RecordDetail,
}

/// A session and its records, changed only through the allowed transitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncSession {
    status: SessionStatus,
    cancel_requested: bool,
    failure_reason: Option<String>,
    records: BTreeMap<InstanceId, RecordState>,
}

impl SyncSession {
    /// A pending session with one pending record per instance.
    pub fn new(instances: impl IntoIterator<Item = InstanceId>) -> Self {
        let records = instances
            .into_iter()
            .map(|instance_id| {
                (
                    instance_id,
                    RecordState {
                        status: RecordStatus::Pending,
                        error: None,
                        detail: RecordDetail::default(),
                    },
                )
            })
            .collect();
        Self {
            status: SessionStatus::Pending,
            cancel_requested: false,
            failure_reason: None,
            records,
        }
    }

    /// The session's status.
    pub fn status(&self) -> SessionStatus {
        self.status
    }

    /// The reason recorded when the session was abandoned.
    pub fn failure_reason(&self) -> Option<&str> {
        self.failure_reason.as_deref()
    }

    /// The record of an instance.
    pub fn record(&self, instance_id: InstanceId) -> Option<&RecordState> {
        self.records.get(&instance_id)
    }

    /// Counters derived from the records.
    pub fn counters(&self) -> Counters {
        Counters::from_statuses(self.records.values().map(|record| record.status))
    }

    fn move_session(&mut self, to: SessionStatus) -> Result<(), TransitionError> {
        if !self.status.can_become(to) {
            return Err(TransitionError::Session {
                from: self.status,
                to,
            });
        }
        self.status = to;
        Ok(())
    }

    fn move_record(
        &mut self,
        instance_id: InstanceId,
        to: RecordStatus,
    ) -> Result<&mut RecordState, TransitionError> {
        if self.status != SessionStatus::Running {
            return Err(TransitionError::SessionNotRunning(self.status));
        }
        let record = self
            .records
            .get_mut(&instance_id)
            .ok_or(TransitionError::UnknownRecord(instance_id))?;
        if !record.status.can_become(to) {
            return Err(TransitionError::Record {
                instance_id,
                from: record.status,
                to,
            });
        }
        record.status = to;
        Ok(record)
    }

    /// A worker picked the session up: `pending` → `running`.
    pub fn start(&mut self) -> Result<(), TransitionError> {
        self.move_session(SessionStatus::Running)
    }

    /// Work on an instance begins.
    pub fn start_record(&mut self, instance_id: InstanceId) -> Result<(), TransitionError> {
        self.move_record(instance_id, RecordStatus::Running)
            .map(drop)
    }

    /// Every level and period succeeded for the instance.
    pub fn complete_record(
        &mut self,
        instance_id: InstanceId,
        detail: RecordDetail,
    ) -> Result<(), TransitionError> {
        self.move_record(instance_id, RecordStatus::Completed)?
            .detail = detail;
        Ok(())
    }

    /// Some level or period failed for the instance; the others may have succeeded and are
    /// kept in `detail`.
    pub fn fail_record(
        &mut self,
        instance_id: InstanceId,
        error: impl Into<String>,
        detail: RecordDetail,
    ) -> Result<(), TransitionError> {
        let record = self.move_record(instance_id, RecordStatus::Failed)?;
        record.error = Some(error.into());
        record.detail = detail;
        Ok(())
    }

    /// The instance's work stopped unfinished because of a cancellation.
    pub fn cancel_record(&mut self, instance_id: InstanceId) -> Result<(), TransitionError> {
        self.move_record(instance_id, RecordStatus::Cancelled)
            .map(drop)
    }

    /// Asks the session to stop. A pending session is cancelled at once with all its records;
    /// a running one stops at the next check of [`SyncSession::should_stop`], between chunks.
    /// Asking a finished session changes nothing.
    pub fn request_cancel(&mut self) {
        match self.status {
            SessionStatus::Pending => {
                self.cancel_requested = true;
                self.status = SessionStatus::Cancelled;
                for record in self.records.values_mut() {
                    record.status = RecordStatus::Cancelled;
                }
            }
            SessionStatus::Running => self.cancel_requested = true,
            _ => {}
        }
    }

    /// Whether the worker should stop before the next chunk.
    pub fn should_stop(&self) -> bool {
        self.cancel_requested
    }

    /// Ends a running session: records not yet started become `cancelled` when a cancellation
    /// was requested, then the records roll up into the final status, which is returned.
    pub fn finish(&mut self) -> Result<SessionStatus, TransitionError> {
        if self.status != SessionStatus::Running {
            return Err(TransitionError::SessionNotRunning(self.status));
        }
        let counters = self.counters();
        if counters.running > 0 {
            // A record still in progress must be completed or failed by its worker first.
            return Err(TransitionError::RecordsStillOpen {
                open: counters.open(),
            });
        }
        let target = roll_up(&counters, self.cancel_requested)?;
        if self.cancel_requested {
            for record in self.records.values_mut() {
                if record.status == RecordStatus::Pending {
                    record.status = RecordStatus::Cancelled;
                }
            }
        }
        self.move_session(target)?;
        Ok(target)
    }

    /// Closes a session whose worker is gone: open records fail with `reason` and the session
    /// becomes `failed`. A retried job opens a new session rather than reviving this one.
    pub fn abandon(&mut self, reason: impl Into<String>) -> Result<(), TransitionError> {
        let reason = reason.into();
        self.move_session(SessionStatus::Failed)?;
        for record in self.records.values_mut() {
            if !record.status.is_terminal() {
                record.status = RecordStatus::Failed;
                record.error = Some(reason.clone());
            }
        }
        self.failure_reason = Some(reason);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ids(count: i64) -> Vec<InstanceId> {
        (1..=count).map(InstanceId).collect()
    }

    #[test]
    fn all_records_completed_completes_the_session() {
        let mut session = SyncSession::new(ids(2));
        assert_eq!(session.counters().progress_percentage(), Decimal::ZERO);
        session.start().unwrap();
        for id in ids(2) {
            session.start_record(id).unwrap();
            session
                .complete_record(id, RecordDetail::default())
                .unwrap();
        }
        assert_eq!(session.finish(), Ok(SessionStatus::Completed));
        assert_eq!(
            session.counters().progress_percentage().to_string(),
            "100.00"
        );
    }

    #[test]
    fn a_cancelled_session_shows_how_much_was_done() {
        let mut session = SyncSession::new(ids(5));
        session.start().unwrap();
        for id in ids(2) {
            session.start_record(id).unwrap();
            session
                .complete_record(id, RecordDetail::default())
                .unwrap();
        }
        session.request_cancel();
        assert_eq!(session.finish(), Ok(SessionStatus::Cancelled));
        assert_eq!(session.counters().cancelled, 3);
        assert_eq!(
            session.counters().progress_percentage().to_string(),
            "40.00"
        );
    }

    #[test]
    fn one_failed_record_fails_the_session() {
        let mut session = SyncSession::new(ids(3));
        session.start().unwrap();
        session.start_record(InstanceId(1)).unwrap();
        session
            .fail_record(InstanceId(1), "boom", RecordDetail::default())
            .unwrap();
        assert_eq!(
            session.counters().progress_percentage().to_string(),
            "33.33"
        );
        for id in [InstanceId(2), InstanceId(3)] {
            session.start_record(id).unwrap();
            session
                .complete_record(id, RecordDetail::default())
                .unwrap();
        }
        assert_eq!(session.finish(), Ok(SessionStatus::Failed));
        assert_eq!(
            session.record(InstanceId(1)).unwrap().error.as_deref(),
            Some("boom")
        );
    }

    #[test]
    fn finishing_with_open_records_and_no_cancel_is_refused() {
        let mut session = SyncSession::new(ids(2));
        session.start().unwrap();
        assert_eq!(
            session.finish(),
            Err(TransitionError::RecordsStillOpen { open: 2 })
        );
        session.start_record(InstanceId(1)).unwrap();
        session.request_cancel();
        // The running record must end first, even when cancelling.
        assert!(session.finish().is_err());
        session
            .complete_record(InstanceId(1), RecordDetail::default())
            .unwrap();
        assert_eq!(session.finish(), Ok(SessionStatus::Cancelled));
        assert_eq!(
            session.record(InstanceId(2)).unwrap().status,
            RecordStatus::Cancelled
        );
    }

    #[test]
    fn cancelling_a_pending_session_cancels_everything() {
        let mut session = SyncSession::new(ids(2));
        session.request_cancel();
        assert_eq!(session.status(), SessionStatus::Cancelled);
        assert_eq!(session.counters().cancelled, 2);
        assert!(session.start().is_err());
    }

    #[test]
    fn cancel_after_everything_finished_keeps_the_real_outcome() {
        let mut session = SyncSession::new(ids(1));
        session.start().unwrap();
        session.start_record(InstanceId(1)).unwrap();
        session
            .complete_record(InstanceId(1), RecordDetail::default())
            .unwrap();
        session.request_cancel();
        assert_eq!(session.finish(), Ok(SessionStatus::Completed));
    }

    #[test]
    fn abandoning_fails_open_records_with_the_reason() {
        let mut session = SyncSession::new(ids(3));
        session.start().unwrap();
        session.start_record(InstanceId(1)).unwrap();
        session
            .complete_record(InstanceId(1), RecordDetail::default())
            .unwrap();
        session.start_record(InstanceId(2)).unwrap();
        session.abandon("worker lost").unwrap();
        assert_eq!(session.status(), SessionStatus::Failed);
        let counters = session.counters();
        assert_eq!((counters.completed, counters.failed), (1, 2));
        assert_eq!(
            session.record(InstanceId(3)).unwrap().error.as_deref(),
            Some("worker lost")
        );
        assert!(session.abandon("again").is_err());
    }

    #[test]
    fn records_cannot_change_outside_a_running_session() {
        let mut session = SyncSession::new(ids(1));
        assert_eq!(
            session.start_record(InstanceId(1)),
            Err(TransitionError::SessionNotRunning(SessionStatus::Pending))
        );
        session.start().unwrap();
        assert_eq!(
            session.start_record(InstanceId(9)),
            Err(TransitionError::UnknownRecord(InstanceId(9)))
        );
        assert!(matches!(
            session.complete_record(InstanceId(1), RecordDetail::default()),
            Err(TransitionError::Record { .. })
        ));
    }

    #[derive(Debug, Clone)]
    enum Step {
        Start(i64),
        Complete(i64),
        Fail(i64),
        CancelRecord(i64),
        Cancel,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (1i64..=4).prop_map(Step::Start),
            (1i64..=4).prop_map(Step::Complete),
            (1i64..=4).prop_map(Step::Fail),
            (1i64..=4).prop_map(Step::CancelRecord),
            Just(Step::Cancel),
        ]
    }

    proptest! {
        /// Whatever sequence of requests arrives, counters match the records, progress never
        /// exceeds 100 %, and a session that finishes rolls up exactly as `roll_up` says.
        #[test]
        fn counters_stay_consistent(steps in prop::collection::vec(step(), 0..30)) {
            let mut session = SyncSession::new(ids(4));
            session.start().unwrap();
            for step in steps {
                // Disallowed transitions are refused and change nothing.
                let before = session.clone();
                let result = match step {
                    Step::Start(id) => session.start_record(InstanceId(id)),
                    Step::Complete(id) => session.complete_record(InstanceId(id), RecordDetail::default()),
                    Step::Fail(id) => session.fail_record(InstanceId(id), "error", RecordDetail::default()),
                    Step::CancelRecord(id) => session.cancel_record(InstanceId(id)),
                    Step::Cancel => { session.request_cancel(); Ok(()) }
                };
                if result.is_err() {
                    prop_assert_eq!(&session, &before);
                }
                let counters = session.counters();
                prop_assert_eq!(counters.total, 4);
                prop_assert_eq!(counters.finished() + counters.open(), 4);
                prop_assert!(counters.progress_percentage() <= Decimal::ONE_HUNDRED);
            }
            let counters = session.counters();
            let expected = if counters.running > 0 { None } else { roll_up(&counters, session.should_stop()).ok() };
            let finished = session.finish().ok();
            prop_assert_eq!(finished, expected);
            if let Some(status) = finished {
                prop_assert!(status.is_terminal());
                prop_assert_eq!(session.counters().open(), 0);
            }
        }
    }
}
