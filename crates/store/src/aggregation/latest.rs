//! Each key's row in its latest stored period (`database_latest_aggregations`,
//! `instance_latest_aggregations`), kept true by the transaction that writes the aggregates.
//!
//! The capacity summaries and chart rankings read "each key's latest row in the window"; for a
//! window that reaches the newest stored period that is this table, a few thousand rows of one
//! small table instead of a period of the partitioned table plus a probe per period for every
//! key missing from it (`crate::aggregates`, docs/performance.md).
//!
//! After a batch has replaced the rows of some instances for the periods `first..=last`:
//! 1. the latest rows of those instances that lie in the batch, or that lie before it while
//!    the key has a row in it now, are deleted (both are superseded or gone);
//! 2. each key's newest row of the batch is inserted, unless the key keeps a latest row newer
//!    than the batch;
//! 3. a key whose latest row was in the batch and which has no row there any more (its samples
//!    were removed) gets its newest row before the batch back, if it has one.

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Date, Integer, Text};

use capstats_capacity_model::{AggregationLevel, Period};

use crate::StoreError;
use crate::level_tables::LevelTables;
use crate::sql::{LATEST_ROWS_LOCK_KEY, level_and_type_position};

/// A key whose latest row was deleted from the batch's periods.
#[derive(QueryableByName)]
struct RemovedKey {
    #[diesel(sql_type = BigInt)]
    instance_id: i64,
    #[diesel(sql_type = Text)]
    database_name: String,
}

