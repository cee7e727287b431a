//! The projection to a capacity limit: the first day the fitted line reaches it.

use super::line::Line;

/// The first day `d` in `1..=cap` with `line.at(d) ≥ limit`, or 0 when the intercept reaches
/// it already.
pub(super) fn days_until_full(line: &Line, limit: f64, cap: u32) -> Option<u32> {
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
}
