//! The check that the latest tables hold each key's row in its latest stored period.

use capstats_capacity_model::AggregationLevel;
use capstats_store::level_tables::LevelTables;
use diesel::PgConnection;

/// Panics, naming `context` and the differing rows, unless `database_latest_aggregations` and
/// `instance_latest_aggregations` equal, row for row and column for column, each key's newest
/// row of the aggregation tables.
pub fn assert_latest_aggregations_match(connection: &mut PgConnection, context: &str) {
    for level in AggregationLevel::ALL {
        let LevelTables {
            aggregates: table,
            latest,
            key,
            ..
        } = LevelTables::of(level);
        let key = format!("period_type, {key}");
        let newest = format!(
            "SELECT * FROM (SELECT DISTINCT ON ({key}) * FROM {table}
                            ORDER BY {key}, period_start DESC) newest"
        );
        crate::assert_table_holds(connection, latest, &newest, context);
    }
}
