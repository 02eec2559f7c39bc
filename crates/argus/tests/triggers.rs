//! Configurable triggers end to end (`[[issuer.triggers]]`), on a whole Argus (`argus up --demo`) signed in to
//! through the real login form:
//! - "a sign-in from a new device → require step-up": the session's token is refused by the gate with the RFC 9470
//!   challenge, and re-authorizing with the challenge's `max_age` yields a token that passes;
//! - "a refresh → revoke the session", decided from the event bus: the session's tokens are refused, another
//!   user's still pass, and the trigger's own revocation does not trigger again;
//! - the shipped default "new device → notify" stores a notice;
//! - `admin_webhook` reaches a local receiver, signed.

mod support;

use std::time::Duration;

use argus_model::{Activity, EventKind};
use argus_oauth::notice::{NoticeRecord, NoticeStore};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::Value;
use support::{Argus, PASSWORD, SCOPE, Session, claim};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

/// The Standard Webhooks secret of the tests (24 bytes).
const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// `GET /accounts` through the gate with `token`: the status and the `WWW-Authenticate` challenge.
async fn gate_call(argus: &Argus, token: &str) -> (StatusCode, String) {
    let bearer = format!("Bearer {token}");
    let r = argus.call("GET", &format!("{}/accounts", argus.up.gate_url), &[("authorization", &bearer)], None).await;
    (r.status, r.header("www-authenticate").to_owned())
}

