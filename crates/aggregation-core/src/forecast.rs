//! Capacity forecasts: a straight line through the recent daily sizes of one series, projected
//! to a horizon, and the rules that decide whether the projection may be shown.
//!
//! A forecast that is shown gets acted on (disks are ordered, databases moved), so this module
//! is as much about *withholding* as about fitting. A projection is published only when there
//! are enough points, the line explains the history, the horizon is short compared with the
//! history and the history does not bend. A withheld forecast says why ([`WithheldReason`])
//! and still carries the fitted line when there is one, so that a user interface can show the
//! reason next to the data. `docs/forecasting.md` explains the rules and the back-test that
//! checks them (`cargo bench -p capstats-aggregation-core --bench forecast_backtest`).
//!
//! Arithmetic is in `f64`: sizes are exact up to 2⁵³ MB (8 EB), and every sum is taken over
//! values centred on their mean, so a 2 TB database growing by a few MB a day loses no digits
//! to the size it already has.

use std::fmt;

use chrono::NaiveDate;
use statrs::distribution::{ContinuousCDF, StudentsT};

/// The knobs of [`forecast`]. [`Default`] gives the values capstats publishes with.
#[derive(Debug, Clone, PartialEq)]
pub struct ForecastSettings {
    /// The fit uses the points dated within the last `window_days` days ending at `as_of`
    /// (`as_of` included). Default 90. Must be at least 1.
    pub window_days: u32,
    /// Fewer points than this in the window withholds the forecast. Default 14. Must be at
    /// least 3: a line through two points has no residuals to judge it by.
    pub minimum_points: usize,
    /// A coefficient of determination below this withholds the forecast. Default 0.85. Must
    /// lie in `[0, 1]`.
    pub minimum_r_squared: f64,
    /// Coverage of the two-sided prediction interval. Default 0.90. Must lie strictly between
    /// 0 and 1.
    pub confidence: f64,
    /// How far, as a fraction of the size, a bend the history clearly shows may move the
    /// projection at the horizon before the forecast is withheld as
    /// [`WithheldReason::NotLinear`]. Default 0.03 (3 %), below the 5 % error the back-test
    /// accepts at 30 days. Must be positive.
    pub non_linearity_tolerance: f64,
}

impl Default for ForecastSettings {
    fn default() -> Self {
        Self {
            window_days: 90,
            minimum_points: 14,
            minimum_r_squared: 0.85,
            confidence: 0.90,
            non_linearity_tolerance: 0.03,
        }
    }
}

impl ForecastSettings {
    fn validate(&self) -> Result<(), ForecastError> {
        let problem = if self.window_days == 0 {
            Some("window_days must be at least 1")
        } else if self.minimum_points < 3 {
            Some("minimum_points must be at least 3")
        } else if !(0.0..=1.0).contains(&self.minimum_r_squared) {
            Some("minimum_r_squared must lie between 0 and 1")
        } else if !(self.confidence > 0.0 && self.confidence < 1.0) {
            Some("confidence must lie strictly between 0 and 1")
        } else if !(self.non_linearity_tolerance > 0.0 && self.non_linearity_tolerance.is_finite())
        {
            Some("non_linearity_tolerance must be a positive number")
        } else {
            None
        };
        problem.map_or(Ok(()), |problem| {
            Err(ForecastError::InvalidSettings(problem))
        })
    }
}

/// What to forecast: the daily sizes of one series and where to project them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForecastRequest<'a> {
    /// Daily sizes in MB, in any order, at most one per date; days may be missing.
    pub points: &'a [(NaiveDate, i64)],
    /// The day the forecast is made on: day 0 of the projection and the last day of the window.
    /// No point may be dated after it.
    pub as_of: NaiveDate,
    /// How many days after `as_of` to project to.
    pub horizon_days: u32,
    /// The size at which the series is full, if it has a limit.
    pub capacity_limit_mb: Option<i64>,
}

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
    TooFewPoints {
        /// Points in the window.
        points: usize,
        /// Points required.
        required: usize,
    },
    /// The line explains less of the history than [`ForecastSettings::minimum_r_squared`].
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonLinearity {
    /// A quadratic term: accelerating or levelling growth.
    Curvature,
    /// A change of slope on some day: a plateau, a new workload.
    TrendChange,
    /// A change of level on some day: a migration, an archive purge.
    LevelShift,
}

