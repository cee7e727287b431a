//! The forecast back-test: deterministic daily size histories, a forecast from all but their
//! last `H` days, and its error against the held-out last day.
//!
//! Shared by `benches/forecast_backtest.rs` (many cases, prints the table of
//! `docs/forecasting.md`) and `tests/forecast_backtest.rs` (fewer cases and another seed, so
//! CI checks the same targets).

use std::fmt::Write as _;

use capstats_aggregation_core::{ForecastRequest, ForecastSettings, forecast};
use chrono::{Duration, NaiveDate};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The held-out horizons, in days.
pub const HORIZONS: [u32; 2] = [30, 90];

/// Share of a growing or shrinking family's cases that must publish ("nearly all").
const MINIMUM_PUBLISHED_SHARE: f64 = 0.9;

/// Share of a non-linear family's cases that may be published with an error over the target.
/// Not zero: a change a few days before `as_of` that is still smaller than the noise cannot be
/// told from it, by this forecast or any other (`docs/forecasting.md`).
const MAXIMUM_WRONG_SHARE: f64 = 0.02;

/// Days of history before the fit window, so that the window, not the data, bounds the fit.
const LEAD_DAYS: usize = 30;

/// The largest error, in percent of the actual size, a published forecast may make.
fn error_target(horizon: u32) -> f64 {
    match horizon {
        30 => 5.0,
        90 => 15.0,
        _ => unreachable!("no target for a {horizon}-day horizon"),
    }
}

/// The fit window for a horizon: at least twice the horizon so that it is publishable, plus 20
/// days so that missing days at the window's edges do not shrink the covered days below it.
fn window_days(horizon: u32) -> u32 {
    (2 * horizon + 20).max(ForecastSettings::default().window_days)
}

/// A kind of history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Linear growth of 0.05–1 % of the starting size a day.
    Growing,
    /// Linear, within ±0.01 % a day.
    Flat,
    /// Linear shrinkage of 0.05–0.25 % a day.
    Shrinking,
    /// Compound growth of 0.1–2 % a day.
    Exponential,
    /// Linear growth of 0–0.3 % a day with one step (a migration or an archive purge) of
    /// +10–100 % or −10–50 % somewhere in the middle 80 % of the fit window.
    Step,
    /// Purge cycles: 10–40 % growth over 14–60 days, then back, on a base growing 0–0.2 % a day.
    Sawtooth,
    /// Linear growth of 0.2–1 % a day that stops between 20 % and 90 % of the fit window.
    Plateau,
}

impl Family {
    /// Every family, linear ones first.
    pub const ALL: [Family; 7] = [
        Family::Growing,
        Family::Flat,
        Family::Shrinking,
        Family::Exponential,
        Family::Step,
        Family::Sawtooth,
        Family::Plateau,
    ];

    fn name(self) -> &'static str {
        match self {
            Family::Growing => "linear, growing",
            Family::Flat => "linear, flat",
            Family::Shrinking => "linear, shrinking",
            Family::Exponential => "exponential",
            Family::Step => "step change",
            Family::Sawtooth => "sawtooth purges",
            Family::Plateau => "plateau after growth",
        }
    }

    fn is_linear(self) -> bool {
        matches!(self, Family::Growing | Family::Flat | Family::Shrinking)
    }

    /// The noise-free size of each of `days` days starting at `start` MB, where the fit window
    /// is `window` (indices).
    fn trend(
        self,
        random: &mut ChaCha8Rng,
        start: f64,
        days: usize,
        window: std::ops::Range<usize>,
    ) -> Vec<f64> {
        let percent = |value: f64| value / 100.0;
        let per_day: Box<dyn Fn(f64) -> f64> = match self {
            Family::Growing => {
                let growth = percent(log_uniform(random, 0.05, 1.0));
                Box::new(move |day| start * (1.0 + growth * day))
            }
            Family::Flat => {
                let growth = percent(random.random_range(-0.01..=0.01));
                Box::new(move |day| start * (1.0 + growth * day))
            }
            Family::Shrinking => {
                let growth = -percent(random.random_range(0.05..=0.25));
                Box::new(move |day| start * (1.0 + growth * day))
            }
            Family::Exponential => {
                let rate = percent(log_uniform(random, 0.1, 2.0));
                Box::new(move |day| start * (rate * day).exp())
            }
            Family::Step => {
                let growth = percent(random.random_range(0.0..=0.3));
                let at = change_point(random, &window, 0.1, 0.9);
                let jump = if random.random_bool(0.7) {
                    percent(random.random_range(10.0..=100.0))
                } else {
                    -percent(random.random_range(10.0..=50.0))
                };
                Box::new(move |day| {
                    let size = start * (1.0 + growth * day);
                    if day >= at { size * (1.0 + jump) } else { size }
                })
            }
            Family::Sawtooth => {
                let growth = percent(random.random_range(0.0..=0.2));
                let period = f64::from(random.random_range(14..=60u32));
                let amplitude = percent(random.random_range(10.0..=40.0));
                let phase = random.random_range(0.0..period);
                Box::new(move |day| {
                    let cycle = ((day + phase) / period).fract();
                    start * (1.0 + growth * day) * (1.0 + amplitude * cycle)
                })
            }
            Family::Plateau => {
                let growth = percent(log_uniform(random, 0.2, 1.0));
                let at = change_point(random, &window, 0.2, 0.9);
                Box::new(move |day| start * (1.0 + growth * day.min(at)))
            }
        };
        (0..days).map(|day| per_day(day as f64)).collect()
    }
}

