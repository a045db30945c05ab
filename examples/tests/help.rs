//! Every example program answers `--help` (and `-h`) with its usage on stdout
//! and exit status 0, without starting any work.

use std::process::Command;

#[test]
fn every_example_answers_help_with_usage_and_exit_0() {
    for (name, exe) in [
        ("quickstart", env!("CARGO_BIN_EXE_quickstart")),
        ("runner", env!("CARGO_BIN_EXE_runner")),
        ("soak", env!("CARGO_BIN_EXE_soak")),
        ("w3c_test_service", env!("CARGO_BIN_EXE_w3c_test_service")),
    ] {
        for flag in ["--help", "-h"] {
            let out = Command::new(exe).arg(flag).output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{name} {flag}: {:?}", out.status);
            assert!(
                stdout.starts_with(&format!("usage: {name}")),
                "{name} {flag}: {stdout}"
            );
            assert!(out.stderr.is_empty(), "{name} {flag} wrote to stderr");
        }
    }
}

#[test]
fn a_bad_argument_prints_usage_and_exits_2() {
    for (name, exe) in [
        ("quickstart", env!("CARGO_BIN_EXE_quickstart")),
        ("runner", env!("CARGO_BIN_EXE_runner")),
        ("soak", env!("CARGO_BIN_EXE_soak")),
        ("w3c_test_service", env!("CARGO_BIN_EXE_w3c_test_service")),
    ] {
        let out = Command::new(exe)
            .args(["--requests", "many", "--port", "x", "--rate", "-"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("usage:"),
            "{name}"
        );
    }
}
