//! The forecast back-test of `benches/forecast_backtest.rs` on fewer cases and another seed,
//! so that CI checks its targets.

#[path = "common/backtest.rs"]
mod backtest;

#[test]
fn the_forecast_meets_its_back_test_targets() {
    let rows = backtest::run(300, 1);
    let misses = backtest::misses(&rows);
    assert!(
        misses.is_empty(),
        "{}\ntargets missed:\n{}",
        backtest::table(&rows),
        misses.join("\n")
    );
}
