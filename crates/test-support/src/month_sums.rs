//! The check that the month sums equal the samples they are kept from.

use diesel::PgConnection;

/// The month sums of each table recomputed from its samples, in the month-sum table's columns.
const RECOMPUTED: [(&str, &str); 2] = [
    (
        "database_month_sums",
        "SELECT instance_id, database_name, date_trunc('month', collected_date)::date,
                count(*), sum(size_mb), max(size_mb), min(size_mb),
                count(data_size_mb), sum(data_size_mb), max(data_size_mb), min(data_size_mb),
                count(log_size_mb), sum(log_size_mb), max(log_size_mb), min(log_size_mb)
         FROM database_size_stats GROUP BY 1, 2, 3",
    ),
    (
        "instance_month_sums",
        "SELECT instance_id, date_trunc('month', collected_date)::date,
                count(*), sum(total_size_mb), max(total_size_mb), min(total_size_mb),
                sum(database_count), max(database_count), min(database_count)
         FROM instance_size_stats GROUP BY 1, 2",
    ),
];

/// Panics, naming `context` and the differing rows, unless `database_month_sums` and
/// `instance_month_sums` equal, row for row, the sums recomputed from the samples and the
/// instance days.
pub fn assert_month_sums_match(connection: &mut PgConnection, context: &str) {
    for (table, recomputed) in RECOMPUTED {
        crate::assert_table_holds(connection, table, recomputed, context);
    }
}
