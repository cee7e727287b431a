//! The aggregation ledger: which `(level, period_type, period_start)` have been computed, which
//! are stale, and the advisory locks that serialise writers of one period.
//!
//! Correctness with concurrent sample writers rests on lock order. A computation first locks
//! its ledger rows ([`begin_computation`], creating them if needed) and only then reads
//! samples, in a later statement of the same READ COMMITTED transaction. A sample writer
//! inserts samples and then upserts the same ledger rows (`samples::write_database_samples`).
//! Either the writer commits first — then the computation's read sees its samples — or the
//! writer's upsert waits for the computation to commit and then marks the period stale again.
//! No sample can slip between a computation and its ledger entry.
//!
//! Deadlocks are ruled out the same way: every statement that locks several ledger rows locks
//! them in `(level, period_type, period_start)` order, and a sample writer marks all of its
//! periods (the containing and the following ones) in one such statement.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Date, Integer, Nullable, Text, Timestamptz};

use capstats_capacity_model::{AggregationLevel, InstanceId, Period, PeriodType};

use crate::StoreError;
use crate::aggregation::InstanceScope;
use crate::sql::{PERIOD_LOCK_KEY_BASE, level_and_type_position};

/// The first advisory-lock key of a level and period type.
fn lock_namespace(level: AggregationLevel, period_type: PeriodType) -> i32 {
    PERIOD_LOCK_KEY_BASE + level_and_type_position(level, period_type)
}

/// Days from 1970-01-01 to `date`: the second advisory-lock key of a period.
fn day_number(date: NaiveDate) -> i32 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    i32::try_from((date - epoch).num_days()).expect("supported dates are within ±5.8 million years")
}

fn starts_and_ends(periods: &[Period]) -> (Vec<NaiveDate>, Vec<NaiveDate>) {
    periods
        .iter()
        .map(|period| (period.start(), period.end()))
        .unzip()
}

/// Takes the transaction-scoped advisory lock of every period (all of one level and type), in
/// ascending order so that two writers of overlapping batches cannot deadlock. A manual and a
/// scheduled run of the same period therefore run one after the other.
pub fn lock_periods(
    connection: &mut PgConnection,
    level: AggregationLevel,
    periods: &[Period],
) -> Result<(), StoreError> {
    let Some(first) = periods.first() else {
        return Ok(());
    };
    let days: Vec<i32> = periods
        .iter()
        .map(|period| day_number(period.start()))
        .collect();
    diesel::sql_query(
        "SELECT count(pg_advisory_xact_lock($1, day))
         FROM (SELECT unnest($2::integer[]) AS day ORDER BY 1) AS ordered",
    )
    .bind::<Integer, _>(lock_namespace(level, first.period_type()))
    .bind::<Array<Integer>, _>(days)
    .execute(connection)?;
    Ok(())
}

#[derive(QueryableByName)]
struct Written {
    #[diesel(sql_type = BigInt)]
    periods: i64,
}

