//! The planner's reads: each key's size at the start and end of a window of periods (growth),
//! and the daily sizes a forecast is fitted to, with the capacity limits set on the keys.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Date, Nullable, Text};

use capstats_capacity_model::{AggregationLevel, InstanceId, Period};

use super::*;
use crate::StoreError;
use crate::level_tables::LevelTables;

/// A key's first and last stored period of a window, for the growth leaderboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyGrowth {
    /// The instance.
    pub instance: InstanceLabel,
    /// The database, at the database level.
    pub database_name: Option<String>,
    /// The database's id in the inventory, at the database level.
    pub database_id: Option<i64>,
    /// The size at which the key is full, if one is set.
    pub capacity_limit_mb: Option<i64>,
    /// The key's earliest period in the window.
    pub first_period: Period,
    /// Its size then: the average size of a database, the total of an instance.
    pub first_size_mb: i64,
    /// The key's latest period in the window.
    pub last_period: Period,
    /// Its size then.
    pub last_size_mb: i64,
    /// How many daily samples the latest period has.
    pub last_data_count: i64,
    /// How complete the latest period is (stored with its row).
    pub last_completeness: Completeness,
}

#[derive(QueryableByName)]
struct GrowthRow {
    #[diesel(sql_type = BigInt)]
    instance_id: i64,
    #[diesel(sql_type = Text)]
    instance_name: String,
    #[diesel(sql_type = Text)]
    db_type: String,
    #[diesel(sql_type = Text)]
    database_name: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    capacity_limit_mb: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    database_id: Option<i64>,
    #[diesel(sql_type = Text)]
    period_type: String,
    #[diesel(sql_type = Date)]
    first_start: NaiveDate,
    #[diesel(sql_type = Date)]
    first_end: NaiveDate,
    #[diesel(sql_type = BigInt)]
    first_size: i64,
    #[diesel(sql_type = Date)]
    last_start: NaiveDate,
    #[diesel(sql_type = Date)]
    last_end: NaiveDate,
    #[diesel(sql_type = BigInt)]
    last_size: i64,
    #[diesel(sql_type = BigInt)]
    last_count: i64,
    #[diesel(sql_type = BigInt)]
    last_expected_count: i64,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    last_is_partial: bool,
}

/// The size column growth is measured on: a database's average size, an instance's total.
fn size_column(level: AggregationLevel) -> &'static str {
    match level {
        AggregationLevel::Database => "avg_size_mb",
        AggregationLevel::Instance => "total_size_mb",
    }
}

/// What the rows of `level` read of their key's inventory: the join (none at the instance
/// level, whose limit is on the `instance` row joined already), the capacity limit's column
/// and the database's inventory id (NULL for instances), given the row's instance id and
/// database name expressions.
fn inventory_of(
    level: AggregationLevel,
    instance_id: &str,
    database_name: &str,
) -> (String, &'static str, &'static str) {
    match level {
        AggregationLevel::Database => (
            format!(
                "LEFT JOIN instance_databases known
                     ON known.instance_id = {instance_id} AND known.database_name = {database_name}
                    AND known.deleted_at IS NULL"
            ),
            "known.capacity_limit_mb",
            "known.id",
        ),
        AggregationLevel::Instance => (String::new(), "instance.capacity_limit_mb", "NULL::bigint"),
    }
}