/// A number between `low` and `high` whose logarithm is uniform.
fn log_uniform(random: &mut ChaCha8Rng, low: f64, high: f64) -> f64 {
    (low.ln() + random.random::<f64>() * (high.ln() - low.ln())).exp()
}

/// A day index between the `from` and `to` fractions of `window`.
fn change_point(
    random: &mut ChaCha8Rng,
    window: &std::ops::Range<usize>,
    from: f64,
    to: f64,
) -> f64 {
    let length = window.len() as f64;
    (window.start as f64 + length * random.random_range(from..to)).round()
}

/// A standard normal draw (Box–Muller).
fn gaussian(random: &mut ChaCha8Rng) -> f64 {
    let radius = (-2.0 * (1.0 - random.random::<f64>()).ln()).sqrt();
    radius * (std::f64::consts::TAU * random.random::<f64>()).cos()
}

/// The outcome of one case.
struct Outcome {
    /// `None` when published, the reason's code otherwise.
    withheld: Option<&'static str>,
    /// Absolute percentage error of the line's projection, published or not (`None` when
    /// there was no line).
    error: Option<f64>,
}

/// Generates one history of `family` and forecasts its last `horizon` days.
fn run_case(family: Family, horizon: u32, random: &mut ChaCha8Rng) -> Outcome {
    let window = window_days(horizon) as usize;
    let days = LEAD_DAYS + window + horizon as usize;
    let as_of_index = LEAD_DAYS + window - 1;
    // 1 GB to 2 TB.
    let start = log_uniform(random, 1024.0, 2.0 * 1024.0 * 1024.0);
    let trend = family.trend(random, start, days, LEAD_DAYS..as_of_index + 1);
    let noise = random.random_range(0.001..=0.01);
    let missing_share = random.random_range(0.0..=0.15);
    let mut present: Vec<bool> = (0..days)
        .map(|_| !random.random_bool(missing_share))
        .collect();
    for _ in 0..random.random_range(0..=2) {
        let length = random.random_range(1..=7);
        let first = random.random_range(0..days - length);
        present[first..first + length].fill(false);
    }
    let observed: Vec<i64> = trend
        .iter()
        .map(|size| (size * (1.0 + noise * gaussian(random))).round() as i64)
        .collect();
    let last_day = NaiveDate::from_ymd_opt(2026, 6, 30).unwrap();
    let date = |index: usize| last_day - Duration::days((days - 1 - index) as i64);
    let points: Vec<_> = (0..=as_of_index)
        .filter(|&index| present[index])
        .map(|index| (date(index), observed[index]))
        .collect();
    // The held-out last day is always observed: it is what the forecast is judged against.
    let actual = observed[days - 1] as f64;
    let request = ForecastRequest {
        points: &points,
        as_of: date(as_of_index),
        horizon_days: horizon,
        capacity_limit_mb: None,
    };
    let settings = ForecastSettings {
        window_days: window as u32,
        ..ForecastSettings::default()
    };
    let result = forecast(&request, &settings).expect("generated histories are well formed");
    let projected = match (
        result.projected_size_mb,
        result.intercept_mb,
        result.slope_mb_per_day,
    ) {
        (Some(projected), _, _) => Some(projected as f64),
        (None, Some(intercept), Some(slope)) => Some(intercept + slope * f64::from(horizon)),
        _ => None,
    };
    Outcome {
        withheld: result.withheld_reason.map(|reason| reason.code()),
        error: projected.map(|projected| (projected - actual).abs() / actual * 100.0),
    }
}