/// Why [`forecast`] could not look at the request at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForecastError {
    /// Two points share a date.
    #[error("two points are dated {0}; a series has at most one size per day")]
    DuplicateDate(NaiveDate),
    /// A point is dated after the day the forecast is made on.
    #[error("a point is dated {date}, after the forecast date {as_of}")]
    PointAfterAsOf {
        /// The latest such point.
        date: NaiveDate,
        /// The request's `as_of`.
        as_of: NaiveDate,
    },
    /// A setting is out of its range; the text says which.
    #[error("invalid forecast settings: {0}")]
    InvalidSettings(&'static str),
}

/// Fits a straight line to the points in the window and decides whether its projection to
/// `as_of + horizon_days` may be published.
///
/// **The fit** is ordinary least squares of size on day number, with day 0 at `as_of` (so the
/// intercept is the fitted size on `as_of`), over the points dated within the last
/// `window_days` days ending at `as_of`. R² is `1 − SSres/SStot`; a perfectly flat history
/// (SStot = 0) has R² 1 by definition, since the flat line fits it perfectly. Slope, intercept
/// and R² are filled from 3 points on, whether the forecast is published or not.
///
/// **Publication** needs, in this order (the first rule that fails is the
/// [`WithheldReason`]):
///
/// 1. at least `minimum_points` points in the window;
/// 2. R² ≥ `minimum_r_squared`;
/// 3. `horizon_days` ≤ half the days the points cover (`window_end − window_start + 1`,
///    halved and rounded down): a line is not extrapolated further than half the history it
///    was fitted on;
/// 4. no sign that the history bends (see below).
///
/// **Non-linearity.** A high R² does not make a history linear: exponential growth, a
/// migration's step or growth that has levelled off all fit a line well and then project
/// wrongly. The check adds to the line, one at a time, a term the line cannot follow, and asks
/// two questions of each: does the history clearly support it (the t statistic of its
/// coefficient is at least 4), and would it move the projection at the horizon by more than
/// `non_linearity_tolerance` of the size? The terms are
///
/// - *curvature*: a quadratic term (accelerating or levelling growth), from 4 points;
/// - *trend change*: a bend, the slope changing on the day of a point with at least 3 points
///   on either side (a plateau, a new workload);
/// - *level shift*: a step on such a day (a migration, an archive purge).
///
/// Bends and steps are tried on every such day. The forecast is withheld as
/// [`WithheldReason::NotLinear`] when any supported term moves the projection too far (the
/// reason reports the best-supported of those): when several readings fit a history and one
/// of them says the line is wrong, the line is not trusted. A bend or step is judged against
/// the larger of the whole fit's noise and the noise of the points from its day on, because
/// noise grows with the size and the latest days of a fast-growing series are noisier than
/// the average. The size is the larger of the mean size in the
/// window and the projected size (the larger one keeps a database being emptied, whose
/// projection nears zero, from turning a few MB into a large percentage), which makes the rule
/// scale-free; measuring the move at the horizon ties it to what matters, the error of the
/// published number. Both questions are needed: a bend fitted to the last few points can
/// move the projection far on noise alone, and in a long quiet history a bend can be clearly
/// real yet too small to matter. On straight lines with independent noise the largest t
/// statistic of the scan rarely reaches 4, so noisy linear data publishes. A change so recent
/// and small that it is not yet distinguishable from the noise (a plateau that began a week
/// or two ago in a noisy series) is not detected, and its forecast is published; the back-test
/// in `docs/forecasting.md` measures how often that happens.
///
/// **The interval** is the prediction interval of a new observation at the horizon, `ŷ ± t ·
/// s · √(1 + 1/n + (x₀ − x̄)²/Sxx)` with `t` the `1 − (1 − confidence)/2` quantile of Student's
/// t with `n − 2` degrees of freedom and `s² = SSres/(n − 2)`. It assumes independent,
/// equally spread residuals, which daily sizes only approximate.
///
/// **Days until full**, when a limit is given and the forecast is published: 0 when the fitted
/// size on `as_of` (the intercept) already reaches the limit; otherwise the first whole day
/// `d ≥ 1` on which `intercept + slope · d ≥ limit`, provided `d` is at most the longest
/// publishable horizon (`maximum_horizon_days`): a date further out would rest on an
/// extrapolation the publication rules refuse. `None` when the line does not reach the limit
/// within that cap, including whenever the slope is zero or negative.
///
/// Projection and interval ends are rounded half away from zero and saturate at the bounds of
/// `i64`.
///
/// ```
/// use capstats_aggregation_core::{ForecastRequest, ForecastSettings, forecast};
/// use chrono::{Days, NaiveDate};
///
/// let as_of = NaiveDate::from_ymd_opt(2026, 6, 30).unwrap();
/// // 60 days growing by 10 MB a day, 1,000 MB on as_of.
/// let points: Vec<_> = (0..60)
///     .map(|age| (as_of - Days::new(age), 1_000 - 10 * age as i64))
///     .collect();
/// let request = ForecastRequest {
///     points: &points,
///     as_of,
///     horizon_days: 20,
///     capacity_limit_mb: Some(1_155),
/// };
/// let result = forecast(&request, &ForecastSettings::default())?;
/// assert!(result.published);
/// assert_eq!(result.projected_size_mb, Some(1_200));
/// // Interval of a perfect line: no width.
/// assert_eq!((result.lower_mb, result.upper_mb), (Some(1_200), Some(1_200)));
/// // 1,150 MB on day 15, 1,160 MB on day 16.
/// assert_eq!(result.days_until_full, Some(16));
///
/// // 60 days of history publish at most 30 days ahead.
/// let too_far = forecast(&ForecastRequest { horizon_days: 45, ..request }, &ForecastSettings::default())?;
/// assert!(!too_far.published);
/// assert_eq!(too_far.withheld_reason.unwrap().code(), "horizon_too_long");
/// assert_eq!(
///     too_far.withheld_reason.unwrap().to_string(),
///     "a 45-day horizon is longer than half the history; at most 30 days can be forecast"
/// );
/// assert_eq!(too_far.slope_mb_per_day, Some(10.0));
/// assert_eq!(too_far.projected_size_mb, None);
/// # Ok::<(), capstats_aggregation_core::ForecastError>(())
/// ```
///
/// # Errors
///
/// [`ForecastError::DuplicateDate`] and [`ForecastError::PointAfterAsOf`] for malformed
/// points (anywhere in `points`, not only in the window), [`ForecastError::InvalidSettings`]
/// for settings out of range.
pub fn forecast(
    request: &ForecastRequest<'_>,
    settings: &ForecastSettings,
) -> Result<Forecast, ForecastError> {
    settings.validate()?;
    check_points(request.points, request.as_of)?;

    let window_days = i64::from(settings.window_days);
    let mut window: Vec<(i64, i64)> = request
        .points
        .iter()
        .map(|&(date, size)| ((date - request.as_of).num_days(), size))
        .filter(|&(day, _)| day > -window_days)
        .collect();
    window.sort_unstable_by_key(|&(day, _)| day);
    // Sizes are exact in f64 up to 2⁵³ MB.
    let points: Vec<(f64, f64)> = window
        .iter()
        .map(|&(day, size)| (day as f64, size as f64))
        .collect();

    let mut result = Forecast {
        points_used: points.len(),
        window_start: None,
        window_end: None,
        maximum_horizon_days: None,
        slope_mb_per_day: None,
        intercept_mb: None,
        r_squared: None,
        projected_size_mb: None,
        lower_mb: None,
        upper_mb: None,
        capacity_limit_mb: request.capacity_limit_mb,
        days_until_full: None,
        published: false,
        withheld_reason: None,
    };
    let (Some(&(first_day, _)), Some(&(last_day, _))) = (window.first(), window.last()) else {
        result.withheld_reason = Some(WithheldReason::TooFewPoints {
            points: 0,
            required: settings.minimum_points,
        });
        return Ok(result);
    };
    let day_date = |day: i64| request.as_of + chrono::Duration::days(day);
    result.window_start = Some(day_date(first_day));
    result.window_end = Some(day_date(last_day));
    // The window spans fewer than 2³² days, so this fits.
    let maximum_horizon = u32::try_from((last_day - first_day + 1) / 2).unwrap_or(u32::MAX);
    result.maximum_horizon_days = Some(maximum_horizon);

    let line = (points.len() >= 3).then(|| Line::fit(&points));
    if let Some(line) = &line {
        result.slope_mb_per_day = Some(line.slope);
        result.intercept_mb = Some(line.intercept);
        result.r_squared = Some(line.r_squared);
    }
    let horizon = f64::from(request.horizon_days);

    let line = match line {
        Some(line) if points.len() >= settings.minimum_points => line,
        _ => {
            result.withheld_reason = Some(WithheldReason::TooFewPoints {
                points: points.len(),
                required: settings.minimum_points,
            });
            return Ok(result);
        }
    };
    let reason = if line.r_squared < settings.minimum_r_squared {
        Some(WithheldReason::PoorFit {
            r_squared: line.r_squared,
            required: settings.minimum_r_squared,
        })
    } else if request.horizon_days > maximum_horizon {
        Some(WithheldReason::HorizonTooLong {
            horizon_days: request.horizon_days,
            maximum_days: maximum_horizon,
        })
    } else {
        non_linearity(&points, &line, horizon, settings.non_linearity_tolerance).map(
            |(evidence, departure)| WithheldReason::NotLinear {
                evidence,
                departure,
                tolerance: settings.non_linearity_tolerance,
            },
        )
    };
    if reason.is_some() {
        result.withheld_reason = reason;
        return Ok(result);
    }

    let projected = line.at(horizon);
    let half_width = line.prediction_half_width(horizon, settings.confidence);
    result.published = true;
    result.projected_size_mb = Some(round_to_megabytes(projected));
    result.lower_mb = Some(round_to_megabytes(projected - half_width));
    result.upper_mb = Some(round_to_megabytes(projected + half_width));
    result.days_until_full = request
        .capacity_limit_mb
        .and_then(|limit| days_until_full(&line, limit as f64, maximum_horizon));
    Ok(result)
}

