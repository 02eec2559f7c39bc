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

#[test]
fn config_check_refuses_a_bad_trigger_expression_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let good = r#"
[[issuer.triggers]]
name = "new-device-step-up"
events = ["Account"]
when = "event.type == 'Account' && event.activity == 'new_device'"
actions = ["require_step_up", "notify_user"]
message = "New sign-in from {principal.ip}"
"#;
    let out = argus().args(["config", "check"]).arg(write(&dir, "good.toml", good)).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let bad = good.replace("event.activity == 'new_device'", "event.activity = 'new_device'");
    let out = argus().args(["config", "check"]).arg(write(&dir, "bad.toml", &bad)).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    // The rule, the field and the line:column of the stray '=' inside the expression.
    assert!(err.contains(r#"issuer.triggers[0] ("new-device-step-up"): when: 1:43: Syntax error"#), "{err}");

    let webhook = good.replace(r#"["require_step_up", "notify_user"]"#, r#"["admin_webhook"]"#);
    let out = argus().args(["config", "check"]).arg(write(&dir, "hook.toml", &webhook)).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("admin_webhook needs notify.admin_webhook_url"));
}
