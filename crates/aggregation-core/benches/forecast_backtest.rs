//! `cargo bench -p capstats-aggregation-core --bench forecast_backtest`: the forecast's
//! back-test on 500 generated histories per family and horizon (see `tests/common/backtest.rs`
//! for the families). Prints the table of `docs/forecasting.md` and panics when a target is
//! missed. `tests/forecast_backtest.rs` runs the same back-test on fewer cases in CI.

#[path = "../tests/common/backtest.rs"]
mod backtest;

/// Histories per family and horizon.
const CASES: usize = 500;
/// Fixed, so that the table is reproducible.
const SEED: u64 = 20_261_206;

fn main() {
    // `cargo bench` passes `--bench`; there is nothing to parse.
    let rows = backtest::run(CASES, SEED);
    println!("{}", backtest::table(&rows));
    let misses = backtest::misses(&rows);
    if !misses.is_empty() {
        panic!("back-test targets missed:\n{}", misses.join("\n"));
    }
    println!("All back-test targets met.");
}