/// Rejects duplicate dates and dates after `as_of`, anywhere in the series.
fn check_points(points: &[(NaiveDate, i64)], as_of: NaiveDate) -> Result<(), ForecastError> {
    let mut dates: Vec<NaiveDate> = points.iter().map(|&(date, _)| date).collect();
    dates.sort_unstable();
    if let Some(&latest) = dates.last()
        && latest > as_of
    {
        return Err(ForecastError::PointAfterAsOf {
            date: latest,
            as_of,
        });
    }
    match dates.windows(2).find(|pair| pair[0] == pair[1]) {
        Some(pair) => Err(ForecastError::DuplicateDate(pair[0])),
        None => Ok(()),
    }
}

/// A least-squares line of size on day number.
#[derive(Debug, Clone, Copy)]
struct Line {
    points: f64,
    slope: f64,
    /// Fitted size at day 0.
    intercept: f64,
    mean_day: f64,
    mean_size: f64,
    /// Σ(x − x̄)².
    day_spread: f64,
    residual_sum_of_squares: f64,
    r_squared: f64,
}

impl Line {
    /// Fits `points` (day, size); needs at least two distinct days.
    fn fit(points: &[(f64, f64)]) -> Self {
        let count = points.len() as f64;
        let mean_day = points.iter().map(|&(day, _)| day).sum::<f64>() / count;
        let mean_size = points.iter().map(|&(_, size)| size).sum::<f64>() / count;
        // Centred sums: the size a database already has does not swamp its daily growth.
        let (mut day_spread, mut co_spread, mut size_spread) = (0.0, 0.0, 0.0);
        for &(day, size) in points {
            let (day, size) = (day - mean_day, size - mean_size);
            day_spread += day * day;
            co_spread += day * size;
            size_spread += size * size;
        }
        let slope = co_spread / day_spread;
        let residual_sum_of_squares: f64 = points
            .iter()
            .map(|&(day, size)| {
                let residual = (size - mean_size) - slope * (day - mean_day);
                residual * residual
            })
            .sum();
        // A flat history is fitted perfectly by a flat line. Rounding can push the ratio a
        // hair outside [0, 1]; R² cannot be.
        let r_squared = if size_spread == 0.0 {
            1.0
        } else {
            (1.0 - residual_sum_of_squares / size_spread).clamp(0.0, 1.0)
        };
        Self {
            points: count,
            slope,
            intercept: mean_size - slope * mean_day,
            mean_day,
            mean_size,
            day_spread,
            residual_sum_of_squares,
            r_squared,
        }
    }

