//! Capacity planning: forecasts and the growth leaderboard.

use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;

use capstats_capacity_model::{DbType, Decimal, PeriodType};
use capstats_services::planning::{ForecastSummary, GrowthEntry, KeyForecast};

/// A forecast: a straight line fitted to a key's daily sizes, and where it leads.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ForecastFields {
    /// The day the forecast is made on (day 0 of the projection).
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
    /// How well the line fits, 0–1 (four decimals); a projection is published from 0.85.
    pub r_squared: Option<f64>,
    /// The projected size at the horizon, MB (published forecasts only).
    pub projected_size_mb: Option<i64>,
    /// Lower end of the 90 % prediction interval at the horizon, MB.
    pub lower_mb: Option<i64>,
    /// Upper end of that interval, MB.
    pub upper_mb: Option<i64>,
    /// The size at which the key is full, MB, if one is set.
    pub capacity_limit_mb: Option<i64>,
    /// Days from the forecast's day until the projected size reaches the limit: 0 when it
    /// has, null without a limit, when the line does not reach it within the longest
    /// publishable horizon (half the points' span), or when the forecast is withheld.
    pub days_until_full: Option<u32>,
    /// Whether the projection is published (enough points, a good fit, a horizon of at most
    /// half the points' span, a linear history).
    pub published: bool,
    /// Why not: `too_few_points`, `poor_fit`, `horizon_too_long` or `not_linear`.
    pub withheld_reason: Option<String>,
    /// The same, in a sentence.
    pub withheld_detail: Option<String>,
}

impl From<ForecastSummary> for ForecastFields {
    fn from(summary: ForecastSummary) -> Self {
        Self {
            as_of: summary.as_of,
            horizon_days: summary.horizon_days,
            points: summary.points,
            window_start: summary.window_start,
            window_end: summary.window_end,
            slope_mb_per_day: summary.slope_mb_per_day,
            fitted_size_mb: summary.fitted_size_mb,
            r_squared: summary.r_squared,
            projected_size_mb: summary.projected_size_mb,
            lower_mb: summary.lower_mb,
            upper_mb: summary.upper_mb,
            capacity_limit_mb: summary.capacity_limit_mb,
            days_until_full: summary.days_until_full,
            published: summary.published,
            withheld_reason: summary.withheld_reason.map(str::to_owned),
            withheld_detail: summary.withheld_detail,
        }
    }
}

/// A key's forecast.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ForecastItem {
    /// The instance.
    pub instance_id: i64,
    /// Its name.
    pub instance_name: String,
    /// Its engine.
    pub db_type: DbType,
    /// The database (database level; null at the instance level).
    pub database_name: Option<String>,
    /// The fit and its projection.
    #[serde(flatten)]
    pub forecast: ForecastFields,
}

impl ForecastItem {
    /// The item of `found`, made on `as_of` for `horizon_days` ahead.
    pub fn new(found: KeyForecast, as_of: NaiveDate, horizon_days: u32) -> Self {
        Self {
            instance_id: found.instance.id.0,
            instance_name: found.instance.name,
            db_type: found.instance.db_type,
            database_name: found.database_name,
            forecast: ForecastSummary::new(Some(&found.forecast), None, as_of, horizon_days).into(),
        }
    }
}

/// A key of the growth leaderboard.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GrowthItem {
    /// The instance.
    pub instance_id: i64,
    /// Its name.
    pub instance_name: String,
    /// Its engine.
    pub db_type: DbType,
    /// The database (database level; null at the instance level).
    pub database_name: Option<String>,
    /// The database's id in the inventory (the `database_id` filter, and
    /// `PUT /databases/{id}/capacity-limit`); null at the instance level.
    pub database_id: Option<i64>,
    /// The period type of the window.
    pub period_type: PeriodType,
    /// The key's first period in the window.
    pub first_period_start: NaiveDate,
    /// Its size then, MB: a database's average size, an instance's total.
    pub first_size_mb: i64,
    /// The key's last period in the window.
    pub last_period_start: NaiveDate,
    /// Its size then, MB.
    pub last_size_mb: i64,
    /// `last_size_mb − first_size_mb`.
    pub growth_mb: i64,
    /// That growth in percent of the first size (two decimals); null when it was 0.
    #[serde(serialize_with = "crate::dto::numbers::exact_optional")]
    #[schema(value_type = Option<f64>)]
    pub growth_percent: Option<Decimal>,
    /// Daily samples of the last period.
    pub last_data_count: i64,
    /// Days the last period should have samples for so far.
    pub last_expected_count: i64,
    /// Whether the last period is partial: not ended, or fewer samples than expected.
    pub is_partial: bool,
    /// The key's forecast.
    #[serde(flatten)]
    pub forecast: ForecastFields,
}

impl GrowthItem {
    /// The item of `entry`, its forecast made on `as_of` for `horizon_days` ahead.
    pub fn new(entry: GrowthEntry, as_of: NaiveDate, horizon_days: u32) -> Self {
        let key = entry.key;
        Self {
            instance_id: key.instance.id.0,
            instance_name: key.instance.name,
            db_type: key.instance.db_type,
            database_name: key.database_name,
            database_id: key.database_id,
            period_type: key.last_period.period_type(),
            first_period_start: key.first_period.start(),
            first_size_mb: key.first_size_mb,
            last_period_start: key.last_period.start(),
            last_size_mb: key.last_size_mb,
            growth_mb: entry.growth_mb,
            growth_percent: entry.growth_percent,
            last_data_count: key.last_data_count,
            last_expected_count: entry.last_period_completeness.expected_count,
            is_partial: entry.last_period_completeness.is_partial,
            forecast: ForecastSummary::new(
                entry.forecast.as_ref(),
                key.capacity_limit_mb,
                as_of,
                horizon_days,
            )
            .into(),
        }
    }
}
