//! `report growth|forecast`: the planner's tables from a terminal or a cron mail, the same
//! rankings and forecasts as the API's `/capacity/*/growth` and `/capacity/*/forecast`.

use anyhow::bail;
use chrono::NaiveDate;
use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;

use capstats_capacity_model::{AggregationLevel, DbType, InstanceId, Period, PeriodType};
use capstats_services::planning::{
    self, ForecastOptions, ForecastSummary, GrowthSort, SortDirection, period_window,
};
use capstats_settings::Settings;
use capstats_store::PgConnection;
use capstats_store::aggregates::{AggregateFilter, PageRequest};

use crate::output;

#[derive(Subcommand)]
pub enum ReportCommand {
    /// Rank instances or databases by growth over the last periods (top growers by default,
    /// `--order asc` for the top shrinkers, `--sort days-until-full` for the fewest days left).
    Growth {
        #[command(flatten)]
        keys: KeyArgs,
        #[command(flatten)]
        ranking: GrowthArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Forecast each instance's total or database's size: slope, fit, projection at the
    /// horizon and days until its capacity limit; fewest days left first.
    Forecast {
        #[command(flatten)]
        keys: KeyArgs,
        /// The day the forecasts are made on (default today).
        #[arg(long)]
        as_of: Option<NaiveDate>,
        /// Only the keys with a capacity limit, the only ones that can fill up.
        #[arg(long)]
        with_capacity_limit: bool,
        #[command(flatten)]
        output: OutputArgs,
    },
}

/// Which keys a report or an export covers.
#[derive(Args)]
pub struct FilterArgs {
    /// instance (totals) or database (default).
    #[arg(long, value_enum, default_value_t = LevelArg::Database)]
    level: LevelArg,
    /// Only this instance, by name (repeatable).
    #[arg(long = "instance")]
    instances: Vec<String>,
    /// Only instances of this engine (repeatable): mysql, postgresql, sqlserver, oracle.
    #[arg(long = "db-type", value_parser = parse_db_type)]
    db_types: Vec<DbType>,
    /// Only databases of this name.
    #[arg(long)]
    database: Option<String>,
}

impl FilterArgs {
    /// The level the keys are of.
    pub fn level(&self) -> AggregationLevel {
        match self.level {
            LevelArg::Database => AggregationLevel::Database,
            LevelArg::Instance => AggregationLevel::Instance,
        }
    }

    /// The filter of these keys (instances by name: an unknown name is an error, not an
    /// empty result) over `period_type` periods starting from `start` to `end`.
    pub fn filter(
        &self,
        connection: &mut PgConnection,
        period_type: PeriodType,
        (start, end): (NaiveDate, NaiveDate),
    ) -> anyhow::Result<AggregateFilter> {
        // Instance rows have no database name to filter on: the flag would be dropped.
        if matches!(self.level, LevelArg::Instance) && self.database.is_some() {
            anyhow::bail!(
                "--database selects databases: it applies with --level database, not instance"
            );
        }
        Ok(AggregateFilter {
            period_type,
            start,
            end,
            instance_ids: instance_ids_by_name(connection, &self.instances)?,
            db_types: self.db_types.clone(),
            database_name: self.database.clone(),
        })
    }
}

/// The ids of the instances named by `--instance` (an unknown name is an error, not an empty
/// result).
pub fn instance_ids_by_name(
    connection: &mut PgConnection,
    names: &[String],
) -> anyhow::Result<Vec<InstanceId>> {
    let found = capstats_store::instances::find_by_names(connection, names)?;
    if let Some(missing) = names
        .iter()
        .find(|name| !found.iter().any(|instance| instance.name == **name))
    {
        bail!("--instance {missing}: no such instance");
    }
    Ok(found.iter().map(|instance| instance.id).collect())
}

/// The window and order of a growth leaderboard.
#[derive(Args)]
pub struct GrowthArgs {
    /// daily, weekly, monthly (default), quarterly or yearly.
    #[arg(long, value_parser = crate::parse_period_type, default_value = "monthly")]
    period_type: PeriodType,
    /// Periods in the window, ending with the one containing --end-date (1–366).
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u16).range(1..=366))]
    periods: u16,
    /// A day of the window's last period (default today); also the forecasts' day.
    #[arg(long)]
    end_date: Option<NaiveDate>,
    /// What to rank by.
    #[arg(long, value_enum, default_value_t = SortChoice::GrowthMb)]
    sort: SortChoice,
    /// desc: largest first (default; asc for days-until-full); asc: smallest first.
    #[arg(long, value_enum)]
    order: Option<OrderChoice>,
}