/// One line of the table: a family at a horizon.
pub struct Row {
    family: Family,
    horizon: u32,
    cases: usize,
    /// Errors of the published forecasts.
    published: Vec<f64>,
    /// Errors the withheld forecasts' lines would have made.
    withheld: Vec<f64>,
    /// Withheld cases per reason code, in rule order.
    reasons: [(&'static str, usize); 4],
}

impl Row {
    fn over_target(&self) -> usize {
        let target = error_target(self.horizon);
        self.published
            .iter()
            .filter(|&&error| error > target)
            .count()
    }
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |value| format!("{value:.2} %"))
}

/// Runs `cases` histories of every family at every horizon, from `seed`.
pub fn run(cases: usize, seed: u64) -> Vec<Row> {
    let mut rows = Vec::new();
    for horizon in HORIZONS {
        for (index, family) in Family::ALL.into_iter().enumerate() {
            // One stream per row: changing one family does not reshuffle the others.
            let mut random =
                ChaCha8Rng::seed_from_u64(seed ^ ((index as u64) << 32) ^ u64::from(horizon));
            let mut row = Row {
                family,
                horizon,
                cases,
                published: Vec::new(),
                withheld: Vec::new(),
                reasons: [
                    ("too_few_points", 0),
                    ("poor_fit", 0),
                    ("horizon_too_long", 0),
                    ("not_linear", 0),
                ],
            };
            for _ in 0..cases {
                let outcome = run_case(family, horizon, &mut random);
                match outcome.withheld {
                    None => row.published.push(outcome.error.expect("a published line")),
                    Some(code) => {
                        row.withheld.extend(outcome.error);
                        let counter = row
                            .reasons
                            .iter_mut()
                            .find(|(reason, _)| *reason == code)
                            .expect("a known reason code");
                        counter.1 += 1;
                    }
                }
            }
            rows.push(row);
        }
    }
    rows
}

/// The rows as a Markdown table.
pub fn table(rows: &[Row]) -> String {
    let mut text = String::from(
        "| family | H | cases | published | withheld (few / poor fit / horizon / not linear) \
         | MAPE published | worst published | published over target | MAPE of withheld, \
         had they been published |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for row in rows {
        let [few, poor, horizon, curved] = row.reasons.map(|(_, count)| count);
        let worst = row.published.iter().copied().reduce(f64::max);
        writeln!(
            text,
            "| {} | {} | {} | {} | {} ({few} / {poor} / {horizon} / {curved}) | {} | {} | {} | {} |",
            row.family.name(),
            row.horizon,
            row.cases,
            row.published.len(),
            row.cases - row.published.len(),
            percent(mean(&row.published)),
            percent(worst),
            row.over_target(),
            percent(mean(&row.withheld)),
        )
        .expect("writing to a String");
    }
    text
}

/// The targets the rows miss, in words; empty when all are met.
///
/// - Linear families: the mean absolute percentage error of the published forecasts is at most
///   5 % at 30 days and 15 % at 90 days; growing and shrinking histories nearly all publish
///   (the flat family is exempt: noise around a flat line has an R² near 0 by construction,
///   which the R² rule withholds).
/// - Non-linear families: at most [`MAXIMUM_WRONG_SHARE`] of the cases are published and miss
///   by more than those same percentages.
pub fn misses(rows: &[Row]) -> Vec<String> {
    let mut misses = Vec::new();
    for row in rows {
        let name = row.family.name();
        let target = error_target(row.horizon);
        if row.family.is_linear() {
            if let Some(error) = mean(&row.published)
                && error > target
            {
                misses.push(format!(
                    "{name}, {} days: MAPE {error:.2} % > {target} %",
                    row.horizon
                ));
            }
            let share = row.published.len() as f64 / row.cases as f64;
            if row.family != Family::Flat && share < MINIMUM_PUBLISHED_SHARE {
                misses.push(format!(
                    "{name}, {} days: {:.0} % published < {:.0} %",
                    row.horizon,
                    share * 100.0,
                    MINIMUM_PUBLISHED_SHARE * 100.0
                ));
            }
        } else if row.over_target() as f64 > MAXIMUM_WRONG_SHARE * row.cases as f64 {
            misses.push(format!(
                "{name}, {} days: {} of {} published forecasts miss by more than {target} %",
                row.horizon,
                row.over_target(),
                row.cases
            ));
        }
    }
    misses
}
