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

use chrono::NaiveDate;

mod capacity_limit;
mod line;
mod non_linearity;
mod outcome;
mod request;

pub use outcome::{Forecast, NonLinearity, WithheldReason};
pub use request::{ForecastError, ForecastRequest, ForecastSettings};

use capacity_limit::days_until_full;
use line::Line;
use non_linearity::non_linearity;

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

/// Rounds half away from zero; `as` saturates at the bounds of `i64`.
fn round_to_megabytes(value: f64) -> i64 {
    value.round() as i64
}
