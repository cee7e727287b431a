//! The in-memory engine: keeps samples and folds them into aggregates on request.

use std::collections::BTreeMap;

use capstats_capacity_model::{
    DatabaseSizeAggregate, DatabaseSizeSample, InstanceId, InstanceSizeAggregate,
    InstanceSizeSample, Period, PeriodType, ValidationError, validate_supported_date,
};
use chrono::NaiveDate;

use crate::metrics::{DatabaseWindow, InstanceWindow, database_aggregate, instance_aggregate};

/// Why the engine refused a sample or could not derive a total.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// The sample is not valid input (negative size, part larger than the total, date out of
    /// the supported range).
    #[error("invalid sample for {instance_id}/{database_name} on {collected_date}: {source}")]
    InvalidSample {
        /// Instance of the rejected sample.
        instance_id: InstanceId,
        /// Database of the rejected sample.
        database_name: String,
        /// Date of the rejected sample.
        collected_date: NaiveDate,
        /// What is wrong with it.
        source: ValidationError,
    },
    /// The sum of an instance's database sizes on one day does not fit the stored `bigint`.
    #[error("the total size of instance {instance_id} on {collected_date} exceeds 2^63 - 1 MB")]
    TotalOverflow {
        /// The instance.
        instance_id: InstanceId,
        /// The day.
        collected_date: NaiveDate,
    },
}

/// Database and instance aggregates of a range of periods.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AggregationOutput {
    /// Database-level rows, ordered by period, instance and database name.
    pub databases: Vec<DatabaseSizeAggregate>,
    /// Instance-level rows, ordered by period and instance.
    pub instances: Vec<InstanceSizeAggregate>,
}

/// One sample's values, keyed elsewhere by instance, database and date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sizes {
    size_mb: i64,
    data_size_mb: Option<i64>,
    log_size_mb: Option<i64>,
}

/// Holds database size samples and computes the aggregates capstats would store for them.
///
/// Samples are keyed like `database_size_stats`: recording a second sample for the same
/// instance, database and date replaces the first, as the database's upsert does. Instance
/// daily totals are derived the way capstats derives `instance_size_stats`: the sum of that
/// day's `size_mb` and the number of databases sampled that day.
///
/// The engine knows nothing about inactive or deleted instances: a caller that wants to mirror
/// capstats leaves their samples out.
///
/// Aggregates carry their [`Completeness`](capstats_capacity_model::Completeness) as of the
/// business date the engine is created for, as capstats stores them on that day.
#[derive(Debug, Clone)]
pub struct AggregationEngine {
    samples: BTreeMap<(InstanceId, String), BTreeMap<NaiveDate, Sizes>>,
    as_of: NaiveDate,
}

impl AggregationEngine {
    /// An engine without samples whose aggregates are complete or partial as of business
    /// date `as_of` (usually today).
    pub fn as_of(as_of: NaiveDate) -> Self {
        Self {
            samples: BTreeMap::new(),
            as_of,
        }
    }

    /// The business date the aggregates' completeness is judged on.
    pub fn judged_on(&self) -> NaiveDate {
        self.as_of
    }

    /// Records a sample, returning the one it replaced. Rejects negative sizes, parts larger
    /// than the total and dates outside the supported range; the sample is then not recorded.
    ///
    /// ```
    /// use capstats_aggregation_core::AggregationEngine;
    /// use capstats_capacity_model::{DatabaseSizeSample, InstanceId};
    /// use chrono::NaiveDate;
    ///
    /// let sample = |size_mb, data_size_mb| DatabaseSizeSample {
    ///     instance_id: InstanceId(1),
    ///     database_name: "orders".into(),
    ///     collected_date: NaiveDate::from_ymd_opt(2025, 3, 1).unwrap(),
    ///     size_mb,
    ///     data_size_mb,
    ///     log_size_mb: None,
    /// };
    /// let mut engine = AggregationEngine::as_of(NaiveDate::from_ymd_opt(2025, 2, 1).unwrap());
    /// assert_eq!(engine.record(sample(100, None))?, None);
    /// // A second sample of the same key and day replaces the first (a correction).
    /// assert_eq!(engine.record(sample(120, None))?, Some(sample(100, None)));
    /// // The data part cannot exceed the total; the engine keeps the 120 MB sample.
    /// assert!(engine.record(sample(50, Some(80))).is_err());
    /// assert_eq!(engine.samples().next().unwrap().size_mb, 120);
    /// # Ok::<(), capstats_aggregation_core::EngineError>(())
    /// ```
    pub fn record(
        &mut self,
        sample: DatabaseSizeSample,
    ) -> Result<Option<DatabaseSizeSample>, EngineError> {
        let checked = sample
            .validate_sizes()
            .and_then(|()| validate_supported_date(sample.collected_date).map(drop));
        if let Err(source) = checked {
            return Err(EngineError::InvalidSample {
                instance_id: sample.instance_id,
                database_name: sample.database_name,
                collected_date: sample.collected_date,
                source,
            });
        }
        let sizes = Sizes {
            size_mb: sample.size_mb,
            data_size_mb: sample.data_size_mb,
            log_size_mb: sample.log_size_mb,
        };
        let replaced = self
            .samples
            .entry((sample.instance_id, sample.database_name.clone()))
            .or_default()
            .insert(sample.collected_date, sizes);
        Ok(replaced.map(|old| DatabaseSizeSample {
            size_mb: old.size_mb,
            data_size_mb: old.data_size_mb,
            log_size_mb: old.log_size_mb,
            ..sample
        }))
    }

