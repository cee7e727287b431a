//! CSV import against a real database: what is written, and that a bad file writes nothing.

use capstats_capacity_model::SampleDates;
use capstats_services::import::{import_stats, parse_stats_csv};
use capstats_services::{NoProgress, ServiceError};
use capstats_store::PgConnection;
use chrono::NaiveDate;
use chrono_tz::Tz;
use diesel::prelude::*;

const HEADER: &str =
    "instance_name,db_type,database_name,collected_date,size_mb,data_size_mb,log_size_mb\n";

/// The dates of the tests' samples: up to 2025-06-30, none before 2020-01-01 (a sample
/// retention that keeps samples from then).
fn today() -> SampleDates {
    SampleDates {
        today: NaiveDate::from_ymd_opt(2025, 6, 30).unwrap(),
        kept_from: NaiveDate::from_ymd_opt(2020, 1, 1),
    }
}

fn import(
    connection: &mut PgConnection,
    body: &str,
    create_instances: bool,
) -> Result<capstats_services::import::ImportReport, ServiceError> {
    let lines = parse_stats_csv(format!("{HEADER}{body}").as_bytes(), today(), &NoProgress)?;
    import_stats(
        connection,
        &lines,
        create_instances,
        Tz::Asia__Shanghai,
        &NoProgress,
    )
}

fn count(connection: &mut PgConnection, table: &str) -> i64 {
    diesel::sql_query(format!("SELECT count(*) AS rows FROM {table}"))
        .get_result::<Count>(connection)
        .unwrap()
        .rows
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    rows: i64,
}

#[test]
fn a_good_file_writes_samples_totals_and_inventory() {
    let database = capstats_test_support::TestDatabase::new();
    let mut connection = database.connection();
    let report = import(
        &mut connection,
        "alpha,mysql,orders,2025-06-01,100,80,\n\
         alpha,mysql,users,2025-06-01,50,,\n\
         alpha,mysql,orders,2025-06-02,110,85,\n\
         beta,postgresql,app,2024-12-31,7,7,0\n",
        true,
    )
    .unwrap();
    assert_eq!(report.lines, 4);
    assert_eq!(report.instances_created, vec!["alpha", "beta"]);
    assert_eq!(count(&mut connection, "database_size_stats"), 4);
    assert_eq!(count(&mut connection, "instance_databases"), 3);

    #[derive(QueryableByName, Debug, PartialEq)]
    struct Total {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
        #[diesel(sql_type = diesel::sql_types::Date)]
        collected_date: NaiveDate,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        total_size_mb: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        database_count: i64,
    }
    let totals: Vec<Total> = diesel::sql_query(
        "SELECT i.name, t.collected_date, t.total_size_mb, t.database_count
         FROM instance_size_stats t JOIN instances i ON i.id = t.instance_id
         ORDER BY 1, 2",
    )
    .load(&mut connection)
    .unwrap();
    let day = |d| NaiveDate::from_ymd_opt(2025, 6, d).unwrap();
    assert_eq!(
        totals,
        vec![
            Total {
                name: "alpha".into(),
                collected_date: day(1),
                total_size_mb: 150,
                database_count: 2
            },
            Total {
                name: "alpha".into(),
                collected_date: day(2),
                total_size_mb: 110,
                database_count: 1
            },
            Total {
                name: "beta".into(),
                collected_date: NaiveDate::from_ymd_opt(2024, 12, 31).unwrap(),
                total_size_mb: 7,
                database_count: 1
            },
        ]
    );

    // Importing a correction replaces the sample and refreshes that day's total only.
    import(
        &mut connection,
        "alpha,mysql,users,2025-06-01,70,,\n",
        false,
    )
    .unwrap();
    let total: Total = diesel::sql_query(
        "SELECT i.name, t.collected_date, t.total_size_mb, t.database_count
         FROM instance_size_stats t JOIN instances i ON i.id = t.instance_id
         WHERE i.name = 'alpha' AND t.collected_date = '2025-06-01'",
    )
    .get_result(&mut connection)
    .unwrap();
    assert_eq!(total.total_size_mb, 170);
    assert_eq!(count(&mut connection, "database_size_stats"), 4);
}

