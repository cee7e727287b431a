//! Differential tests: the rows the set-based SQL writes equal, column by column, what
//! `aggregation-core` computes from the same samples — on hundreds of generated datasets with
//! missing days, null and zero sizes, extreme magnitudes, databases appearing and
//! disappearing, inactive instances, corrections, deleted samples, random batch boundaries
//! and chunked instance scopes, for every period type and both levels.

use std::collections::{BTreeMap, BTreeSet};

use capstats_aggregation_core::AggregationEngine;
use capstats_capacity_model::{
    AggregationLevel, DatabaseSizeSample, DbType, InstanceId, Period, PeriodType,
};
use capstats_store::PgConnection;
use capstats_store::aggregation::{InstanceScope, aggregate_periods};
use capstats_store::instances::{NewInstance, create_instance, set_active};
use capstats_store::level_tables::LevelTables;
use capstats_store::samples::{NewDatabaseSample, write_database_samples};
use chrono::{Days, NaiveDate, Utc};
use diesel::connection::SimpleConnection;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// How sizes of one database are drawn.
#[derive(Debug, Clone, Copy)]
enum Magnitude {
    /// 0..=3: many zeros, ties and halves.
    Tiny,
    /// Everyday sizes.
    Normal,
    /// Up to the largest accepted size (2^40 MiB), so that cross products are far beyond 64
    /// bits.
    Huge,
}

#[derive(Debug, Clone)]
struct DatabaseSpec {
    name: String,
    magnitude: Magnitude,
    first_day: u32,
    last_day: u32,
    presence_percent: u32,
    data_null_percent: u32,
    log_null_percent: u32,
    seed: u64,
}

#[derive(Debug, Clone)]
struct InstanceSpec {
    active: bool,
    databases: Vec<DatabaseSpec>,
}

#[derive(Debug, Clone)]
struct Dataset {
    start: NaiveDate,
    days: u32,
    instances: Vec<InstanceSpec>,
    /// After a first computation: delete these (instance index, database index) samples from
    /// this day on, rewrite some sizes, then compute again.
    second_round: Option<(usize, usize, u32)>,
    batch_size: usize,
    chunked: bool,
    /// The business day the rows are computed on (their completeness is judged on it), from
    /// the dataset's first day to a hundred days after its last…
    judged_on: NaiveDate,
    /// …and the later day their completeness is then refreshed to.
    refreshed_on: NaiveDate,
}

fn database_spec(days: u32, index: usize) -> impl Strategy<Value = DatabaseSpec> {
    let names = ["orders", "Audit", "émigré", "z_logs"];
    (
        prop_oneof![
            3 => Just(Magnitude::Tiny),
            5 => Just(Magnitude::Normal),
            1 => Just(Magnitude::Huge)
        ],
        0..days,
        0..days,
        prop_oneof![Just(100u32), 40u32..100],
        prop_oneof![Just(0u32), Just(100u32), 0u32..100],
        prop_oneof![Just(0u32), Just(100u32), 0u32..100],
        any::<u64>(),
    )
        .prop_map(
            move |(magnitude, a, b, presence, data_null, log_null, seed)| DatabaseSpec {
                name: names[index % names.len()].to_owned(),
                magnitude,
                first_day: a.min(b),
                last_day: a.max(b),
                presence_percent: presence,
                data_null_percent: data_null,
                log_null_percent: log_null,
                seed,
            },
        )
}

fn instance_spec(days: u32) -> impl Strategy<Value = InstanceSpec> {
    (prop::bool::weighted(0.9), 1usize..=4).prop_flat_map(move |(active, count)| {
        (0..count)
            .map(|index| database_spec(days, index))
            .collect::<Vec<_>>()
            .prop_map(move |databases| InstanceSpec { active, databases })
    })
}

