//! Writing samples: existing keys are updated and new ones inserted, a writer that loses the
//! race for a new key to a concurrent writer still writes its whole batch, and concurrent
//! writers of one month both count in its month sums.

use std::time::Duration;

use chrono::{NaiveDate, Utc};
use diesel::prelude::*;

use capstats_capacity_model::{DatabaseSizeSample, DbType, InstanceId};
use capstats_store::instances::{NewInstance, create_instance};
use capstats_store::samples::{NewDatabaseSample, write_database_samples};
use capstats_test_support::lock_waits::wait_until_waiting;

fn sample(instance_id: InstanceId, name: &str, day: u32, size_mb: i64) -> NewDatabaseSample {
    NewDatabaseSample {
        sample: DatabaseSizeSample {
            instance_id,
            database_name: name.into(),
            collected_date: NaiveDate::from_ymd_opt(2026, 3, day).unwrap(),
            size_mb,
            data_size_mb: None,
            log_size_mb: None,
        },
        collected_at: Utc::now(),
    }
}

fn stored(connection: &mut PgConnection) -> Vec<(String, NaiveDate, i64)> {
    use capstats_store::schema::database_size_stats as stats;
    stats::table
        .select((stats::database_name, stats::collected_date, stats::size_mb))
        .order((stats::database_name, stats::collected_date))
        .load(connection)
        .unwrap()
}

fn instance(connection: &mut PgConnection) -> InstanceId {
    create_instance(
        connection,
        &NewInstance {
            name: "writer".into(),
            db_type: DbType::Postgresql,
            host: None,
            port: None,
            description: None,
        },
    )
    .unwrap()
    .id
}

#[test]
fn a_batch_updates_stored_keys_and_inserts_new_ones_in_any_order() {
    let database = capstats_test_support::TestDatabase::new();
    let mut connection = database.connection();
    let id = instance(&mut connection);
    write_database_samples(
        &mut connection,
        &[sample(id, "b", 2, 10), sample(id, "a", 1, 5)],
    )
    .unwrap();
    // Unsorted, half stored already.
    let summary = write_database_samples(
        &mut connection,
        &[
            sample(id, "c", 1, 7),
            sample(id, "b", 2, 11),
            sample(id, "a", 3, 6),
            sample(id, "a", 1, 4),
        ],
    )
    .unwrap();
    assert_eq!(summary.samples_written, 4);
    let day = |d| NaiveDate::from_ymd_opt(2026, 3, d).unwrap();
    assert_eq!(
        stored(&mut connection),
        vec![
            ("a".into(), day(1), 4),
            ("a".into(), day(3), 6),
            ("b".into(), day(2), 11),
            ("c".into(), day(1), 7),
        ]
    );
    // The same key twice in one batch is refused and writes nothing.
    assert!(
        write_database_samples(
            &mut connection,
            &[sample(id, "d", 1, 1), sample(id, "d", 1, 2)]
        )
        .is_err()
    );
    assert_eq!(stored(&mut connection).len(), 4);
}

#[test]
fn a_writer_that_loses_a_new_key_to_a_concurrent_writer_still_writes_its_batch() {
    let database = capstats_test_support::TestDatabase::new();
    let mut first = database.connection();
    let id = instance(&mut first);
    // Partitions exist before the race, as they would after the first write of a month.
    write_database_samples(&mut first, &[sample(id, "warm", 1, 1)]).unwrap();

    // The first writer inserts the new key `x` and holds its transaction open while the second
    // writes a batch with `x` and another new key: the second writer's plain insert waits for
    // `x`, fails with a unique violation once the first commits, and falls back to the upsert.
    let url = database.url();
    let second = first
        .transaction(|connection| {
            write_database_samples(connection, &[sample(id, "x", 5, 100)])?;
            let second = std::thread::spawn(move || {
                let mut second = PgConnection::establish(&url).unwrap();
                write_database_samples(
                    &mut second,
                    &[sample(id, "x", 5, 200), sample(id, "y", 5, 300)],
                )
            });
            std::thread::sleep(Duration::from_millis(500));
            Ok::<_, capstats_store::StoreError>(second)
        })
        .unwrap();
    let summary = second.join().unwrap().unwrap();
    assert_eq!(summary.samples_written, 2);
    let day = NaiveDate::from_ymd_opt(2026, 3, 5).unwrap();
    let rows = stored(&mut first);
    assert!(rows.contains(&("x".into(), day, 200)), "{rows:?}");
    assert!(rows.contains(&("y".into(), day, 300)), "{rows:?}");
}