#[test]
fn a_malformed_file_is_rejected_whole_with_line_numbers() {
    let database = capstats_test_support::TestDatabase::new();
    let mut connection = database.connection();
    let cases = [
        (
            "alpha,mysql,orders,2025-06-01,100,,\nalpha,mysql,orders,2025-06-02,-1,,\n",
            "line 3: size_mb must not be negative",
        ),
        (
            "alpha,mysql,orders,2025-06-01,abc,,\n",
            "line 2: size_mb `abc` is not a whole number",
        ),
        (
            "alpha,mysql,orders,2025-13-01,1,,\n",
            "line 2: collected_date `2025-13-01` is not a date",
        ),
        (
            "alpha,mysql,orders,2025-07-01,1,,\n",
            "line 2: collected date 2025-07-01 is in the future",
        ),
        (
            "alpha,db2,orders,2025-06-01,1,,\n",
            "line 2: unknown database type `db2`",
        ),
        (
            "alpha,mysql,,2025-06-01,1,,\n",
            "line 2: database name must not be empty",
        ),
        (
            "alpha,mysql,orders,2025-06-01,10,11,\n",
            "line 2: data_size_mb (11) is larger than size_mb (10)",
        ),
        (
            "alpha,mysql,orders,2025-06-01,1,,\nalpha,mysql,orders,2025-06-01,2,,\n",
            "line 3: duplicate of line 2",
        ),
        (
            "alpha,mysql,orders,2025-06-01,1\n",
            "line 2: has 5 fields, the header has 7",
        ),
    ];
    for (body, expected) in cases {
        let error = import(&mut connection, body, true).unwrap_err().to_string();
        assert!(
            error.starts_with(expected),
            "{error:?} should start with {expected:?}"
        );
        assert!(error.contains("nothing was imported"), "{error}");
    }
    let error = parse_stats_csv(
        "instance_name,size_mb\nx,1\n".as_bytes(),
        today(),
        &NoProgress,
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.starts_with("line 1: the header lacks db_type"),
        "{error}"
    );
    // Any order is fine, but no unknown or repeated column.
    let reordered = parse_stats_csv(
        "size_mb,instance_name,db_type,database_name,collected_date,log_size_mb,data_size_mb
         10,x,mysql,d,2025-06-01,,4
"
        .as_bytes(),
        today(),
        &NoProgress,
    )
    .unwrap();
    assert_eq!(
        (reordered[0].size_mb, reordered[0].data_size_mb),
        (10, Some(4))
    );
    for (header, expected) in [
        (
            "instance_name,db_type,database_name,collected_date,size_mb,data_size_mb,log_size_mb,note",
            "line 1: unknown column `note`",
        ),
        (
            "instance_name,db_type,database_name,collected_date,size_mb,size_mb,log_size_mb",
            "line 1: the header lacks data_size_mb, column `size_mb` appears twice",
        ),
    ] {
        let error = parse_stats_csv(
            format!(
                "{header}
x,mysql,d,2025-06-01,1,1,1,1
"
            )
            .as_bytes(),
            today(),
            &NoProgress,
        )
        .unwrap_err()
        .to_string();
        assert!(error.starts_with(expected), "{error}");
    }
    let error = import(&mut connection, "", true).unwrap_err().to_string();
    assert!(error.contains("no data lines"), "{error}");
    // A sample the retention would drop is refused with its line, not stored to vanish.
    let error = import(
        &mut connection,
        "a,mysql,x,2020-01-01,1,,\na,mysql,x,2019-12-31,1,,\n",
        true,
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.starts_with("line 3: collected date 2019-12-31 is before the sample retention")
            && error.contains("kept from 2020-01-01"),
        "{error}"
    );
    // Several problems: the first is shown, the rest counted.
    let error = import(
        &mut connection,
        "a,mysql,x,2025-06-01,-1,,\nb,mysql,x,2025-06-01,-2,,\nc,mysql,x,2025-06-01,-3,,\n",
        true,
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("and 2 more problems"), "{error}");
    assert_eq!(count(&mut connection, "instances"), 0);
    assert_eq!(count(&mut connection, "database_size_stats"), 0);
}

