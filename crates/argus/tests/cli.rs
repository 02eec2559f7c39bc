//! The binary's command line, run as a user would.

use std::process::Command;

fn argus() -> Command {
    Command::new(env!("CARGO_BIN_EXE_argus"))
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn config_check_accepts_a_good_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        &dir,
        "argus.toml",
        r#"
[issuer]
listen = "127.0.0.1:7400"
access_token_ttl_secs = 120

[[gate.routes]]
name = "api"
prefix = "/api"
upstream = "http://127.0.0.1:9000"
auth = "argus"
"#,
    );
    let out = argus().args(["config", "check"]).arg(&f).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok"));
}

#[test]
fn config_check_names_an_unknown_key_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(&dir, "argus.toml", "[issuer]\naccess_token_tll_secs = 120\n");
    let out = argus().args(["config", "check"]).arg(&f).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("access_token_tll_secs"), "{err}");
    assert!(err.contains("unknown field"), "{err}");
}

#[test]
fn up_refuses_a_mistyped_config_before_starting_anything() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(&dir, "argus.toml", "[gate]\nlisten = \"127.0.0.1:0\"\nroutez = []\n");
    let data = dir.path().join("data");
    let out = argus().args(["up", "--config"]).arg(&f).arg("--data-dir").arg(&data).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("routez"));
    assert!(!data.exists(), "nothing may be created for a refused config");
}

#[test]
fn config_check_refuses_a_missing_file() {
    let out = argus().args(["config", "check", "/nonexistent/argus.toml"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/argus.toml"));
}
