//! `argus up --demo` in-process: the whole loop, and the failed-sign-in detector fed by the real login form.

use std::time::{Duration, Instant};

use argus::{Config, Running, UpOptions};
use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

const PASSWORD: &str = "correct horse battery staple";

async fn start_demo(dir: &tempfile::TempDir) -> Running {
    let config = Config::parse(
        "[issuer]\nlisten = \"127.0.0.1:0\"\n[gate]\nlisten = \"127.0.0.1:0\"\n\
         [watch]\nlisten = \"127.0.0.1:0\"\n[demo]\nlisten = \"127.0.0.1:0\"\n",
        "test",
    )
    .unwrap();
    let opts = UpOptions {
        data_dir: dir.path().join("data"),
        demo: true,
        demo_password: Some(PASSWORD.into()),
        metrics: None,
    };
    argus::start(config, opts).await.unwrap()
}

fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn call(
    method: &str,
    url: &str,
    bearer: Option<&str>,
    form: Option<String>,
) -> (StatusCode, http::HeaderMap, String) {
    let mut req = Request::builder().method(method).uri(url);
    if let Some(t) = bearer {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let body = match form {
        Some(f) => {
            req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            Full::new(Bytes::from(f))
        }
        None => Full::new(Bytes::new()),
    };
    let resp = client().request(req.body(body).unwrap()).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = String::from_utf8_lossy(&resp.into_body().collect().await.unwrap().to_bytes()).into_owned();
    (status, headers, body)
}

/// A client-credentials token of the demo's admin client, `argus:admin`.
async fn admin_token(argus: &Running) -> String {
    use base64::Engine;
    let secret = &argus.demo.as_ref().unwrap().admin_secret;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("argus-admin:{secret}"));
    let req = Request::post(format!("{}/token", argus.issuer_url))
        .header(header::AUTHORIZATION, format!("Basic {basic}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from("grant_type=client_credentials&scope=argus%3Aadmin")))
        .unwrap();
    let resp = client().request(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: serde_json::Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_call_revoke_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let argus = start_demo(&dir).await;

    let tokens = argus::demo_client::token(&argus.issuer_url, "alice", PASSWORD, "openid accounts:read").await.unwrap();
    let at = tokens["access_token"].as_str().unwrap().to_owned();
    assert_eq!(tokens["token_type"], "Bearer");

    let accounts = format!("{}/accounts", argus.gate_url);
    let (status, _, body) = call("GET", &accounts, Some(&at), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(!list.as_array().unwrap().is_empty());

    // A scope the token lacks.
    let (status, headers, _) =
        call("POST", &format!("{}/transfers", argus.gate_url), Some(&at), Some(String::new())).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(headers[header::WWW_AUTHENTICATE].to_str().unwrap().contains("insufficient_scope"));

    let form = format!("token={at}&token_type_hint=access_token&client_id=demo-app");
    let started = Instant::now();
    let (status, _, _) = call("POST", &format!("{}/revoke", argus.issuer_url), None, Some(form)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, headers, body) = call("GET", &accounts, Some(&at), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(headers[header::WWW_AUTHENTICATE].to_str().unwrap().contains("invalid_token"));
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    println!("revoked token refused {} ms after the revocation request", started.elapsed().as_millis());

    argus.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_through_the_login_form_raise_an_alert() {
    let dir = tempfile::tempdir().unwrap();
    let argus = start_demo(&dir).await;

    for _ in 0..25 {
        let err =
            argus::demo_client::token(&argus.issuer_url, "alice", "not the password", "openid").await.unwrap_err();
        // After a few failures the issuer's throttle answers 429 for this address (watch still sees each attempt).
        let err = err.to_string();
        assert!(err.contains("sign-in refused") || err.contains("answered 429"), "{err}");
    }

    // The watch API wants an admin token, as the admin API does.
    let alerts_url = format!("{}/api/alerts", argus.watch_url.as_deref().expect("watch runs by default"));
    let (status, _, _) = call("GET", &alerts_url, None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let admin = admin_token(&argus).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let alerts = loop {
        let (status, _, body) = call("GET", &alerts_url, Some(&admin), None).await;
        assert_eq!(status, StatusCode::OK);
        let alerts: serde_json::Value = serde_json::from_str(&body).unwrap();
        let found = alerts.as_array().unwrap().iter().any(|a| a["key_type"] == "account" && a["key"] == "alice");
        if found || Instant::now() > deadline {
            break alerts;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let alice = alerts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key_type"] == "account" && a["key"] == "alice")
        .unwrap_or_else(|| panic!("no alert for alice: {alerts:#}"));
    assert_eq!(alice["detector"], "failed_login");
    assert!(alerts.as_array().unwrap().iter().any(|a| a["key_type"] == "ip" && a["key"] == "127.0.0.1"), "{alerts:#}");

    // The right password still works: the detector observes, the account is not locked (this address is throttled
    // for a few seconds after its failures; tests/throttle.rs shows another address is not throttled at all).
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Err(e) = argus::demo_client::token(&argus.issuer_url, "alice", PASSWORD, "openid").await {
        assert!(e.to_string().contains("answered 429") && Instant::now() < deadline, "{e:#}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    argus.shutdown().await;
}

/// `[watch] enabled = false` (the gate benchmark's switch): no watch API, nothing audited, the gate still answers
/// and still publishes its events (to nobody).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::parse(
        "[issuer]\nlisten = \"127.0.0.1:0\"\n[gate]\nlisten = \"127.0.0.1:0\"\n\
         [watch]\nenabled = false\n[demo]\nlisten = \"127.0.0.1:0\"\n",
        "test",
    )
    .unwrap();
    let opts = UpOptions {
        data_dir: dir.path().join("data"),
        demo: true,
        demo_password: Some(PASSWORD.into()),
        metrics: None,
    };
    let argus = argus::start(config, opts).await.unwrap();
    assert!(argus.watch_url.is_none());
    assert!(argus::banner(&argus).contains("  watch     off"), "{}", argus::banner(&argus));

    let before = argus.events.published();
    let (status, _, _) = call("GET", &format!("{}/accounts", argus.gate_url), None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The event goes out once the gate has finished the response body, which may be just after curl has it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while argus.events.published() == before && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(argus.events.published() > before, "the gate still emits its event");
    let head = argus_detect::AuditLog::head(&argus.store).await.unwrap();
    assert_eq!(head, None, "nothing is audited without watch");
    argus.shutdown().await;
}
