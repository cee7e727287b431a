//! The least-squares line of size on day number, and its prediction interval.

use statrs::distribution::{ContinuousCDF, StudentsT};

/// A least-squares line of size on day number.
#[derive(Debug, Clone, Copy)]
pub(super) struct Line {
    pub(super) points: f64,
    pub(super) slope: f64,
    /// Fitted size at day 0.
    pub(super) intercept: f64,
    pub(super) mean_day: f64,
    pub(super) mean_size: f64,
    /// Σ(x − x̄)².
    pub(super) day_spread: f64,
    pub(super) residual_sum_of_squares: f64,
    pub(super) r_squared: f64,
}

impl Line {
    /// Fits `points` (day, size); needs at least two distinct days.
    pub(super) fn fit(points: &[(f64, f64)]) -> Self {
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
    pub(super) fn at(&self, day: f64) -> f64 {
        self.mean_size + self.slope * (day - self.mean_day)
    }

    /// Half the width of the prediction interval of a new observation on `day`; needs at
    /// least 3 points.
    pub(super) fn prediction_half_width(&self, day: f64, confidence: f64) -> f64 {
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
