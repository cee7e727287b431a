//! The systemd units in deploy/systemd pass `systemd-analyze verify`, warnings included, with
//! their ExecStart pointed at the binaries of this build.

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
