//! Reading one sample out of Prometheus' text format, as the tests of every binary's metrics do.

/// The value of the sample `series` (its name with its labels as Prometheus prints them, sorted
/// by name: `name{a="1",b="2"}`) in the exposition `text`, if it is there.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_sample_is_found_by_its_whole_series() {
        let text = "# HELP x_total X\nx_total{a=\"1\"} 3\nx_total{a=\"10\"} 7\n";
        assert_eq!(super::sample(text, "x_total{a=\"1\"}"), Some(3.0));
        assert_eq!(super::sample(text, "x_total{a=\"10\"}"), Some(7.0));
        assert_eq!(super::sample(text, "x_total{a=\"2\"}"), None);
    }
}