    /// The fitted size on `day`.
    fn at(&self, day: f64) -> f64 {
        self.mean_size + self.slope * (day - self.mean_day)
    }

    /// Half the width of the prediction interval of a new observation on `day`; needs at
    /// least 3 points.
    fn prediction_half_width(&self, day: f64, confidence: f64) -> f64 {
        let degrees_of_freedom = self.points - 2.0;
        let standard_error = (self.residual_sum_of_squares / degrees_of_freedom).sqrt();
        let quantile = StudentsT::new(0.0, 1.0, degrees_of_freedom)
            .expect("at least one degree of freedom")
            .inverse_cdf(1.0 - (1.0 - confidence) / 2.0);
        let offset = day - self.mean_day;
        let leverage = 1.0 + 1.0 / self.points + offset * offset / self.day_spread;
        quantile * standard_error * leverage.sqrt()
    }
}

/// How strongly the history must support a term, as a t statistic, before its departure
/// counts. Scanning every day for a bend or a step is many tests at once; on straight lines
/// with independent Gaussian noise the largest of them rarely reaches 4. Chosen on the
/// back-test of `docs/forecasting.md` (2,000 growing or shrinking lines; 500 plateaus at 30
/// days), lines withheld as not linear / plateaus published wrongly: 3 → 22 / 2, 3.5 → 7 / 3,
/// 4 → 2 / 5, 5 → 0 / 10.
const SIGNIFICANCE: f64 = 4.0;

