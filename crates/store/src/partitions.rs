//! Monthly partitions of the four size tables.
//!
//! Each table is range-partitioned on its date column with one partition per calendar month,
//! named `<table>_YYYY_MM`. There is deliberately no default partition: rows landing there
//! would make creating the proper partition fail later. Instead every writer calls
//! [`ensure_partitions`] for the months it is about to write, in its own short transaction
//! before the write, so that the brief lock `CREATE TABLE … PARTITION OF` takes on the parent
//! is not held for the whole write.

use std::collections::BTreeSet;

use chrono::{Datelike, Months, NaiveDate};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text};

use crate::StoreError;
use crate::sql::PARTITION_LOCK_KEY;

/// A table partitioned by month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PartitionedTable {
    /// `database_size_stats`, on `collected_date`.
    DatabaseSizeStats,
    /// `instance_size_stats`, on `collected_date`.
    InstanceSizeStats,
    /// `database_size_aggregations`, on `period_start`.
    DatabaseSizeAggregations,
    /// `instance_size_aggregations`, on `period_start`.
    InstanceSizeAggregations,
}

impl PartitionedTable {
    /// All four tables.
    pub const ALL: [PartitionedTable; 4] = [
        Self::DatabaseSizeStats,
        Self::InstanceSizeStats,
        Self::DatabaseSizeAggregations,
        Self::InstanceSizeAggregations,
    ];

    /// The two sample tables.
    pub const SAMPLES: [PartitionedTable; 2] = [Self::DatabaseSizeStats, Self::InstanceSizeStats];

    /// The two aggregation tables.
    pub const AGGREGATES: [PartitionedTable; 2] = [
        Self::DatabaseSizeAggregations,
        Self::InstanceSizeAggregations,
    ];

    /// Whether it holds aggregates (not raw samples).
    pub fn holds_aggregates(self) -> bool {
        Self::AGGREGATES.contains(&self)
    }

    /// The table called `name`.
    pub fn named(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|table| table.name() == name)
    }

    /// The table's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::DatabaseSizeStats => "database_size_stats",
            Self::InstanceSizeStats => "instance_size_stats",
            Self::DatabaseSizeAggregations => "database_size_aggregations",
            Self::InstanceSizeAggregations => "instance_size_aggregations",
        }
    }

    /// The name of the partition holding `month` (any day of it).
    pub fn partition_name(self, month: NaiveDate) -> String {
        format!("{}_{:04}_{:02}", self.name(), month.year(), month.month())
    }
}

/// The first month the retention keeps on `today`, `retention_months` back from today's month:
/// partitions of earlier months are dropped, and periods starting earlier are not computed
/// any more. `None` when nothing is dropped (`retention_months` is 0).
pub fn retention_start(today: NaiveDate, retention_months: u32) -> Option<NaiveDate> {
    (retention_months > 0)
        .then(|| month_of(today).checked_sub_months(Months::new(retention_months)))
        .flatten()
}

/// The first day of the month of `date`.
pub fn month_of(date: NaiveDate) -> NaiveDate {
    date.with_day(1).expect("every month has a first day")
}

fn next_month(month: NaiveDate) -> NaiveDate {
    month
        .checked_add_months(Months::new(1))
        .expect("supported dates are far from chrono's limits")
}

/// The first days of every month from the month of `from` to the month of `to`.
pub fn months_between(from: NaiveDate, to: NaiveDate) -> Vec<NaiveDate> {
    let mut months = Vec::new();
    let mut month = month_of(from);
    while month <= to {
        months.push(month);
        month = next_month(month);
    }
    months
}

#[derive(QueryableByName)]
struct PartitionName {
    #[diesel(sql_type = Text)]
    partition_name: String,
}

fn existing_partitions(
    connection: &mut PgConnection,
    tables: &[PartitionedTable],
) -> Result<BTreeSet<String>, StoreError> {
    let parents: Vec<&str> = tables.iter().map(|table| table.name()).collect();
    let rows: Vec<PartitionName> = diesel::sql_query(
        "SELECT child.relname::text AS partition_name
         FROM pg_inherits
         JOIN pg_class child ON child.oid = pg_inherits.inhrelid
         JOIN pg_class parent ON parent.oid = pg_inherits.inhparent
         WHERE parent.relname = ANY($1) AND pg_table_is_visible(parent.oid)",
    )
    .bind::<Array<Text>, _>(parents)
    .load(connection)?;
    Ok(rows.into_iter().map(|row| row.partition_name).collect())
}

