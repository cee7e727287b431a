//! A realistic demo dataset.
//!
//! Each database follows its own story: a starting size spread over five orders of magnitude,
//! a daily drift (most grow, some shrink, some stay flat), day-to-day noise, periodic purges
//! for some, and a life span — some databases appear part-way through the range and some are
//! dropped before its end. Each instance misses a few collection days entirely. The output is
//! deterministic for a given seed, so a demo or a benchmark can be reproduced.

use chrono::{Days, NaiveDate, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use capstats_capacity_model::{DatabaseSizeSample, DbType, InstanceId};
use capstats_store::PgConnection;
use capstats_store::instances::{self, NewInstance};
use capstats_store::partitions::{PartitionedTable, ensure_partitions, months_between};
use capstats_store::samples::{NewDatabaseSample, WriteSummary, write_database_samples};

use crate::{Progress, ServiceError};

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedOptions {
    /// Number of instances.
    pub instances: u32,
    /// Databases per instance (some of which live only part of the range).
    pub databases_per_instance: u32,
    /// Days of history.
    pub days: u32,
    /// The last day of the history (usually yesterday in the business time zone).
    pub end_date: NaiveDate,
    /// Seed of the random generator.
    pub seed: u64,
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SeedReport {
    /// Instances created or reused.
    pub instances: usize,
    /// Sample rows written.
    pub samples: u64,
    /// Totals of the writes.
    pub written: WriteSummary,
}

/// The name of the `index`-th demo instance.
pub fn instance_name(db_type: DbType, index: u32) -> String {
    format!("demo-{db_type}-{index:03}")
}

fn db_type_of(index: u32) -> DbType {
    DbType::ALL[index as usize % DbType::ALL.len()]
}

/// The life story of one database, drawn once.
struct DatabaseModel {
    name: String,
    size: f64,
    daily_drift: f64,
    noise: f64,
    purge_every_days: Option<u32>,
    purge_keeps: f64,
    first_day: u32,
    last_day: u32,
    empty: bool,
}

impl DatabaseModel {
    fn draw(random: &mut ChaCha8Rng, instance: u32, index: u32, days: u32) -> Self {
        let names = [
            "orders",
            "customers",
            "billing",
            "inventory",
            "audit",
            "reporting",
            "sessions",
            "catalog",
            "payments",
            "analytics",
            "shipping",
            "crm",
        ];
        let base = names[(index as usize + instance as usize) % names.len()];
        let name = if index < names.len() as u32 {
            base.to_owned()
        } else {
            format!("{base}_{index}")
        };
        // 50 MB to 200 GB, uniform on a log scale.
        let size = 10f64.powf(random.random_range(1.7..5.3));
        let daily_drift = match random.random_range(0..10) {
            0 => random.random_range(-0.004..-0.0005),
            1 | 2 => 0.0,
            _ => random.random_range(0.0002..0.006),
        };
        let purge_every_days = random.random_bool(0.3).then(|| random.random_range(20..90));
        let first_day = if random.random_bool(0.15) {
            random.random_range(0..days.max(1))
        } else {
            0
        };
        let last_day = if random.random_bool(0.1) {
            random.random_range(first_day..days.max(first_day + 1))
        } else {
            days.saturating_sub(1)
        };
        Self {
            name,
            size,
            daily_drift,
            noise: random.random_range(0.0..0.01),
            purge_every_days,
            purge_keeps: random.random_range(0.4..0.8),
            first_day,
            last_day,
            empty: random.random_bool(0.02),
        }
    }

    /// Advances one day and returns the size in MB.
    fn step(&mut self, random: &mut ChaCha8Rng, day: u32) -> i64 {
        if self.empty {
            return 0;
        }
        self.size *= 1.0 + self.daily_drift;
        if let Some(every) = self.purge_every_days
            && day > 0
            && day.is_multiple_of(every)
        {
            self.size *= self.purge_keeps;
        }
        let noisy = self.size * (1.0 + random.random_range(-self.noise..=self.noise));
        noisy.round().max(0.0) as i64
    }
}

/// Splits a total size into data and log parts the way each engine reports them.
fn parts(db_type: DbType, size: i64, random: &mut ChaCha8Rng) -> (Option<i64>, Option<i64>) {
    match db_type {
        DbType::Sqlserver => {
            let log = (size as f64 * random.random_range(0.05..0.3)).round() as i64;
            (Some(size - log), Some(log))
        }
        DbType::Mysql => {
            let data = (size as f64 * random.random_range(0.8..0.95)).round() as i64;
            (Some(data), None)
        }
        DbType::Postgresql | DbType::Oracle => (Some(size), None),
    }
}

/// Generates the samples of one instance.
fn instance_samples(
    options: &SeedOptions,
    instance_index: u32,
    instance_id: InstanceId,
) -> Vec<DatabaseSizeSample> {
    let mut random = ChaCha8Rng::seed_from_u64(options.seed ^ (u64::from(instance_index) << 32));
    let db_type = db_type_of(instance_index);
    let first_date = options.end_date - Days::new(u64::from(options.days.saturating_sub(1)));
    let mut models: Vec<DatabaseModel> = (0..options.databases_per_instance)
        .map(|index| DatabaseModel::draw(&mut random, instance_index, index, options.days))
        .collect();
    let mut samples = Vec::with_capacity((options.days * options.databases_per_instance) as usize);
    for day in 0..options.days {
        // About one day in seventy the collector did not run at all.
        let instance_missed = random.random_bool(0.015);
        let date = first_date + Days::new(u64::from(day));
        for model in &mut models {
            let size = model.step(&mut random, day);
            let alive = model.first_day <= day && day <= model.last_day;
            if !alive || instance_missed || random.random_bool(0.003) {
                continue;
            }
            let (data_size_mb, log_size_mb) = parts(db_type, size, &mut random);
            samples.push(DatabaseSizeSample {
                instance_id,
                database_name: model.name.clone(),
                collected_date: date,
                size_mb: size,
                data_size_mb,
                log_size_mb,
            });
        }
    }
    samples
}

/// Creates (or reuses) the demo instances and writes their history, one transaction per
/// group of instances so that progress shows and memory stays bounded. Running it again with
/// the same options rewrites the same values.
pub fn seed_demo(
    connection: &mut PgConnection,
    options: &SeedOptions,
    progress: &dyn Progress,
) -> Result<SeedReport, ServiceError> {
    if options.instances == 0 || options.databases_per_instance == 0 || options.days == 0 {
        return Err(ServiceError::InvalidRequest(
            "instances, databases per instance and days must each be at least 1".into(),
        ));
    }
    let first_date = options.end_date - Days::new(u64::from(options.days - 1));
    ensure_partitions(
        connection,
        &PartitionedTable::SAMPLES,
        months_between(first_date, options.end_date),
    )?;

    let names: Vec<String> = (0..options.instances)
        .map(|index| instance_name(db_type_of(index), index + 1))
        .collect();
    let mut existing: std::collections::HashMap<String, InstanceId> =
        instances::find_by_names(connection, &names)?
            .into_iter()
            .map(|instance| (instance.name, instance.id))
            .collect();

    let mut report = SeedReport {
        instances: names.len(),
        ..SeedReport::default()
    };
    progress.begin(u64::from(options.instances), "seeding instances");
    // About 100,000 samples per transaction.
    let per_group = (100_000 / (options.days * options.databases_per_instance)).max(1);
    let collected_at = Utc::now();
    for group_start in (0..options.instances).step_by(per_group as usize) {
        let group_end = (group_start + per_group).min(options.instances);
        let mut samples = Vec::new();
        for index in group_start..group_end {
            let name = &names[index as usize];
            let id = match existing.get(name) {
                Some(id) => *id,
                None => {
                    let created = instances::create_instance(
                        connection,
                        &NewInstance {
                            name: name.clone(),
                            db_type: db_type_of(index),
                            host: Some(format!("{name}.demo.invalid")),
                            port: Some(default_port(db_type_of(index))),
                            description: Some(
                                "demo instance from capstats-worker seed-demo".into(),
                            ),
                        },
                    )?;
                    existing.insert(name.clone(), created.id);
                    created.id
                }
            };
            samples.extend(
                instance_samples(options, index, id)
                    .into_iter()
                    .map(|sample| NewDatabaseSample {
                        sample,
                        collected_at,
                    }),
            );
        }
        let written = write_database_samples(connection, &samples)?;
        report.samples += samples.len() as u64;
        report.written += written;
        progress.advance(u64::from(group_end - group_start));
    }
    progress.finish();
    Ok(report)
}

fn default_port(db_type: DbType) -> i32 {
    match db_type {
        DbType::Mysql => 3306,
        DbType::Postgresql => 5432,
        DbType::Sqlserver => 1433,
        DbType::Oracle => 1521,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> SeedOptions {
        SeedOptions {
            instances: 4,
            databases_per_instance: 15,
            days: 200,
            end_date: NaiveDate::from_ymd_opt(2025, 6, 30).unwrap(),
            seed: 7,
        }
    }

    #[test]
    fn generation_is_deterministic_and_valid() {
        let first = instance_samples(&options(), 2, InstanceId(9));
        let second = instance_samples(&options(), 2, InstanceId(9));
        assert_eq!(first, second);
        for sample in &first {
            sample
                .validate(capstats_capacity_model::SampleDates::until(
                    options().end_date,
                ))
                .unwrap();
        }
    }

    #[test]
    fn the_data_has_the_features_a_demo_needs() {
        let samples: Vec<_> = (0..4)
            .flat_map(|index| instance_samples(&options(), index, InstanceId(i64::from(index))))
            .collect();
        let expected_full = 4 * 15 * 200;
        // Missing days and short-lived databases thin the data out, but not much.
        assert!(samples.len() < expected_full && samples.len() > expected_full * 3 / 4);
        let mut spans = std::collections::BTreeMap::new();
        for sample in &samples {
            let span = spans
                .entry((sample.instance_id, sample.database_name.clone()))
                .or_insert((sample.collected_date, sample.collected_date));
            span.0 = span.0.min(sample.collected_date);
            span.1 = span.1.max(sample.collected_date);
        }
        let first_date = options().end_date - Days::new(199);
        let week = Days::new(7);
        assert!(
            spans.values().any(|(first, _)| *first > first_date + week),
            "some databases appear later"
        );
        assert!(
            spans
                .values()
                .any(|(_, last)| *last < options().end_date - week),
            "some databases disappear"
        );
        // SQL Server reports log sizes, PostgreSQL does not.
        assert!(samples.iter().any(|sample| sample.log_size_mb.is_some()));
        assert!(samples.iter().any(|sample| sample.log_size_mb.is_none()));
        // Some days have no collection at all for an instance.
        let days_of_instance_zero = samples
            .iter()
            .filter(|sample| sample.instance_id == InstanceId(0))
            .map(|sample| sample.collected_date)
            .collect::<std::collections::BTreeSet<_>>();
        assert!(days_of_instance_zero.len() < 200);
        assert!(samples.iter().all(|sample| sample.size_mb >= 0));
    }
}
