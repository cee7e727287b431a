//! Partition management against a real database.

use capstats_capacity_model::{AggregationLevel, DatabaseSizeSample, DbType, Period, PeriodType};
use capstats_store::aggregation::{InstanceScope, aggregate_periods};
use capstats_store::instances::{NewInstance, create_instance};
use capstats_store::partitions::{
    PartitionedTable, drop_partitions_before, ensure_partitions, list_partitions,
};
use capstats_store::samples::{NewDatabaseSample, write_database_samples};
use chrono::{NaiveDate, Utc};

fn date(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).unwrap()
}

#[test]
fn writes_create_the_partitions_they_need_and_retention_drops_old_ones() {
    let database = capstats_test_support::TestDatabase::new();
    let mut connection = database.connection();
    assert!(list_partitions(&mut connection).unwrap().is_empty());
    let instance = create_instance(
        &mut connection,
        &NewInstance {
            name: "one".into(),
            db_type: DbType::Oracle,
            host: None,
            port: None,
            description: None,
        },
    )
    .unwrap();
    // Two samples months and years apart: each write creates exactly its months.
    let samples: Vec<NewDatabaseSample> = [date(1999, 12, 31), date(2025, 3, 15)]
        .into_iter()
        .map(|collected_date| NewDatabaseSample {
            sample: DatabaseSizeSample {
                instance_id: instance.id,
                database_name: "db".into(),
                collected_date,
                size_mb: 5,
                data_size_mb: None,
                log_size_mb: None,
            },
            collected_at: Utc::now(),
        })
        .collect();
    write_database_samples(&mut connection, &samples).unwrap();
    let names: Vec<String> = list_partitions(&mut connection)
        .unwrap()
        .into_iter()
        .map(|partition| partition.partition_name)
        .collect();
    assert_eq!(
        names,
        vec![
            "database_size_stats_1999_12",
            "database_size_stats_2025_03",
            "instance_size_stats_1999_12",
            "instance_size_stats_2025_03",
        ]
    );

    // Aggregating creates the aggregation partitions of the period starts.
    let year = Period::containing(PeriodType::Yearly, date(1999, 12, 31));
    aggregate_periods(
        &mut connection,
        AggregationLevel::Instance,
        &[year],
        &InstanceScope::AllActive,
        None,
        date(2000, 1, 1),
    )
    .unwrap();
    let latest_rows = capstats_test_support::count(
        &database.url(),
        "SELECT count(*) FROM instance_latest_aggregations",
    );
    assert_eq!(latest_rows, 1);
    let partitions = list_partitions(&mut connection).unwrap();
    let aggregation = partitions
        .iter()
        .find(|partition| partition.table_name == "instance_size_aggregations")
        .expect("created");
    assert_eq!(
        aggregation.partition_name,
        "instance_size_aggregations_1999_01"
    );
    assert_eq!(aggregation.range_start, date(1999, 1, 1));
    assert_eq!(aggregation.range_end, date(1999, 2, 1));
    assert!(aggregation.total_bytes > 0);

    // Ensuring again creates nothing; ahead-of-time creation works for any table.
    assert!(
        ensure_partitions(
            &mut connection,
            &PartitionedTable::SAMPLES,
            [date(2025, 3, 1)]
        )
        .unwrap()
        .is_empty()
    );
    let created = ensure_partitions(
        &mut connection,
        &PartitionedTable::ALL,
        capstats_store::partitions::months_between(date(2025, 4, 1), date(2025, 5, 31)),
    )
    .unwrap();
    assert_eq!(created.len(), 8);

    // The samples' retention keeps March 2025 on: their partitions before it go, the
    // aggregates' and the ledger stay.
    diesel::connection::SimpleConnection::batch_execute(
        &mut connection,
        "INSERT INTO database_aggregate_counts VALUES
             ('daily', '1999-12-31', 1, 3), ('daily', '2025-03-01', 1, 2)",
    )
    .unwrap();
    let dropped = drop_partitions_before(
        &mut connection,
        &PartitionedTable::SAMPLES,
        date(2025, 3, 10),
    )
    .unwrap();
    assert_eq!(
        dropped,
        vec!["database_size_stats_1999_12", "instance_size_stats_1999_12"]
    );
    // Dropping a partition fires no trigger: the dropped months' sums go with them.
    capstats_test_support::month_sums::assert_month_sums_match(&mut connection, "after retention");
    let months_left = capstats_test_support::count(
        &database.url(),
        "SELECT count(*) FROM database_month_sums WHERE month_start = '2025-03-01'",
    );
    assert_eq!(months_left, 1);
    assert_eq!(
        capstats_store::ledger::entries_between(
            &mut connection,
            AggregationLevel::Instance,
            PeriodType::Yearly,
            date(1999, 1, 1),
            date(1999, 1, 1),
        )
        .unwrap()
        .len(),
        1,
        "the aggregates' ledger stays with them"
    );
    // The aggregates' retention drops their partitions before it, with the ledger entries and
    // row counts of those periods.
    let dropped = drop_partitions_before(
        &mut connection,
        &PartitionedTable::AGGREGATES,
        date(2025, 3, 10),
    )
    .unwrap();
    assert_eq!(dropped, vec!["instance_size_aggregations_1999_01"]);
    // The instance's latest yearly row was in the dropped partition: it has none left.
    let latest_rows = capstats_test_support::count(
        &database.url(),
        "SELECT count(*) FROM instance_latest_aggregations",
    );
    assert_eq!(latest_rows, 0);
    capstats_test_support::latest_aggregations::assert_latest_aggregations_match(
        &mut connection,
        "after retention",
    );
    // Of the yearly entries the samples made (1999 and 2025, and the years after them), the
    // ones starting before the retention are gone.
    let yearly: Vec<chrono::NaiveDate> = capstats_store::ledger::entries_between(
        &mut connection,
        AggregationLevel::Instance,
        PeriodType::Yearly,
        date(1900, 1, 1),
        date(2100, 1, 1),
    )
    .unwrap()
    .into_iter()
    .map(|entry| entry.period.start())
    .collect();
    assert_eq!(yearly, vec![date(2026, 1, 1)]);
    let counted: Vec<chrono::NaiveDate> = {
        use capstats_store::schema::database_aggregate_counts as counts;
        use diesel::prelude::*;
        counts::table
            .select(counts::period_start)
            .load(&mut connection)
            .unwrap()
    };
    assert_eq!(counted, vec![date(2025, 3, 1)]);
    let remaining = list_partitions(&mut connection).unwrap().len();
    assert_eq!(remaining, 2 + 8);
}

#[test]
fn concurrent_writers_do_not_trip_over_partition_creation() {
    let database = capstats_test_support::TestDatabase::new();
    let months = capstats_store::partitions::months_between(date(2030, 1, 1), date(2031, 12, 1));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let url = database.url();
            let months = months.clone();
            std::thread::spawn(move || {
                use diesel::Connection;
                let mut connection = capstats_store::PgConnection::establish(&url).unwrap();
                ensure_partitions(&mut connection, &PartitionedTable::ALL, months).unwrap()
            })
        })
        .collect();
    let created: usize = handles
        .into_iter()
        .map(|handle| handle.join().unwrap().len())
        .sum();
    assert_eq!(created, 24 * 4, "every partition created exactly once");
}
