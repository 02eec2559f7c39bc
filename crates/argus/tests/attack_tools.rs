//! Real attack tools from Debian's packages against a running Argus with the demo, while a benign user works from
//! another address: `hydra` guessing alice's password through the issuer's real login form, `ffuf` fuzzing paths
//! through the gate. Each test checks the alert, its explanation and the configured response taking effect.
//!
//! The tools connect from 127.0.0.1 (they cannot pick a source address); the benign user binds 127.0.0.2, so the
//! two are told apart by their real peer addresses, with no forwarding headers. `scripts/test-all` installs the
//! tools; a test whose tool is missing says so and passes without running.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use argus::{Config, Running, UpOptions};
use argus_testkit::EchoUpstream;
use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// Where the tools come from: the loopback address an unbound socket gets.
const ATTACKER: &str = "127.0.0.1";
/// Where the benign user works from.
const BENIGN: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
/// What hydra takes for a failed guess: the login form again, which the issuer shows after a wrong password and,
/// once its throttle refuses further guesses from the address, with a 429 (the guess unchecked).
const LOGIN_FAILED: &str = "<h1>Sign in</h1>";

/// Whether `tool` can run here; if not, says why the test is skipped.
fn tool_present(tool: &str) -> bool {
    let found = Command::new(tool).arg("-h").output().is_ok();
    if !found {
        eprintln!("SKIPPED: `{tool}` is not installed (scripts/test-all installs it: apt-get install -y {tool})");
    }
    found
}