/// Creates the partitions of `tables` for the months containing `dates` that do not exist
/// yet, and returns the names created. Safe to call concurrently from several processes (they
/// serialise on an advisory lock) and cheap when nothing is missing (one catalog query).
///
/// Must not run inside a caller's transaction that goes on to write for long: creating a
/// partition locks the parent table until the transaction ends.
pub fn ensure_partitions(
    connection: &mut PgConnection,
    tables: &[PartitionedTable],
    dates: impl IntoIterator<Item = NaiveDate>,
) -> Result<Vec<String>, StoreError> {
    let months: BTreeSet<NaiveDate> = dates.into_iter().map(month_of).collect();
    let wanted = |existing: &BTreeSet<String>| -> Vec<(PartitionedTable, NaiveDate)> {
        tables
            .iter()
            .flat_map(|table| months.iter().map(move |month| (*table, *month)))
            .filter(|(table, month)| !existing.contains(&table.partition_name(*month)))
            .collect()
    };
    if wanted(&existing_partitions(connection, tables)?).is_empty() {
        return Ok(Vec::new());
    }
    connection.transaction(|connection| {
        diesel::sql_query("SELECT pg_advisory_xact_lock($1, 0)")
            .bind::<Integer, _>(PARTITION_LOCK_KEY)
            .execute(connection)?;
        // Another process may have created some while we waited for the lock.
        let missing = wanted(&existing_partitions(connection, tables)?);
        let mut created = Vec::with_capacity(missing.len());
        for (table, month) in missing {
            let name = table.partition_name(month);
            diesel::sql_query(format!(
                "CREATE TABLE {name} PARTITION OF {parent} FOR VALUES FROM ('{month}') TO ('{next}')",
                parent = table.name(),
                next = next_month(month),
            ))
            .execute(connection)?;
            created.push(name);
        }
        if !created.is_empty() {
            tracing::info!(partitions = ?created, "created partitions");
        }
        Ok(created)
    })
}

/// A partition and its size.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PartitionInfo {
    /// The partitioned table.
    pub table_name: String,
    /// The partition.
    pub partition_name: String,
    /// The first day the partition holds.
    pub range_start: NaiveDate,
    /// The first day after the partition's range.
    pub range_end: NaiveDate,
    /// Size on disk including indexes and TOAST, in bytes.
    pub total_bytes: i64,
    /// PostgreSQL's row estimate from the last ANALYZE; `None` before the first one.
    pub estimated_rows: Option<i64>,
}

#[derive(QueryableByName)]
struct PartitionRow {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    partition_name: String,
    #[diesel(sql_type = BigInt)]
    total_bytes: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    estimated_rows: Option<i64>,
}

/// The month a partition named `<table>_YYYY_MM` holds.
fn month_from_name(table: &str, partition: &str) -> Option<NaiveDate> {
    let suffix = partition.strip_prefix(table)?.strip_prefix('_')?;
    let (year, month) = suffix.split_once('_')?;
    NaiveDate::from_ymd_opt(year.parse().ok()?, month.parse().ok()?, 1)
}

/// Every partition of the four tables, ordered by table and month.
pub fn list_partitions(connection: &mut PgConnection) -> Result<Vec<PartitionInfo>, StoreError> {
    let parents: Vec<&str> = PartitionedTable::ALL
        .iter()
        .map(|table| table.name())
        .collect();
    let rows: Vec<PartitionRow> = diesel::sql_query(
        "SELECT parent.relname::text AS table_name,
                child.relname::text AS partition_name,
                pg_total_relation_size(child.oid) AS total_bytes,
                CASE WHEN child.reltuples < 0 THEN NULL ELSE child.reltuples::bigint END
                    AS estimated_rows
         FROM pg_inherits
         JOIN pg_class child ON child.oid = pg_inherits.inhrelid
         JOIN pg_class parent ON parent.oid = pg_inherits.inhparent
         WHERE parent.relname = ANY($1) AND pg_table_is_visible(parent.oid)
         ORDER BY 1, 2",
    )
    .bind::<Array<Text>, _>(parents)
    .load(connection)?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let month = month_from_name(&row.table_name, &row.partition_name)?;
            Some(PartitionInfo {
                range_start: month,
                range_end: next_month(month),
                table_name: row.table_name,
                partition_name: row.partition_name,
                total_bytes: row.total_bytes,
                estimated_rows: row.estimated_rows,
            })
        })
        .collect())
}