/// Each key matching `filter` with its first and last stored period among the periods
/// starting in the filter's window, ordered by instance id and database name.
pub fn growth(
    connection: &mut PgConnection,
    level: AggregationLevel,
    filter: &AggregateFilter,
) -> Result<Vec<KeyGrowth>, StoreError> {
    let (table, database) = level_table(level);
    let size = size_column(level);
    let (limit, limit_column, id_column) =
        inventory_of(level, "ends.instance_id", "ends.database_name");
    // One pass over the window's rows of the matching keys, sorted once: each key's rows
    // newest first, so DISTINCT ON keeps its last row and `last_value` over the whole
    // partition reads its first. Nine ordered aggregates, one sort each per key, took 34 ms
    // for 22,000 rows of 2,066 keys; this takes 23 (docs/performance.md).
    let query = diesel::sql_query(format!(
        "WITH ends AS (
             SELECT DISTINCT ON (aggregate.instance_id, 2)
                    aggregate.instance_id, {database} AS database_name,
                    last_value(aggregate.period_start) OVER newest_first AS first_start,
                    last_value(aggregate.period_end) OVER newest_first AS first_end,
                    last_value(aggregate.{size}) OVER newest_first AS first_size,
                    aggregate.period_start AS last_start, aggregate.period_end AS last_end,
                    aggregate.{size} AS last_size, aggregate.data_count AS last_count,
                    aggregate.expected_count AS last_expected_count,
                    aggregate.is_partial AS last_is_partial
             FROM {table} aggregate
             WHERE {matching}
             WINDOW newest_first AS (
                 PARTITION BY aggregate.instance_id, {database}
                 ORDER BY aggregate.period_start DESC
                 ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
             -- By position: at the instance level the name is a constant.
             ORDER BY aggregate.instance_id, 2, aggregate.period_start DESC)
         SELECT ends.instance_id, instance.name AS instance_name, instance.db_type,
                ends.database_name, {limit_column} AS capacity_limit_mb,
                {id_column} AS database_id, $1 AS period_type, ends.first_start, ends.first_end, ends.first_size,
                ends.last_start, ends.last_end, ends.last_size, ends.last_count,
                ends.last_expected_count, ends.last_is_partial
         FROM ends
         JOIN instances instance ON instance.id = ends.instance_id
         {limit}
         ORDER BY ends.instance_id, ends.database_name",
        matching = matching_condition(level),
    ));
    let rows: Vec<GrowthRow> = with_key_memory(connection, |connection| {
        Ok(bind_matching!(query, filter).load(connection)?)
    })?;
    rows.into_iter()
        .map(|row| {
            Ok(KeyGrowth {
                instance: label(row.instance_id, row.instance_name, &row.db_type)?,
                database_name: (level == AggregationLevel::Database).then_some(row.database_name),
                database_id: row.database_id,
                capacity_limit_mb: row.capacity_limit_mb,
                first_period: period(&row.period_type, row.first_start, row.first_end)?,
                first_size_mb: row.first_size,
                last_period: period(&row.period_type, row.last_start, row.last_end)?,
                last_size_mb: row.last_size,
                last_data_count: row.last_count,
                last_completeness: Completeness {
                    expected_count: row.last_expected_count,
                    is_partial: row.last_is_partial,
                },
            })
        })
        .collect()
}

/// A key's daily sizes in a window of sample dates, for a forecast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyHistory {
    /// The instance.
    pub instance: InstanceLabel,
    /// The database, at the database level.
    pub database_name: Option<String>,
    /// The size at which the key is full, if one is set.
    pub capacity_limit_mb: Option<i64>,
    /// `(date, size in MB)` by date: a database's size, an instance's total.
    pub points: Vec<(NaiveDate, i64)>,
}

#[derive(QueryableByName)]
struct HistoryRow {
    #[diesel(sql_type = BigInt)]
    instance_id: i64,
    #[diesel(sql_type = Text)]
    database_name: String,
    #[diesel(sql_type = Date)]
    collected_date: NaiveDate,
    #[diesel(sql_type = BigInt)]
    size_mb: i64,
}

/// An instance of a chunk of histories, with its capacity limit.
#[derive(QueryableByName)]
struct HistoryInstance {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    db_type: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    capacity_limit_mb: Option<i64>,
}

/// A database's capacity limit in the inventory.
#[derive(QueryableByName)]
struct DatabaseLimit {
    #[diesel(sql_type = BigInt)]
    instance_id: i64,
    #[diesel(sql_type = Text)]
    database_name: String,
    #[diesel(sql_type = BigInt)]
    capacity_limit_mb: i64,
}

/// Which keys a read of daily histories selects.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeySelection {
    /// Every key of the filter.
    Every,
    /// Only the keys with a capacity limit set (an instance's, or a database's in the
    /// inventory): the only ones that can fill up.
    WithCapacityLimit,
    /// Only these keys among the filter's (a page of a ranking): `(instance, database name)`
    /// at the database level, `(instance, None)` at the instance level.
    Keys(Vec<(InstanceId, Option<String>)>),
}