#[test]
fn instances_must_exist_or_be_created_consistently() {
    let database = capstats_test_support::TestDatabase::new();
    let mut connection = database.connection();
    let error = import(
        &mut connection,
        "alpha,mysql,orders,2025-06-01,1,,\n",
        false,
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("unknown instance `alpha`"), "{error}");
    assert!(error.contains("--create-instances"), "{error}");
    let error = import(
        &mut connection,
        "alpha,mysql,orders,2025-06-01,1,,\nalpha,oracle,orders,2025-06-02,1,,\n",
        true,
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.starts_with("line 3: instance `alpha` is mysql on line 2"),
        "{error}"
    );
    assert_eq!(count(&mut connection, "instances"), 0);

    import(&mut connection, "alpha,mysql,orders,2025-06-01,1,,\n", true).unwrap();
    let error = import(
        &mut connection,
        "alpha,oracle,orders,2025-06-02,1,,\n",
        true,
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("instance `alpha` is mysql but the line says oracle"),
        "{error}"
    );
    assert_eq!(count(&mut connection, "database_size_stats"), 1);
}

#[test]
fn samples_mark_already_aggregated_periods_stale_for_their_instance() {
    use capstats_capacity_model::{AggregationLevel, Period, PeriodType};
    use capstats_store::aggregation::{InstanceScope, aggregate_periods};

    let database = capstats_test_support::TestDatabase::new();
    let mut connection = database.connection();
    import(
        &mut connection,
        "alpha,mysql,orders,2025-06-01,1,,\nbeta,mysql,orders,2025-06-01,1,,\n",
        true,
    )
    .unwrap();
    let june = Period::containing(
        PeriodType::Monthly,
        NaiveDate::from_ymd_opt(2025, 6, 1).unwrap(),
    );
    aggregate_periods(
        &mut connection,
        AggregationLevel::Database,
        &[june],
        &InstanceScope::AllActive,
        None,
        june.next().start(),
    )
    .unwrap();
    let before = capstats_store::ledger::entries_between(
        &mut connection,
        AggregationLevel::Database,
        PeriodType::Monthly,
        june.start(),
        june.start(),
    )
    .unwrap();
    assert!(before[0].is_up_to_date());

    // A late sample for beta.
    import(&mut connection, "beta,mysql,orders,2025-06-20,2,,\n", false).unwrap();
    let after = capstats_store::ledger::entries_between(
        &mut connection,
        AggregationLevel::Database,
        PeriodType::Monthly,
        june.start(),
        june.start(),
    )
    .unwrap();
    assert!(!after[0].is_up_to_date());
    let beta = capstats_store::instances::find_by_names(&mut connection, &["beta".to_owned()])
        .unwrap()[0]
        .id;
    assert_eq!(after[0].stale_instance_ids, vec![beta]);
    let stale = capstats_store::ledger::stale_entries(&mut connection, 100, None).unwrap();
    // Only the computed monthly database period is stale; the never-computed ones are merely
    // pending.
    assert_eq!(stale.len(), 1);
    assert_eq!(stale[0].period, june);

    // Recomputing beta alone clears it.
    aggregate_periods(
        &mut connection,
        AggregationLevel::Database,
        &[june],
        &InstanceScope::Only(vec![beta]),
        None,
        june.next().start(),
    )
    .unwrap();
    assert!(
        capstats_store::ledger::stale_entries(&mut connection, 100, None)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_large_file_is_written_whole_with_exact_day_totals() {
    let database = capstats_test_support::TestDatabase::new();
    let mut connection = database.connection();
    // 25 databases × 1,000 days = 25,000 lines, in database order.
    let first = NaiveDate::from_ymd_opt(2022, 10, 1).unwrap();
    let mut body = String::new();
    for database in 0..25 {
        for day in 0..1000 {
            let date = first + chrono::Days::new(day);
            body.push_str(&format!(
                "big,postgresql,db{database},{date},{},,\n",
                database + 1
            ));
        }
    }
    let report = import(&mut connection, &body, true).unwrap();
    assert_eq!(report.written.samples_written, 25_000);
    assert_eq!(count(&mut connection, "database_size_stats"), 25_000);
    assert_eq!(count(&mut connection, "instance_size_stats"), 1_000);
    // Every day's total is the sum over all 25 databases (1 + 2 + … + 25).
    let wrong_totals = count(
        &mut connection,
        "instance_size_stats WHERE total_size_mb <> 325 OR database_count <> 25",
    );
    assert_eq!(wrong_totals, 0);
}
