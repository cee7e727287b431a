//! The monitoring that ships in deploy/: the Prometheus alert rules pass `promtool check rules`
//! and their unit tests (`promtool test rules`), and every metric the rules and the Grafana
//! dashboard name is one capstats serves.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn promtool(arguments: &[&str]) {
    let output = Command::new("promtool")
        .args(arguments)
        .current_dir(repository())
        .output()
        .expect("promtool is installed (Debian package prometheus; make test-deps)");
    assert!(
        output.status.success(),
        "promtool {arguments:?}:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_alert_rules_are_valid_and_fire_when_they_should() {
    promtool(&["check", "rules", "deploy/prometheus/alerts.yml"]);
    promtool(&["test", "rules", "deploy/prometheus/alerts.test.yml"]);
}

/// The `capstats_*` metric names in `text`, without the suffixes histograms add.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("capstats_") {
        let name: String = rest[start..]
            .chars()
            .take_while(|character| character.is_ascii_alphanumeric() || *character == '_')
            .collect();
        rest = &rest[start + name.len()..];
        let base = ["_bucket", "_count", "_sum"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(&name);
        names.insert(base.to_owned());
    }
    names
}

/// Every metric name capstats registers: the string literals of the metric modules.
fn served_metrics() -> BTreeSet<String> {
    let root = repository();
    [
        "crates/services/src/metrics.rs",
        "crates/queue/src/metrics.rs",
        "crates/http-api/src/metrics.rs",
    ]
    .iter()
    .flat_map(|path| {
        let source = std::fs::read_to_string(root.join(path)).unwrap();
        source
            .split('"')
            .skip(1)
            .step_by(2)
            .filter(|literal| {
                literal.starts_with("capstats_")
                    && literal
                        .chars()
                        .all(|character| character.is_ascii_alphanumeric() || character == '_')
            })
            .map(str::to_owned)
            .collect::<Vec<_>>()
    })
    .collect()
}

#[test]
fn the_dashboard_and_the_rules_name_only_metrics_capstats_serves() {
    let served = served_metrics();
    assert!(served.len() >= 15, "{served:?}");
    let dashboard_text =
        std::fs::read_to_string(repository().join("deploy/grafana/capstats.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&dashboard_text).unwrap();
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(!panels.is_empty());
    let mut expressions = String::new();
    for panel in panels {
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{panel}");
        for target in targets {
            let expression = target["expr"].as_str().expect("an expression");
            assert!(!expression.trim().is_empty(), "{panel}");
            expressions.push_str(expression);
            expressions.push('\n');
        }
    }
    let rules = std::fs::read_to_string(repository().join("deploy/prometheus/alerts.yml")).unwrap();
    for (what, text) in [("the dashboard", expressions), ("the alert rules", rules)] {
        let named = metric_names(&text);
        assert!(!named.is_empty(), "{what} names no capstats metric");
        let unknown: Vec<&String> = named.difference(&served).collect();
        assert!(
            unknown.is_empty(),
            "{what} names metrics capstats does not serve: {unknown:?}"
        );
    }
}
