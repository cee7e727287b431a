//! Job payloads: the wire format of the job store. JSON shapes are stable —
//! a worker of a newer version must read jobs enqueued by an older one — so every payload has a
//! `version`, variants are tagged by `kind`, and nothing here depends on Rust type paths.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use capstats_capacity_model::{AggregationLevel, InstanceId, PeriodType};
use capstats_store::sessions::NewSession;
use capstats_sync_session::{SyncCategory, SyncType};

/// The payload version this build writes.
pub const PAYLOAD_VERSION: u32 = 1;

/// Who or what asked for a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Trigger {
    /// A claimed tick of a schedule.
    Schedule {
        /// The schedule's name.
        schedule_name: String,
        /// The tick.
        tick_at: DateTime<Utc>,
    },
    /// An operator or a program (`run now`, `aggregate now`).
    Manual {
        /// Who: `cli`, `api:<user>`, …
        requested_by: String,
        /// The API token the request came with (absent in payloads written before tokens
        /// were recorded, and for sessions and the CLI).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token_id: Option<i64>,
    },
}

impl Trigger {
    /// A request of an operator or a program, with the API token it came with (if any).
    pub fn manual(requested_by: impl Into<String>, token_id: Option<i64>) -> Self {
        Self::Manual {
            requested_by: requested_by.into(),
            token_id,
        }
    }

    /// The `triggered_by` text of the session the job opens.
    pub fn description(&self) -> String {
        match self {
            Self::Schedule { schedule_name, .. } => schedule_name.clone(),
            Self::Manual { requested_by, .. } => requested_by.clone(),
        }
    }

    /// The API token a manual request came with.
    pub fn token_id(&self) -> Option<i64> {
        match self {
            Self::Schedule { .. } => None,
            Self::Manual { token_id, .. } => *token_id,
        }
    }

    /// Whether a schedule's tick started the job.
    pub fn is_scheduled(&self) -> bool {
        matches!(self, Self::Schedule { .. })
    }

    /// The session a job of this trigger records into: scheduled or manual, who asked and
    /// with which token.
    pub fn new_session(
        &self,
        sync_category: SyncCategory,
        parameters: serde_json::Value,
        job_id: Option<&str>,
    ) -> NewSession {
        NewSession {
            sync_category,
            sync_type: if self.is_scheduled() {
                SyncType::ScheduledTask
            } else {
                SyncType::ManualTask
            },
            triggered_by: self.description(),
            requested_by_token_id: self.token_id(),
            parameters,
            job_id: job_id.map(str::to_owned),
        }
    }
}

/// Which levels a manual run computes (the API's `scope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LevelScope {
    /// Database level only.
    Database,
    /// Instance level only.
    Instance,
    /// Both levels.
    All,
}

impl LevelScope {
    /// The levels, database first.
    pub fn levels(self) -> Vec<AggregationLevel> {
        match self {
            Self::Database => vec![AggregationLevel::Database],
            Self::Instance => vec![AggregationLevel::Instance],
            Self::All => AggregationLevel::ALL.to_vec(),
        }
    }
}

/// What an aggregation job computes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AggregationWork {
    /// For each period type, the last complete period before `logical_date` and the complete
    /// periods before it that are missing from the ledger (bounded catch-up). With
    /// `skip_up_to_date`, periods the ledger holds and are not stale are skipped (scheduled
    /// runs); without, no skip rule applies and every period of the horizon is recomputed
    /// (run now).
    Due {
        /// The tick's business date ("today" for the run).
        logical_date: NaiveDate,
        /// Apply the skip rule.
        skip_up_to_date: bool,
    },
    /// The current period of `period_type` (containing `logical_date`) at the `scope` levels.
    Current {
        /// Business date of the request.
        logical_date: NaiveDate,
        /// The period type.
        period_type: PeriodType,
        /// The levels.
        scope: LevelScope,
    },
    /// Recompute the stale instances of stale ledger entries.
    RefreshStale,
    /// Every `period_type` period starting between `from` and `to` at the `scope` levels, in
    /// batches (a backfill queued through the API or `aggregate --queue`).
    Backfill {
        /// The period type.
        period_type: PeriodType,
        /// Periods starting on or after this date…
        from: NaiveDate,
        /// …and on or before this one.
        to: NaiveDate,
        /// The levels.
        scope: LevelScope,
    },
}

/// Payload of the aggregation queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AggregationJob {
    /// Payload format version.
    pub version: u32,
    /// What to compute.
    pub work: AggregationWork,
    /// Who asked.
    pub trigger: Trigger,
    /// The session created when the job was enqueued (manual runs, so that the caller gets
    /// its id at once); scheduled runs open theirs when they start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<i64>,
}

/// Payload of the collection queue: read the sizes of every collectable instance, or of
/// `instance_ids` only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionJob {
    /// Payload format version.
    pub version: u32,
    /// Only these instances (collect now); every collectable instance when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_ids: Option<Vec<InstanceId>>,
    /// Who asked.
    pub trigger: Trigger,
    /// The business day the sizes are recorded for: the tick's (a scheduled run that starts
    /// late still records the day it was due for) or the request's. Payloads written before it
    /// existed use the day the job runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logical_date: Option<NaiveDate>,
    /// The session created when the job was enqueued (collect now); scheduled runs open theirs
    /// when they start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<i64>,
}

