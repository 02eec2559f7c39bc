//! Watch acting, end to end in one Argus: a decoy hit through the gate gets its address blocked at the gate, the
//! block's own refusals raise nothing, `argus actions` (the real binary) shows and undoes it; `argus replay`
//! reports on a labelled file; `argus config check` names a bad response rule.

use std::process::Command;
use std::time::Duration;

use argus::{Config, Running, UpOptions};
use argus_model::{Event, EventKind, Login, LoginFailure, LoginOutcome, Principal, Timestamp};
use argus_testkit::EchoUpstream;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// An operation anyone may call, one for token holders, and a decoy no legitimate client knows.
const SPEC: &str = r#"
openapi: 3.1.0
info: {title: trap, version: "1"}
components:
  securitySchemes:
    oauth2:
      type: oauth2
      flows:
        clientCredentials:
          tokenUrl: http://127.0.0.1:7400/token
          scopes: {"api:read": read}
paths:
  /private:
    get:
      operationId: getPrivate
      security:
        - oauth2: ["api:read"]
      responses:
        "200": {description: ok}
  /public:
    get:
      operationId: getPublic
      security: []
      responses:
        "200": {description: ok}
  /admin/export:
    get:
      operationId: exportEverything
      security: []
      x-argus-decoy: true
      responses:
        "200": {description: never answered}
"#;

const ATTACKER: &str = "203.0.113.66";
const NEIGHBOUR: &str = "198.51.100.23";

async fn start(dir: &tempfile::TempDir, upstream: &str) -> Running {
    let spec = dir.path().join("spec.yaml");
    std::fs::write(&spec, SPEC).unwrap();
    // The test client is a trusted proxy, so X-Forwarded-For names the caller: two callers from one test.
    let text = format!(
        r#"
[issuer]
listen = "127.0.0.1:0"
[gate]
listen = "127.0.0.1:0"
trusted_proxies = ["127.0.0.1/32"]
[[gate.routes]]
name = "api"
prefix = "/"
upstream = "{upstream}"
auth = "argus"
openapi = "{spec}"
strict = true
responses = "off"
[watch]
listen = "127.0.0.1:0"
[watch.detectors.probing.refusals]
threshold = 5
leak = "1/min"
[[watch.responses]]
name = "decoy-block-ip"
when = "alert.attack == 'decoy_hit' && alert.key_type == 'ip'"
action = "block"
ttl_secs = 3600
[demo]
listen = "127.0.0.1:0"
"#,
        spec = spec.display()
    );
    let config = Config::parse(&text, "test").unwrap();
    let opts = UpOptions { data_dir: dir.path().join("data"), demo: true, demo_password: None, metrics: None };
    argus::start(config, opts).await.unwrap()
}

/// What the CLI needs to reach this Argus's issuer and watch as the demo admin.
fn cli_env_of(argus: &Running) -> Vec<(&'static str, String)> {
    vec![
        ("ARGUS_ISSUER", argus.issuer_url.clone()),
        ("ARGUS_WATCH", argus.watch_url.clone().unwrap()),
        ("ARGUS_ADMIN_CLIENT_SECRET", argus.demo.as_ref().unwrap().admin_secret.clone()),
        ("ARGUS_ADMIN_CLIENT_ID", "argus-admin".to_owned()),
    ]
}

/// A call through the gate as `caller`: status, content type, JSON body.
async fn call_as(gate: &str, caller: &str, path: &str) -> (StatusCode, String, Value) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request =
        Request::get(format!("{gate}{path}")).header("x-forwarded-for", caller).body(Full::default()).unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status();
    let content_type =
        response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, content_type, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// Runs the `argus` binary off the async workers (it calls back into this process's servers).
async fn argus_cli(args: Vec<String>, env: Vec<(&'static str, String)>) -> (bool, String, String) {
    tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_argus")).args(args).envs(env).output().unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.success(), text(&out.stdout), text(&out.stderr))
    })
    .await
    .unwrap()
}

