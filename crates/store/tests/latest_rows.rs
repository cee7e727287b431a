//! The latest tables under concurrent batches: two batches of one level and type, computed at
//! once on two connections (as a parallel backfill does), leave each key's row of its newest
//! stored period as its latest row, whichever batch reaches the latest rows first.

use capstats_capacity_model::{AggregationLevel, DatabaseSizeSample, DbType, Period, PeriodType};
use capstats_store::aggregation::{InstanceScope, aggregate_periods};
use capstats_store::instances::{NewInstance, create_instance};
use capstats_store::partitions::{PartitionedTable, ensure_partitions};
use capstats_store::samples::{NewDatabaseSample, write_database_samples};
use capstats_store::{Connection, PgConnection};
use capstats_test_support::lock_waits::wait_until_waiting;
use chrono::{NaiveDate, Utc};
use diesel::connection::SimpleConnection;

fn date(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).unwrap()
}

/// The daily periods of `first..=last`.
fn days(first: NaiveDate, last: NaiveDate) -> Vec<Period> {
    Period::starting_between(PeriodType::Daily, first, last).collect()
}

/// Samples of database `name` of `instance_id` on every day of `first..=last`.
fn samples(
    instance_id: capstats_capacity_model::InstanceId,
    name: &str,
    first: NaiveDate,
    last: NaiveDate,
) -> Vec<NewDatabaseSample> {
    first
        .iter_days()
        .take_while(|day| *day <= last)
        .enumerate()
        .map(|(index, collected_date)| NewDatabaseSample {
            sample: DatabaseSizeSample {
                instance_id,
                database_name: name.into(),
                collected_date,
                size_mb: 100 + index as i64,
                data_size_mb: None,
                log_size_mb: None,
            },
            collected_at: Utc::now(),
        })
        .collect()
}

#[test]
fn concurrent_batches_of_one_type_keep_each_keys_newest_row() {
    let database = capstats_test_support::TestDatabase::new();
    let mut connection = database.connection();
    let instance = create_instance(
        &mut connection,
        &NewInstance {
            name: "one".into(),
            db_type: DbType::Postgresql,
            host: None,
            port: None,
            description: None,
        },
    )
    .unwrap();
    let january = days(date(2025, 1, 1), date(2025, 1, 31));
    let february = days(date(2025, 2, 1), date(2025, 2, 28));
    // `kept` has samples in both batches, `gone` only early in January, `late` only late in
    // February: their newest rows lie in February, in January and in February.
    let mut written = samples(instance.id, "kept", date(2025, 1, 1), date(2025, 2, 28));
    written.extend(samples(
        instance.id,
        "gone",
        date(2025, 1, 1),
        date(2025, 1, 20),
    ));
    written.extend(samples(
        instance.id,
        "late",
        date(2025, 2, 10),
        date(2025, 2, 28),
    ));
    write_database_samples(&mut connection, &written).unwrap();
    ensure_partitions(
        &mut connection,
        &[PartitionedTable::DatabaseSizeAggregations],
        [date(2025, 1, 1), date(2025, 2, 1)],
    )
    .unwrap();

    // Both orders: the later batch reaching the latest rows first, then the earlier one.
    for (order, batches) in [
        ("February first", [&february, &january]),
        ("January first", [&january, &february]),
    ] {
        connection
            .batch_execute(
                "DELETE FROM database_size_aggregations; DELETE FROM database_latest_aggregations;
                 DELETE FROM database_aggregate_counts; DELETE FROM aggregate_period_counts;
                 DELETE FROM aggregation_ledger;",
            )
            .unwrap();
        // The batches compute their periods, then stop at the latest table, held here; once
        // both wait, they go on together.
        let mut holder = PgConnection::establish(&database.url()).unwrap();
        holder
            .batch_execute(
                "BEGIN; LOCK TABLE database_latest_aggregations IN ACCESS EXCLUSIVE MODE",
            )
            .unwrap();
        let mut observer = PgConnection::establish(&database.url()).unwrap();
        std::thread::scope(|scope| {
            let mut threads = Vec::new();
            for (waiting, batch) in batches.into_iter().enumerate() {
                let url = database.url();
                threads.push(scope.spawn(move || {
                    let mut connection = PgConnection::establish(&url).unwrap();
                    aggregate_periods(
                        &mut connection,
                        AggregationLevel::Database,
                        batch,
                        &InstanceScope::AllActive,
                        None,
                        date(2025, 3, 1),
                    )
                }));
                wait_until_waiting(&mut observer, None, waiting as i64 + 1, order);
            }
            holder.batch_execute("COMMIT").unwrap();
            for thread in threads {
                thread.join().unwrap().unwrap();
            }
        });
        capstats_test_support::latest_aggregations::assert_latest_aggregations_match(
            &mut connection,
            order,
        );
        let newest = |name: &str| {
            capstats_test_support::count(
                &database.url(),
                &format!(
                    "SELECT extract(day FROM period_start)::bigint * 100
                            + extract(month FROM period_start)::bigint AS count
                     FROM database_latest_aggregations WHERE database_name = '{name}'"
                ),
            )
        };
        assert_eq!(
            [newest("kept"), newest("gone"), newest("late")],
            [2802, 2001, 2802],
            "{order}: latest day and month of kept, gone and late"
        );
    }
}
