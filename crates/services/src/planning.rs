//! Capacity planning: who grows fastest over a window of periods, and when each key fills up
//! (forecasts fitted by `aggregation-core` to the daily sizes), for the API and the CLI alike.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use capstats_store::PgConnection;
use chrono::{Days, NaiveDate};

use capstats_aggregation_core::calendar::Completeness;
use capstats_aggregation_core::forecast::{Forecast, ForecastRequest, ForecastSettings, forecast};
use capstats_aggregation_core::metrics::growth_percent;
use capstats_capacity_model::{AggregationLevel, Decimal, InstanceId, Period, PeriodType};
use capstats_store::aggregates::{self, AggregateFilter, InstanceLabel, KeyGrowth, PageRequest};

use crate::ServiceError;

/// Which keys [`forecasts`] fits.
pub use capstats_store::aggregates::KeySelection;

/// The window of the last `periods` periods of `period_type` ending with the one containing
/// `end`: its first and last period (the growth leaderboard's window, as the command line and
/// alert rules ask for it).
pub fn period_window(period_type: PeriodType, end: NaiveDate, periods: u16) -> (Period, Period) {
    let window = Period::ending_with(period_type, end, usize::from(periods.max(1)));
    (window[0], window[window.len() - 1])
}

/// The longest horizon a forecast may be asked for, in days (ten years).
pub const MAXIMUM_HORIZON_DAYS: u32 = 3660;

/// When and how far forecasts look.
#[derive(Debug, Clone, PartialEq)]
pub struct ForecastOptions {
    /// The day the forecasts are made on: their last possible point and day 0 of the
    /// projection.
    pub as_of: NaiveDate,
    /// Days from `as_of` to the projected size.
    pub horizon_days: u32,
    /// The window and publication rules.
    pub settings: ForecastSettings,
}

impl ForecastOptions {
    /// Forecasts made on `as_of` for `horizon_days` ahead, over the configured window.
    pub fn new(
        settings: &capstats_settings::Settings,
        as_of: NaiveDate,
        horizon_days: u32,
    ) -> Self {
        Self {
            as_of,
            horizon_days,
            settings: ForecastSettings {
                window_days: settings.forecast_window_days,
                ..ForecastSettings::default()
            },
        }
    }

    /// The filter of the samples a forecast reads: the keys of `keys`, the window's days.
    fn sample_filter(&self, keys: &AggregateFilter) -> AggregateFilter {
        let span = Days::new(u64::from(self.settings.window_days.saturating_sub(1)));
        AggregateFilter {
            start: self.as_of.checked_sub_days(span).unwrap_or(NaiveDate::MIN),
            end: self.as_of,
            ..keys.clone()
        }
    }
}

/// The slope (MB per day, three decimals) and R² (four decimals) of `forecast` as the API and
/// the reports show them; the fit itself keeps full precision.
pub fn shown_fit(forecast: &Forecast) -> (Option<f64>, Option<f64>) {
    let rounded = |value: Option<f64>, decimals: i32| {
        let scale = 10f64.powi(decimals);
        value.map(|value| (value * scale).round() / scale)
    };
    (
        rounded(forecast.slope_mb_per_day, 3),
        rounded(forecast.r_squared, 4),
    )
}

/// A key's forecast as the API, the reports and the exports show it: made on `as_of` for
/// `horizon_days` ahead, the fit rounded as [`shown_fit`] rounds it, and for a key without a
/// sample in the forecast window, withheld for too few points with the key's own capacity
/// limit. Serialised, its fields are the forecast columns of the CSV files.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ForecastSummary {
    /// The day the forecast is made on.
    pub as_of: NaiveDate,
    /// Days from `as_of` to the projected size.
    pub horizon_days: u32,
    /// Daily points the line was fitted to.
    pub points: usize,
    /// The first of them.
    pub window_start: Option<NaiveDate>,
    /// The last of them.
    pub window_end: Option<NaiveDate>,
    /// Growth of the fitted line, MB per day (three decimals).
    pub slope_mb_per_day: Option<f64>,
    /// The fitted size on the forecast's day, MB.
    pub fitted_size_mb: Option<i64>,
    /// How well the line fits, 0–1 (four decimals).
    pub r_squared: Option<f64>,
    /// The projected size at the horizon, MB (published forecasts only).
    pub projected_size_mb: Option<i64>,
    /// Lower end of the 90 % prediction interval at the horizon, MB.
    pub lower_mb: Option<i64>,
    /// Upper end of that interval, MB.
    pub upper_mb: Option<i64>,
    /// The size at which the key is full, MB, if one is set.
    pub capacity_limit_mb: Option<i64>,
    /// Days until the projected size reaches the limit.
    pub days_until_full: Option<u32>,
    /// Whether the projection is published.
    pub published: bool,
    /// Why not, as a code (`too_few_points`, `poor_fit`, `horizon_too_long`, `not_linear`).
    pub withheld_reason: Option<&'static str>,
    /// The same, in a sentence (not a column of the files).
    #[serde(skip)]
    pub withheld_detail: Option<String>,
}