impl KeySelection {
    /// [`KeySelection::WithCapacityLimit`] when `only_limited`, else [`KeySelection::Every`]
    /// (a flag or parameter `with_capacity_limit`).
    pub fn of_capacity_limit(only_limited: bool) -> Self {
        if only_limited {
            Self::WithCapacityLimit
        } else {
            Self::Every
        }
    }
}

/// How many instances' histories one query reads: bounds the rows held at once whatever the
/// fleet's size (an instance has at most a few hundred databases, a window a few hundred
/// days).
const HISTORY_INSTANCES_PER_READ: usize = 50;

/// The daily histories of the keys matching `filter` among the samples dated in
/// `[filter.start, filter.end]` (the period type is not used), handed to `each` a few
/// instances at a time, by instance id and database name. Keys without a sample in the window
/// are left out.
pub fn for_each_daily_history<E: From<StoreError>>(
    connection: &mut PgConnection,
    level: AggregationLevel,
    filter: &AggregateFilter,
    selection: KeySelection,
    mut each: impl FnMut(DailyHistory) -> Result<(), E>,
) -> Result<(), E> {
    let instances = matching_instance_ids(connection, level, filter, &selection)?;
    let (source, size) = match level {
        AggregationLevel::Database => ("database_size_stats", "size_mb"),
        AggregationLevel::Instance => ("instance_size_stats", "total_size_mb"),
    };
    let tables = LevelTables::of(level);
    let database = tables.database_name_of("sample");
    let database_condition = tables.has_database_name.then_some("sample.database_name");
    let listed = match (&selection, level) {
        (KeySelection::Keys(keys), AggregationLevel::Database) => Some(
            keys.iter()
                .filter_map(|(instance, name)| Some((instance.0, name.clone()?)))
                .unzip::<_, _, Vec<i64>, Vec<String>>(),
        ),
        _ => None,
    };
    let limited = match (&selection, level) {
        (KeySelection::Every | KeySelection::Keys(_), _)
        | (KeySelection::WithCapacityLimit, AggregationLevel::Instance) => "",
        (KeySelection::WithCapacityLimit, AggregationLevel::Database) => {
            "AND EXISTS (SELECT 1 FROM instance_databases known
                         WHERE known.instance_id = sample.instance_id
                           AND known.database_name = sample.database_name
                           AND known.deleted_at IS NULL AND known.capacity_limit_mb IS NOT NULL)"
        }
    };
    // Listed databases are looked up key by key ($8, $9): one range of the primary key per
    // key and partition instead of every sample of their instances.
    let listed_source = if listed.is_some() {
        "unnest($8::bigint[], $9::text[]) AS wanted (instance_id, database_name)
         JOIN database_size_stats sample ON sample.instance_id = wanted.instance_id
                                        AND sample.database_name = wanted.database_name"
            .to_owned()
    } else {
        format!("{source} sample")
    };
    // The window is of sample dates here ($2..$3); the period type ($1) is not used. The
    // samples come unordered and without their labels: sorting 80,000 rows of 50 instances by
    // key took PostgreSQL 55 ms (more when it spilled to disk), joining each row to its
    // instance and inventory row another 10 ms, against 16 ms for the read itself
    // (docs/performance.md, "Planning endpoints"). Rust groups them by key instead, and the
    // labels and limits come per key from two small queries.
    let query = format!(
        "SELECT sample.instance_id, {database} AS database_name,
                sample.collected_date, sample.{size} AS size_mb
         FROM {listed_source}
         WHERE sample.collected_date BETWEEN $2 AND $3 AND {keys} {limited}",
        keys = filter::key_condition("sample.instance_id", database_condition),
    );
    for chunk in instances.chunks(HISTORY_INSTANCES_PER_READ) {
        let chunk_filter = AggregateFilter {
            instance_ids: chunk.to_vec(),
            ..filter.clone()
        };
        let query = bind_matching!(diesel::sql_query(&query), &chunk_filter);
        let rows: Vec<HistoryRow> = match &listed {
            Some((instances, names)) => query
                .bind::<diesel::sql_types::Array<BigInt>, _>(instances)
                .bind::<diesel::sql_types::Array<Text>, _>(names)
                .load(connection),
            None => query.load(connection),
        }
        .map_err(StoreError::from)?;
        if rows.is_empty() {
            continue;
        }
        let mut histories: BTreeMap<(i64, String), Vec<(NaiveDate, i64)>> = BTreeMap::new();
        for row in rows {
            histories
                .entry((row.instance_id, row.database_name))
                .or_default()
                .push((row.collected_date, row.size_mb));
        }
        let ids: Vec<i64> = chunk.iter().map(|id| id.0).collect();
        let labels: BTreeMap<i64, HistoryInstance> = diesel::sql_query(
            "SELECT id, name, db_type, capacity_limit_mb FROM instances WHERE id = ANY($1)",
        )
        .bind::<diesel::sql_types::Array<BigInt>, _>(&ids)
        .load::<HistoryInstance>(connection)
        .map_err(StoreError::from)?
        .into_iter()
        .map(|instance| (instance.id, instance))
        .collect();
        let database_limits: BTreeMap<(i64, String), i64> = match level {
            AggregationLevel::Database => diesel::sql_query(
                "SELECT instance_id, database_name, capacity_limit_mb FROM instance_databases
                 WHERE instance_id = ANY($1) AND deleted_at IS NULL
                   AND capacity_limit_mb IS NOT NULL",
            )
            .bind::<diesel::sql_types::Array<BigInt>, _>(&ids)
            .load::<DatabaseLimit>(connection)
            .map_err(StoreError::from)?
            .into_iter()
            .map(|limit| {
                (
                    (limit.instance_id, limit.database_name),
                    limit.capacity_limit_mb,
                )
            })
            .collect(),
            AggregationLevel::Instance => BTreeMap::new(),
        };
        for ((instance_id, database_name), mut points) in histories {
            let instance = labels
                .get(&instance_id)
                .ok_or_else(|| corrupt(format!("samples of a missing instance {instance_id}")))?;
            points.sort_unstable();
            let (database_name, capacity_limit_mb) = match level {
                AggregationLevel::Database => {
                    let limit = database_limits
                        .get(&(instance_id, database_name.clone()))
                        .copied();
                    (Some(database_name), limit)
                }
                AggregationLevel::Instance => (None, instance.capacity_limit_mb),
            };
            each(DailyHistory {
                instance: label(instance_id, instance.name.clone(), &instance.db_type)?,
                database_name,
                capacity_limit_mb,
                points,
            })?;
        }
    }
    Ok(())
}