    /// Removes the sample of one database on one day, returning whether there was one.
    pub fn remove(
        &mut self,
        instance_id: InstanceId,
        database_name: &str,
        date: NaiveDate,
    ) -> bool {
        let key = (instance_id, database_name.to_owned());
        let Some(days) = self.samples.get_mut(&key) else {
            return false;
        };
        let removed = days.remove(&date).is_some();
        if days.is_empty() {
            self.samples.remove(&key);
        }
        removed
    }

    /// Every recorded sample, ordered by instance, database name and date.
    pub fn samples(&self) -> impl Iterator<Item = DatabaseSizeSample> + '_ {
        self.samples.iter().flat_map(|((instance_id, name), days)| {
            days.iter().map(move |(date, sizes)| DatabaseSizeSample {
                instance_id: *instance_id,
                database_name: name.clone(),
                collected_date: *date,
                size_mb: sizes.size_mb,
                data_size_mb: sizes.data_size_mb,
                log_size_mb: sizes.log_size_mb,
            })
        })
    }

    /// The earliest and latest sampled dates, if any sample is recorded.
    pub fn date_range(&self) -> Option<(NaiveDate, NaiveDate)> {
        let mut dates = self.samples.values().flat_map(|days| days.keys().copied());
        let first = dates.next()?;
        Some(dates.fold((first, first), |(low, high), date| {
            (low.min(date), high.max(date))
        }))
    }

    /// The derived daily totals per instance, ordered by instance and date.
    pub fn instance_daily_totals(&self) -> Result<Vec<InstanceSizeSample>, EngineError> {
        let mut totals: BTreeMap<(InstanceId, NaiveDate), (i128, i64)> = BTreeMap::new();
        for ((instance_id, _), days) in &self.samples {
            for (date, sizes) in days {
                let total = totals.entry((*instance_id, *date)).or_default();
                total.0 += i128::from(sizes.size_mb);
                total.1 += 1;
            }
        }
        totals
            .into_iter()
            .map(|((instance_id, collected_date), (sum, count))| {
                let total_size_mb = i64::try_from(sum).map_err(|_| EngineError::TotalOverflow {
                    instance_id,
                    collected_date,
                })?;
                Ok(InstanceSizeSample {
                    instance_id,
                    collected_date,
                    total_size_mb,
                    database_count: count,
                })
            })
            .collect()
    }

    /// The database-level aggregates of `period`, ordered by instance and database name.
    pub fn database_aggregates(&self, period: Period) -> Vec<DatabaseSizeAggregate> {
        let previous = period.previous();
        let year_earlier = period.year_earlier();
        self.samples
            .iter()
            .filter_map(|((instance_id, name), days)| {
                let window = |of: Period| {
                    let mut summary = DatabaseWindow::default();
                    for sizes in days.range(of.start()..=of.end()).map(|(_, sizes)| sizes) {
                        summary.size.push(Some(sizes.size_mb));
                        summary.data_size.push(sizes.data_size_mb);
                        summary.log_size.push(sizes.log_size_mb);
                    }
                    summary
                };
                database_aggregate(
                    *instance_id,
                    name,
                    period,
                    &window(period),
                    &window(previous),
                    year_earlier.map(window).as_ref(),
                    self.as_of,
                )
            })
            .collect()
    }

    /// The instance-level aggregates of `period`, ordered by instance.
    pub fn instance_aggregates(
        &self,
        period: Period,
    ) -> Result<Vec<InstanceSizeAggregate>, EngineError> {
        let totals = self.instance_daily_totals()?;
        Ok(instance_aggregates_of(&totals, period, self.as_of))
    }

    /// Every aggregate of the periods of `period_type` whose start lies in `[from, to]`.
    ///
    /// ```
    /// use capstats_aggregation_core::AggregationEngine;
    /// use capstats_capacity_model::{DatabaseSizeSample, Decimal, InstanceId, PeriodType};
    /// use chrono::NaiveDate;
    ///
    /// let day = |d| NaiveDate::from_ymd_opt(2025, 3, d).unwrap();
    /// let mut engine = AggregationEngine::as_of(NaiveDate::from_ymd_opt(2025, 2, 1).unwrap());
    /// for (d, size_mb) in [(1, 200), (2, 203), (3, 197)] {
    ///     engine.record(DatabaseSizeSample {
    ///         instance_id: InstanceId(1),
    ///         database_name: "orders".into(),
    ///         collected_date: day(d),
    ///         size_mb,
    ///         data_size_mb: None,
    ///         log_size_mb: None,
    ///     })?;
    /// }
    /// let output = engine.aggregate_range(PeriodType::Daily, day(1), day(3))?;
    /// let changes: Vec<Option<i64>> =
    ///     output.databases.iter().map(|row| row.size_change_mb).collect();
    /// // The first day has no previous day to compare with.
    /// assert_eq!(changes, [None, Some(3), Some(-6)]);
    /// // 3 / 200 = 1.5 %; -6 / 203 = -2.955… %, rounded half away from zero to -2.96 %.
    /// assert_eq!(output.databases[1].size_change_percent, Some(Decimal::new(150, 2)));
    /// assert_eq!(output.databases[2].size_change_percent, Some(Decimal::new(-296, 2)));
    /// assert_eq!(output.instances.len(), 3);
    /// # Ok::<(), capstats_aggregation_core::EngineError>(())
    /// ```
    pub fn aggregate_range(
        &self,
        period_type: PeriodType,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<AggregationOutput, EngineError> {
        let totals = self.instance_daily_totals()?;
        let mut output = AggregationOutput::default();
        for period in Period::starting_between(period_type, from, to) {
            output.databases.extend(self.database_aggregates(period));
            output
                .instances
                .extend(instance_aggregates_of(&totals, period, self.as_of));
        }
        Ok(output)
    }
}