fn dataset() -> impl Strategy<Value = Dataset> {
    // Start dates from 2023-10-01 over two and a half years; lengths up to 14 months, mostly
    // short. Together they cross month, quarter, year and ISO-week-53 boundaries.
    let start = (0u64..900)
        .prop_map(|offset| NaiveDate::from_ymd_opt(2023, 10, 1).unwrap() + Days::new(offset));
    // The longest reach past a year, so that weekly and monthly rows have a year-earlier period.
    let days = prop_oneof![3 => 1u32..40, 2 => 40u32..140, 1 => 140u32..430, 1 => 380u32..760];
    (start, days).prop_flat_map(|(start, days)| {
        (
            prop::collection::vec(instance_spec(days), 1..=3),
            prop::option::of((0usize..3, 0usize..4, 0..days)),
            prop_oneof![Just(1usize), 2usize..5, Just(400usize)],
            any::<bool>(),
            0..u64::from(days) + 100,
            prop_oneof![Just(0u64), 1u64..3, 3u64..120],
        )
            .prop_map(
                move |(instances, second_round, batch_size, chunked, judged, later)| {
                    let judged_on = start + Days::new(judged);
                    Dataset {
                        start,
                        days,
                        instances,
                        second_round,
                        batch_size,
                        chunked,
                        judged_on,
                        refreshed_on: judged_on + Days::new(later),
                    }
                },
            )
    })
}

/// A small deterministic generator, so one seed gives one database's whole series.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }
}

fn samples_of(
    dataset: &Dataset,
    instance_ids: &[InstanceId],
    generation: u64,
) -> Vec<DatabaseSizeSample> {
    let mut samples = Vec::new();
    for (instance, spec) in dataset.instances.iter().enumerate() {
        for database in &spec.databases {
            let mut random = SplitMix(database.seed ^ generation.wrapping_mul(0x1234_5678));
            for day in database.first_day..=database.last_day {
                if random.below(100) >= u64::from(database.presence_percent) {
                    continue;
                }
                let size_mb = match database.magnitude {
                    Magnitude::Tiny => random.below(4),
                    Magnitude::Normal => random.below(5_000_000),
                    Magnitude::Huge => {
                        random.below(capstats_capacity_model::MAX_SIZE_MB as u64 + 1)
                    }
                } as i64;
                let mut part = |null_percent: u32| {
                    (random.below(100) >= u64::from(null_percent))
                        .then(|| random.below(size_mb as u64 + 1) as i64)
                };
                let data_size_mb = part(database.data_null_percent);
                let log_size_mb = part(database.log_null_percent);
                samples.push(DatabaseSizeSample {
                    instance_id: instance_ids[instance],
                    database_name: database.name.clone(),
                    collected_date: dataset.start + Days::new(u64::from(day)),
                    size_mb,
                    data_size_mb,
                    log_size_mb,
                });
            }
        }
    }
    // Two specs of one instance may share a name: keep the first sample per key and day.
    let mut seen = BTreeSet::new();
    samples.retain(|sample| {
        seen.insert((
            sample.instance_id,
            sample.database_name.clone(),
            sample.collected_date,
        ))
    });
    samples
}

fn write(connection: &mut PgConnection, samples: &[DatabaseSizeSample]) {
    let rows: Vec<NewDatabaseSample> = samples
        .iter()
        .map(|sample| NewDatabaseSample {
            sample: sample.clone(),
            collected_at: Utc::now(),
        })
        .collect();
    write_database_samples(connection, &rows).expect("samples are written");
}