/// Brings the latest rows of `instance_ids` up to date after their rows of `periods` (consecutive,
/// one type) were rewritten in this transaction. `lost_keys_of` are the instances for which the
/// batch deleted rows of keys without samples; only their keys can have lost their latest row.
pub(crate) fn refresh_latest(
    connection: &mut PgConnection,
    level: AggregationLevel,
    periods: &[Period],
    instance_ids: &[i64],
    lost_keys_of: &[i64],
) -> Result<(), StoreError> {
    let (Some(first), Some(last)) = (periods.first(), periods.last()) else {
        return Ok(());
    };
    if instance_ids.is_empty() {
        return Ok(());
    }
    let tables = LevelTables::of(level);
    let (table, latest, key) = (tables.aggregates, tables.latest, tables.key);
    let starts: Vec<NaiveDate> = periods.iter().map(Period::start).collect();
    // A longer batch's newest row of each key is found before the lock below: the batch's rows
    // are this transaction's and its periods are locked, so no other transaction changes them,
    // and the read (a second or more over a year of daily rows) does not hold up the other
    // batches of the type, as it did inside the lock (docs/performance.md).
    let newest = if periods.len() > 1 {
        Some(newest_of_batch(
            connection,
            level,
            first,
            last,
            instance_ids,
            &starts,
        )?)
    } else {
        None
    };
    // One batch of a level and type at a time (`LATEST_ROWS_LOCK_KEY`): held to the commit, so
    // each statement below reads what an earlier batch committed. Taken after the batch's
    // own statement, so that concurrent batches compute their periods side by side.
    diesel::sql_query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind::<Integer, _>(LATEST_ROWS_LOCK_KEY)
        .bind::<Integer, _>(level_and_type_position(level, first.period_type()))
        .execute(connection)?;
    let database_name = tables.database_name_of("removed");
    // Step 1 deletes a key's latest row when it lies in the batch, or before it while the key
    // has a row in the batch. For one period that is a primary-key probe per latest row ($5:
    // the period start); a longer batch names its keys ($5, $7: those of `newest`), since a
    // probe per period of a year of days took seconds per batch (docs/performance.md).
    // Only keys of instances that lost keys ($6) can need step 3.
    let has_row_in_batch = match &newest {
        None => format!(
            "EXISTS (SELECT 1 FROM {table} aggregate
                     WHERE aggregate.period_type = $1
                       AND aggregate.period_start BETWEEN $3 AND $4
                       AND aggregate.period_start = ANY($5)
                       AND aggregate.instance_id = latest.instance_id {same_key})",
            same_key = tables.same_database("aggregate", "latest"),
        ),
        Some(_) => format!(
            "({latest_key}) IN (SELECT {key}
                                FROM unnest($5::bigint[], $7::text[])
                                     AS newest (instance_id, database_name))",
            latest_key = tables.qualified_key("latest"),
        ),
    };
    let delete = diesel::sql_query(format!(
        "WITH removed AS (
             DELETE FROM {latest} latest
             WHERE latest.period_type = $1 AND latest.instance_id = ANY($2)
               AND latest.period_start <= $4
               AND (latest.period_start >= $3 OR {has_row_in_batch})
             RETURNING {key}, latest.period_start)
         SELECT removed.instance_id, {database_name} AS database_name
         FROM removed
         WHERE removed.period_start >= $3 AND removed.instance_id = ANY($6)"
    ))
    .into_boxed::<diesel::pg::Pg>()
    .bind::<Text, _>(first.period_type().as_str())
    .bind::<Array<BigInt>, _>(instance_ids)
    .bind::<Date, _>(first.start())
    .bind::<Date, _>(last.start());
    let removed: Vec<RemovedKey> = match &newest {
        None => delete
            .bind::<Array<Date>, _>(&starts)
            .bind::<Array<BigInt>, _>(lost_keys_of)
            .load(connection)?,
        Some(newest) => delete
            .bind::<Array<BigInt>, _>(&newest.instance_ids)
            .bind::<Array<BigInt>, _>(lost_keys_of)
            .bind::<Array<Text>, _>(&newest.database_names)
            .load(connection)?,
    };
    // After the deletion a key of these instances that has a row in the batch keeps a latest
    // row only if that row is newer than the batch (a later period computed before, such as
    // the running one by "aggregate now"): then the insert leaves the key as it is. When no
    // later period of the level and type is stored at all (the period counts, kept in the
    // same transactions as the rows, say so in one index look-up), the insert cannot
    // conflict — only this transaction inserts latest rows of the level and type while it
    // holds the lock — and a plain insert costs about half as much as one that resolves
    // conflicts (docs/performance.md).
    let newer_kept: crate::sql::Exists = diesel::sql_query(
        "SELECT EXISTS (SELECT 1 FROM aggregate_period_counts
                        WHERE level = $1 AND period_type = $2 AND period_start > $3) AS found",
    )
    .bind::<Text, _>(level.as_str())
    .bind::<Text, _>(first.period_type().as_str())
    .bind::<Date, _>(last.start())
    .get_result(connection)?;
    let on_conflict = if newer_kept.found {
        "ON CONFLICT DO NOTHING"
    } else {
        ""
    };
    match newest {
        // A batch of one period holds one row per key: each is the key's newest. The read
        // names the period start ($5) besides the range: with only a range before the
        // instance column, the primary key cannot seek to an instance, and every instance of
        // the list re-read the whole period — 25–50 ms per level and type for a chunk of 200
        // instances out of 400, growing with the fleet (docs/performance.md).
        None => diesel::sql_query(format!(
            "INSERT INTO {latest}
             SELECT aggregate.* FROM {table} aggregate
             WHERE aggregate.period_type = $1 AND aggregate.instance_id = ANY($2)
               AND aggregate.period_start BETWEEN $3 AND $4
               AND aggregate.period_start = ANY($5)
             {on_conflict}"
        ))
        .bind::<Text, _>(first.period_type().as_str())
        .bind::<Array<BigInt>, _>(instance_ids)
        .bind::<Date, _>(first.start())
        .bind::<Date, _>(last.start())
        .bind::<Array<Date>, _>(&starts)
        .execute(connection)?,
        // One primary-key look-up per key, forced by the lateral `LIMIT`: while the aggregates
        // have no statistics yet (a backfill into empty tables), a plain join of the list
        // with the table took 3–4 s per daily batch in the backfill benchmark.
        Some(newest) => diesel::sql_query(format!(
            "INSERT INTO {latest}
             SELECT found.*
             FROM unnest($2::bigint[], $3::text[], $4::date[])
                  AS newest (instance_id, database_name, period_start)
             CROSS JOIN LATERAL (
                 SELECT aggregate.* FROM {table} aggregate
                 WHERE aggregate.period_type = $1 AND aggregate.period_start = newest.period_start
                   AND aggregate.instance_id = newest.instance_id {same_key}
                 LIMIT 1) found
             {on_conflict}",
            same_key = tables.same_database("aggregate", "newest"),
        ))
        .bind::<Text, _>(first.period_type().as_str())
        .bind::<Array<BigInt>, _>(newest.instance_ids)
        .bind::<Array<Text>, _>(newest.database_names)
        .bind::<Array<Date>, _>(newest.period_starts)
        .execute(connection)?,
    };
    if removed.is_empty() {
        return Ok(());
    }
    restore_earlier(connection, level, *first, removed)
}

