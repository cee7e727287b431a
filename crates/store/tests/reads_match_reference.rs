//! The API's reads — filtered pages with totals, the databases summary and ranked chart
//! series — equal a straightforward computation over every stored aggregate, on generated
//! datasets with ties, gaps, nulls, several engines and shared database names.

use std::collections::{BTreeMap, BTreeSet};

use capstats_capacity_model::{
    AggregationLevel, DatabaseSizeAggregate, DbType, Decimal, InstanceId, InstanceSizeAggregate,
    Period, PeriodType,
};
use capstats_store::PgConnection;
use capstats_store::aggregates::{self, AggregateFilter, InstanceLabel, PageRequest};
use capstats_store::aggregation::{InstanceScope, aggregate_periods};
use capstats_store::instances::{NewInstance, create_instance};
use capstats_store::samples::{NewDatabaseSample, write_database_samples};
use chrono::{Days, NaiveDate, Utc};
use diesel::connection::SimpleConnection;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

const START: NaiveDate = NaiveDate::from_ymd_opt(2026, 2, 20).unwrap();
const DAYS: u64 = 50;
const ENGINES: [DbType; 3] = [DbType::Mysql, DbType::Postgresql, DbType::Oracle];
const NAMES: [&str; 4] = ["orders", "audit", "émigré", "logs"];

#[derive(Debug, Clone)]
struct Database {
    name: usize,
    first_day: u64,
    last_day: u64,
    /// Sizes 0..=2 give ties in every ranking; large ones give real spreads.
    tiny: bool,
    seed: u64,
}

#[derive(Debug, Clone)]
struct Case {
    engines: Vec<usize>,
    databases: Vec<Vec<Database>>,
    period_type: PeriodType,
    window: (u64, u64),
    instance_subset: Vec<bool>,
    engine_filter: Vec<usize>,
    database_name: Option<usize>,
    top: i64,
    limit: i64,
}

