//! Devices and notices end to end: sign-ins through the real login form make one notice per new device (not per
//! sign-in), with an `Account`/`new_device` event, and the notice webhook delivers each notice once, signed, after
//! a failed first attempt — checked by a local receiver that verifies the Standard Webhooks signature itself.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argus_bus::Received;
use argus_model::{Activity, EventKind};
use argus_oauth::notice::NoticeStore;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use hmac::{Hmac, Mac};
use support::Argus;

/// A Standard Webhooks secret (24 random bytes); the key is what follows `whsec_`, base64-decoded.
const SECRET: &str = "whsec_C2FNcGxlLWtleS1mb3ItYXJndXMtdGVzdHM=";

#[derive(Clone, Debug)]
struct Received_ {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
}

/// A webhook receiver on 127.0.0.1 that answers 500 to the first request and 204 to the rest, and keeps them all.
async fn receiver() -> (String, Arc<Mutex<Vec<Received_>>>) {
    let seen: Arc<Mutex<Vec<Received_>>> = Arc::default();
    let kept = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let kept = kept.clone();
            async move {
                let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                let mut all = kept.lock().unwrap();
                all.push(Received_ {
                    id: h("webhook-id"),
                    timestamp: h("webhook-timestamp"),
                    signature: h("webhook-signature"),
                    body,
                });
                if all.len() == 1 { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::NO_CONTENT }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

/// The signature check of the Standard Webhooks spec, written from the spec: HMAC-SHA256 over
/// `id.timestamp.body` with the decoded secret, base64, after `v1,`.
fn signature_valid(r: &Received_) -> bool {
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64.decode(SECRET.strip_prefix("whsec_").unwrap()).unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.{}", r.id, r.timestamp, r.body).as_bytes());
    let expected = b64.encode(mac.finalize().into_bytes());
    r.signature.split(' ').any(|s| s.strip_prefix("v1,") == Some(expected.as_str()))
}

/// Wait until `f` holds, for at most 10 seconds.
async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_devices_make_notices_delivered_once_by_a_signed_webhook_after_a_retry() {
    let (url, seen) = receiver().await;
    let notify = format!(
        "\n[notify]\nwebhook_url = \"{url}\"\nwebhook_secret = \"{SECRET}\"\nretry_base_ms = 200\nretry_max_ms = 400\n\
         poll_ms = 50\n"
    );
    let argus = Argus::start(&notify).await;
    let mut events = argus.up.events.subscribe();
    let sub = argus.up.demo.as_ref().unwrap().users.iter().find(|(n, _)| n == "alice").unwrap().1.clone();

    // First browser, twice: one notice (the user's first device).
    let first = argus.sign_in("alice", HashMap::new()).await;
    argus.sign_in("alice", first.same_device()).await;
    // A second browser: a second notice.
    argus.sign_in("alice", HashMap::new()).await;

    // Every notice of the user: the two devices, and the first grant to the demo app (consent).
    let notices = argus.up.store.notices(&sub, 10).await.unwrap();
    let devices: Vec<_> = notices.iter().filter(|n| n.kind == Activity::NewDevice).collect();
    assert_eq!(devices.len(), 2, "{notices:?}");
    assert_eq!(notices.len(), 3, "{notices:?}");
    assert!(notices.iter().any(|n| n.kind == Activity::FirstGrant));
    assert_eq!(devices[1].body.detail.as_deref(), Some("first_sign_in"));
    assert_eq!(devices[0].body.detail.as_deref(), Some("new_device"));
    assert_ne!(devices[0].device_id, devices[1].device_id);
    assert_eq!(devices[0].body.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(argus.up.store.user_devices(&sub).await.unwrap().len(), 2);

    let mut new_device_events = Vec::new();
    while let Some(Received::Message(e)) = events.try_recv() {
        if let EventKind::Account(a) = &e.kind {
            assert_eq!(e.principal.sub.as_deref(), Some(sub.as_str()));
            new_device_events.push(a.clone());
        }
    }
    let activities: Vec<_> = new_device_events
        .iter()
        .filter(|a| a.activity == Activity::NewDevice)
        .map(|a| (a.activity, a.detail.clone()))
        .collect();
    assert_eq!(
        activities,
        [(Activity::NewDevice, Some("first_sign_in".into())), (Activity::NewDevice, Some("new_device".into()))]
    );

    // One request per notice, and one more: the first attempt fails (500) and comes again with the same id.
    eventually("every notice delivered", || seen.lock().unwrap().len() > notices.len()).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let got = seen.lock().unwrap().clone();
    assert_eq!(got.len(), notices.len() + 1, "each notice delivered once after the retry: {got:?}");
    assert!(got.iter().all(signature_valid), "{got:?}");
    let retried: Vec<_> = got[1..].iter().filter(|r| r.id == got[0].id).collect();
    assert_eq!(retried.len(), 1, "a retry keeps the delivery id");
    assert_eq!(retried[0].body, got[0].body);
    let mut delivered: Vec<String> = got[1..]
        .iter()
        .map(|r| serde_json::from_str::<serde_json::Value>(&r.body).unwrap())
        .map(|v| {
            assert!(v["type"].as_str().unwrap().starts_with("account."));
            assert_eq!(v["data"]["sub"], sub.as_str());
            v["data"]["notice_id"].as_str().unwrap().to_owned()
        })
        .collect();
    delivered.sort();
    let mut stored: Vec<String> = notices.iter().map(|n| n.id.clone()).collect();
    stored.sort();
    assert_eq!(delivered, stored, "every notice delivered exactly once");
    // Nothing secret travels: no cookie, token or password in any body.
    for r in &got {
        assert!(!r.body.contains(support::PASSWORD) && !r.body.contains(&first.refresh), "{}", r.body);
        for v in first.cookies.values() {
            assert!(!r.body.contains(v.as_str()));
        }
    }
    argus.shutdown().await;
}