/// The value of `name=` in a challenge, unquoted.
fn auth_param(challenge: &str, name: &str) -> Option<String> {
    challenge.split(", ").find_map(|p| p.strip_prefix(&format!("{name}="))).map(|v| v.trim_matches('"').to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_device_must_step_up_and_a_fresh_sign_in_passes() {
    let argus = Argus::start(
        r#"
[[issuer.triggers]]
name = "new-device"
events = ["Account"]
when = "event.type == 'Account' && event.activity == 'new_device'"
actions = ["require_step_up", "notify_user"]
message = "New sign-in from {principal.ip}: confirm it was you"
"#,
    )
    .await;
    let first = argus.sign_in("alice", Default::default()).await;

    let (status, challenge) = gate_call(&argus, &first.access).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{challenge}");
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert_eq!(auth_param(&challenge, "error").as_deref(), Some("insufficient_user_authentication"), "{challenge}");
    let max_age = auth_param(&challenge, "max_age").expect("the challenge names max_age");
    // A refresh keeps the sign-in's auth_time: still not enough.
    let refreshed = argus.refreshed(&first).await;
    assert_eq!(gate_call(&argus, &refreshed.access).await.0, StatusCode::UNAUTHORIZED);
    // The rule's notice, with its own text.
    let sub = first.claim("sub");
    let notices = new_device_notices(&argus, &sub).await;
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0].body.summary, "New sign-in from 127.0.0.1: confirm it was you");
    // A gate started later, beside this one over the same store, loads the demand.
    let late = late_gate(&argus).await;
    let bearer = format!("Bearer {}", first.access);
    let r = argus.call("GET", &format!("{}/accounts", late.gate_url), &[("authorization", &bearer)], None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    assert!(r.header("www-authenticate").contains("insufficient_user_authentication"));

    // auth_time is in whole seconds: a sign-in in the second of the demand cannot be told from the one before it.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (tokens, _) = argus::demo_client::token_with_params(
        &argus.up.issuer_url,
        "alice",
        PASSWORD,
        SCOPE,
        first.cookies.clone(),
        &[("max_age", &max_age)],
    )
    .await
    .unwrap();
    let fresh = tokens["access_token"].as_str().unwrap();
    assert_eq!(claim(fresh, "sid"), first.claim("sid"), "the same session, signed in again");
    assert!(claim(fresh, "auth_time").parse::<i64>().unwrap() > first.claim("auth_time").parse::<i64>().unwrap());
    let (status, challenge) = gate_call(&argus, fresh).await;
    assert_eq!(status, StatusCode::OK, "{challenge}");
    assert_eq!(gate_call(&argus, &refreshed.access).await.0, StatusCode::UNAUTHORIZED, "the old sign-in still not");
    let r = argus
        .call("GET", &format!("{}/accounts", late.gate_url), &[("authorization", &format!("Bearer {fresh}"))], None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "the late gate too: {}", r.text);
    late.shutdown().await;
    argus.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_session_rule_ends_the_session_once() {
    let argus = Argus::start(
        r#"
[[issuer.triggers]]
name = "refresh-ends-session"
events = ["TokenIssued"]
when = "event.grant_type == 'refresh_token'"
actions = ["revoke_session"]

# Would feed itself on the revocation above, were trigger-made revocations evaluated.
[[issuer.triggers]]
name = "any-revocation"
events = ["Revoked"]
when = "true"
actions = ["revoke_session"]
"#,
    )
    .await;
    let mut bus = argus.up.events.subscribe();
    let alice = argus.sign_in("alice", Default::default()).await;
    let bob = argus.sign_in("bob", Default::default()).await;
    for s in [&alice, &bob] {
        assert_eq!(argus.gate_status(&s.access).await, StatusCode::OK);
    }
    let bob2 = argus.refreshed(&bob).await;

    // Decided from the event bus, a moment after the refresh.
    let refused = wait_until(|| async { argus.gate_status(&bob.access).await == StatusCode::UNAUTHORIZED }).await;
    assert!(refused, "bob's session was not revoked");
    let (_, challenge) = gate_call(&argus, &bob2.access).await;
    assert!(challenge.contains("invalid_token"), "{challenge}");
    assert_eq!(argus.refresh(&bob2.refresh).await.body["error"], "invalid_grant", "the session's refresh family too");
    assert_eq!(argus.gate_status(&alice.access).await, StatusCode::OK, "another session is untouched");

    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut revoked = Vec::new();
    while let Some(argus_bus::Received::Message(e)) = bus.try_recv() {
        if let EventKind::Revoked(r) = &e.kind {
            revoked.push((r.by.clone(), e.principal.sid.clone()));
        }
    }
    assert_eq!(revoked, vec![("trigger".to_owned(), Some(bob.claim("sid")))], "one revocation, no loop");
    argus.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_notifies_a_new_device_and_admin_webhooks_are_delivered() {
    let (url, mut hooks) = receiver().await;
    let argus = Argus::start(&format!(
        r#"
[[issuer.triggers]]
name = "failed-sign-in"
events = ["Login"]
when = "event.outcome.result == 'failure'"
actions = ["admin_webhook"]
message = "Failed sign-in as {{username}} from {{principal.ip}}"

# Not account activity: the user's notice is a security alert, in the issuer's plain words.
[[issuer.triggers]]
name = "tell-failed-sign-in"
events = ["Login"]
when = "event.outcome.result == 'failure'"
actions = ["notify_user"]

[notify]
admin_webhook_url = "{url}"
webhook_secret = "{WEBHOOK_SECRET}"
poll_ms = 50
"#
    ))
    .await;
    // The shipped default: a new device makes a notice.
    let alice: Session = argus.sign_in("alice", Default::default()).await;
    let sub = alice.claim("sub");
    let kinds = |notices: Vec<NoticeRecord>| notices.iter().map(|n| n.kind).collect::<Vec<_>>();
    // And the other shipped default: the first grant to the demo app.
    assert_eq!(kinds(argus.up.store.notices(&sub, 10).await.unwrap()), vec![Activity::FirstGrant, Activity::NewDevice]);
    // Signing in again on the same device does not.
    argus.sign_in("alice", alice.same_device()).await;
    assert_eq!(new_device_notices(&argus, &sub).await.len(), 1);

    let wrong = argus::demo_client::token(&argus.up.issuer_url, "alice", "not the password", SCOPE).await;
    assert!(wrong.is_err());
    let (headers, body) =
        tokio::time::timeout(Duration::from_secs(10), hooks.recv()).await.expect("no webhook").expect("a webhook");
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert_eq!(
        header("webhook-signature"),
        expected_signature(&header("webhook-id"), &header("webhook-timestamp"), &body)
    );
    let json: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["type"], "trigger.matched");
    assert_eq!(json["data"]["rule"], "failed-sign-in");
    assert_eq!(json["data"]["message"], "Failed sign-in as alice from 127.0.0.1");
    assert_eq!(json["data"]["event"]["type"], "Login");
    assert_eq!(json["data"]["event"]["outcome"]["reason"], "bad_password");
    assert!(!String::from_utf8_lossy(&body).contains("not the password"), "never a password");

    let alerted = wait_until(|| async {
        argus.up.store.notices(&sub, 10).await.unwrap().iter().any(|n| n.kind == Activity::SecurityAlert)
    })
    .await;
    assert!(alerted, "no security-alert notice for the failed sign-in");
    let notices = argus.up.store.notices(&sub, 10).await.unwrap();
    let alert = notices.iter().find(|n| n.kind == Activity::SecurityAlert).unwrap();
    assert_eq!(alert.body.summary, "Someone tried to sign in to your account and failed");
    assert_eq!(alert.body.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(kinds(notices).iter().filter(|k| **k == Activity::SecurityAlert).count(), 1);
    argus.shutdown().await;
}

/// A second Argus over `argus`'s data directory whose gate takes `argus`'s tokens (its issuer, its audience).
async fn late_gate(argus: &Argus) -> argus::Running {
    let config = argus::Config::parse(
        &format!(
            "[issuer]\nlisten = \"127.0.0.1:0\"\n[gate]\nlisten = \"127.0.0.1:0\"\nissuer = \"{}\"\naudience = \"{}\"\n\
             [watch]\nenabled = false\n[demo]\nlisten = \"127.0.0.1:0\"\n",
            argus.up.issuer_url, argus.up.gate_url
        ),
        "late",
    )
    .unwrap();
    let opts = argus::UpOptions {
        data_dir: argus.data_dir.clone(),
        demo: true,
        demo_password: Some(PASSWORD.into()),
        metrics: None,
    };
    argus::start(config, opts).await.unwrap()
}

/// The user's new-device notices.
async fn new_device_notices(argus: &Argus, sub: &str) -> Vec<NoticeRecord> {
    let all = argus.up.store.notices(sub, 20).await.unwrap();
    all.into_iter().filter(|n| n.kind == Activity::NewDevice).collect()
}

/// Poll `check` for up to five seconds.
async fn wait_until<F, Fut>(check: F) -> bool
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..100 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// A webhook receiver on 127.0.0.1: its URL, and what it receives.
async fn receiver() -> (String, UnboundedReceiver<(HeaderMap, Bytes)>) {
    let (tx, rx) = unbounded_channel();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((headers, body));
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, rx)
}

/// The Standard Webhooks signature, computed here independently of the issuer's code.
fn expected_signature(id: &str, timestamp: &str, body: &[u8]) -> String {
    use base64::Engine;
    use hmac::{Hmac, Mac};
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64.decode(WEBHOOK_SECRET.strip_prefix("whsec_").unwrap()).unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", b64.encode(mac.finalize().into_bytes()))
}