/// Drops every partition of `tables` whose month lies entirely before `keep_from` (rounded
/// down to its month) and returns the names dropped; when `tables` holds the aggregation
/// tables, the ledger entries and row counts of periods starting before it go with them. Used
/// by retention: `keep_from` is the first day of the oldest month kept.
pub fn drop_partitions_before(
    connection: &mut PgConnection,
    tables: &[PartitionedTable],
    keep_from: NaiveDate,
) -> Result<Vec<String>, StoreError> {
    let keep_from = month_of(keep_from);
    connection.transaction(|connection| {
        diesel::sql_query("SELECT pg_advisory_xact_lock($1, 0)")
            .bind::<Integer, _>(PARTITION_LOCK_KEY)
            .execute(connection)?;
        let mut dropped = Vec::new();
        for partition in list_partitions(connection)? {
            let of_tables = PartitionedTable::named(&partition.table_name)
                .is_some_and(|table| tables.contains(&table));
            if of_tables && partition.range_end <= keep_from {
                diesel::sql_query(format!("DROP TABLE {}", partition.partition_name))
                    .execute(connection)?;
                dropped.push(partition.partition_name);
            }
        }
        if tables.iter().any(|table| table.holds_aggregates()) {
            // Ledger rows are locked in key order first, like every other writer of several of
            // them (see `ledger`), so that this cannot deadlock with a sample writer.
            diesel::sql_query(
                "DELETE FROM aggregation_ledger AS ledger
                 USING (SELECT level, period_type, period_start FROM aggregation_ledger
                        WHERE period_start < $1
                        ORDER BY level, period_type, period_start
                        FOR UPDATE) AS expired
                 WHERE (ledger.level, ledger.period_type, ledger.period_start)
                     = (expired.level, expired.period_type, expired.period_start)",
            )
            .bind::<diesel::sql_types::Date, _>(keep_from)
            .execute(connection)?;
            // A key whose latest row lies before `keep_from` has no row left at all.
            for bookkeeping in [
                "database_aggregate_counts",
                "aggregate_period_counts",
                "database_latest_aggregations",
                "instance_latest_aggregations",
            ] {
                diesel::sql_query(format!("DELETE FROM {bookkeeping} WHERE period_start < $1"))
                    .bind::<diesel::sql_types::Date, _>(keep_from)
                    .execute(connection)?;
            }
        }
        // Dropping a partition fires no trigger, so the month sums kept with the samples (see
        // the migration `month_sums`) lose the dropped months here.
        for (samples, month_sums) in [
            (PartitionedTable::DatabaseSizeStats, "database_month_sums"),
            (PartitionedTable::InstanceSizeStats, "instance_month_sums"),
        ] {
            if tables.contains(&samples) {
                diesel::sql_query(format!("DELETE FROM {month_sums} WHERE month_start < $1"))
                    .bind::<diesel::sql_types::Date, _>(keep_from)
                    .execute(connection)?;
            }
        }
        if !dropped.is_empty() {
            // Dropping a partition fires no trigger; remembered reads must see it.
            crate::read_changes::record_change(connection)?;
            tracing::info!(partitions = ?dropped, %keep_from, "dropped partitions past retention");
        }
        Ok(dropped)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_months() {
        let day = NaiveDate::from_ymd_opt(2025, 3, 17).unwrap();
        assert_eq!(
            PartitionedTable::DatabaseSizeStats.partition_name(day),
            "database_size_stats_2025_03"
        );
        assert_eq!(
            month_from_name("database_size_stats", "database_size_stats_2025_03"),
            NaiveDate::from_ymd_opt(2025, 3, 1)
        );
        assert_eq!(
            month_from_name("database_size_stats", "other_2025_03"),
            None
        );
        let months = months_between(day, NaiveDate::from_ymd_opt(2025, 5, 1).unwrap());
        assert_eq!(months.len(), 3);
        assert_eq!(months[2], NaiveDate::from_ymd_opt(2025, 5, 1).unwrap());
    }
}