/// Locks (creating when missing) the ledger rows of `periods`, records that their rows are
/// being written, and forgets the staleness of the instances in `scope`, which the caller is
/// about to recompute in the same transaction. Returns whether none of the periods had been
/// written before: then no aggregate row of them exists and a plain insert suffices.
///
/// The caller holds the periods' advisory locks ([`lock_periods`]), so no other computation
/// changes `written_at` between the read and the upsert.
pub fn begin_computation(
    connection: &mut PgConnection,
    level: AggregationLevel,
    periods: &[Period],
    scope: &InstanceScope,
) -> Result<bool, StoreError> {
    let Some(first) = periods.first() else {
        return Ok(true);
    };
    let (starts, ends) = starts_and_ends(periods);
    let written: Written = diesel::sql_query(
        "SELECT count(*) AS periods FROM aggregation_ledger
         WHERE level = $1 AND period_type = $2 AND period_start = ANY($3)
           AND written_at IS NOT NULL",
    )
    .bind::<Text, _>(level.as_str())
    .bind::<Text, _>(first.period_type().as_str())
    .bind::<Array<Date>, _>(&starts)
    .get_result(connection)?;
    diesel::sql_query(
        "INSERT INTO aggregation_ledger (level, period_type, period_start, period_end, written_at)
         SELECT $1, $2, period.start_date, period.end_date, now()
         FROM unnest($3::date[], $4::date[]) AS period (start_date, end_date)
         ORDER BY period.start_date
         ON CONFLICT (level, period_type, period_start) DO UPDATE
         SET written_at = now(), updated_at = now()",
    )
    .bind::<Text, _>(level.as_str())
    .bind::<Text, _>(first.period_type().as_str())
    .bind::<Array<Date>, _>(&starts)
    .bind::<Array<Date>, _>(&ends)
    .execute(connection)?;
    // Both SET expressions read the old row, so the CHECK tying stale_since to a non-empty
    // list holds after the update. A NULL scope (all instances) clears the list.
    diesel::sql_query(
        "UPDATE aggregation_ledger SET
             stale_instance_ids = ARRAY(
                 SELECT stale_id FROM unnest(stale_instance_ids) AS stale_id
                 WHERE $4::bigint[] IS NOT NULL AND stale_id <> ALL($4) ORDER BY 1),
             stale_since = CASE WHEN EXISTS (
                 SELECT 1 FROM unnest(stale_instance_ids) AS stale_id
                 WHERE $4::bigint[] IS NOT NULL AND stale_id <> ALL($4))
                 THEN stale_since END,
             updated_at = now()
         WHERE level = $1 AND period_type = $2 AND period_start = ANY($3)
           AND cardinality(stale_instance_ids) > 0",
    )
    .bind::<Text, _>(level.as_str())
    .bind::<Text, _>(first.period_type().as_str())
    .bind::<Array<Date>, _>(&starts)
    .bind::<Nullable<Array<BigInt>>, _>(scope.instance_ids())
    .execute(connection)?;
    Ok(written.periods == 0)
}

/// Records that every active instance has been aggregated for `periods`, by `session_id`.
/// Called in the transaction of an all-instances computation, or after the last chunk of a
/// chunked run.
pub fn mark_computed(
    connection: &mut PgConnection,
    level: AggregationLevel,
    periods: &[Period],
    session_id: Option<i64>,
) -> Result<(), StoreError> {
    let Some(first) = periods.first() else {
        return Ok(());
    };
    let (starts, _) = starts_and_ends(periods);
    diesel::sql_query(
        // Locks the rows in period order first, like every other ledger writer (see the
        // module documentation), so that this cannot deadlock with a sample writer.
        "WITH locked AS (
             SELECT level, period_type, period_start FROM aggregation_ledger
             WHERE level = $1 AND period_type = $2 AND period_start = ANY($3)
             ORDER BY period_start
             FOR UPDATE)
         UPDATE aggregation_ledger AS ledger
         SET computed_at = now(), computed_by_session_id = $4, updated_at = now()
         FROM locked
         WHERE (ledger.level, ledger.period_type, ledger.period_start)
             = (locked.level, locked.period_type, locked.period_start)",
    )
    .bind::<Text, _>(level.as_str())
    .bind::<Text, _>(first.period_type().as_str())
    .bind::<Array<Date>, _>(&starts)
    .bind::<Nullable<BigInt>, _>(session_id)
    .execute(connection)?;
    Ok(())
}

/// One ledger row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LedgerEntry {
    /// The level.
    pub level: AggregationLevel,
    /// The period.
    pub period: Period,
    /// When every active instance was last aggregated for the period; `None` if never.
    pub computed_at: Option<DateTime<Utc>>,
    /// The session that did it.
    pub computed_by_session_id: Option<i64>,
    /// Instances whose samples changed since they were last aggregated.
    pub stale_instance_ids: Vec<InstanceId>,
    /// When the oldest of those changes happened.
    pub stale_since: Option<DateTime<Utc>>,
}

