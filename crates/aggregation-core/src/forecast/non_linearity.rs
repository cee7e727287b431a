//! The non-linearity check: terms the line cannot follow (curvature, a bend, a step), and how
//! far each the history supports would move the projection.

use super::NonLinearity;
use super::line::Line;

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
pub(super) fn non_linearity(
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

#[cfg(test)]
mod tests {
    use super::*;

    fn line(points: &[(f64, f64)]) -> Line {
        Line::fit(points)
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