/// Computes every period type over the dataset's range with the dataset's batch size and
/// scope, checking each batch's rows written per instance against `aggregation-core` on
/// `samples` (the samples stored now) for the `active` instances.
fn compute_everything(
    connection: &mut PgConnection,
    dataset: &Dataset,
    instance_ids: &[InstanceId],
    samples: &[DatabaseSizeSample],
    active: &BTreeSet<InstanceId>,
) {
    let engine = engine_of(samples, active, dataset.judged_on);
    let end = dataset.start + Days::new(u64::from(dataset.days - 1));
    let scopes = if dataset.chunked {
        instance_ids
            .chunks(2)
            .map(|chunk| InstanceScope::Only(chunk.to_vec()))
            .collect()
    } else {
        vec![InstanceScope::AllActive]
    };
    for period_type in PeriodType::ALL {
        let first = Period::containing(period_type, dataset.start);
        let periods: Vec<Period> =
            Period::starting_between(period_type, first.start(), end).collect();
        // At most about eight statements per level and type, but batch edges anywhere.
        let batch_size = dataset.batch_size.max(periods.len().div_ceil(8));
        for level in AggregationLevel::ALL {
            for batch in periods.chunks(batch_size) {
                let expected = engine
                    .aggregate_range(period_type, batch[0].start(), batch[batch.len() - 1].end())
                    .expect("engine computes");
                let expected_keys: BTreeSet<RowKey> = match level {
                    AggregationLevel::Database => expected
                        .databases
                        .iter()
                        .map(|row| {
                            (
                                row.instance_id.0,
                                row.database_name.clone(),
                                row.period.start(),
                            )
                        })
                        .collect(),
                    AggregationLevel::Instance => expected
                        .instances
                        .iter()
                        .map(|row| (row.instance_id.0, String::new(), row.period.start()))
                        .collect(),
                };
                let rows_of: Vec<InstanceId> =
                    expected_keys.iter().map(|key| InstanceId(key.0)).collect();
                for scope in &scopes {
                    // Rows whose key is no longer computed are deleted: those of the active
                    // instances in scope.
                    let mut expected_deleted: BTreeMap<InstanceId, u64> = BTreeMap::new();
                    for key in stored_keys(connection, level, batch) {
                        let instance_id = InstanceId(key.0);
                        let in_scope = match scope {
                            InstanceScope::AllActive => true,
                            InstanceScope::Only(ids) => ids.contains(&instance_id),
                        };
                        if in_scope
                            && active.contains(&instance_id)
                            && !expected_keys.contains(&key)
                        {
                            *expected_deleted.entry(instance_id).or_default() += 1;
                            VANISHED_KEYS_SEEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                    let outcome =
                        aggregate_periods(connection, level, batch, scope, None, dataset.judged_on)
                            .expect("aggregation succeeds");
                    let deleted: BTreeMap<InstanceId, u64> = outcome
                        .by_instance
                        .iter()
                        .filter(|(_, counts)| counts.deleted > 0)
                        .map(|(instance_id, counts)| (*instance_id, counts.deleted))
                        .collect();
                    assert_eq!(
                        deleted, expected_deleted,
                        "rows deleted per instance, {level} {period_type} {batch:?}"
                    );
                    let mut expected_written: BTreeMap<InstanceId, u64> = BTreeMap::new();
                    for instance_id in &rows_of {
                        let in_scope = match scope {
                            InstanceScope::AllActive => true,
                            InstanceScope::Only(ids) => ids.contains(instance_id),
                        };
                        if in_scope {
                            *expected_written.entry(*instance_id).or_default() += 1;
                        }
                    }
                    let written: BTreeMap<InstanceId, u64> = outcome
                        .by_instance
                        .iter()
                        .filter(|(_, counts)| counts.written > 0)
                        .map(|(instance_id, counts)| (*instance_id, counts.written))
                        .collect();
                    assert_eq!(
                        written, expected_written,
                        "rows written per instance, {level} {period_type} {batch:?}"
                    );
                }
            }
        }
    }
    // Each key's latest row is the newest the batches, scopes and rounds left, vanished keys
    // included (once per computation: the check reads every partition).
    capstats_test_support::latest_aggregations::assert_latest_aggregations_match(
        connection,
        "after computing every period type",
    );
}

/// An aggregate row's key within one period type: instance, database (empty at instance
/// level) and period start.
type RowKey = (i64, String, NaiveDate);

/// How many expected weekly and longer rows had a year-over-year change: the test fails should
/// the datasets never reach a year back, which would leave those columns unchecked.
static YEAR_OVER_YEAR_SEEN: [std::sync::atomic::AtomicU64; 2] =
    [const { std::sync::atomic::AtomicU64::new(0) }; 2];

/// How many rows a refresh on a later day changed, and how many compared rows were partial and
/// complete: the test fails should the datasets leave one of them unchecked.
static COMPLETENESS_REFRESHED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static PARTIAL_AND_COMPLETE_SEEN: [std::sync::atomic::AtomicU64; 2] =
    [const { std::sync::atomic::AtomicU64::new(0) }; 2];

/// How many rows the runs were expected to delete in all: the test fails should the datasets
/// never make a key vanish.
static VANISHED_KEYS_SEEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The keys of the rows of `level` stored now for the periods of `batch`.
fn stored_keys(
    connection: &mut PgConnection,
    level: AggregationLevel,
    batch: &[Period],
) -> Vec<RowKey> {
    #[derive(diesel::QueryableByName)]
    struct Key {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        instance_id: i64,
        #[diesel(sql_type = diesel::sql_types::Text)]
        database_name: String,
        #[diesel(sql_type = diesel::sql_types::Date)]
        period_start: NaiveDate,
    }
    let tables = LevelTables::of(level);
    let (table, database) = (
        tables.aggregates,
        tables.database_name_of(tables.aggregates),
    );
    let query = diesel::sql_query(format!(
        "SELECT instance_id, {database} AS database_name, period_start FROM {table}
         WHERE period_type = $1 AND period_start BETWEEN $2 AND $3"
    ))
    .bind::<diesel::sql_types::Text, _>(batch[0].period_type().as_str())
    .bind::<diesel::sql_types::Date, _>(batch[0].start())
    .bind::<diesel::sql_types::Date, _>(batch[batch.len() - 1].start());
    let keys: Vec<Key> = diesel::RunQueryDsl::load(query, connection).unwrap();
    keys.into_iter()
        .map(|key| (key.instance_id, key.database_name, key.period_start))
        .collect()
}

/// The per-instance row counts the aggregation maintains equal the rows stored.
fn compare_row_counts(connection: &mut PgConnection) {
    #[derive(diesel::QueryableByName, Debug)]
    struct Mismatch {
        #[diesel(sql_type = diesel::sql_types::Text)]
        description: String,
    }
    let mismatches: Vec<Mismatch> = diesel::RunQueryDsl::load(
        diesel::sql_query(
            "WITH stored_by_instance AS (
                 SELECT period_type, period_start, instance_id, count(*) AS row_count
                 FROM database_size_aggregations
                 GROUP BY 1, 2, 3),
             stored_by_period AS (
                 SELECT 'database' AS level, period_type, period_start, count(*) AS row_count
                 FROM database_size_aggregations GROUP BY 2, 3
                 UNION ALL
                 SELECT 'instance', period_type, period_start, count(*)
                 FROM instance_size_aggregations GROUP BY 2, 3)
             SELECT concat_ws(' ', period_type, period_start, instance_id, counted.row_count,
                              stored.row_count) AS description
             FROM database_aggregate_counts counted
             FULL JOIN stored_by_instance stored USING (period_type, period_start, instance_id)
             WHERE counted.row_count IS DISTINCT FROM stored.row_count
             UNION ALL
             SELECT concat_ws(' ', level, period_type, period_start, counted.row_count,
                              stored.row_count)
             FROM aggregate_period_counts counted
             FULL JOIN stored_by_period stored USING (level, period_type, period_start)
             WHERE counted.row_count IS DISTINCT FROM stored.row_count",
        ),
        connection,
    )
    .unwrap();
    let mismatches: Vec<String> = mismatches.into_iter().map(|row| row.description).collect();
    assert!(
        mismatches.is_empty(),
        "row counts ([level] type start [instance] counted stored): {mismatches:?}"
    );
}

fn compare(connection: &mut PgConnection, dataset: &Dataset, engine: &AggregationEngine) {
    compare_row_counts(connection);
    let end = dataset.start + Days::new(u64::from(dataset.days - 1));
    for period_type in PeriodType::ALL {
        let first = Period::containing(period_type, dataset.start).start();
        let expected = engine
            .aggregate_range(period_type, first, end)
            .expect("engine computes");
        let mut stored_databases = capstats_store::aggregates::database_aggregates_between(
            connection,
            period_type,
            first,
            end,
        )
        .unwrap();
        let mut expected_databases = expected.databases;
        let with_year_over_year = expected_databases
            .iter()
            .filter(|row| row.yoy_change_mb.is_some())
            .count()
            + expected
                .instances
                .iter()
                .filter(|row| row.yoy_change_mb.is_some())
                .count();
        if period_type != PeriodType::Daily {
            let slot = usize::from(period_type != PeriodType::Weekly);
            YEAR_OVER_YEAR_SEEN[slot].fetch_add(
                with_year_over_year as u64,
                std::sync::atomic::Ordering::Relaxed,
            );
        }
        let key = |row: &capstats_capacity_model::DatabaseSizeAggregate| {
            (
                row.period.start(),
                row.instance_id,
                row.database_name.clone(),
            )
        };
        stored_databases.sort_by_key(key);
        expected_databases.sort_by_key(key);
        assert_eq!(
            stored_databases.len(),
            expected_databases.len(),
            "{period_type} database row count"
        );
        for (stored, expected) in stored_databases.iter().zip(&expected_databases) {
            assert_eq!(stored, expected, "{period_type} database row");
            PARTIAL_AND_COMPLETE_SEEN[usize::from(expected.completeness.is_partial)]
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let stored_instances = capstats_store::aggregates::instance_aggregates_between(
            connection,
            period_type,
            first,
            end,
        )
        .unwrap();
        assert_eq!(
            stored_instances, expected.instances,
            "{period_type} instance rows"
        );
    }
}

fn run_case(connection: &mut PgConnection, dataset: &Dataset) {
    connection
        .batch_execute(
            // DELETE rather than TRUNCATE: cheaper on small tables with many partitions.
            "DELETE FROM database_size_aggregations; DELETE FROM instance_size_aggregations;
             DELETE FROM database_aggregate_counts; DELETE FROM aggregate_period_counts;
             DELETE FROM database_latest_aggregations; DELETE FROM instance_latest_aggregations;
             DELETE FROM database_size_stats; DELETE FROM instance_size_stats;
             DELETE FROM instance_databases; DELETE FROM aggregation_ledger;
             DELETE FROM sync_instance_records; DELETE FROM sync_sessions;
             DELETE FROM instances;",
        )
        .unwrap();
    let instance_ids: Vec<InstanceId> = dataset
        .instances
        .iter()
        .enumerate()
        .map(|(index, spec)| {
            let instance = create_instance(
                connection,
                &NewInstance {
                    name: format!("instance-{index}"),
                    db_type: DbType::Postgresql,
                    host: None,
                    port: None,
                    description: None,
                },
            )
            .unwrap();
            if !spec.active {
                set_active(connection, instance.id, false).unwrap();
            }
            instance.id
        })
        .collect();
    let active: BTreeSet<InstanceId> = dataset
        .instances
        .iter()
        .zip(&instance_ids)
        .filter(|(spec, _)| spec.active)
        .map(|(_, id)| *id)
        .collect();

    let mut samples = samples_of(dataset, &instance_ids, 0);
    write(connection, &samples);
    capstats_test_support::month_sums::assert_month_sums_match(connection, "after the samples");
    compute_everything(connection, dataset, &instance_ids, &samples, &active);

    if let Some((instance, database, from_day)) = dataset.second_round {
        // Corrections: a second generation rewrites a third of the samples.
        let corrected: Vec<DatabaseSizeSample> = samples_of(dataset, &instance_ids, 1)
            .into_iter()
            .enumerate()
            .filter(|(index, _)| index % 3 == 0)
            .map(|(_, sample)| sample)
            .collect();
        write(connection, &corrected);
        for sample in corrected {
            let slot = samples.iter_mut().find(|stored| {
                stored.instance_id == sample.instance_id
                    && stored.database_name == sample.database_name
                    && stored.collected_date == sample.collected_date
            });
            match slot {
                Some(slot) => *slot = sample,
                None => samples.push(sample),
            }
        }
        // A database disappears from one day on: its rows there must go.
        if let (Some(instance_id), Some(spec)) = (
            instance_ids.get(instance),
            dataset
                .instances
                .get(instance)
                .and_then(|spec| spec.databases.get(database)),
        ) {
            let cut = dataset.start + Days::new(u64::from(from_day));
            connection
                .batch_execute(&format!(
                    "DELETE FROM database_size_stats WHERE instance_id = {} AND database_name = '{}'
                       AND collected_date >= '{cut}';
                     DELETE FROM instance_size_stats WHERE instance_id = {0};
                     INSERT INTO instance_size_stats
                         (instance_id, collected_date, total_size_mb, database_count, collected_at)
                     SELECT instance_id, collected_date, sum(size_mb), count(*), now()
                     FROM database_size_stats WHERE instance_id = {0}
                     GROUP BY instance_id, collected_date",
                    instance_id.0, spec.name
                ))
                .unwrap();
            samples.retain(|sample| {
                !(sample.instance_id == *instance_id
                    && sample.database_name == spec.name
                    && sample.collected_date >= cut)
            });
        }
        capstats_test_support::month_sums::assert_month_sums_match(
            connection,
            "after the corrections and the deletion",
        );
        compute_everything(connection, dataset, &instance_ids, &samples, &active);
    }

    compare(
        connection,
        dataset,
        &engine_of(&samples, &active, dataset.judged_on),
    );
    // As the days pass, the refresh brings the stored completeness to what the engine says
    // on the later day; the other columns stay as they were.
    let refreshed =
        capstats_store::aggregation::refresh_completeness(connection, dataset.refreshed_on)
            .expect("completeness is refreshed");
    capstats_test_support::latest_aggregations::assert_latest_aggregations_match(
        connection,
        "after the completeness refresh",
    );
    if dataset.refreshed_on > dataset.judged_on {
        COMPLETENESS_REFRESHED.fetch_add(
            refreshed.database_rows + refreshed.instance_rows,
            std::sync::atomic::Ordering::Relaxed,
        );
    } else {
        assert_eq!(
            refreshed,
            Default::default(),
            "a refresh on the same day writes nothing"
        );
    }
    compare(
        connection,
        dataset,
        &engine_of(&samples, &active, dataset.refreshed_on),
    );
}

/// An engine judging on `as_of` with the `samples` of the `active` instances.
fn engine_of(
    samples: &[DatabaseSizeSample],
    active: &BTreeSet<InstanceId>,
    as_of: NaiveDate,
) -> AggregationEngine {
    let mut engine = AggregationEngine::as_of(as_of);
    for sample in samples
        .iter()
        .filter(|sample| active.contains(&sample.instance_id))
    {
        engine.record(sample.clone()).unwrap();
    }
    engine
}

#[test]
fn sql_aggregation_equals_aggregation_core() {
    let database = capstats_test_support::TestDatabase::new();
    let connection = std::cell::RefCell::new(database.connection());
    let cases = std::env::var("CAPSTATS_DIFFERENTIAL_CASES")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(256);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&dataset(), |dataset| {
            run_case(&mut connection.borrow_mut(), &dataset);
            Ok(())
        })
        .unwrap();
    assert!(
        COMPLETENESS_REFRESHED.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "no refresh changed a row, so the refresh went unchecked"
    );
    for (seen, kind) in PARTIAL_AND_COMPLETE_SEEN
        .iter()
        .zip(["complete", "partial"])
    {
        assert!(
            seen.load(std::sync::atomic::Ordering::Relaxed) > 0,
            "no compared row was {kind}"
        );
    }
    assert!(
        VANISHED_KEYS_SEEN.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "the datasets removed no computed key, so rows deleted went unchecked"
    );
    for (seen, types) in YEAR_OVER_YEAR_SEEN
        .iter()
        .zip(["weekly", "monthly and longer"])
    {
        assert!(
            seen.load(std::sync::atomic::Ordering::Relaxed) > 0,
            "no {types} row had a period a year earlier, so year over year went unchecked"
        );
    }
}