impl GrowthArgs {
    /// The forecasts' day (`--end-date`, else `today`) and the filter of `keys` over the
    /// window's periods.
    pub fn window(
        &self,
        connection: &mut PgConnection,
        keys: &FilterArgs,
        today: NaiveDate,
    ) -> anyhow::Result<(NaiveDate, AggregateFilter)> {
        let as_of = self.end_date.unwrap_or(today);
        let (first, last) = period_window(self.period_type, as_of, self.periods);
        let filter = keys.filter(connection, self.period_type, (first.start(), last.start()))?;
        Ok((as_of, filter))
    }

    /// The ranking and its direction.
    pub fn order(&self) -> (GrowthSort, SortDirection) {
        self.sort.with_order(self.order)
    }
}

/// Which keys a report covers, and how far their forecasts look.
#[derive(Args)]
pub struct KeyArgs {
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Days ahead the forecasts project to (1–3660).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=i64::from(planning::MAXIMUM_HORIZON_DAYS)))]
    pub horizon_days: u32,
}

/// How much to print, and how.
#[derive(Args)]
pub struct OutputArgs {
    /// Rows printed at most.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i64).range(1..=100_000))]
    limit: i64,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LevelArg {
    Database,
    Instance,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum SortChoice {
    GrowthMb,
    GrowthPercent,
    DaysUntilFull,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum OrderChoice {
    Asc,
    Desc,
}

impl SortChoice {
    /// The ranking and its direction (`order`, else the sort's default).
    pub fn with_order(self, order: Option<OrderChoice>) -> (GrowthSort, SortDirection) {
        let sort = match self {
            Self::GrowthMb => GrowthSort::GrowthMb,
            Self::GrowthPercent => GrowthSort::GrowthPercent,
            Self::DaysUntilFull => GrowthSort::DaysUntilFull,
        };
        let direction = match order {
            None => sort.default_direction(),
            Some(OrderChoice::Asc) => SortDirection::Ascending,
            Some(OrderChoice::Desc) => SortDirection::Descending,
        };
        (sort, direction)
    }
}

fn parse_db_type(text: &str) -> Result<DbType, String> {
    text.parse().map_err(|error| format!("{error}"))
}

/// A row of either report, as `--json` prints it (the API's field names).
#[derive(Serialize)]
struct ReportRow {
    instance_id: i64,
    instance_name: String,
    database_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_size_mb: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_size_mb: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    growth_mb: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    growth_percent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    is_partial: Option<bool>,
    slope_mb_per_day: Option<f64>,
    r_squared: Option<f64>,
    projected_size_mb: Option<i64>,
    lower_mb: Option<i64>,
    upper_mb: Option<i64>,
    capacity_limit_mb: Option<i64>,
    days_until_full: Option<u32>,
    published: bool,
    withheld_reason: Option<String>,
}

impl ReportRow {
    /// The row with the fields of `forecast` (a key without samples in the forecast window
    /// keeps its own `capacity_limit_mb`, as the API answers it).
    fn with_forecast(mut self, forecast: ForecastSummary) -> Self {
        self.slope_mb_per_day = forecast.slope_mb_per_day;
        self.r_squared = forecast.r_squared;
        self.projected_size_mb = forecast.projected_size_mb;
        self.lower_mb = forecast.lower_mb;
        self.upper_mb = forecast.upper_mb;
        self.capacity_limit_mb = forecast.capacity_limit_mb;
        self.days_until_full = forecast.days_until_full;
        self.published = forecast.published;
        self.withheld_reason = forecast.withheld_reason.map(str::to_owned);
        self
    }

    fn key(instance_id: InstanceId, instance_name: String, database_name: Option<String>) -> Self {
        Self {
            instance_id: instance_id.0,
            instance_name,
            database_name,
            first_size_mb: None,
            last_size_mb: None,
            growth_mb: None,
            growth_percent: None,
            is_partial: None,
            slope_mb_per_day: None,
            r_squared: None,
            projected_size_mb: None,
            lower_mb: None,
            upper_mb: None,
            capacity_limit_mb: None,
            days_until_full: None,
            published: false,
            withheld_reason: None,
        }
    }

    /// The forecast columns of the table.
    fn forecast_cells(&self) -> Vec<String> {
        vec![
            output::or_dash(self.slope_mb_per_day),
            output::or_dash(self.r_squared),
            output::or_dash(self.projected_size_mb),
            output::or_dash(self.capacity_limit_mb),
            output::or_dash(self.days_until_full),
            self.withheld_reason
                .clone()
                .unwrap_or_else(|| "published".to_owned()),
        ]
    }

    fn key_cells(&self) -> Vec<String> {
        vec![
            self.instance_name.clone(),
            output::or_dash(self.database_name.clone()),
        ]
    }
}

const FORECAST_HEADER: [&str; 6] = [
    "MB/day",
    "R²",
    "projected MB",
    "limit MB",
    "days until full",
    "forecast",
];

/// Runs a report command.
pub fn report(
    settings: &Settings,
    connection: &mut PgConnection,
    command: ReportCommand,
) -> anyhow::Result<()> {
    match command {
        ReportCommand::Growth {
            keys,
            ranking,
            output: print,
        } => {
            let (as_of, filter) = ranking.window(connection, &keys.filter, settings.today())?;
            let (sort, direction) = ranking.order();
            let options = ForecastOptions::new(settings, as_of, keys.horizon_days);
            let ranked = planning::growth_leaderboard(
                connection,
                keys.filter.level(),
                &filter,
                (sort, direction),
                &options,
                PageRequest {
                    page: 1,
                    limit: print.limit,
                },
            )?;
            let rows: Vec<ReportRow> = ranked
                .entries
                .into_iter()
                .map(|entry| {
                    let capacity_limit_mb = entry.key.capacity_limit_mb;
                    ReportRow {
                        first_size_mb: Some(entry.key.first_size_mb),
                        last_size_mb: Some(entry.key.last_size_mb),
                        growth_mb: Some(entry.growth_mb),
                        growth_percent: entry.growth_percent.map(|percent| percent.to_string()),
                        is_partial: Some(entry.last_period_completeness.is_partial),
                        ..ReportRow::key(
                            entry.key.instance.id,
                            entry.key.instance.name,
                            entry.key.database_name,
                        )
                    }
                    .with_forecast(ForecastSummary::new(
                        entry.forecast.as_ref(),
                        capacity_limit_mb,
                        as_of,
                        keys.horizon_days,
                    ))
                })
                .collect();
            if print.json {
                return output::json(&rows);
            }
            let mut header = vec![
                "instance",
                "database",
                "first MB",
                "last MB",
                "growth MB",
                "growth %",
                "last period",
            ];
            header.extend(FORECAST_HEADER);
            output::table(
                &header,
                rows.iter()
                    .map(|row| {
                        let mut cells = row.key_cells();
                        cells.extend([
                            output::or_dash(row.first_size_mb),
                            output::or_dash(row.last_size_mb),
                            output::or_dash(row.growth_mb),
                            output::or_dash(row.growth_percent.clone()),
                            if row.is_partial == Some(true) {
                                "partial"
                            } else {
                                "complete"
                            }
                            .to_owned(),
                        ]);
                        cells.extend(row.forecast_cells());
                        cells
                    })
                    .collect(),
            );
            let last = Period::containing(filter.period_type, filter.end);
            println!(
                "{} of {} ranked; {} periods {} to {}, forecasts as of {as_of} for {} days",
                rows.len(),
                ranked.total,
                filter.period_type,
                filter.start,
                last.end(),
                keys.horizon_days
            );
            Ok(())
        }
        ReportCommand::Forecast {
            keys,
            as_of,
            with_capacity_limit,
            output: print,
        } => {
            let as_of = as_of.unwrap_or_else(|| settings.today());
            let filter = keys
                .filter
                .filter(connection, PeriodType::Daily, (as_of, as_of))?;
            let options = ForecastOptions::new(settings, as_of, keys.horizon_days);
            let found = planning::forecasts(
                connection,
                keys.filter.level(),
                &filter,
                planning::KeySelection::of_capacity_limit(with_capacity_limit),
                &options,
            )?;
            let total = found.len();
            let rows: Vec<ReportRow> = found
                .into_iter()
                .take(usize::try_from(print.limit).unwrap_or(usize::MAX))
                .map(|found| {
                    ReportRow::key(found.instance.id, found.instance.name, found.database_name)
                        .with_forecast(ForecastSummary::new(
                            Some(&found.forecast),
                            None,
                            as_of,
                            keys.horizon_days,
                        ))
                })
                .collect();
            if print.json {
                return output::json(&rows);
            }
            let mut header = vec!["instance", "database"];
            header.extend(FORECAST_HEADER);
            output::table(
                &header,
                rows.iter()
                    .map(|row| {
                        let mut cells = row.key_cells();
                        cells.extend(row.forecast_cells());
                        cells
                    })
                    .collect(),
            );
            println!(
                "{} of {total} forecasts as of {as_of} for {} days, fitted to {} days of daily sizes",
                rows.len(),
                keys.horizon_days,
                settings.forecast_window_days
            );
            Ok(())
        }
    }
}