/// The key and period of each key's newest row in a batch, as three parallel lists.
struct NewestRows {
    instance_ids: Vec<i64>,
    database_names: Vec<String>,
    period_starts: Vec<NaiveDate>,
}

/// One key's newest period in a batch.
#[derive(QueryableByName)]
struct NewestRow {
    #[diesel(sql_type = BigInt)]
    instance_id: i64,
    #[diesel(sql_type = Text)]
    database_name: String,
    #[diesel(sql_type = Date)]
    period_start: NaiveDate,
}

/// Each key's newest period among the rows of `instance_ids` in the batch `first..=last`
/// (period starts `starts`), found on the key columns alone (a hash aggregate): sorting every
/// row of the batch whole to keep one per key took seconds in a backfill. The read names the
/// period starts besides the range, so that the primary key seeks to each instance.
fn newest_of_batch(
    connection: &mut PgConnection,
    level: AggregationLevel,
    first: &Period,
    last: &Period,
    instance_ids: &[i64],
    starts: &[NaiveDate],
) -> Result<NewestRows, StoreError> {
    let tables = LevelTables::of(level);
    let (table, key) = (tables.aggregates, tables.key);
    let database_name = tables.database_name_of("aggregate");
    let rows: Vec<NewestRow> = diesel::sql_query(format!(
        "SELECT aggregate.instance_id, {database_name} AS database_name,
                max(aggregate.period_start) AS period_start
         FROM {table} aggregate
         WHERE aggregate.period_type = $1 AND aggregate.instance_id = ANY($2)
           AND aggregate.period_start BETWEEN $3 AND $4 AND aggregate.period_start = ANY($5)
         GROUP BY {key}"
    ))
    .bind::<Text, _>(first.period_type().as_str())
    .bind::<Array<BigInt>, _>(instance_ids)
    .bind::<Date, _>(first.start())
    .bind::<Date, _>(last.start())
    .bind::<Array<Date>, _>(starts)
    .load(connection)?;
    let mut newest = NewestRows {
        instance_ids: Vec::with_capacity(rows.len()),
        database_names: Vec::with_capacity(rows.len()),
        period_starts: Vec::with_capacity(rows.len()),
    };
    for row in rows {
        newest.instance_ids.push(row.instance_id);
        newest.database_names.push(row.database_name);
        newest.period_starts.push(row.period_start);
    }
    Ok(newest)
}

/// Gives each of `removed` that has no latest row now its newest row before `first`, looked up
/// among the stored period starts of the type (one primary-key descent per period).
fn restore_earlier(
    connection: &mut PgConnection,
    level: AggregationLevel,
    first: Period,
    removed: Vec<RemovedKey>,
) -> Result<(), StoreError> {
    let tables = LevelTables::of(level);
    let (table, latest) = (tables.aggregates, tables.latest);
    let same_key = tables.same_database("aggregate", "removed");
    let key_match = tables.same_database("latest", "removed");
    let (instances, names): (Vec<i64>, Vec<String>) = removed
        .into_iter()
        .map(|key| (key.instance_id, key.database_name))
        .unzip();
    diesel::sql_query(format!(
        "INSERT INTO {latest}
         SELECT found.*
         FROM unnest($2::bigint[], $3::text[]) AS removed (instance_id, database_name)
         CROSS JOIN LATERAL (
             SELECT aggregate.* FROM {table} aggregate
             WHERE aggregate.period_type = $1 AND aggregate.period_start < $4
               AND aggregate.period_start = ANY(
                   ARRAY(SELECT counted.period_start FROM aggregate_period_counts counted
                         WHERE counted.level = $5 AND counted.period_type = $1
                           AND counted.period_start < $4))
               AND aggregate.instance_id = removed.instance_id {same_key}
             ORDER BY aggregate.period_start DESC
             LIMIT 1) found
         WHERE NOT EXISTS (SELECT 1 FROM {latest} latest
                           WHERE latest.period_type = $1
                             AND latest.instance_id = removed.instance_id {key_match})"
    ))
    .bind::<Text, _>(first.period_type().as_str())
    .bind::<Array<BigInt>, _>(instances)
    .bind::<Array<Text>, _>(names)
    .bind::<Date, _>(first.start())
    .bind::<Text, _>(level.as_str())
    .execute(connection)?;
    Ok(())
}