impl ForecastSummary {
    /// The summary of `forecast` made on `as_of` for `horizon_days` ahead; `None` is a key
    /// without a sample in the forecast window, whose `capacity_limit_mb` is given.
    pub fn new(
        forecast: Option<&Forecast>,
        capacity_limit_mb: Option<i64>,
        as_of: NaiveDate,
        horizon_days: u32,
    ) -> Self {
        let Some(forecast) = forecast else {
            return Self {
                as_of,
                horizon_days,
                capacity_limit_mb,
                withheld_reason: Some("too_few_points"),
                withheld_detail: Some("no daily sizes in the forecast window".to_owned()),
                ..Self::default()
            };
        };
        let (slope_mb_per_day, r_squared) = shown_fit(forecast);
        Self {
            as_of,
            horizon_days,
            points: forecast.points_used,
            window_start: forecast.window_start,
            window_end: forecast.window_end,
            slope_mb_per_day,
            fitted_size_mb: forecast.intercept_mb.map(|size| size.round() as i64),
            r_squared,
            projected_size_mb: forecast.projected_size_mb,
            lower_mb: forecast.lower_mb,
            upper_mb: forecast.upper_mb,
            capacity_limit_mb: forecast.capacity_limit_mb,
            days_until_full: forecast.days_until_full,
            published: forecast.published,
            withheld_reason: forecast.withheld_reason.map(|reason| reason.code()),
            withheld_detail: forecast.withheld_reason.map(|reason| reason.to_string()),
        }
    }
}

/// A key's forecast.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyForecast {
    /// The instance.
    pub instance: InstanceLabel,
    /// The database, at the database level.
    pub database_name: Option<String>,
    /// The fit, its projection and whether it is published.
    pub forecast: Forecast,
}

/// The forecast of every key of `keys` (its instance, engine and database conditions; its
/// window and period type are not used) that `selection` takes, with samples in the window
/// ending on `options.as_of`, fewest days until full first (keys that never fill up last),
/// then by instance id and database name.
pub fn forecasts(
    connection: &mut PgConnection,
    level: AggregationLevel,
    keys: &AggregateFilter,
    selection: KeySelection,
    options: &ForecastOptions,
) -> Result<Vec<KeyForecast>, ServiceError> {
    let mut found = Vec::new();
    aggregates::for_each_daily_history(
        connection,
        level,
        &options.sample_filter(keys),
        selection,
        |history| {
            let request = ForecastRequest {
                points: &history.points,
                as_of: options.as_of,
                horizon_days: options.horizon_days,
                capacity_limit_mb: history.capacity_limit_mb,
            };
            // The store hands over at most one point per day, none after `as_of`: a refusal
            // here is a defect, reported with the key rather than skipped.
            let forecast = forecast(&request, &options.settings).map_err(|error| {
                ServiceError::InvalidRequest(format!(
                    "cannot forecast instance {}{}: {error}",
                    history.instance.id,
                    history
                        .database_name
                        .as_ref()
                        .map(|name| format!(", database {name}"))
                        .unwrap_or_default()
                ))
            })?;
            found.push(KeyForecast {
                instance: history.instance,
                database_name: history.database_name,
                forecast,
            });
            Ok::<_, ServiceError>(())
        },
    )?;
    found.sort_by(|left, right| {
        directed(
            left.forecast.days_until_full,
            right.forecast.days_until_full,
            SortDirection::Ascending,
        )
        .then_with(|| {
            key_order(
                &left.instance,
                &left.database_name,
                &right.instance,
                &right.database_name,
            )
        })
    });
    Ok(found)
}

/// What the growth leaderboard ranks by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrowthSort {
    /// Growth in MB from the first to the last period of the window.
    GrowthMb,
    /// That growth in percent of the first size (keys whose first size is 0 last).
    GrowthPercent,
    /// Days until the forecast reaches the capacity limit (keys without one last).
    DaysUntilFull,
}

impl GrowthSort {
    /// The direction when none is asked for: the fewest days left first, otherwise the
    /// largest first (the top growers).
    pub fn default_direction(self) -> SortDirection {
        match self {
            Self::DaysUntilFull => SortDirection::Ascending,
            Self::GrowthMb | Self::GrowthPercent => SortDirection::Descending,
        }
    }
}

/// Largest first (`Descending`: top growers) or smallest first (`Ascending`: top shrinkers,
/// or the fewest days left).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortDirection {
    /// Largest first.
    Descending,
    /// Smallest first.
    Ascending,
}

