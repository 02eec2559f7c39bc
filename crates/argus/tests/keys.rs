//! Key rotation end to end: `argus keys rotate` against the data directory of a running Argus. The new key is
//! published at once, signs after the configured lead, and tokens signed by the old key keep working at the gate.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine;
use http::StatusCode;
use support::{Argus, kid};

fn keys_cli(argus: &Argus, args: &[&str]) -> (bool, String, String) {
    let out = tokio::task::block_in_place(|| {
        Command::new(env!("CARGO_BIN_EXE_argus")).arg("keys").args(args).arg("--data-dir").arg(&argus.data_dir).output()
    })
    .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The `kid`s of the issuer's JWKS, once it has `n` keys (the issuer looks at the store every second here).
async fn jwks_with(argus: &Argus, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = argus.call("GET", &format!("{}/jwks", argus.up.issuer_url), &[], None).await;
        let kids: Vec<String> =
            r.body["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect();
        if kids.len() == n || Instant::now() > deadline {
            return kids;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn alg(jwt: &str) -> String {
    let header = jwt.split('.').next().unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    json["alg"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_eddsa_key_signs_new_tokens_and_old_tokens_still_verify() {
    let argus = Argus::start("key_publish_lead_secs = 0\nkey_reload_secs = 1").await;
    let old = argus.sign_in("alice", Default::default()).await;
    let old_kid = kid(&old.access);
    assert_eq!(jwks_with(&argus, 1).await, std::slice::from_ref(&old_kid));

    let (ok, out, err) = keys_cli(&argus, &["rotate", "--alg", "EdDSA"]);
    assert!(ok, "{err}");
    assert!(out.contains("added EdDSA key"), "{out}");
    let kids = jwks_with(&argus, 2).await;
    assert_eq!(kids.len(), 2, "the new key is published: {kids:?}");
    let new_kid = kids.iter().find(|k| **k != old_kid).unwrap().clone();

    let new = argus.sign_in("bob", Default::default()).await;
    assert_eq!(kid(&new.access), new_kid, "new tokens carry the new kid");
    assert_eq!(alg(&new.access), "EdDSA");
    // The gate learns the new key on its first token (unknown kid) and still accepts the old key's tokens.
    assert_eq!(argus.gate_status(&new.access).await, StatusCode::OK);
    assert_eq!(argus.gate_status(&old.access).await, StatusCode::OK);
    // Refreshed tokens are signed by the new key too.
    assert_eq!(kid(&argus.refreshed(&old).await.access), new_kid);

    // The CLI reads the key timing from the same configuration as the issuer.
    let config = argus.data_dir.with_file_name("argus.toml");
    std::fs::write(&config, "[issuer]\nkey_publish_lead_secs = 0\n").unwrap();
    let (ok, out, err) = keys_cli(&argus, &["list", "--config", config.to_str().unwrap()]);
    assert!(ok, "{err}");
    let line = |kid: &str| out.lines().find(|l| l.starts_with(kid)).unwrap_or_default().to_owned();
    assert!(line(&new_kid).contains("active"), "{out}");
    assert!(line(&old_kid).contains("retiring"), "{out}");
    let listed = argus.admin("GET", "/keys", None).await;
    let states: Vec<(String, String)> = listed.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["kid"].as_str().unwrap().to_owned(), k["state"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(states, [(old_kid, "retiring".to_owned()), (new_kid, "active".to_owned())]);
    argus.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_key_is_published_before_it_signs() {
    let argus = Argus::start("key_publish_lead_secs = 3600\nkey_reload_secs = 1").await;
    let before = argus.sign_in("alice", Default::default()).await;
    let (ok, _, err) = keys_cli(&argus, &["rotate"]);
    assert!(ok, "{err}");
    assert_eq!(jwks_with(&argus, 2).await.len(), 2, "published at once");
    let after = argus.sign_in("bob", Default::default()).await;
    assert_eq!(kid(&after.access), kid(&before.access), "not signing before its lead has passed");
    assert_eq!(alg(&after.access), "ES256");
    let (ok, out, _) = keys_cli(&argus, &["list"]);
    assert!(ok && out.contains("pending (signs from"), "{out}");
    argus.shutdown().await;
}

#[test]
fn keys_commands_refuse_what_they_cannot_do() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_argus")).args(args).output().unwrap();
    let out = run(&["keys", "list", "--data-dir", &dir.path().join("none").display().to_string()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no Argus store"));
    assert!(!dir.path().join("none").exists(), "listing creates nothing");
    let out = run(&["keys", "rotate", "--alg", "RS256", "--data-dir", &dir.path().display().to_string()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("RS256"));
}
