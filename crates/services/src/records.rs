//! Collecting what a run did for each instance into its session record.

use std::collections::BTreeMap;

use capstats_capacity_model::InstanceId;
use capstats_store::aggregation::BatchOutcome;
use capstats_store::sessions::RecordOutcome;
use capstats_sync_session::{PeriodOutcome, RecordDetail, RecordStatus};

/// The rows a run wrote and deleted, counted batch by batch.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RowTotals {
    /// Rows written.
    pub(crate) written: u64,
    /// Rows deleted because their key has no samples any more.
    pub(crate) deleted: u64,
}

impl RowTotals {
    /// Counts a computed batch here and in the process's metrics.
    pub(crate) fn add(&mut self, outcome: &BatchOutcome) {
        let total = outcome.total();
        crate::metrics::aggregate_rows(total.written, total.deleted);
        self.written += total.written;
        self.deleted += total.deleted;
    }
}

/// The details of the records of one run (or one chunk of it), by instance.
pub(crate) struct RecordBook {
    details: BTreeMap<InstanceId, RecordDetail>,
}

impl RecordBook {
    /// Empty details for `instances`.
    pub(crate) fn new(instances: impl IntoIterator<Item = InstanceId>) -> Self {
        Self {
            details: instances
                .into_iter()
                .map(|id| (id, RecordDetail::default()))
                .collect(),
        }
    }

    /// Records a computed batch for `instances` (every instance of the book when `None`) with
    /// each instance's own row counts.
    pub(crate) fn add_batch(
        &mut self,
        instances: Option<&[InstanceId]>,
        template: &PeriodOutcome,
        outcome: &BatchOutcome,
    ) {
        for (instance_id, detail) in self.selected(instances) {
            let counts = outcome
                .by_instance
                .get(instance_id)
                .copied()
                .unwrap_or_default();
            detail.push(PeriodOutcome {
                rows_written: counts.written,
                rows_deleted: counts.deleted,
                duration_ms: outcome.duration.as_millis() as u64,
                ..template.clone()
            });
        }
    }

    /// Records a failed batch for `instances` (every instance of the book when `None`).
    pub(crate) fn add_failure(
        &mut self,
        instances: Option<&[InstanceId]>,
        template: &PeriodOutcome,
        message: &str,
    ) {
        for (_, detail) in self.selected(instances) {
            detail.push(PeriodOutcome {
                error: Some(message.to_owned()),
                ..template.clone()
            });
        }
    }

    fn selected<'a>(
        &'a mut self,
        instances: Option<&'a [InstanceId]>,
    ) -> impl Iterator<Item = (&'a InstanceId, &'a mut RecordDetail)> + 'a {
        self.details
            .iter_mut()
            .filter(move |(id, _)| instances.is_none_or(|selected| selected.contains(id)))
    }

    /// The final outcome of each record: failed when any of its batches failed (or, with
    /// `unfinished`, when the run could not finish), else cancelled when the run was
    /// cancelled, else completed.
    pub(crate) fn into_outcomes(
        self,
        cancelled: bool,
        unfinished: Option<&str>,
    ) -> Vec<RecordOutcome> {
        self.details
            .into_iter()
            .map(|(instance_id, detail)| {
                let error = detail
                    .periods
                    .iter()
                    .find_map(|period| period.error.clone())
                    .or_else(|| unfinished.map(str::to_owned));
                let status = match (&error, cancelled) {
                    (Some(_), _) => RecordStatus::Failed,
                    (None, true) => RecordStatus::Cancelled,
                    (None, false) => RecordStatus::Completed,
                };
                RecordOutcome {
                    instance_id,
                    status,
                    items_synced: detail.rows_written as i64,
                    error_message: error,
                    detail,
                }
            })
            .collect()
    }
}
