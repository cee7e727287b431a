//! What a forecast is asked for: the series, the horizon and the knobs, and why a request
//! cannot be looked at.

use chrono::NaiveDate;

/// The knobs of [`forecast`]. [`Default`] gives the values capstats publishes with.
///
/// [`forecast`]: super::forecast
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
    ///
    /// [`WithheldReason::NotLinear`]: super::WithheldReason::NotLinear
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
    pub(super) fn validate(&self) -> Result<(), ForecastError> {
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

/// Why [`forecast`] could not look at the request at all.
///
/// [`forecast`]: super::forecast
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
