//! The capacity filter — period type, window, instances, engines, one database — written once
//! as SQL conditions over fixed parameters, which every read of stored aggregates, of their
//! counts, of the inventory and of the instance totals binds the same way.

use chrono::NaiveDate;

use capstats_capacity_model::{AggregationLevel, DbType, InstanceId, PeriodType};

/// Which aggregates a read covers: one period type, periods starting in `[start, end]`, and
/// optionally some instances, engines or one database name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregateFilter {
    /// The period type.
    pub period_type: PeriodType,
    /// Earliest period start.
    pub start: NaiveDate,
    /// Latest period start.
    pub end: NaiveDate,
    /// Only these instances (all when empty).
    pub instance_ids: Vec<InstanceId>,
    /// Only instances of these engines (all when empty).
    pub db_types: Vec<DbType>,
    /// Only databases of this name (database level).
    pub database_name: Option<String>,
}

impl AggregateFilter {
    /// Whether the filter narrows the keys at all (instances, engines or a database name).
    pub(crate) fn narrows_keys(&self) -> bool {
        !self.instance_ids.is_empty() || !self.db_types.is_empty() || self.database_name.is_some()
    }
}

/// The engine names of a filter.
pub(super) fn engines_of(filter: &AggregateFilter) -> Vec<&'static str> {
    filter
        .db_types
        .iter()
        .map(|db_type| db_type.as_str())
        .collect()
}

// The parameters every filtered read binds, in this order (`bind_matching!`):
// $1 period type, $2..$3 the window (earliest and latest period start, or sample dates),
// $4 instance ids, $5 engines, $6 database name, $7 the starts of the window's periods.
// Reads add their own parameters from $8 on.

/// The rows of a table aliased `alias` whose `period_type` is `$1` and whose `period_start` is
/// in `[$2, $3]`.
pub(super) fn period_condition(alias: &str) -> String {
    format!("{alias}.period_type = $1 AND {alias}.period_start BETWEEN $2 AND $3")
}

/// The rows whose instance — the SQL expression `instance_id` — is among `$4` (when any) and
/// of an engine among `$5` (when any), and, where the row has a database name (the SQL
/// expression `database_name`), whose database is `$6` (when given). An engine is a
/// semi-join on `instances`, so that a count reads its own table alone.
pub(super) fn key_condition(instance_id: &str, database_name: Option<&str>) -> String {
    // $6 is referenced in every form so that the parameter list is the same for every read.
    let name_condition = match database_name {
        Some(column) => format!("($6::text IS NULL OR {column} = $6)"),
        None => "($6::text IS NULL OR true)".to_owned(),
    };
    format!(
        "(cardinality($4::bigint[]) = 0 OR {instance_id} = ANY($4))
         AND (cardinality($5::text[]) = 0 OR {instance_id} IN
              (SELECT id FROM instances WHERE db_type = ANY($5)))
         AND {name_condition}"
    )
}

/// The rows of a level's aggregation table (aliased `aggregate`) matching the whole filter.
pub(super) fn matching_condition(level: AggregationLevel) -> String {
    let database_name = match level {
        AggregationLevel::Database => Some("aggregate.database_name"),
        AggregationLevel::Instance => None,
    };
    format!(
        "{} AND {}",
        period_condition("aggregate"),
        key_condition("aggregate.instance_id", database_name)
    )
}

/// Binds the filter's parameters `$1`..`$7` (see [`period_condition`] and [`key_condition`])
/// to a SQL-text query.
macro_rules! bind_matching {
    ($query:expr, $filter:expr) => {{
        use diesel::sql_types::{Array, BigInt, Date, Nullable, Text};
        let filter: &$crate::aggregates::AggregateFilter = $filter;
        let ids: Vec<i64> = filter.instance_ids.iter().map(|id| id.0).collect();
        let engines = $crate::aggregates::filter::engines_of(filter);
        let period_starts: Vec<chrono::NaiveDate> =
            capstats_capacity_model::Period::starting_between(
                filter.period_type,
                filter.start,
                filter.end,
            )
            .map(|period| period.start())
            .collect();
        $query
            .bind::<Text, _>(filter.period_type.as_str())
            .bind::<Date, _>(filter.start)
            .bind::<Date, _>(filter.end)
            .bind::<Array<BigInt>, _>(ids)
            .bind::<Array<Text>, _>(engines)
            .bind::<Nullable<Text>, _>(filter.database_name.clone())
            .bind::<Array<Date>, _>(period_starts)
    }};
}