/// Fewest points on each side of a bend or step.
const SIDE_POINTS: usize = 3;

/// The latest points, where a bend or step is also looked for with [`RECENT_SIGNIFICANCE`]: a
/// change that began a week or two before the forecast (growth that levelled off) has had few
/// points to show itself, and it is the one that moves the projection most.
const RECENT_POINTS: usize = 21;

/// How strongly the latest [`RECENT_POINTS`] points must support a bend or step: fewer days are
/// scanned there than over the whole history, so a lower bar keeps false alarms on straight
/// lines about as rare. Chosen on the same back-test (docs/forecasting.md).
const RECENT_SIGNIFICANCE: f64 = 3.0;

/// Among the terms the history supports (t ≥ [`SIGNIFICANCE`]) that move the projection on
/// `horizon` by more than `tolerance` of the size, the best-supported one, and how far it moves
/// it as a fraction of the size; `None` when there is none.
fn non_linearity(
    points: &[(f64, f64)],
    line: &Line,
    horizon: f64,
    tolerance: f64,
) -> Option<(NonLinearity, f64)> {
    let terms = Terms::new(points, line, horizon);
    let size = line.mean_size.abs().max(line.at(horizon).abs());
    let beyond = |significance: f64| {
        move |reading: &Reading| {
            reading.t_statistic >= significance && reading.departure.abs() > tolerance * size
        }
    };
    let too_far = beyond(SIGNIFICANCE);
    let recent = terms.residuals.len().saturating_sub(RECENT_POINTS);
    [
        (NonLinearity::Curvature, terms.curvature().filter(too_far)),
        (NonLinearity::TrendChange, terms.best_bend(0, too_far)),
        (NonLinearity::LevelShift, terms.best_step(0, too_far)),
        (
            NonLinearity::TrendChange,
            terms.best_bend(recent, beyond(RECENT_SIGNIFICANCE)),
        ),
        (
            NonLinearity::LevelShift,
            terms.best_step(recent, beyond(RECENT_SIGNIFICANCE)),
        ),
    ]
    .into_iter()
    .filter_map(|(evidence, reading)| reading.map(|reading| (evidence, reading)))
    .reduce(|best, candidate| {
        if candidate.1.t_statistic > best.1.t_statistic {
            candidate
        } else {
            best
        }
    })
    .map(|(evidence, reading)| (evidence, reading.departure.abs() / size))
}

/// What adding one term to the line does.
#[derive(Debug, Clone, Copy)]
struct Reading {
    /// |t| of the term's coefficient: how clearly the history supports it.
    t_statistic: f64,
    /// How far the term moves the fitted size on the horizon day, in MB.
    departure: f64,
}