fn database() -> impl Strategy<Value = Database> {
    (
        0..NAMES.len(),
        0..DAYS,
        0..DAYS,
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(|(name, a, b, tiny, seed)| Database {
            name,
            first_day: a.min(b),
            last_day: a.max(b),
            tiny,
            seed,
        })
}

fn case() -> impl Strategy<Value = Case> {
    (1usize..=4).prop_flat_map(|instances| {
        (
            prop::collection::vec(0..ENGINES.len(), instances),
            prop::collection::vec(prop::collection::vec(database(), 1..=4), instances),
            prop_oneof![Just(PeriodType::Daily), Just(PeriodType::Weekly)],
            // Half the windows reach past the newest period (the default windows end today):
            // those reads take each key's latest row from the latest tables.
            (0..DAYS, prop_oneof![Just(DAYS + 7), 0..DAYS]),
            prop::collection::vec(prop::bool::weighted(0.3), instances),
            prop_oneof![
                2 => Just(vec![]),
                1 => prop::collection::vec(0..ENGINES.len(), 1..=2)
            ],
            prop::option::weighted(0.25, 0..NAMES.len()),
            1i64..=5,
            1i64..=7,
        )
            .prop_map(
                |(
                    engines,
                    databases,
                    period_type,
                    (a, b),
                    instance_subset,
                    engine_filter,
                    database_name,
                    top,
                    limit,
                )| Case {
                    engines,
                    databases,
                    period_type,
                    window: (a.min(b), a.max(b)),
                    instance_subset,
                    engine_filter,
                    database_name,
                    top,
                    limit,
                },
            )
    })
}

fn random(seed: u64, day: u64) -> u64 {
    let mut z = seed ^ day.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Writes the case's samples and aggregates daily and weekly periods over them.
fn load(connection: &mut PgConnection, case: &Case) -> Vec<InstanceLabel> {
    connection
        .batch_execute(
            "DELETE FROM database_size_aggregations; DELETE FROM instance_size_aggregations;
             DELETE FROM database_aggregate_counts; DELETE FROM aggregate_period_counts;
             DELETE FROM database_latest_aggregations; DELETE FROM instance_latest_aggregations;
             DELETE FROM database_size_stats; DELETE FROM instance_size_stats;
             DELETE FROM instance_databases; DELETE FROM aggregation_ledger;
             DELETE FROM instances;",
        )
        .unwrap();
    let mut labels = Vec::new();
    let mut samples = BTreeMap::new();
    for (index, databases) in case.databases.iter().enumerate() {
        let db_type = ENGINES[case.engines[index]];
        let instance = create_instance(
            connection,
            &NewInstance {
                name: format!("instance-{index}"),
                db_type,
                host: None,
                port: None,
                description: None,
            },
        )
        .unwrap();
        for database in databases {
            for day in database.first_day..=database.last_day {
                let draw = random(database.seed, day);
                // About one day in six is missing, so series have gaps.
                if draw.is_multiple_of(6) {
                    continue;
                }
                let size_mb = if database.tiny {
                    (draw >> 8) % 3
                } else {
                    (draw >> 8) % 1_000_000
                } as i64;
                let collected_date = START + Days::new(day);
                let key = (instance.id, NAMES[database.name], collected_date);
                samples.entry(key).or_insert(NewDatabaseSample {
                    sample: capstats_capacity_model::DatabaseSizeSample {
                        instance_id: instance.id,
                        database_name: NAMES[database.name].to_owned(),
                        collected_date,
                        size_mb,
                        data_size_mb: Some(size_mb / 2),
                        log_size_mb: None,
                    },
                    collected_at: Utc::now(),
                });
            }
        }
        labels.push(InstanceLabel {
            id: instance.id,
            name: instance.name,
            db_type,
        });
    }
    let samples: Vec<NewDatabaseSample> = samples.into_values().collect();
    write_database_samples(connection, &samples).unwrap();
    let end = START + Days::new(DAYS - 1);
    for period_type in [PeriodType::Daily, PeriodType::Weekly] {
        let first = Period::containing(period_type, START).start();
        let periods: Vec<Period> = Period::starting_between(period_type, first, end).collect();
        for level in AggregationLevel::ALL {
            // Judged after the window: every period has ended.
            aggregate_periods(
                connection,
                level,
                &periods,
                &InstanceScope::AllActive,
                None,
                end + Days::new(30),
            )
            .unwrap();
        }
    }
    labels
}

fn filter_of(case: &Case, labels: &[InstanceLabel], level: AggregationLevel) -> AggregateFilter {
    AggregateFilter {
        period_type: case.period_type,
        start: START + Days::new(case.window.0),
        end: START + Days::new(case.window.1),
        instance_ids: labels
            .iter()
            .zip(&case.instance_subset)
            .filter(|(_, chosen)| **chosen)
            .map(|(label, _)| label.id)
            .collect(),
        db_types: case
            .engine_filter
            .iter()
            .map(|index| ENGINES[*index])
            .collect(),
        database_name: match level {
            AggregationLevel::Database => case.database_name.map(|index| NAMES[index].to_owned()),
            AggregationLevel::Instance => None,
        },
    }
}

fn admits(filter: &AggregateFilter, instance: &InstanceLabel, period: Period) -> bool {
    period.start() >= filter.start
        && period.start() <= filter.end
        && (filter.instance_ids.is_empty() || filter.instance_ids.contains(&instance.id))
        && (filter.db_types.is_empty() || filter.db_types.contains(&instance.db_type))
}

/// Every database row the filter admits, in the list's order.
fn expected_databases(
    connection: &mut PgConnection,
    filter: &AggregateFilter,
    labels: &[InstanceLabel],
) -> Vec<(DatabaseSizeAggregate, InstanceLabel)> {
    let label = |id: InstanceId| labels.iter().find(|label| label.id == id).unwrap().clone();
    let first = START - Days::new(7);
    let last = START + Days::new(DAYS);
    let mut rows: Vec<(DatabaseSizeAggregate, InstanceLabel)> =
        aggregates::database_aggregates_between(connection, filter.period_type, first, last)
            .unwrap()
            .into_iter()
            .map(|row| {
                let instance = label(row.instance_id);
                (row, instance)
            })
            .filter(|(row, instance)| {
                admits(filter, instance, row.period)
                    && filter
                        .database_name
                        .as_ref()
                        .is_none_or(|name| *name == row.database_name)
            })
            .collect();
    rows.sort_by(|(a, _), (b, _)| {
        (b.period.start(), b.instance_id, &b.database_name).cmp(&(
            a.period.start(),
            a.instance_id,
            &a.database_name,
        ))
    });
    rows
}

fn expected_instances(
    connection: &mut PgConnection,
    filter: &AggregateFilter,
    labels: &[InstanceLabel],
) -> Vec<(InstanceSizeAggregate, InstanceLabel)> {
    let label = |id: InstanceId| labels.iter().find(|label| label.id == id).unwrap().clone();
    let first = START - Days::new(7);
    let last = START + Days::new(DAYS);
    let mut rows: Vec<(InstanceSizeAggregate, InstanceLabel)> =
        aggregates::instance_aggregates_between(connection, filter.period_type, first, last)
            .unwrap()
            .into_iter()
            .map(|row| {
                let instance = label(row.instance_id);
                (row, instance)
            })
            .filter(|(row, instance)| admits(filter, instance, row.period))
            .collect();
    rows.sort_by(|(a, _), (b, _)| {
        (b.period.start(), b.instance_id).cmp(&(a.period.start(), a.instance_id))
    });
    rows
}

/// Reads every page of a list and checks each page's total.
fn all_pages<T>(
    limit: i64,
    mut read: impl FnMut(PageRequest) -> (Vec<T>, i64),
    expected_total: usize,
) -> Vec<T> {
    let mut all = Vec::new();
    for page in 1.. {
        let (items, total) = read(PageRequest { page, limit });
        assert_eq!(total, expected_total as i64, "total of page {page}");
        let last = (items.len() as i64) < limit;
        all.extend(items);
        if last {
            break;
        }
    }
    all
}

/// A plotted point as the reference computes it: key, period start, value, sample count and
/// completeness.
type ExpectedPoint = (
    InstanceLabel,
    Option<String>,
    NaiveDate,
    Option<Decimal>,
    (i64, capstats_capacity_model::Completeness),
);

/// The expected series: lines ranked by latest non-null value, the `top` of them, each with
/// its points by period.
fn expected_series(rows: Vec<ExpectedPoint>, top: i64) -> aggregates::RankedSeries {
    type LineKey = (InstanceId, Option<String>);
    let mut lines: BTreeMap<LineKey, Vec<aggregates::SeriesPoint>> = BTreeMap::new();
    for (instance, database_name, period_start, value, (data_count, completeness)) in rows {
        lines
            .entry((instance.id, database_name.clone()))
            .or_default()
            .push(aggregates::SeriesPoint {
                instance,
                database_name,
                period_start,
                value,
                data_count,
                completeness,
            });
    }
    let total_lines = lines.len() as i64;
    let mut ranked: Vec<(LineKey, Vec<aggregates::SeriesPoint>)> = lines.into_iter().collect();
    for (_, points) in &mut ranked {
        points.sort_by_key(|point| point.period_start);
    }
    let latest =
        |points: &[aggregates::SeriesPoint]| points.iter().rev().find_map(|point| point.value);
    ranked.sort_by(|(a_key, a), (b_key, b)| latest(b).cmp(&latest(a)).then(a_key.cmp(b_key)));
    aggregates::RankedSeries {
        points: ranked
            .into_iter()
            .take(top as usize)
            .flat_map(|(_, points)| points)
            .collect(),
        total_lines,
    }
}

fn check(connection: &mut PgConnection, case: &Case) {
    let labels = load(connection, case);

    // Database level: pages, summary, series.
    let filter = filter_of(case, &labels, AggregationLevel::Database);
    let expected = expected_databases(connection, &filter, &labels);
    let listed = all_pages(
        case.limit,
        |page| aggregates::list_database_aggregates(connection, &filter, page).unwrap(),
        expected.len(),
    );
    assert_eq!(listed, expected, "database pages");

    let mut latest: BTreeMap<(InstanceId, String), &(DatabaseSizeAggregate, InstanceLabel)> =
        BTreeMap::new();
    for entry in &expected {
        // `expected` runs newest period first: the first row of a database is its latest.
        latest
            .entry((entry.0.instance_id, entry.0.database_name.clone()))
            .or_insert(entry);
    }
    let totals = aggregates::database_totals(connection, &filter).unwrap();
    assert_eq!(totals.database_count, latest.len() as i64);
    let instances: BTreeSet<InstanceId> = latest.keys().map(|(id, _)| *id).collect();
    assert_eq!(totals.instance_count, instances.len() as i64);
    let sum = |value: fn(&DatabaseSizeAggregate) -> Option<i128>| -> i128 {
        latest.values().filter_map(|(row, _)| value(row)).sum()
    };
    assert_eq!(
        totals.total_size_mb,
        sum(|row| Some(row.avg_size_mb.into()))
    );
    assert_eq!(
        totals.size_change_mb,
        sum(|row| row.size_change_mb.map(i128::from))
    );
    assert_eq!(
        totals.size_before_mb,
        sum(|row| row
            .size_change_mb
            .map(|change| i128::from(row.avg_size_mb) - i128::from(change)))
    );
    assert_eq!(
        totals.max_size_mb,
        latest.values().map(|(row, _)| row.max_size_mb).max()
    );
    let largest = latest
        .values()
        .max_by(|(a, _), (b, _)| {
            a.avg_size_mb
                .cmp(&b.avg_size_mb)
                .then((&b.instance_id, &b.database_name).cmp(&(&a.instance_id, &a.database_name)))
        })
        .map(|(row, instance)| (instance.clone(), row.database_name.clone(), row.avg_size_mb));
    assert_eq!(totals.largest, largest, "largest database");

    type Metric<T> = (&'static str, fn(&T) -> Option<Decimal>);
    let database_metrics: [Metric<DatabaseSizeAggregate>; 4] = [
        ("avg_size_mb", |row| Some(row.avg_size_mb.into())),
        ("size_change_mb", |row| {
            row.size_change_mb.map(Decimal::from)
        }),
        ("size_change_percent", |row| row.size_change_percent),
        ("yoy_change_percent", |row| row.yoy_change_percent),
    ];
    for (column, value) in database_metrics {
        let rows = expected
            .iter()
            .map(|(row, instance)| {
                (
                    instance.clone(),
                    Some(row.database_name.clone()),
                    row.period.start(),
                    value(row),
                    (row.data_count, row.completeness),
                )
            })
            .collect();
        assert_eq!(
            aggregates::series(
                connection,
                AggregationLevel::Database,
                aggregates::MetricColumn::parse(AggregationLevel::Database, column).unwrap(),
                &filter,
                case.top
            )
            .unwrap(),
            expected_series(rows, case.top),
            "database series of {column}"
        );
    }

    // Instance level: pages and series.
    let filter = filter_of(case, &labels, AggregationLevel::Instance);
    let expected = expected_instances(connection, &filter, &labels);
    let listed = all_pages(
        case.limit,
        |page| aggregates::list_instance_aggregates(connection, &filter, page).unwrap(),
        expected.len(),
    );
    assert_eq!(listed, expected, "instance pages");
    let instance_metrics: [Metric<InstanceSizeAggregate>; 3] = [
        ("total_size_mb", |row| Some(row.total_size_mb.into())),
        ("total_size_change_percent", |row| {
            row.total_size_change_percent
        }),
        ("yoy_change_percent", |row| row.yoy_change_percent),
    ];
    for (column, value) in instance_metrics {
        let rows = expected
            .iter()
            .map(|(row, instance)| {
                (
                    instance.clone(),
                    None,
                    row.period.start(),
                    value(row),
                    (row.data_count, row.completeness),
                )
            })
            .collect();
        assert_eq!(
            aggregates::series(
                connection,
                AggregationLevel::Instance,
                aggregates::MetricColumn::parse(AggregationLevel::Instance, column).unwrap(),
                &filter,
                case.top
            )
            .unwrap(),
            expected_series(rows, case.top),
            "instance series of {column}"
        );
    }
}

#[test]
fn reads_equal_a_computation_over_all_stored_aggregates() {
    let database = capstats_test_support::TestDatabase::new();
    let connection = std::cell::RefCell::new(database.connection());
    let mut runner = TestRunner::new(Config {
        cases: 96,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&case(), |case| {
            check(&mut connection.borrow_mut(), &case);
            Ok(())
        })
        .unwrap();
}

/// The metrics the series treat as never null are `NOT NULL` columns.
#[test]
fn metrics_said_never_null_are_not_null_columns() {
    let database = capstats_test_support::TestDatabase::new();
    for level in AggregationLevel::ALL {
        let table = capstats_store::level_tables::LevelTables::of(level).aggregates;
        for metric in aggregates::MetricColumn::of_level(level) {
            let nullable = capstats_test_support::count(
                &database.url(),
                &format!(
                    "SELECT count(*) FROM information_schema.columns
                     WHERE table_name = '{table}' AND column_name = '{}'
                       AND is_nullable = 'YES'",
                    metric.name()
                ),
            );
            assert_eq!(
                nullable == 1,
                metric.may_be_null(level),
                "{level} {}",
                metric.name()
            );
        }
    }
}
