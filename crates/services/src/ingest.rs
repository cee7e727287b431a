//! Ingesting batches of samples sent by programs (the API's `POST /capacity/stats`): every item
//! is checked first, and a batch with any bad item is rejected whole, listing each bad item's
//! index and reason, so that a client can fix all of them and resend without anything written.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};

use capstats_capacity_model::{DatabaseSizeSample, InstanceId, SampleDates};
use capstats_store::PgConnection;
use capstats_store::instances;
use capstats_store::samples::{NewDatabaseSample, WriteSummary, write_database_samples};

use crate::ServiceError;

/// The most samples one batch may carry.
pub const MAX_BATCH_ITEMS: usize = 10_000;

/// One sample as a client sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestItem {
    /// The sample.
    pub sample: DatabaseSizeSample,
    /// When it was collected; the time of the request when the client does not say.
    pub collected_at: Option<DateTime<Utc>>,
}

/// What is wrong with one item of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemProblem {
    /// The item's position in the batch, from 0.
    pub index: usize,
    /// The item's field at fault.
    pub field: &'static str,
    /// A stable code: `not_found`, `inactive`, `required`, `too_long`, `negative`, …
    pub code: &'static str,
    /// What is wrong, for people.
    pub message: String,
}

/// A batch that was not written, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{summary}")]
pub struct RejectedBatch {
    /// One line for people.
    pub summary: String,
    /// The bad items (empty when the batch as a whole is wrong: empty or too large).
    pub problems: Vec<ItemProblem>,
}

impl RejectedBatch {
    fn whole(summary: String) -> Self {
        Self {
            summary,
            problems: Vec::new(),
        }
    }
}

/// Checks every item of `items` against `dates` (today, the current business date, and the
/// first day the sample retention keeps) and the stored instances, then — only if all are valid — writes them with
/// [`capstats_store::samples::write_database_samples`] in one transaction: samples upserted, instance
/// totals and inventory refreshed, and already-aggregated periods marked stale.
pub fn ingest_samples(
    connection: &mut PgConnection,
    items: &[IngestItem],
    dates: SampleDates,
    received_at: DateTime<Utc>,
) -> Result<WriteSummary, ServiceError> {
    if items.is_empty() {
        return Err(RejectedBatch::whole("the batch has no items".into()).into());
    }
    if items.len() > MAX_BATCH_ITEMS {
        crate::metrics::samples_ingested(items.len() as u64, false);
        return Err(RejectedBatch::whole(format!(
            "the batch has {} items; send at most {MAX_BATCH_ITEMS} per request",
            items.len()
        ))
        .into());
    }
    let mut ids: Vec<InstanceId> = items.iter().map(|item| item.sample.instance_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let stored: HashMap<InstanceId, instances::Instance> =
        instances::find_by_ids(connection, &ids)?
            .into_iter()
            .map(|instance| (instance.id, instance))
            .collect();

    let mut problems = Vec::new();
    let mut first_of_key: HashMap<(InstanceId, &str, NaiveDate), usize> = HashMap::new();
    for (index, item) in items.iter().enumerate() {
        let sample = &item.sample;
        match stored.get(&sample.instance_id) {
            None => problems.push(ItemProblem {
                index,
                field: "instance_id",
                code: "not_found",
                message: format!("instance {} does not exist", sample.instance_id),
            }),
            Some(instance) if instance.deleted_at.is_some() => problems.push(ItemProblem {
                index,
                field: "instance_id",
                code: "not_found",
                message: format!("instance {} has been deleted", sample.instance_id),
            }),
            Some(instance) if !instance.is_active => problems.push(ItemProblem {
                index,
                field: "instance_id",
                code: "inactive",
                message: format!(
                    "instance {} (`{}`) is inactive; activate it before sending samples",
                    instance.id, instance.name
                ),
            }),
            Some(_) => {}
        }
        problems.extend(sample.problems(dates).into_iter().map(|error| ItemProblem {
            index,
            field: error.field(),
            code: error.code(),
            message: error.to_string(),
        }));
        let key = (
            sample.instance_id,
            sample.database_name.as_str(),
            sample.collected_date,
        );
        match first_of_key.entry(key) {
            Entry::Vacant(slot) => {
                slot.insert(index);
            }
            Entry::Occupied(first) => problems.push(ItemProblem {
                index,
                field: "database_name",
                code: "duplicate",
                message: format!(
                    "item {} already carries instance {}, database `{}` on {}",
                    first.get(),
                    sample.instance_id,
                    sample.database_name,
                    sample.collected_date
                ),
            }),
        }
    }
    if !problems.is_empty() {
        crate::metrics::samples_ingested(items.len() as u64, false);
        let bad_items = problems
            .iter()
            .map(|problem| problem.index)
            .collect::<HashSet<_>>()
            .len();
        return Err(RejectedBatch {
            summary: format!(
                "{bad_items} of {} items are invalid; nothing was written",
                items.len()
            ),
            problems,
        }
        .into());
    }
    let samples: Vec<NewDatabaseSample> = items
        .iter()
        .map(|item| NewDatabaseSample {
            sample: item.sample.clone(),
            collected_at: item.collected_at.unwrap_or(received_at),
        })
        .collect();
    let written = write_database_samples(connection, &samples)?;
    crate::metrics::samples_ingested(items.len() as u64, true);
    Ok(written)
}