/// The line's residuals with centred days, and the sums that test extra terms against them.
///
/// Adding a term `v` to the line changes the fit by `d·v⊥`, where `v⊥` is `v` minus its own
/// least-squares line (`v − mean(v) − β·u`, `u` the centred day, `β = Σvu/Σu²`) and
/// `d = Σ v·r / Σ v⊥²` (`r` the line's residuals, which are orthogonal to the line). So every
/// term is judged from four sums, and a scan over every day costs one pass with suffix sums.
struct Terms {
    /// (centred day, residual), by day.
    residuals: Vec<(f64, f64)>,
    points: f64,
    day_spread: f64,
    residual_sum_of_squares: f64,
    /// The centred horizon day.
    horizon: f64,
}

impl Terms {
    fn new(points: &[(f64, f64)], line: &Line, horizon: f64) -> Self {
        Self {
            residuals: points
                .iter()
                .map(|&(day, size)| (day - line.mean_day, size - line.at(day)))
                .collect(),
            points: line.points,
            day_spread: line.day_spread,
            residual_sum_of_squares: line.residual_sum_of_squares,
            horizon: horizon - line.mean_day,
        }
    }

    /// Judges a term from `Σv`, `Σvu`, `Σv²`, `Σvr` and its value on the horizon day.
    fn read(
        &self,
        sum: f64,
        sum_day: f64,
        sum_square: f64,
        sum_residual: f64,
        at_horizon: f64,
        from_day: Option<&Suffix>,
    ) -> Option<Reading> {
        let mean = sum / self.points;
        let tilt = sum_day / self.day_spread;
        // Σ v⊥²: what the term can explain that the line cannot.
        let spread = sum_square - sum * mean - sum_day * tilt;
        if self.points < 4.0 || spread <= 1e-9 * sum_square {
            return None;
        }
        let coefficient = sum_residual / spread;
        let explained = sum_residual * coefficient;
        let mut unexplained =
            (self.residual_sum_of_squares - explained).max(0.0) / (self.points - 3.0);
        if let Some(suffix) = from_day
            && suffix.count > 1.0
        {
            // Σ over the suffix of r·v⊥ and v⊥², then of the residuals left after the term.
            let alignment = sum_residual - mean * suffix.residuals - tilt * suffix.day_residuals;
            let local_spread = sum_square - 2.0 * mean * sum - 2.0 * tilt * sum_day
                + suffix.count * mean * mean
                + 2.0 * mean * tilt * suffix.days
                + tilt * tilt * suffix.squares;
            let left = suffix.square_residuals - 2.0 * coefficient * alignment
                + coefficient * coefficient * local_spread;
            unexplained = unexplained.max(left.max(0.0) / (suffix.count - 1.0));
        }
        let t_statistic = if explained == 0.0 {
            0.0
        } else if unexplained == 0.0 {
            f64::INFINITY
        } else {
            (explained / unexplained).sqrt()
        };
        Some(Reading {
            t_statistic,
            departure: coefficient * (at_horizon - mean - tilt * self.horizon),
        })
    }

    /// A quadratic term `u²`: accelerating or levelling growth.
    fn curvature(&self) -> Option<Reading> {
        let (mut sum, mut sum_day, mut sum_square, mut sum_residual) = (0.0, 0.0, 0.0, 0.0);
        for &(day, residual) in &self.residuals {
            let square = day * day;
            sum += square;
            sum_day += square * day;
            sum_square += square * square;
            sum_residual += square * residual;
        }
        self.read(
            sum,
            sum_day,
            sum_square,
            sum_residual,
            self.horizon * self.horizon,
            None,
        )
    }

    /// A bend `max(0, u − c)` at a point's day `c`, from the point at index `from` on: a
    /// trend that changed.
    fn best_bend(&self, from: usize, wanted: impl Fn(&Reading) -> bool) -> Option<Reading> {
        self.best_over_days(from, wanted, |suffix, bend| {
            let sum = suffix.days - bend * suffix.count;
            let sum_day = suffix.squares - bend * suffix.days;
            let sum_square = suffix.squares - 2.0 * bend * suffix.days + bend * bend * suffix.count;
            let sum_residual = suffix.day_residuals - bend * suffix.residuals;
            self.read(
                sum,
                sum_day,
                sum_square,
                sum_residual,
                self.horizon - bend,
                Some(suffix),
            )
        })
    }