/// Payload of the maintenance queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MaintenanceJob {
    /// Create partitions ahead and drop those past the retention.
    MaintainPartitions {
        /// Payload format version.
        version: u32,
        /// Business date the retention and look-ahead are counted from.
        logical_date: NaiveDate,
        /// Who asked.
        trigger: Trigger,
    },
    /// Delete finished jobs, old ticks and gone workers.
    PruneJobStore {
        /// Payload format version.
        version: u32,
        /// Who asked.
        trigger: Trigger,
    },
}

/// Payload of the alert queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AlertJob {
    /// Evaluate every rule after session `session_id` (once per session), then enqueue the
    /// deliveries of the notifications it recorded.
    Evaluate {
        /// Payload format version.
        version: u32,
        /// The session that just ended.
        session_id: i64,
    },
    /// Deliver one notification.
    Deliver {
        /// Payload format version.
        version: u32,
        /// The notification.
        notification_id: i64,
    },
}

impl AlertJob {
    /// The evaluation after session `session_id`.
    pub fn evaluate(session_id: i64) -> Job {
        Job::Alert(Self::Evaluate {
            version: PAYLOAD_VERSION,
            session_id,
        })
    }
}

/// A job for one of the queues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job {
    /// An aggregation job.
    Aggregation(AggregationJob),
    /// A housekeeping job.
    Maintenance(MaintenanceJob),
    /// A collection job.
    Collection(CollectionJob),
    /// An alert evaluation or delivery.
    Alert(AlertJob),
}

impl Job {
    /// Its JSON payload.
    pub fn to_json(&self) -> serde_json::Value {
        let value = match self {
            Self::Aggregation(job) => serde_json::to_value(job),
            Self::Maintenance(job) => serde_json::to_value(job),
            Self::Collection(job) => serde_json::to_value(job),
            Self::Alert(job) => serde_json::to_value(job),
        };
        value.expect("payloads serialize")
    }

    /// The job a schedule's tick enqueues, by the schedule's `job_name`.
    pub fn for_tick(
        job_name: &str,
        schedule_name: &str,
        tick_at: DateTime<Utc>,
        logical_date: NaiveDate,
    ) -> Option<Job> {
        let trigger = Trigger::Schedule {
            schedule_name: schedule_name.to_owned(),
            tick_at,
        };
        Some(match job_name {
            "aggregate_capacity" => Job::Aggregation(AggregationJob {
                version: PAYLOAD_VERSION,
                work: AggregationWork::Due {
                    logical_date,
                    skip_up_to_date: true,
                },
                trigger,
                session_id: None,
            }),
            "refresh_stale_periods" => Job::Aggregation(AggregationJob {
                version: PAYLOAD_VERSION,
                work: AggregationWork::RefreshStale,
                trigger,
                session_id: None,
            }),
            "maintain_partitions" => Job::Maintenance(MaintenanceJob::MaintainPartitions {
                version: PAYLOAD_VERSION,
                logical_date,
                trigger,
            }),
            "prune_job_store" => Job::Maintenance(MaintenanceJob::PruneJobStore {
                version: PAYLOAD_VERSION,
                trigger,
            }),
            "collect_capacity" => Job::Collection(CollectionJob {
                version: PAYLOAD_VERSION,
                instance_ids: None,
                trigger,
                logical_date: Some(logical_date),
                session_id: None,
            }),
            _ => return None,
        })
    }
}

/// The job names schedules may use.
pub const JOB_NAMES: [&str; 5] = [
    "aggregate_capacity",
    "refresh_stale_periods",
    "maintain_partitions",
    "prune_job_store",
    "collect_capacity",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_have_a_stable_shape() {
        let tick_at: DateTime<Utc> = "2026-11-26T20:00:00Z".parse().unwrap();
        let logical_date = NaiveDate::from_ymd_opt(2026, 11, 27).unwrap();
        let job = Job::for_tick(
            "aggregate_capacity",
            "aggregate_capacity",
            tick_at,
            logical_date,
        )
        .unwrap();
        assert_eq!(
            job.to_json(),
            serde_json::json!({
                "version": 1,
                "work": {"kind": "due", "logical_date": "2026-11-27", "skip_up_to_date": true},
                "trigger": {"by": "schedule", "schedule_name": "aggregate_capacity",
                            "tick_at": "2026-11-26T20:00:00Z"}
            })
        );
        let prune =
            Job::for_tick("prune_job_store", "prune_job_store", tick_at, logical_date).unwrap();
        assert_eq!(prune.to_json()["kind"], "prune_job_store");
        let collect = Job::for_tick(
            "collect_capacity",
            "collect_capacity",
            tick_at,
            logical_date,
        )
        .unwrap();
        assert_eq!(
            collect.to_json(),
            serde_json::json!({
                "version": 1,
                "trigger": {"by": "schedule", "schedule_name": "collect_capacity",
                            "tick_at": "2026-11-26T20:00:00Z"},
                "logical_date": "2026-11-27"
            })
        );
        // A collection payload written before the logical date existed still reads.
        let older: CollectionJob = serde_json::from_value(serde_json::json!({
            "version": 1,
            "trigger": {"by": "manual", "requested_by": "cli"}
        }))
        .unwrap();
        assert_eq!(older.logical_date, None);
        assert!(Job::for_tick("unknown", "x", tick_at, logical_date).is_none());
        for name in JOB_NAMES {
            assert!(Job::for_tick(name, name, tick_at, logical_date).is_some());
        }
    }
}
