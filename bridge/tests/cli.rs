//! The `lorabridge` command as a steward meets it first: `--help` explains, `check-config`
//! accepts the example file and refuses a wrong one by naming the key, and nothing is written
//! while the file is wrong.
//!
//! These run the real binary. As an integration test of this package they also make
//! `cargo test --workspace` build `target/<profile>/lorabridge`, which the process tests in
//! `tests/` (kill -9 during a catch-up) start.

use std::path::Path;
use std::process::{Command, Output};

fn lorabridge(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lorabridge"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .output()
        .expect("lorabridge starts")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_names_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = lorabridge(&["--help"], dir.path());
    assert!(out.status.success());
    let help = text(&out.stdout);
    for command in ["run", "check-config", "status", "radio", "doctor"] {
        assert!(
            help.lines()
                .any(|line| line.trim_start().starts_with(command)),
            "--help lists `{command}`:\n{help}"
        );
    }
    assert!(
        help.contains("PANDA_GRPC_ADDR"),
        "--help says how apps connect:\n{help}"
    );
}

#[test]
fn the_example_config_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("bridge.example.toml");
    let config = dir.path().join("bridge.toml");
    std::fs::copy(&example, &config).unwrap();
    let out = lorabridge(&["check-config", "--config", "bridge.toml"], dir.path());
    assert!(
        out.status.success(),
        "check-config accepts the example: {}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("Topics carried:"),
        "{}",
        text(&out.stdout)
    );
    let written: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(written, ["bridge.toml"], "check-config writes nothing");
}

#[test]
fn a_wrong_value_is_named_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let example =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("bridge.example.toml"))
            .unwrap();
    let wrong = example.replacen(
        "region = \"EU868\"",
        "region = \"EU868\"\nspreading_factor = 13",
        1,
    );
    assert_ne!(
        wrong, example,
        "the example has a [radio] table with a region"
    );
    std::fs::write(dir.path().join("bridge.toml"), wrong).unwrap();
    for command in ["check-config", "run"] {
        let out = lorabridge(&[command, "--config", "bridge.toml"], dir.path());
        assert!(!out.status.success(), "{command} refuses the file");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("radio.spreading_factor"),
            "{command} names the key: {stderr}"
        );
    }
    let written: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(written, ["bridge.toml"], "no key, no database");
}

#[test]
fn a_missing_config_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = lorabridge(&["run", "--config", "nowhere.toml"], dir.path());
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("nowhere.toml"), "names the file: {stderr}");
}

#[test]
fn doctor_exits_1_and_prints_the_fix_when_a_check_fails() {
    let dir = tempfile::tempdir().unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("bridge.example.toml");
    let config = dir.path().join("bridge.toml");
    std::fs::copy(&example, &config).unwrap();
    // A tree with no service user and no USB module plugged in (the example's rak3172-usb).
    std::fs::create_dir_all(dir.path().join("etc")).unwrap();
    std::fs::write(dir.path().join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
    let root = dir.path().to_str().unwrap();
    let out = lorabridge(
        &["doctor", "--root", root, "--config", "bridge.toml"],
        dir.path(),
    );
    let report = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{report}{}", text(&out.stderr));
    assert!(report.contains("ok    config"), "{report}");
    assert!(report.contains("FAIL  service user"), "{report}");
    assert!(report.contains("FAIL  device"), "{report}");
    assert!(report.contains("fix: plug the module in"), "{report}");
    assert!(report.ends_with("2 of 6 checks failed.\n"), "{report}");
    let help = text(&lorabridge(&["doctor", "--help"], dir.path()).stdout);
    assert!(
        help.contains("Exit status: 0 when no check failed"),
        "{help}"
    );
}
