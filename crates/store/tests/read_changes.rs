//! Remembered reads: a snapshot is reported changed exactly when a transaction it did not see
//! has committed a write to what the capacity reads show, whatever the order of commits.

use chrono::{Duration, NaiveDate, Utc};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use capstats_store::StoreError;
use capstats_store::partitions::{PartitionedTable, drop_partitions_before, ensure_partitions};
use capstats_store::read_changes::{ReadSnapshot, changed_since, consistent_read, prune};
use capstats_test_support::TestDatabase;

/// A snapshot taken by a read of the instances.
fn snapshot(connection: &mut PgConnection) -> ReadSnapshot {
    let (snapshot, _count) = consistent_read(connection, |connection| {
        capstats_store::schema::instances::table
            .count()
            .get_result::<i64>(connection)
            .map_err(StoreError::from)
    })
    .unwrap();
    snapshot
}

fn changed(connection: &mut PgConnection, snapshot: &ReadSnapshot) -> bool {
    changed_since(connection, snapshot).unwrap()
}

const NEW_INSTANCE: &str = "INSERT INTO instances (name, db_type) VALUES ('one', 'mysql')";

#[test]
fn a_committed_write_changes_what_an_earlier_snapshot_saw() {
    let database = TestDatabase::new();
    let mut connection = database.connection();
    let before = snapshot(&mut connection);
    assert!(!changed(&mut connection, &before), "nothing was written");

    connection.batch_execute(NEW_INSTANCE).unwrap();
    assert!(changed(&mut connection, &before));
    let after = snapshot(&mut connection);
    assert!(
        !changed(&mut connection, &after),
        "the new snapshot saw the write"
    );
}

#[test]
fn a_writer_that_began_before_the_snapshot_counts_once_it_commits() {
    let database = TestDatabase::new();
    let mut writer = database.connection();
    let mut reader = database.connection();
    writer.batch_execute("BEGIN").unwrap();
    writer.batch_execute(NEW_INSTANCE).unwrap();

    // The writer has written but not committed: the snapshot does not see it, and nothing
    // the reader can see has changed yet.
    let during = snapshot(&mut reader);
    assert!(!changed(&mut reader, &during));

    writer.batch_execute("COMMIT").unwrap();
    assert!(
        changed(&mut reader, &during),
        "a commit after the snapshot of a write begun before it is a change"
    );
}

#[test]
fn a_rolled_back_write_changes_nothing() {
    let database = TestDatabase::new();
    let mut writer = database.connection();
    let mut reader = database.connection();
    let before = snapshot(&mut reader);
    writer
        .batch_execute(&format!("BEGIN; {NEW_INSTANCE}; ROLLBACK"))
        .unwrap();
    assert!(!changed(&mut reader, &before));
}

#[test]
fn every_table_the_capacity_reads_use_records_its_writers() {
    let database = TestDatabase::new();
    let mut connection = database.connection();
    for table in [
        "database_size_aggregations",
        "instance_size_aggregations",
        "aggregate_period_counts",
        "database_aggregate_counts",
        "database_latest_aggregations",
        "instance_latest_aggregations",
        "instance_size_stats",
        "instance_databases",
        "instances",
    ] {
        let before = snapshot(&mut connection);
        // A statement that writes no row counts as well (the trigger is per statement).
        connection
            .batch_execute(&format!("DELETE FROM {table} WHERE false"))
            .unwrap();
        assert!(changed(&mut connection, &before), "{table}");
    }
    // Samples of single databases are not read by them (they read aggregates).
    let before = snapshot(&mut connection);
    connection
        .batch_execute("DELETE FROM database_size_stats WHERE false")
        .unwrap();
    assert!(!changed(&mut connection, &before));
}

#[test]
fn dropping_an_aggregate_partition_is_a_change() {
    let database = TestDatabase::new();
    let mut connection = database.connection();
    let month = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap();
    ensure_partitions(&mut connection, &PartitionedTable::ALL, [month]).unwrap();
    let before = snapshot(&mut connection);
    let dropped = drop_partitions_before(
        &mut connection,
        &PartitionedTable::ALL,
        NaiveDate::from_ymd_opt(2020, 2, 1).unwrap(),
    )
    .unwrap();
    assert!(!dropped.is_empty());
    assert!(changed(&mut connection, &before));
}

#[test]
fn pruning_keeps_the_records_a_young_snapshot_needs() {
    let database = TestDatabase::new();
    let mut connection = database.connection();
    connection.batch_execute(NEW_INSTANCE).unwrap();
    connection
        .batch_execute("UPDATE capacity_read_changes SET recorded_at = now() - interval '2 days'")
        .unwrap();
    let before = snapshot(&mut connection);
    connection
        .batch_execute("UPDATE instances SET name = 'renamed'")
        .unwrap();

    let pruned = prune(&mut connection, Utc::now() - Duration::days(1)).unwrap();
    assert_eq!(pruned, 1, "the old record goes");
    assert!(
        changed(&mut connection, &before),
        "the record of the write after the snapshot stays"
    );
}

#[test]
fn a_completeness_refresh_that_rewrites_nothing_is_no_change() {
    let database = TestDatabase::new();
    let mut connection = database.connection();
    let before = snapshot(&mut connection);
    let refreshed = capstats_store::aggregation::refresh_completeness(
        &mut connection,
        NaiveDate::from_ymd_opt(2026, 7, 1).unwrap(),
    )
    .unwrap();
    assert_eq!((refreshed.database_rows, refreshed.instance_rows), (0, 0));
    assert!(!changed(&mut connection, &before));
}
