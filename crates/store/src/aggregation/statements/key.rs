//! Which statement: the typed key callers choose a statement by, and the statements built
//! once per key.

use std::collections::HashMap;
use std::sync::LazyLock;

use capstats_capacity_model::{AggregationLevel, PeriodType};

use super::{
    InstanceFilter, Shape, Source, WriteMode, database_daily, database_grouped, instance_daily,
    instance_grouped,
};

/// Whether a statement computes daily periods (one sample per key: no `GROUP BY`), weekly
/// periods (samples grouped by key and period), monthly periods (one month sums row per key:
/// no `GROUP BY`) or periods of several months (the month sums grouped by key and period).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeriodForm {
    /// Daily periods.
    Daily,
    /// Weekly periods, grouped from the samples.
    Grouped,
    /// Monthly periods: each row of the month sums kept with the samples
    /// (`database_month_sums`, `instance_month_sums`) is a key's month whole.
    Monthly,
    /// Quarterly and yearly periods, grouped from the month sums: a key's year is twelve rows.
    MonthSums,
}

impl PeriodForm {
    /// The form of `period_type`'s periods.
    pub fn of(period_type: PeriodType) -> Self {
        match period_type {
            PeriodType::Daily => Self::Daily,
            PeriodType::Weekly => Self::Grouped,
            PeriodType::Monthly => Self::Monthly,
            PeriodType::Quarterly | PeriodType::Yearly => Self::MonthSums,
        }
    }
}

/// Which of the thirty-two aggregation statements: what every caller picks a statement by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatementKey {
    /// Database or instance level.
    pub level: AggregationLevel,
    /// Daily or grouped.
    pub form: PeriodForm,
    /// Replace or plain insert.
    pub mode: WriteMode,
    /// Where the instances are filtered.
    pub filter: InstanceFilter,
}

impl StatementKey {
    /// Every statement, in the order of their snapshot files.
    pub fn all() -> impl Iterator<Item = StatementKey> {
        AggregationLevel::ALL.into_iter().flat_map(|level| {
            [
                PeriodForm::Daily,
                PeriodForm::Grouped,
                PeriodForm::Monthly,
                PeriodForm::MonthSums,
            ]
            .into_iter()
            .flat_map(move |form| {
                [WriteMode::Replace, WriteMode::Insert]
                    .into_iter()
                    .flat_map(move |mode| {
                        [InstanceFilter::Early, InstanceFilter::Late]
                            .into_iter()
                            .map(move |filter| StatementKey {
                                level,
                                form,
                                mode,
                                filter,
                            })
                    })
            })
        })
    }

    /// The name of its snapshot in `crates/store/sql/aggregation/`, such as
    /// `database_daily_replace_early-filter.sql`.
    pub fn file_name(self) -> String {
        let form = match self.form {
            PeriodForm::Daily => "daily",
            PeriodForm::Grouped => "grouped",
            PeriodForm::Monthly => "monthly",
            PeriodForm::MonthSums => "month-sums",
        };
        let mode = match self.mode {
            WriteMode::Replace => "replace",
            WriteMode::Insert => "insert",
        };
        let filter = match self.filter {
            InstanceFilter::Early => "early-filter",
            InstanceFilter::Late => "late-filter",
        };
        format!("{}_{form}_{mode}_{filter}.sql", self.level)
    }

    /// Whether the statement takes the batch's period starts after its other parameters
    /// (`$8` daily, `$13` grouped; see the module's parameter table).
    pub fn takes_period_starts(self) -> bool {
        self.shape().takes_period_starts()
    }

    fn shape(self) -> Shape {
        Shape {
            mode: self.mode,
            filter: self.filter,
        }
    }

    fn build(self) -> String {
        let shape = self.shape();
        match (self.level, self.form) {
            (AggregationLevel::Database, PeriodForm::Daily) => database_daily(shape),
            (AggregationLevel::Database, PeriodForm::Grouped) => {
                database_grouped(shape, Source::Samples)
            }
            (AggregationLevel::Database, PeriodForm::Monthly) => {
                database_grouped(shape, Source::Months)
            }
            (AggregationLevel::Database, PeriodForm::MonthSums) => {
                database_grouped(shape, Source::MonthSums)
            }
            (AggregationLevel::Instance, PeriodForm::Daily) => instance_daily(shape),
            (AggregationLevel::Instance, PeriodForm::Grouped) => {
                instance_grouped(shape, Source::Samples)
            }
            (AggregationLevel::Instance, PeriodForm::Monthly) => {
                instance_grouped(shape, Source::Months)
            }
            (AggregationLevel::Instance, PeriodForm::MonthSums) => {
                instance_grouped(shape, Source::MonthSums)
            }
        }
    }
}

/// The text of the statement `key`, built once.
pub(crate) fn text(key: StatementKey) -> &'static str {
    STATEMENTS[&key].as_str()
}

static STATEMENTS: LazyLock<HashMap<StatementKey, String>> =
    LazyLock::new(|| StatementKey::all().map(|key| (key, key.build())).collect());