async fn start(dir: &tempfile::TempDir, extra: &str) -> Running {
    let text = format!(
        r#"
[issuer]
listen = "127.0.0.1:0"
[gate]
listen = "127.0.0.1:0"
[watch]
listen = "127.0.0.1:0"
[demo]
listen = "127.0.0.1:0"
{extra}
"#
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

/// Runs the `argus` binary off the async workers (it calls back into this process's servers) and parses its JSON.
async fn argus_cli(args: &[&str], env: Vec<(&'static str, String)>) -> Value {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_argus")).args(args).envs(env).output().unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Runs a tool off the async workers, in `dir` (hydra writes a restore file there); its stdout and stderr.
async fn run_tool(dir: &Path, tool: &str, args: Vec<String>) -> String {
    let (dir, program) = (dir.to_owned(), tool.to_owned());
    let out = tokio::task::spawn_blocking(move || Command::new(program).args(&args).current_dir(dir).output().unwrap())
        .await
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{tool} failed: {text}");
    text
}

/// Polls `check` until it yields, for at most 10 s.
async fn eventually<T, F: Future<Output = Option<T>>>(what: &str, mut check: impl FnMut() -> F) -> T {
    for _ in 0..400 {
        if let Some(found) = check().await {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{what}: not within 10 s");
}

/// The first open alert of `attack` on `key`, once watch has it.
async fn alert_on(env: &[(&'static str, String)], attack: &str, key: &str) -> Value {
    eventually(&format!("a {attack} alert on {key}"), || async {
        let alerts = argus_cli(&["alerts", "list", "--attack", attack], env.to_vec()).await;
        alerts.as_array()?.iter().find(|a| a["key"] == key).cloned()
    })
    .await
}

/// The applied block on ip `ip`, once watch took it.
async fn block_on(env: &[(&'static str, String)], ip: &str) -> Value {
    eventually(&format!("a block of {ip}"), || async {
        let listed = argus_cli(&["actions", "list"], env.to_vec()).await;
        listed["actions"]
            .as_array()?
            .iter()
            .find(|a| a["kind"] == "block" && a["target"] == serde_json::json!({"type": "ip", "value": ip}))
            .cloned()
    })
    .await
}

/// A plain HTTP client whose connections come from `from`, or from the default loopback address.
fn client_from(from: Option<IpAddr>) -> Client<HttpConnector, Full<Bytes>> {
    let mut connector = HttpConnector::new();
    connector.set_local_address(from);
    Client::builder(TokioExecutor::new()).build(connector)
}

struct Answer {
    status: StatusCode,
    content_type: String,
    cookies: Vec<String>,
    body: String,
}

async fn send(
    client: &Client<HttpConnector, Full<Bytes>>,
    method: &str,
    url: &str,
    cookie: Option<&str>,
    form: Option<String>,
) -> Answer {
    let mut request = Request::builder().method(method).uri(url);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    if form.is_some() {
        request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    let response = client.request(request.body(Full::from(form.unwrap_or_default())).unwrap()).await.unwrap();
    let status = response.status();
    let text = |v: &http::HeaderValue| v.to_str().unwrap_or_default().to_owned();
    let content_type = response.headers().get(header::CONTENT_TYPE).map(text).unwrap_or_default();
    let cookies = response.headers().get_all(header::SET_COOKIE).iter().map(text).collect();
    let body = String::from_utf8_lossy(&response.into_body().collect().await.unwrap().to_bytes()).into_owned();
    Answer { status, content_type, cookies, body }
}

/// The value of hidden input `name` in a page of the issuer.
fn hidden(page: &str, name: &str) -> String {
    let marker = format!(r#"name="{name}" value=""#);
    let start = page.find(&marker).unwrap_or_else(|| panic!("no {name} in {page}")) + marker.len();
    page[start..].split('"').next().unwrap().to_owned()
}

/// A login form of the demo app, opened by a browser at `from`: its binding cookie (`name=value`) and the form's
/// `request` and `csrf` fields.
async fn open_login_form(issuer: &str, from: Option<IpAddr>) -> (String, String, String) {
    let challenge = argus_jose::pkce_challenge_s256(&argus_model::id::random_secret(32));
    let url = format!(
        "{issuer}/authorize?response_type=code&client_id=demo-app&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback\
         &scope=openid&state=s&code_challenge={challenge}&code_challenge_method=S256"
    );
    let page = send(&client_from(from), "GET", &url, None, None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let cookie = page.cookies.iter().find(|c| c.starts_with("argus_browser=")).expect("binding cookie");
    let cookie = cookie.split(';').next().unwrap().to_owned();
    (cookie, hidden(&page.body, "request"), hidden(&page.body, "csrf"))
}

/// Bob signs in through the login form from the benign address: whether the issuer took his password (the
/// consent page or the redirect to the app follow, not the login form again).
/// The status of one sign-in through the real form, from `from` (None: the attacker's address).
async fn sign_in_from(issuer: &str, from: Option<IpAddr>, username: &str, password: &str) -> StatusCode {
    let (cookie, request, csrf) = open_login_form(issuer, from).await;
    let form = format!("request={request}&csrf={csrf}&username={username}&password={password}");
    send(&client_from(from), "POST", &format!("{issuer}/login"), Some(&cookie), Some(form)).await.status
}

async fn bob_signs_in(issuer: &str, password: &str) -> bool {
    let (cookie, request, csrf) = open_login_form(issuer, Some(BENIGN)).await;
    let form = format!("request={request}&csrf={csrf}&username=bob&password={password}");
    let page = send(&client_from(Some(BENIGN)), "POST", &format!("{issuer}/login"), Some(&cookie), Some(form)).await;
    let signed_in = (page.status == StatusCode::OK && page.body.contains(r#"action="/consent""#))
        || page.status == StatusCode::SEE_OTHER;
    if !signed_in {
        eprintln!("bob was refused: {} {}", page.status, page.body);
    }
    signed_in
}

fn port_of(url: &str) -> String {
    url.rsplit(':').next().unwrap().trim_end_matches('/').to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hydra_guessing_a_password_at_the_login_form_is_detected_and_its_address_blocked() {
    if !tool_present("hydra") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Brute force from one address is blocked outright here (the demo's own rule is observe-only: see demo.toml).
    let argus = start(
        &dir,
        r#"
[[watch.responses]]
name = "brute-force-block-ip"
when = "alert.attack in ['brute_force', 'credential_stuffing'] && alert.key_type == 'ip'"
action = "block"
ttl_secs = 900
"#,
    )
    .await;
    let issuer = argus.issuer_url.trim_end_matches('/').to_owned();
    let password = argus.demo.as_ref().unwrap().password.clone();
    let env = cli_env_of(&argus);

    // 60 wrong guesses, then the right one.
    let mut words: Vec<String> = (0..60).map(|i| format!("guess{i:02}")).collect();
    words.push(password.clone());
    std::fs::write(dir.path().join("passwords.txt"), words.join("\n") + "\n").unwrap();

    // hydra posts the real form: the attacker opened it once, so its request handle, CSRF token and the browser
    // cookie they are bound to are fixed parts of every guess (hydra's `H=` adds the cookie header). The failure
    // condition goes last: hydra 9.4 misreads `F=` after an option with an escaped colon.
    let (cookie, request, csrf) = open_login_form(&issuer, None).await;
    let form = format!(
        "/login:request={request}&csrf={csrf}&username=^USER^&password=^PASS^:H=Cookie\\: {cookie}:F={LOGIN_FAILED}"
    );
    let args = ["-I", "-f", "-t", "2", "-l", "alice", "-P", "passwords.txt", "-s", &port_of(&issuer), ATTACKER];
    let mut args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    args.extend(["http-post-form".to_owned(), form]);

    // Bob signs in from his own address while hydra runs.
    let bob = {
        let (issuer, password) = (issuer.clone(), password.clone());
        tokio::spawn(async move {
            let mut all = true;
            for _ in 0..3 {
                all &= bob_signs_in(&issuer, &password).await;
            }
            all
        })
    };
    let hydra = run_tool(dir.path(), "hydra", args).await;
    assert!(bob.await.unwrap(), "bob could not sign in while hydra ran");

    // The alert on the attacker's address, with its explanation; the account is under attack too.
    let alert = alert_on(&env, "brute_force", ATTACKER).await;
    let explanation = alert["feature"]["explanation"].as_str().unwrap_or_default();
    assert!(explanation.contains("failed sign-ins from 127.0.0.1 on 1 account"), "{alert:#}");
    assert!(alert["count"].as_u64().unwrap() >= 1, "{alert:#}");
    alert_on(&env, "brute_force", "alice").await;

    // The configured response: the address is blocked at the gate, bob's is not.
    let block = block_on(&env, ATTACKER).await;
    assert_eq!(block["status"], "applied", "{block:#}");
    let gate = format!("{}/health", argus.gate_url.trim_end_matches('/'));
    let refused = send(&client_from(None), "GET", &gate, None, None).await;
    assert_eq!((refused.status, refused.content_type.as_str()), (StatusCode::FORBIDDEN, "application/problem+json"));
    assert!(refused.body.contains("urn:argus:problem:blocked"), "{}", refused.body);
    assert_eq!(send(&client_from(Some(BENIGN)), "GET", &gate, None, None).await.status, StatusCode::OK);
    assert!(bob_signs_in(&issuer, &password).await, "bob could not sign in after the block");

    // Stopped: the issuer's login form honours the block too, so hydra's later guesses are never checked and it
    // never learns alice's password (its 61st word). hydra takes the first answer without its failure text (the
    // 403 "blocked" page) for a hit and stops there, on a wrong word: that is hydra's mistake, not a sign-in.
    assert!(!hydra.contains(&format!("password: {password}")), "hydra found the password: {hydra}");
    let blocked = sign_in_from(&issuer, None, "alice", &password).await;
    assert_eq!(blocked, StatusCode::FORBIDDEN, "the right password from the blocked address is not even checked");
    argus.shutdown().await;
}

/// The gate's API for the ffuf test: anonymous reads, and a decoy no legitimate client knows.
const SPEC: &str = r#"
openapi: 3.1.0
info: {title: fuzzed, version: "1"}
paths:
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

/// What ffuf's last run (`-o out.json -of json` in `dir`) got: status by word.
fn ffuf_statuses(dir: &Path) -> HashMap<String, u64> {
    let results: Value = serde_json::from_slice(&std::fs::read(dir.join("out.json")).unwrap()).unwrap();
    let status_of = |r: &Value| (r["input"]["FUZZ"].as_str().unwrap().to_owned(), r["status"].as_u64().unwrap());
    results["results"].as_array().unwrap().iter().map(status_of).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffuf_fuzzing_paths_through_the_gate_is_detected_and_its_address_blocked() {
    if !tool_present("ffuf") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let upstream = EchoUpstream::start().await;
    let spec = dir.path().join("spec.yaml");
    std::fs::write(&spec, SPEC).unwrap();
    let extra = format!(
        r#"
[[gate.routes]]
name = "api"
prefix = "/"
upstream = "{upstream}"
auth = "none"
openapi = "{spec}"
strict = true
responses = "off"
[watch.detectors.probing.refusals]
threshold = 10
leak = "1/min"
[[watch.responses]]
name = "decoy-block-ip"
when = "alert.attack == 'decoy_hit' && alert.key_type == 'ip'"
action = "block"
ttl_secs = 3600
[[watch.responses]]
name = "probing-record"
when = "alert.attack == 'probing'"
action = "record"
"#,
        upstream = upstream.url(),
        spec = spec.display()
    );
    let argus = start(&dir, &extra).await;
    let gate = argus.gate_url.trim_end_matches('/').to_owned();
    let env = cli_env_of(&argus);

    // A common content-discovery list in miniature: the real path, 20 guesses, the decoy, then 40 more.
    let mut words = vec!["public".to_owned()];
    words.extend((0..20).map(|i| format!("backup{i:02}.zip")));
    words.push("admin/export".to_owned());
    words.extend((0..40).map(|i| format!("wp-admin{i:02}.php")));
    std::fs::write(dir.path().join("paths.txt"), words.join("\n") + "\n").unwrap();

    // A benign caller reads the API throughout.
    let benign = {
        let url = format!("{gate}/public");
        tokio::spawn(async move {
            let mut all_ok = true;
            for _ in 0..20 {
                all_ok &= send(&client_from(Some(BENIGN)), "GET", &url, None, None).await.status == StatusCode::OK;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            all_ok
        })
    };
    // One thread, 20 ms apart: a cautious fuzzer.
    let args = ["-u", &format!("{gate}/FUZZ"), "-w", "paths.txt", "-mc", "all", "-t", "1", "-p", "0.02"];
    let mut args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    args.extend(["-o", "out.json", "-of", "json", "-s"].map(str::to_owned));
    run_tool(dir.path(), "ffuf", args.clone()).await;
    assert!(benign.await.unwrap(), "the benign caller was refused while ffuf ran");

    // Probing and the decoy, each with its explanation.
    let probing = alert_on(&env, "probing", ATTACKER).await;
    let explanation = probing["feature"]["explanation"].as_str().unwrap_or_default();
    assert!(explanation.contains("calls from ip 127.0.0.1 refused as malformed"), "{probing:#}");
    let decoy = alert_on(&env, "decoy_hit", ATTACKER).await;
    let explanation = decoy["feature"]["explanation"].as_str().unwrap_or_default();
    assert!(explanation.contains(r#"the decoy operation "exportEverything""#), "{decoy:#}");

    // The configured response: the address is blocked at the gate.
    let block = block_on(&env, ATTACKER).await;
    assert_eq!(block["status"], "applied", "{block:#}");
    let first = ffuf_statuses(dir.path());
    assert_eq!(first.len(), words.len(), "{first:?}");
    assert_eq!(first["admin/export"], 404, "the decoy must look absent: {first:?}");
    assert_eq!(first["public"], 200, "{first:?}");

    // ffuf again: every path is refused as blocked, the API's real one and those no operation matches alike, so a
    // blocked fuzzer learns nothing more about which paths exist.
    std::fs::write(dir.path().join("paths.txt"), "public\nwp-login.php\nadmin/export\n").unwrap();
    run_tool(dir.path(), "ffuf", args).await;
    let again = ffuf_statuses(dir.path());
    assert_eq!(again.values().copied().collect::<Vec<_>>(), [403, 403, 403], "{again:?}");

    let refused = send(&client_from(None), "GET", &format!("{gate}/public"), None, None).await;
    assert_eq!((refused.status, refused.content_type.as_str()), (StatusCode::FORBIDDEN, "application/problem+json"));
    assert!(refused.body.contains("urn:argus:problem:blocked"), "{}", refused.body);
    let fine = send(&client_from(Some(BENIGN)), "GET", &format!("{gate}/public"), None, None).await;
    assert_eq!(fine.status, StatusCode::OK);
    argus.shutdown().await;
}