async fn eventually<T, F: std::future::Future<Output = Option<T>>>(mut check: impl FnMut() -> F) -> T {
    for _ in 0..200 {
        if let Some(found) = check().await {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("condition not met within 5 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decoy_hit_blocks_the_caller_at_the_gate_and_the_cli_shows_and_lifts_it() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = EchoUpstream::start().await;
    let argus = start(&dir, upstream.url()).await;
    let gate = argus.gate_url.clone();
    let cli_env = cli_env_of(&argus);

    assert_eq!(call_as(&gate, ATTACKER, "/public").await.0, StatusCode::OK);
    // The trap answers as if it did not exist.
    assert_eq!(call_as(&gate, ATTACKER, "/admin/export").await.0, StatusCode::NOT_FOUND);

    // Within moments the attacker's next call is refused by the block, as RFC 9457 problem+json.
    let (status, content_type, problem) = eventually(|| async {
        let answer = call_as(&gate, ATTACKER, "/public").await;
        (answer.0 != StatusCode::OK).then_some(answer)
    })
    .await;
    assert_eq!((status, content_type.as_str()), (StatusCode::FORBIDDEN, "application/problem+json"));
    assert_eq!(problem["type"], "urn:argus:problem:blocked");
    // Only the attacker.
    assert_eq!(call_as(&gate, NEIGHBOUR, "/public").await.0, StatusCode::OK);

    // The block's own refusals raise nothing: the attacker's malformed calls are refused as blocked, uncounted,
    // while the same calls from the neighbour (not blocked) are probing.
    for i in 0..10 {
        let (status, _, body) = call_as(&gate, ATTACKER, &format!("/public?fuzz={i}")).await;
        assert_eq!((status, body["type"].as_str()), (StatusCode::FORBIDDEN, Some("urn:argus:problem:blocked")));
        assert_eq!(call_as(&gate, NEIGHBOUR, &format!("/public?fuzz={i}")).await.0, StatusCode::BAD_REQUEST);
    }

    // `argus actions list` shows the block; `argus alerts list` the probing of the neighbour only.
    let (ok, out, err) = argus_cli(vec!["actions".into(), "list".into()], cli_env.clone()).await;
    assert!(ok, "{err}");
    let listed: Value = serde_json::from_str(&out).unwrap();
    let block = &listed["actions"][0];
    assert_eq!((block["kind"].as_str(), block["status"].as_str()), (Some("block"), Some("applied")), "{out}");
    assert_eq!(block["target"], serde_json::json!({"type": "ip", "value": ATTACKER}));
    let alerts = eventually(|| {
        let env = cli_env.clone();
        async move {
            let (ok, out, err) = argus_cli(vec!["alerts".into(), "list".into()], env).await;
            assert!(ok, "{err}");
            let alerts: Value = serde_json::from_str(&out).unwrap();
            let probing = alerts.as_array()?.iter().any(|a| a["attack"] == "probing");
            probing.then_some(alerts)
        }
    })
    .await;
    let about = |key: &str| -> Vec<String> {
        alerts.as_array().unwrap().iter().filter(|a| a["key"] == key).map(|a| a["attack"].to_string()).collect()
    };
    assert_eq!(about(ATTACKER), ["\"decoy_hit\""], "{alerts:#}");
    assert_eq!(about(NEIGHBOUR), ["\"probing\""], "{alerts:#}");
    // A page at a time: `--limit 1` prints one alert and, on stderr, the cursor of the next; `--before` goes on.
    let page = |before: Option<String>| {
        let mut args: Vec<String> = ["alerts", "list", "--limit", "1"].map(String::from).to_vec();
        args.extend(before.into_iter().flat_map(|b| ["--before".to_owned(), b]));
        argus_cli(args, cli_env.clone())
    };
    let (ok, out, err) = page(None).await;
    assert!(ok, "{err}");
    let first: Value = serde_json::from_str(&out).unwrap();
    let cursor = err.split("--before ").nth(1).unwrap_or_else(|| panic!("no next cursor: {err}")).trim().to_owned();
    let (ok, out, err) = page(Some(cursor)).await;
    assert!(ok, "{err}");
    let second: Value = serde_json::from_str(&out).unwrap();
    let ids: Vec<&Value> = alerts.as_array().unwrap().iter().map(|a| &a["id"]).collect();
    assert_eq!((first.as_array().unwrap().len(), second.as_array().unwrap().len()), (1, 1), "{first} {second}");
    assert_ne!(first[0]["id"], second[0]["id"]);
    assert!(ids.contains(&&first[0]["id"]) && ids.contains(&&second[0]["id"]), "{first} {second} {alerts:#}");

    // A key's timeline names the blocked calls, newest first.
    let timeline = vec!["alerts".into(), "timeline".into(), "ip".into(), ATTACKER.into(), "--limit".into(), "3".into()];
    let (ok, out, err) = argus_cli(timeline, cli_env.clone()).await;
    assert!(ok, "{err}");
    let page: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(page["events"][0]["event"]["reason"], "blocked", "{out}");

    // An Argus started after the block (a late gate) refuses the attacker too: the blocks in force are loaded.
    argus.shutdown().await;
    let argus = start(&dir, upstream.url()).await;
    let gate = argus.gate_url.clone();
    let cli_env = cli_env_of(&argus);
    assert_eq!(call_as(&gate, ATTACKER, "/public").await.0, StatusCode::FORBIDDEN);
    assert_eq!(call_as(&gate, NEIGHBOUR, "/public").await.0, StatusCode::OK);

    // Undo lifts it at the gate.
    let id = block["id"].as_str().unwrap().to_owned();
    let (ok, out, err) = argus_cli(vec!["actions".into(), "undo".into(), id.clone()], cli_env.clone()).await;
    assert!(ok, "{err}");
    assert!(out.contains("\"undone\""), "{out}");
    assert_eq!(call_as(&gate, ATTACKER, "/public").await.0, StatusCode::OK);
    let (ok, _, err) = argus_cli(vec!["actions".into(), "undo".into(), id], cli_env).await;
    assert!(!ok && err.contains("409"), "{err}");
    argus.shutdown().await;
}

fn failed_login(secs: i64, ip: &str, user: &str) -> Event {
    Event::new(
        Timestamp::from_secs(secs),
        "issuer",
        Principal { ip: Some(ip.into()), ..Principal::default() },
        EventKind::Login(Login { username: user.into(), outcome: LoginOutcome::Failure(LoginFailure::BadPassword) }),
    )
}

fn labelled(event: &Event, label: &str) -> String {
    let mut json = serde_json::to_value(event).unwrap();
    json["label"] = label.into();
    json.to_string()
}

#[test]
fn replay_reports_detection_and_false_alerts_on_a_labelled_file() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = 1_764_000_000;
    let mut lines = Vec::new();
    // Benign: forty people mistyping their password once each, a minute apart.
    for i in 0..40 {
        lines.push(labelled(&failed_login(t0 + i * 60, &format!("198.51.100.{i}"), &format!("user{i}")), "benign"));
    }
    // Then one address tries thirty passwords on one account within a minute.
    for i in 0..30 {
        lines.push(labelled(&failed_login(t0 + 3_000 + i * 2, "203.0.113.9", "alice"), "brute_force"));
    }
    lines.push(String::new());
    let file = dir.path().join("events.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_argus")).arg("replay").arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("70 events: 40 benign, 30 labelled attacks, 0 unlabelled"), "{report}");
    assert!(report.contains("brute_force          detected after"), "{report}");
    assert!(report.contains("false alerts: 0 on 40 benign events (0.00 per 10,000)"), "{report}");

    // As JSON, and with the detectors of a configuration: with failed_login off, the burst goes unnoticed by it.
    let config = dir.path().join("argus.toml");
    std::fs::write(
        &config,
        "[watch.detectors.failed_login]\nenabled = false\n[watch.detectors.slow_brute_force]\nenabled = false\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_argus"))
        .arg("replay")
        .arg(&file)
        .arg("--config")
        .arg(&config)
        .arg("--json")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (json["attacks"][0]["attack"].as_str(), json["attacks"][0]["detected"].as_bool()),
        (Some("brute_force"), Some(false))
    );

    // A line that is not an event is named.
    std::fs::write(&file, format!("{}\n{{\"label\": \"benign\"}}\n", lines[0])).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_argus")).arg("replay").arg(&file).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 2"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn config_check_names_a_bad_response_rule() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("argus.toml");
    std::fs::write(
        &file,
        "[[watch.responses]]\nname = \"x\"\nwhen = \"alert.attack = 'decoy_hit'\"\naction = \"record\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_argus")).args(["config", "check"]).arg(&file).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("watch.responses[0].when"), "{err}");
}
