//! Statuses of sessions and records, the transitions between them, and the kinds of runs.

/// Error for a status or kind name that is not known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} `{text}`")]
pub struct UnknownName {
    kind: &'static str,
    text: String,
}

impl UnknownName {
    fn of(kind: &'static str) -> impl Fn(&str) -> UnknownName {
        move |text| UnknownName {
            kind,
            text: text.to_owned(),
        }
    }
}

capstats_capacity_model::named_enum! {
    /// The status of a whole session: `pending` (queued) → `running` → `completed` | `failed` |
    /// `cancelled`.
    SessionStatus, error: UnknownName = UnknownName::of("session status"), {
        /// Created and queued; no work done yet.
        Pending => "pending",
        /// A worker is executing it.
        Running => "running",
        /// Every record completed.
        Completed => "completed",
        /// At least one record failed, or the worker was lost.
        Failed => "failed",
        /// Cancelled before every record was done.
        Cancelled => "cancelled",
    }
}

capstats_capacity_model::named_enum! {
    /// The status of one instance's record within a session.
    RecordStatus, error: UnknownName = UnknownName::of("record status"), {
        /// Not started yet.
        Pending => "pending",
        /// Being processed.
        Running => "running",
        /// Every level and period succeeded for the instance.
        Completed => "completed",
        /// Some level or period failed for the instance.
        Failed => "failed",
        /// The session was cancelled before the instance was done.
        Cancelled => "cancelled",
    }
}

capstats_capacity_model::named_enum! {
    /// What a session does.
    SyncCategory, error: UnknownName = UnknownName::of("sync category"), {
        /// Rolling samples up into aggregates.
        Aggregation => "aggregation",
        /// Collecting size samples from monitored servers.
        Capacity => "capacity",
    }
}

capstats_capacity_model::named_enum! {
    /// What started a session.
    SyncType, error: UnknownName = UnknownName::of("sync type"), {
        /// A tick of a schedule.
        ScheduledTask => "scheduled_task",
        /// An operator: run now, aggregate now, a backfill or a command-line run.
        ManualTask => "manual_task",
    }
}

impl SessionStatus {
    /// Whether the session can change no more.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }

    /// Whether a session may move from `self` to `target`.
    pub fn can_become(self, target: SessionStatus) -> bool {
        SessionStatus::predecessors(target).contains(&self)
    }

    /// The statuses from which a session may move to `target`.
    pub fn predecessors(target: SessionStatus) -> &'static [SessionStatus] {
        match target {
            Self::Pending => &[],
            Self::Running => &[Self::Pending],
            Self::Completed => &[Self::Running],
            // A queued session can fail too: its job may be dropped before it starts.
            Self::Failed => &[Self::Pending, Self::Running],
            Self::Cancelled => &[Self::Pending, Self::Running],
        }
    }
}

impl RecordStatus {
    /// Whether the record can change no more.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }

    /// Whether a record may move from `self` to `target`.
    pub fn can_become(self, target: RecordStatus) -> bool {
        RecordStatus::predecessors(target).contains(&self)
    }

    /// The statuses from which a record may move to `target`; `store` guards its SQL updates
    /// with this list so that a stale writer cannot undo a final status.
    pub fn predecessors(target: RecordStatus) -> &'static [RecordStatus] {
        match target {
            Self::Pending => &[],
            Self::Running => &[Self::Pending],
            Self::Completed => &[Self::Running],
            // A record that never started fails when its session is abandoned.
            Self::Failed => &[Self::Pending, Self::Running],
            // Cancellation acts between chunks: records not started are cancelled, and so are
            // records whose work spans chunks (a backfill covers every instance in each batch).
            Self::Cancelled => &[Self::Pending, Self::Running],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_statuses_have_no_way_out() {
        for from in RecordStatus::ALL
            .iter()
            .copied()
            .filter(|s| s.is_terminal())
        {
            for to in RecordStatus::ALL {
                assert!(!from.can_become(to), "{from} -> {to}");
            }
        }
        for from in SessionStatus::ALL
            .iter()
            .copied()
            .filter(|s| s.is_terminal())
        {
            for to in SessionStatus::ALL {
                assert!(!from.can_become(to), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for status in SessionStatus::ALL {
            assert_eq!(status.as_str().parse::<SessionStatus>(), Ok(status));
        }
        assert_eq!(
            "scheduled_task".parse::<SyncType>(),
            Ok(SyncType::ScheduledTask)
        );
        assert_eq!(
            serde_json::to_string(&SyncType::ManualTask).unwrap(),
            "\"manual_task\""
        );
        assert!("done".parse::<RecordStatus>().is_err());
    }
}

#[cfg(feature = "openapi")]
capstats_capacity_model::string_enum_schema! {
    SessionStatus: "The state of a run: pending, running, completed, failed or cancelled.",
    SyncType: "How a run was started: by a schedule or by hand.",
    SyncCategory: "What a run does: aggregation or capacity (collection).",
}