/// A key of the growth leaderboard.
#[derive(Debug, Clone, PartialEq)]
pub struct GrowthEntry {
    /// The key with its first and last period of the window and their sizes.
    pub key: KeyGrowth,
    /// `last_size_mb − first_size_mb`.
    pub growth_mb: i64,
    /// That growth in percent of the first size; `None` when the first size is 0.
    pub growth_percent: Option<Decimal>,
    /// How complete the key's last period is (stored with its row, as of today).
    pub last_period_completeness: Completeness,
    /// The key's forecast, when it has samples in the forecast window.
    pub forecast: Option<Forecast>,
}

/// One page of the growth leaderboard.
#[derive(Debug, Clone, PartialEq)]
pub struct GrowthPage {
    /// The entries of the page, in rank order.
    pub entries: Vec<GrowthEntry>,
    /// How many keys are ranked in all.
    pub total: i64,
}

/// Ranks every key of `filter` with an aggregate in its window by `sort` in `direction`
/// (ties by instance id, then database name; keys without a value for the sort last in both
/// directions) and returns the page `page` asks for, each entry with its forecast.
pub fn growth_leaderboard(
    connection: &mut PgConnection,
    level: AggregationLevel,
    filter: &AggregateFilter,
    (sort, direction): (GrowthSort, SortDirection),
    options: &ForecastOptions,
    page: PageRequest,
) -> Result<GrowthPage, ServiceError> {
    let mut entries: Vec<GrowthEntry> = aggregates::growth(connection, level, filter)?
        .into_iter()
        .map(|key| GrowthEntry {
            growth_mb: key.last_size_mb - key.first_size_mb,
            growth_percent: growth_percent(key.first_size_mb, key.last_size_mb),
            last_period_completeness: key.last_completeness,
            forecast: None,
            key,
        })
        .collect();
    // Ranking by days until full needs every key's forecast; the other orders only the page's.
    if sort == GrowthSort::DaysUntilFull {
        attach_forecasts(
            connection,
            level,
            filter,
            KeySelection::Every,
            options,
            &mut entries,
        )?;
    }
    entries.sort_by(|left, right| {
        let by_value = match sort {
            GrowthSort::GrowthMb => {
                directed(Some(left.growth_mb), Some(right.growth_mb), direction)
            }
            GrowthSort::GrowthPercent => {
                directed(left.growth_percent, right.growth_percent, direction)
            }
            GrowthSort::DaysUntilFull => directed(
                left.forecast
                    .as_ref()
                    .and_then(|found| found.days_until_full),
                right
                    .forecast
                    .as_ref()
                    .and_then(|found| found.days_until_full),
                direction,
            ),
        };
        by_value.then_with(|| {
            key_order(
                &left.key.instance,
                &left.key.database_name,
                &right.key.instance,
                &right.key.database_name,
            )
        })
    });
    let total = i64::try_from(entries.len()).unwrap_or(i64::MAX);
    let mut entries = page.of(entries);
    if sort != GrowthSort::DaysUntilFull && !entries.is_empty() {
        // The page's keys only, not every key of the filter or of the page's instances.
        let page_keys = KeySelection::Keys(
            entries
                .iter()
                .map(|entry| (entry.key.instance.id, entry.key.database_name.clone()))
                .collect(),
        );
        attach_forecasts(connection, level, filter, page_keys, options, &mut entries)?;
    }
    Ok(GrowthPage { entries, total })
}

/// Fills in the forecast of each entry from the forecasts of the keys of `keys` that
/// `selection` takes.
fn attach_forecasts(
    connection: &mut PgConnection,
    level: AggregationLevel,
    keys: &AggregateFilter,
    selection: KeySelection,
    options: &ForecastOptions,
    entries: &mut [GrowthEntry],
) -> Result<(), ServiceError> {
    let mut by_key: BTreeMap<(InstanceId, Option<String>), Forecast> =
        forecasts(connection, level, keys, selection, options)?
            .into_iter()
            .map(|found| ((found.instance.id, found.database_name), found.forecast))
            .collect();
    for entry in entries {
        entry.forecast = by_key.remove(&(entry.key.instance.id, entry.key.database_name.clone()));
    }
    Ok(())
}

/// Orders two optional values in `direction`, `None` last either way.
fn directed<T: Ord>(left: Option<T>, right: Option<T>, direction: SortDirection) -> Ordering {
    match (left, right) {
        (Some(left), Some(right)) => match direction {
            SortDirection::Ascending => left.cmp(&right),
            SortDirection::Descending => right.cmp(&left),
        },
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// The tie-break of every ranking: instance id, then database name.
fn key_order(
    left_instance: &InstanceLabel,
    left_database: &Option<String>,
    right_instance: &InstanceLabel,
    right_database: &Option<String>,
) -> Ordering {
    left_instance
        .id
        .cmp(&right_instance.id)
        .then_with(|| left_database.cmp(right_database))
}