/// The ids of the instances `filter`'s instance and engine conditions match, ascending; with
/// [`KeySelection::WithCapacityLimit`], only those with a limit on themselves (instance level)
/// or on one of their databases (database level); with [`KeySelection::Keys`], only the
/// keys' instances.
fn matching_instance_ids(
    connection: &mut PgConnection,
    level: AggregationLevel,
    filter: &AggregateFilter,
    selection: &KeySelection,
) -> Result<Vec<InstanceId>, StoreError> {
    #[derive(QueryableByName)]
    struct IdRow {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let limited = match (selection, level) {
        (KeySelection::Every | KeySelection::Keys(_), _) => "",
        (KeySelection::WithCapacityLimit, AggregationLevel::Instance) => {
            "AND capacity_limit_mb IS NOT NULL"
        }
        (KeySelection::WithCapacityLimit, AggregationLevel::Database) => {
            "AND id IN (SELECT instance_id FROM instance_databases
                        WHERE deleted_at IS NULL AND capacity_limit_mb IS NOT NULL)"
        }
    };
    let query = diesel::sql_query(format!(
        "SELECT id FROM instances WHERE {} {limited} ORDER BY id",
        filter::key_condition("id", None)
    ));
    let rows: Vec<IdRow> = bind_matching!(query, filter).load(connection)?;
    let mut ids: Vec<InstanceId> = rows.into_iter().map(|row| InstanceId(row.id)).collect();
    if let KeySelection::Keys(keys) = selection {
        ids.retain(|id| keys.iter().any(|(instance, _)| instance == id));
    }
    Ok(ids)
}