impl LedgerEntry {
    /// Computed and not stale: a scheduled run skips it.
    pub fn is_up_to_date(&self) -> bool {
        self.computed_at.is_some() && self.stale_instance_ids.is_empty()
    }
}

#[derive(QueryableByName)]
struct LedgerRow {
    #[diesel(sql_type = Text)]
    level: String,
    #[diesel(sql_type = Text)]
    period_type: String,
    #[diesel(sql_type = Date)]
    period_start: NaiveDate,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    computed_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<BigInt>)]
    computed_by_session_id: Option<i64>,
    #[diesel(sql_type = Array<BigInt>)]
    stale_instance_ids: Vec<i64>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    stale_since: Option<DateTime<Utc>>,
}

impl LedgerRow {
    fn into_entry(self) -> Result<LedgerEntry, StoreError> {
        let corrupt =
            |what: String| StoreError::Corrupt(format!("aggregation_ledger holds {what}"));
        let level = self
            .level
            .parse()
            .map_err(|error| corrupt(format!("{error}")))?;
        let period_type = self
            .period_type
            .parse()
            .map_err(|error| corrupt(format!("{error}")))?;
        let period = Period::starting_on(period_type, self.period_start)
            .map_err(|error| corrupt(format!("{error}")))?;
        Ok(LedgerEntry {
            level,
            period,
            computed_at: self.computed_at,
            computed_by_session_id: self.computed_by_session_id,
            stale_instance_ids: self
                .stale_instance_ids
                .into_iter()
                .map(InstanceId)
                .collect(),
            stale_since: self.stale_since,
        })
    }
}

const LEDGER_COLUMNS: &str = "level, period_type, period_start, computed_at, \
     computed_by_session_id, stale_instance_ids, stale_since";

/// The ledger entries of `level` and `period_type` whose period starts in `[from, to]`.
pub fn entries_between(
    connection: &mut PgConnection,
    level: AggregationLevel,
    period_type: PeriodType,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<LedgerEntry>, StoreError> {
    let rows: Vec<LedgerRow> = diesel::sql_query(format!(
        "SELECT {LEDGER_COLUMNS} FROM aggregation_ledger
         WHERE level = $1 AND period_type = $2 AND period_start BETWEEN $3 AND $4
         ORDER BY period_start"
    ))
    .bind::<Text, _>(level.as_str())
    .bind::<Text, _>(period_type.as_str())
    .bind::<Date, _>(from)
    .bind::<Date, _>(to)
    .load(connection)?;
    rows.into_iter().map(LedgerRow::into_entry).collect()
}

/// Computed entries that some instance's late or corrected samples made stale, oldest change
/// first, at most `limit`; with `starting_from`, only periods that start on or after it (the
/// sample retention's first day: a period starting earlier would be recomputed from part of
/// its samples, so its entry stays stale and its stored figures as they were).
pub fn stale_entries(
    connection: &mut PgConnection,
    limit: i64,
    starting_from: Option<NaiveDate>,
) -> Result<Vec<LedgerEntry>, StoreError> {
    let rows: Vec<LedgerRow> = diesel::sql_query(format!(
        "SELECT {LEDGER_COLUMNS} FROM aggregation_ledger
         WHERE stale_since IS NOT NULL AND computed_at IS NOT NULL
           AND ($2::date IS NULL OR period_start >= $2)
         ORDER BY stale_since, level, period_type, period_start
         LIMIT $1"
    ))
    .bind::<BigInt, _>(limit)
    .bind::<diesel::sql_types::Nullable<Date>, _>(starting_from)
    .load(connection)?;
    rows.into_iter().map(LedgerRow::into_entry).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_are_distinct_per_level_and_type() {
        let mut keys = std::collections::BTreeSet::new();
        for level in AggregationLevel::ALL {
            for period_type in PeriodType::ALL {
                assert!(keys.insert(lock_namespace(level, period_type)));
            }
        }
        assert_eq!(day_number(NaiveDate::from_ymd_opt(1970, 1, 2).unwrap()), 1);
    }
}
