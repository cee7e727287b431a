//! The systemd units in deploy/systemd pass `systemd-analyze verify`, warnings included, with
//! their ExecStart pointed at the binaries of this build; they start in the deploy order and
//! point at documentation that exists.

use std::path::{Path, PathBuf};
use std::process::Command;

#[test]
fn units_verify_cleanly() {
    let units_directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/systemd");
    let worker = PathBuf::from(env!("CARGO_BIN_EXE_capstats-worker"));
    let binaries = worker.parent().expect("the binary has a directory");
    let scratch = std::env::temp_dir().join(format!("capstats-units-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let mut units = Vec::new();
    for entry in std::fs::read_dir(&units_directory).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|extension| extension.to_str()) != Some("service") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text.lines().filter(|line| line.starts_with("ExecStart=")) {
            let binary = line["ExecStart=".len()..]
                .split_whitespace()
                .next()
                .unwrap();
            let name = Path::new(binary).file_name().unwrap();
            assert!(
                binaries.join(name).exists(),
                "{} starts {binary}, which this workspace does not build",
                path.display()
            );
        }
        let local = text.replace("/usr/local/bin/", &format!("{}/", binaries.display()));
        let target = scratch.join(path.file_name().unwrap());
        std::fs::write(&target, local).unwrap();
        units.push(target);
    }
    assert!(units.len() >= 2, "units found: {units:?}");
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .args(&units)
        .output()
        .expect("systemd-analyze is installed (Debian package systemd)");
    let messages = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::remove_dir_all(&scratch).ok();
    assert!(
        output.status.success() && messages.trim().is_empty(),
        "{messages}"
    );
}

/// The `KEY=` values of `unit`, in order.
fn values(unit: &str, key: &str) -> Vec<String> {
    let prefix = format!("{key}=");
    unit.lines()
        .filter_map(|line| line.strip_prefix(&prefix))
        .flat_map(|value| {
            value
                .split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn units_start_after_a_successful_migration_and_name_real_documentation() {
    let units_directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/systemd");
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs");
    for name in ["capstats-api", "capstats-worker", "capstats-migrate"] {
        let unit =
            std::fs::read_to_string(units_directory.join(format!("{name}.service"))).unwrap();
        if name != "capstats-migrate" {
            // Requires=: a failed migration keeps the unit from starting, and restarting the
            // migration restarts the unit after it; After=: only once it has finished.
            assert!(
                values(&unit, "Requires").contains(&"capstats-migrate.service".to_owned()),
                "{name}"
            );
            assert!(
                values(&unit, "After").contains(&"capstats-migrate.service".to_owned()),
                "{name}"
            );
        }
        let documentation = values(&unit, "Documentation");
        assert!(!documentation.is_empty(), "{name} has no Documentation=");
        for url in documentation {
            let file = url
                .strip_prefix("file:///usr/share/doc/capstats/")
                .unwrap_or_else(|| panic!("{name}: {url} is not one of the installed docs"));
            assert!(
                docs.join(file).is_file(),
                "{name}: docs/{file} does not exist"
            );
        }
    }
}
