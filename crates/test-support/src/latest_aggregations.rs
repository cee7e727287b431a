//! The check that the latest tables hold each key's row in its latest stored period.

use capstats_capacity_model::AggregationLevel;
use capstats_store::level_tables::LevelTables;
use diesel::prelude::*;

#[derive(QueryableByName)]
struct Difference {
    #[diesel(sql_type = diesel::sql_types::Text)]
    row: String,
}

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
        let differences: Vec<Difference> = diesel::sql_query(format!(
            "SELECT 'missing: ' || row_to_json(missing)::text AS row
             FROM ({newest} EXCEPT ALL SELECT * FROM {latest}) missing
             UNION ALL
             SELECT 'extra: ' || row_to_json(extra)::text
             FROM (SELECT * FROM {latest} EXCEPT ALL {newest}) extra
             LIMIT 6"
        ))
        .load(connection)
        .expect("the latest rows are compared");
        let rows: Vec<String> = differences.into_iter().map(|found| found.row).collect();
        assert!(rows.is_empty(), "{latest} differs, {context}: {rows:#?}");
    }
}
