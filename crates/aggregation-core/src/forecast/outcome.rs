//! What a forecast answers: the fitted line, its projection, and why it may be withheld.

use std::fmt;

use chrono::NaiveDate;

/// The fitted line and, when it is published, its projection.
///
/// The line is filled whenever the window holds at least 3 points, published or not; the
/// projection, its interval and `days_until_full` only when the forecast is published.
#[derive(Debug, Clone, PartialEq)]
pub struct Forecast {
    /// Number of points in the window.
    pub points_used: usize,
    /// Date of the first point used.
    pub window_start: Option<NaiveDate>,
    /// Date of the last point used.
    pub window_end: Option<NaiveDate>,
    /// The longest horizon that can be published with these points: half the days from
    /// `window_start` to `window_end` (both included), rounded down.
    pub maximum_horizon_days: Option<u32>,
    /// Fitted growth in MB per day.
    pub slope_mb_per_day: Option<f64>,
    /// Fitted size at `as_of`, in MB.
    pub intercept_mb: Option<f64>,
    /// Coefficient of determination of the fit, in `[0, 1]`; 1 for a perfectly flat history.
    pub r_squared: Option<f64>,
    /// Fitted size at `as_of + horizon_days`, rounded half away from zero.
    pub projected_size_mb: Option<i64>,
    /// Lower end of the prediction interval at the horizon.
    pub lower_mb: Option<i64>,
    /// Upper end of the prediction interval at the horizon.
    pub upper_mb: Option<i64>,
    /// The request's capacity limit.
    pub capacity_limit_mb: Option<i64>,
    /// Days after `as_of` until the fitted line reaches the limit; see [`forecast`].
    ///
    /// [`forecast`]: super::forecast
    pub days_until_full: Option<u32>,
    /// Whether the projection may be shown.
    pub published: bool,
    /// Why it may not, when it may not.
    pub withheld_reason: Option<WithheldReason>,
}

/// Why a forecast was withheld. The rules are checked in the order of the variants and the
/// first that fails is reported.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WithheldReason {
    /// Fewer points in the window than [`ForecastSettings::minimum_points`].
    ///
    /// [`ForecastSettings::minimum_points`]: super::ForecastSettings::minimum_points
    TooFewPoints {
        /// Points in the window.
        points: usize,
        /// Points required.
        required: usize,
    },
    /// The line explains less of the history than [`ForecastSettings::minimum_r_squared`].
    ///
    /// [`ForecastSettings::minimum_r_squared`]: super::ForecastSettings::minimum_r_squared
    PoorFit {
        /// R² of the fit.
        r_squared: f64,
        /// R² required.
        required: f64,
    },
    /// The horizon is longer than half the history the points cover.
    HorizonTooLong {
        /// The requested horizon.
        horizon_days: u32,
        /// The longest horizon these points allow.
        maximum_days: u32,
    },
    /// The history bends: it clearly supports a curve, a changed trend or a shifted level that
    /// moves the projection at the horizon by more than
    /// [`ForecastSettings::non_linearity_tolerance`].
    ///
    /// [`ForecastSettings::non_linearity_tolerance`]: super::ForecastSettings::non_linearity_tolerance
    NotLinear {
        /// The supported term that moves the projection most.
        evidence: NonLinearity,
        /// How far it moves it, as a fraction of the size (0.05 = 5 %).
        departure: f64,
        /// The largest accepted departure, as a fraction of the size.
        tolerance: f64,
    },
}

impl WithheldReason {
    /// A stable machine-readable name: `too_few_points`, `poor_fit`, `horizon_too_long` or
    /// `not_linear`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooFewPoints { .. } => "too_few_points",
            Self::PoorFit { .. } => "poor_fit",
            Self::HorizonTooLong { .. } => "horizon_too_long",
            Self::NotLinear { .. } => "not_linear",
        }
    }
}

impl fmt::Display for WithheldReason {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::TooFewPoints { points, required } => write!(
                formatter,
                "only {points} daily points in the window; {required} are needed"
            ),
            Self::PoorFit {
                r_squared,
                required,
            } => write!(
                formatter,
                "a straight line explains too little of the history (R² {r_squared:.2}; \
                 {required:.2} is needed)"
            ),
            Self::HorizonTooLong {
                horizon_days,
                maximum_days,
            } => write!(
                formatter,
                "a {horizon_days}-day horizon is longer than half the history; at most \
                 {maximum_days} days can be forecast"
            ),
            Self::NotLinear {
                evidence,
                departure,
                tolerance,
            } => {
                let departure = departure * 100.0;
                let tolerance = tolerance * 100.0;
                let reading = match evidence {
                    NonLinearity::Curvature => "the history is curved: following the curve",
                    NonLinearity::TrendChange => "the trend has changed: following the change",
                    NonLinearity::LevelShift => "the size has stepped: following the step",
                };
                write!(
                    formatter,
                    "{reading} moves the projection by {departure:.1} % of the size; at most \
                     {tolerance:.1} % is accepted"
                )
            }
        }
    }
}

/// The kind of bend a history clearly shows (see [`forecast`]).
///
/// [`forecast`]: super::forecast
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonLinearity {
    /// A quadratic term: accelerating or levelling growth.
    Curvature,
    /// A change of slope on some day: a plateau, a new workload.
    TrendChange,
    /// A change of level on some day: a migration, an archive purge.
    LevelShift,
}