#[test]
fn a_writer_with_gaps_in_its_dates_does_not_deadlock_with_a_computation_of_the_periods_between() {
    use capstats_capacity_model::{AggregationLevel, Period, PeriodType};
    use capstats_store::aggregation::{InstanceScope, aggregate_periods};
    use capstats_store::ledger;

    let database = capstats_test_support::TestDatabase::new();
    let mut computation = database.connection();
    let id = instance(&mut computation);
    let day = |month| NaiveDate::from_ymd_opt(2026, month, 15).unwrap();
    let month = |month| Period::containing(PeriodType::Monthly, day(month));
    let samples = |months: &[u32], size_mb| -> Vec<NewDatabaseSample> {
        months
            .iter()
            .map(|&month| NewDatabaseSample {
                sample: DatabaseSizeSample {
                    instance_id: id,
                    database_name: "a".into(),
                    collected_date: day(month),
                    size_mb,
                    data_size_mb: None,
                    log_size_mb: None,
                },
                collected_at: Utc::now(),
            })
            .collect()
    };
    write_database_samples(&mut computation, &samples(&[1, 2, 3, 4], 10)).unwrap();
    let level = AggregationLevel::Database;
    let scope = InstanceScope::AllActive;
    let months = [month(1), month(2), month(3), month(4)];
    aggregate_periods(
        &mut computation,
        level,
        &months,
        &scope,
        None,
        Utc::now().date_naive(),
    )
    .unwrap();

    // A computation holds February's ledger row when a writer of January and March samples
    // starts; the writer marks January, March and the months after them (February, April).
    // The computation then wants March. Were the writer to lock March before February, each
    // would wait for the other and PostgreSQL would abort one of them.
    let late = samples(&[1, 3], 20);
    let url = database.url();
    let mut observer = database.connection();
    let writer = computation
        .transaction(|connection| {
            ledger::begin_computation(connection, level, &[month(2)], &scope)?;
            let writer = std::thread::spawn(move || {
                let mut writer = PgConnection::establish(&url).unwrap();
                write_database_samples(&mut writer, &late)
            });
            // Until the writer waits for February's row, which this transaction holds.
            wait_until_waiting(&mut observer, Some("transactionid"), 1, "the writer");
            ledger::begin_computation(connection, level, &[month(3)], &scope)?;
            Ok::<_, capstats_store::StoreError>(writer)
        })
        .expect("the computation is not a deadlock victim");
    let summary = writer
        .join()
        .unwrap()
        .expect("the writer is not a deadlock victim");
    assert_eq!(summary.samples_written, 2);

    // Both containing months and both following months are stale for the instance.
    let stale: Vec<Period> = ledger::stale_entries(&mut computation, 100, None)
        .unwrap()
        .into_iter()
        .filter(|entry| entry.level == level && entry.period.period_type() == PeriodType::Monthly)
        .inspect(|entry| assert_eq!(entry.stale_instance_ids, vec![id]))
        .map(|entry| entry.period)
        .collect();
    assert_eq!(stale, months.to_vec());
}

#[test]
fn two_writers_of_one_month_both_count_in_its_sums() {
    let database = capstats_test_support::TestDatabase::new();
    let mut first = database.connection();
    let id = instance(&mut first);
    write_database_samples(&mut first, &[sample(id, "m", 1, 10)]).unwrap();

    // The first writer adds day 2 and holds its transaction open while the second adds day 3
    // of the same database and month. Recomputing the month from its own snapshot, the second
    // would collide with the first's row of the month once the first commits, or overwrite it
    // without day 2 (without the lock it fails); the triggers' advisory lock makes it wait and
    // recompute afterwards.
    let url = database.url();
    let second = first
        .transaction(|connection| {
            write_database_samples(connection, &[sample(id, "m", 2, 20)])?;
            let second = std::thread::spawn(move || {
                let mut second = PgConnection::establish(&url).unwrap();
                write_database_samples(&mut second, &[sample(id, "m", 3, 30)])
            });
            let mut observer = PgConnection::establish(&database.url()).unwrap();
            wait_until_waiting(&mut observer, None, 1, "the second writer");
            Ok::<_, capstats_store::StoreError>(second)
        })
        .unwrap();
    second.join().unwrap().unwrap();
    capstats_test_support::month_sums::assert_month_sums_match(&mut first, "after both writers");
    let counted = capstats_test_support::count(
        &database.url(),
        "SELECT size_count AS count FROM database_month_sums WHERE database_name = 'm'",
    );
    assert_eq!(counted, 3);
}