/// Instance-level aggregates of `period` from daily totals sorted by instance and date (the
/// order [`AggregationEngine::instance_daily_totals`] returns), complete or partial as of
/// business date `as_of`. Callers with their own daily totals, rather than database samples,
/// can use this directly.
pub fn instance_aggregates_of(
    totals: &[InstanceSizeSample],
    period: Period,
    as_of: NaiveDate,
) -> Vec<InstanceSizeAggregate> {
    let previous = period.previous();
    let year_earlier = period.year_earlier();
    // Per instance: its days in the period, the previous one and the one a year earlier
    // (for yearly periods the previous one is the one a year earlier).
    let mut by_instance: BTreeMap<InstanceId, [InstanceWindow; 3]> = BTreeMap::new();
    for total in totals {
        let date = total.collected_date;
        let slots = [
            period.contains(date),
            previous.contains(date),
            year_earlier.is_some_and(|earlier| earlier.contains(date)),
        ];
        if !slots.contains(&true) {
            continue;
        }
        let windows = by_instance.entry(total.instance_id).or_default();
        for (window, _) in windows.iter_mut().zip(slots).filter(|(_, used)| *used) {
            window.total_size.push(Some(total.total_size_mb));
            window.database_count.push(Some(total.database_count));
        }
    }
    by_instance
        .into_iter()
        .filter_map(|(instance_id, [current, previous, earlier])| {
            instance_aggregate(
                instance_id,
                period,
                &current,
                &previous,
                year_earlier.map(|_| &earlier),
                as_of,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use capstats_capacity_model::MAX_SIZE_MB;

    fn sample(instance: i64, name: &str, day: u32, size: i64) -> DatabaseSizeSample {
        DatabaseSizeSample {
            instance_id: InstanceId(instance),
            database_name: name.into(),
            collected_date: NaiveDate::from_ymd_opt(2025, 1, day).unwrap(),
            size_mb: size,
            data_size_mb: Some(size / 2),
            log_size_mb: None,
        }
    }

    #[test]
    fn a_later_sample_replaces_an_earlier_one_for_the_same_day() {
        let mut engine = AggregationEngine::as_of(NaiveDate::from_ymd_opt(2025, 2, 1).unwrap());
        assert_eq!(engine.record(sample(1, "a", 5, 10)), Ok(None));
        let replaced = engine.record(sample(1, "a", 5, 12)).unwrap();
        assert_eq!(replaced.map(|old| old.size_mb), Some(10));
        assert_eq!(engine.samples().count(), 1);
        assert!(engine.remove(InstanceId(1), "a", sample(1, "a", 5, 0).collected_date));
        assert_eq!(engine.samples().count(), 0);
        assert_eq!(engine.date_range(), None);
    }

    #[test]
    fn invalid_samples_are_rejected_and_not_recorded() {
        let mut engine = AggregationEngine::as_of(NaiveDate::from_ymd_opt(2025, 2, 1).unwrap());
        let mut bad = sample(1, "a", 5, 10);
        bad.log_size_mb = Some(11);
        let error = engine.record(bad).unwrap_err();
        assert!(error.to_string().contains("log_size_mb"), "{error}");
        assert_eq!(engine.samples().count(), 0);
    }

    #[test]
    fn instance_totals_sum_the_databases_of_each_day() {
        let mut engine = AggregationEngine::as_of(NaiveDate::from_ymd_opt(2025, 2, 1).unwrap());
        for record in [
            sample(1, "a", 1, 10),
            sample(1, "b", 1, 5),
            sample(1, "a", 2, 11),
            sample(2, "a", 1, 7),
        ] {
            engine.record(record).unwrap();
        }
        let totals = engine.instance_daily_totals().unwrap();
        let summary: Vec<_> = totals
            .iter()
            .map(|total| {
                (
                    total.instance_id.0,
                    total.total_size_mb,
                    total.database_count,
                )
            })
            .collect();
        assert_eq!(summary, vec![(1, 15, 2), (1, 11, 1), (2, 7, 1)]);
    }

    #[test]
    fn sizes_beyond_the_maximum_are_refused_and_totals_at_it_are_exact() {
        let mut engine = AggregationEngine::as_of(NaiveDate::from_ymd_opt(2025, 2, 1).unwrap());
        // i64::MAX used to be accepted and overflow the instance total.
        assert!(matches!(
            engine.record(sample(1, "a", 1, i64::MAX)),
            Err(EngineError::InvalidSample { .. })
        ));
        // At 2^40 MiB each, an instance needs 2^23 databases before its total could overflow
        // (then `TotalOverflow`); a thousand sum exactly.
        for database in 0..1000 {
            engine
                .record(sample(1, &format!("d{database}"), 1, MAX_SIZE_MB))
                .unwrap();
        }
        let totals = engine.instance_daily_totals().unwrap();
        assert_eq!(totals[0].total_size_mb, 1000 * MAX_SIZE_MB);
    }

    #[test]
    fn aggregate_range_covers_each_period_once() {
        let mut engine = AggregationEngine::as_of(NaiveDate::from_ymd_opt(2025, 2, 1).unwrap());
        for day in 1..=31 {
            engine.record(sample(1, "a", day, i64::from(day))).unwrap();
        }
        let (from, to) = engine.date_range().unwrap();
        let output = engine
            .aggregate_range(PeriodType::Weekly, from, to)
            .unwrap();
        // Weeks starting on 6, 13, 20 and 27 January 2025.
        assert_eq!(output.databases.len(), 4);
        assert_eq!(output.instances.len(), 4);
        let first = &output.databases[0];
        assert_eq!(first.avg_size_mb, 9);
        // The week of 30 December – 5 January has days 1..=5: mean 3, so the change is +6.
        assert_eq!(first.size_change_mb, Some(6));
        assert_eq!(first.size_change_percent, Some("200.00".parse().unwrap()));
        // Judged on 1 February, the weeks of January have ended with all their days; the
        // week of 27 January runs into February with days 27–31 only.
        let partial: Vec<bool> = output
            .databases
            .iter()
            .map(|row| row.completeness.is_partial)
            .collect();
        assert_eq!(partial, [false, false, false, true]);
        assert_eq!(output.databases[3].completeness.expected_count, 6);
    }
}
