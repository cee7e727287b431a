//! The tables that hold each aggregation level's rows, named in one place for the SQL this
//! crate (and its tests) write as text.

use capstats_capacity_model::AggregationLevel;

/// The tables and key of one aggregation level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LevelTables {
    /// The partitioned table of every stored aggregate.
    pub aggregates: &'static str,
    /// Each key's row in its latest stored period, kept by the aggregation.
    pub latest: &'static str,
    /// The key columns of a row within one period type: `instance_id, database_name` or
    /// `instance_id`.
    pub key: &'static str,
    /// Whether a key has a database name beside its instance.
    pub has_database_name: bool,
}

impl LevelTables {
    /// The tables of `level`.
    pub const fn of(level: AggregationLevel) -> Self {
        match level {
            AggregationLevel::Database => Self {
                aggregates: "database_size_aggregations",
                latest: "database_latest_aggregations",
                key: "instance_id, database_name",
                has_database_name: true,
            },
            AggregationLevel::Instance => Self {
                aggregates: "instance_size_aggregations",
                latest: "instance_latest_aggregations",
                key: "instance_id",
                has_database_name: false,
            },
        }
    }

    /// The SQL expression of the database name of a row aliased `alias`: its column, or an
    /// empty text at instance level, which keeps keys of both levels one shape (hashable and
    /// comparable).
    pub fn database_name_of(&self, alias: &str) -> String {
        if self.has_database_name {
            format!("{alias}.database_name")
        } else {
            "''::text".to_owned()
        }
    }

    /// The key columns of a row aliased `alias`: `{alias}.instance_id, {alias}.database_name`
    /// or `{alias}.instance_id`.
    pub fn qualified_key(&self, alias: &str) -> String {
        if self.has_database_name {
            format!("{alias}.instance_id, {alias}.database_name")
        } else {
            format!("{alias}.instance_id")
        }
    }

    /// `AND {left}.database_name = {right}.database_name` at database level, nothing at
    /// instance level: the rest of a key match after the instance.
    pub fn same_database(&self, left: &str, right: &str) -> String {
        if self.has_database_name {
            format!("AND {left}.database_name = {right}.database_name")
        } else {
            String::new()
        }
    }
}