    /// A step `1 if u ≥ c` at a point's day `c`, from the point at index `from` on: a level
    /// that moved.
    fn best_step(&self, from: usize, wanted: impl Fn(&Reading) -> bool) -> Option<Reading> {
        self.best_over_days(from, wanted, |suffix, _| {
            self.read(
                suffix.count,
                suffix.days,
                suffix.count,
                suffix.residuals,
                1.0,
                Some(suffix),
            )
        })
    }

    /// Over the days of the points from index `from` on with at least [`SIDE_POINTS`] points
    /// before them and [`SIDE_POINTS`] from them on, the `wanted` reading with the largest t
    /// statistic. `read` gets the sums over the points from that day on, and the day.
    fn best_over_days(
        &self,
        from: usize,
        wanted: impl Fn(&Reading) -> bool,
        read: impl Fn(&Suffix, f64) -> Option<Reading>,
    ) -> Option<Reading> {
        let mut suffix = Suffix::default();
        let mut best: Option<Reading> = None;
        for (index, &(day, residual)) in self.residuals.iter().enumerate().rev() {
            suffix.count += 1.0;
            suffix.days += day;
            suffix.squares += day * day;
            suffix.residuals += residual;
            suffix.day_residuals += day * residual;
            suffix.square_residuals += residual * residual;
            let after = self.residuals.len() - index;
            if index < SIDE_POINTS.max(from) || after < SIDE_POINTS {
                continue;
            }
            if let Some(reading) = read(&suffix, day)
                && wanted(&reading)
                && best.is_none_or(|best| reading.t_statistic > best.t_statistic)
            {
                best = Some(reading);
            }
        }
        best
    }
}

/// Sums over the points from some day on.
#[derive(Debug, Default)]
struct Suffix {
    count: f64,
    days: f64,
    squares: f64,
    residuals: f64,
    day_residuals: f64,
    square_residuals: f64,
}

/// The first day `d` in `1..=cap` with `line.at(d) ≥ limit`, or 0 when the intercept reaches
/// it already.
fn days_until_full(line: &Line, limit: f64, cap: u32) -> Option<u32> {
    if line.at(0.0) >= limit {
        return Some(0);
    }
    if line.slope <= 0.0 {
        return None;
    }
    let estimate = ((limit - line.at(0.0)) / line.slope).ceil();
    // Positive, possibly infinite: the limit is above the intercept and the slope positive.
    if estimate > f64::from(cap) + 1.0 {
        return None;
    }
    // The quotient is rounded; settle on the first day the line itself reaches the limit.
    let mut day = (estimate as u32).max(1);
    while day > 1 && line.at(f64::from(day - 1)) >= limit {
        day -= 1;
    }
    while line.at(f64::from(day)) < limit {
        if day >= cap {
            return None;
        }
        day += 1;
    }
    (day <= cap).then_some(day)
}

/// Rounds half away from zero; `as` saturates at the bounds of `i64`.
fn round_to_megabytes(value: f64) -> i64 {
    value.round() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(points: &[(f64, f64)]) -> Line {
        Line::fit(points)
    }

    #[test]
    fn days_until_full_settles_on_the_first_day_the_line_reaches_the_limit() {
        // 100 MB on day 0, +0.1 MB a day: 0.1 is not exact in binary.
        let fitted = line(&[(-2.0, 99.8), (-1.0, 99.9), (0.0, 100.0)]);
        for limit in [100.0, 100.05, 100.1, 100.2, 100.3, 100.7, 101.0] {
            let expected = (0..=100).find(|&day| fitted.at(f64::from(day)) >= limit);
            assert_eq!(
                days_until_full(&fitted, limit, 100),
                expected,
                "limit {limit}"
            );
        }
        assert_eq!(days_until_full(&fitted, 101.0, 9), None);
        assert_eq!(days_until_full(&fitted, 1e300, u32::MAX), None);
    }

    #[test]
    fn the_quadratic_term_of_a_parabola_is_its_whole_departure() {
        // size = day², fitted on days −4..=0: the line misses the parabola at day 3 by exactly
        // what the quadratic term says.
        let points: Vec<_> = (-4..=0)
            .map(|day| (f64::from(day), f64::from(day * day)))
            .collect();
        let fitted = line(&points);
        let reading = Terms::new(&points, &fitted, 3.0).curvature().unwrap();
        assert!((fitted.at(3.0) + reading.departure - 9.0).abs() < 1e-9);
        assert_eq!(reading.t_statistic, f64::INFINITY);
    }
}
