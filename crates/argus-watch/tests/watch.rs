//! Black-box: a real `Watch` over a temporary SQLite store and an in-process bus, its API served on 127.0.0.1:0.

mod support;

use std::sync::Arc;
use std::time::Duration;

use argus_detect::{
    Alert, AlertChange, AlertDraft, AlertFilter, AlertStore, AuditLog, AuditRecord, BatchAppended, ChainVerdict,
    WatchStoreError,
};
use argus_model::{ApiCall, Clock, Decision, Event, EventKind, Principal, Timestamp};
use argus_store::Store;
use argus_watch::WatchConfig;
use serde_json::Value;
use support::*;

#[tokio::test]
async fn stuffing_from_one_ip_becomes_one_explained_alert_on_the_api_and_the_bus() {
    let h = start(WatchConfig::default()).await;
    let mut observer = h.bus.subscribe();
    // 30 failures in 3 seconds from one IP, each on another account.
    let events: Vec<Event> = (0..30).map(|i| failure(i * 100, &format!("user{i}"))).collect();
    for e in &events {
        h.bus.publish(e.clone());
    }

    let alerts = eventually(|| async {
        let (status, _, body) = get(&h, "/api/alerts").await;
        assert_eq!(status, 200);
        let alerts = body.as_array().unwrap().clone();
        // Wait for the last repeat to be merged, so the assertions see the final state.
        (alerts.len() == 1 && alerts[0]["count"] == 10).then_some(alerts)
    })
    .await;
    let alert = &alerts[0];
    assert_eq!(alert["detector"], "failed_login");
    assert_eq!(alert["attack"], "credential_stuffing");
    assert_eq!((alert["key_type"].as_str(), alert["key"].as_str()), (Some("ip"), Some(ATTACKER)));
    assert_eq!((alert["severity"].as_str(), alert["status"].as_str()), (Some("medium"), Some("open")));
    assert_eq!(alert["first_seen"], "2025-11-24T16:00:02Z");
    assert_eq!(alert["last_seen"], "2025-11-24T16:00:02.9Z");
    assert_eq!(alert["feature"]["name"], "failed_logins_per_ip");
    assert_eq!(alert["feature"]["threshold"], 20.0);
    assert_eq!(
        alert["feature"]["explanation"],
        "30 failed sign-ins from 203.0.113.7 on 30 accounts within ~3 s (threshold 20, leaks 10/min)"
    );
    let evidence: Vec<&str> = alert["evidence"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    let last_twenty: Vec<&str> = events[10..].iter().map(|e| e.id.as_str()).collect();
    assert_eq!(evidence, last_twenty);

    // The alert went out on the bus once (no escalation happened), stamped by watch.
    let raised = next_alert_event(&mut observer).await;
    let EventKind::Alert(payload) = &raised.kind else { unreachable!() };
    assert_eq!(
        (payload.alert_id.as_str(), payload.attack.as_str()),
        (alert["id"].as_str().unwrap(), "credential_stuffing")
    );
    // The announcement carries the explanation as of opening; the stored alert has moved on since.
    assert_eq!(
        payload.summary,
        "21 failed sign-ins from 203.0.113.7 on 21 accounts within ~2 s (threshold 20, leaks 10/min)"
    );
    assert_eq!((raised.node.as_str(), raised.time), ("watch", FixedClock.now()));
    assert_eq!(raised.principal.ip.as_deref(), Some(ATTACKER));

    // Every event is in the audit log, watch's own Alert event included, and the chain holds.
    let records = eventually(|| async {
        let records = h.store.records_after(0, 1000).await.unwrap();
        (records.len() == 31).then_some(records)
    })
    .await;
    for e in &events {
        assert!(records.iter().any(|r| r.event_id == e.id), "event {} not audited", e.id);
    }
    assert!(records.iter().any(|r| r.event_id == raised.id && r.event_type == "Alert"));
    assert!(h.store.verify_chain().await.unwrap().is_intact());

    // Watch's Alert event was not detected on: still exactly one alert, one announcement.
    let stats = h.watch.stats();
    assert_eq!((stats.events, stats.alerts_announced, stats.audit_failures), (31, 1, 0));
    assert_eq!(get(&h, "/api/alerts").await.2.as_array().unwrap().len(), 1);

    // One alert by id.
    let id = alert["id"].as_str().unwrap();
    // One alert by id: the same, with the events its evidence names and the actions taken (none: no rules).
    let (status, _, mut one) = get(&h, &format!("/api/alerts/{id}")).await;
    assert_eq!(status, 200);
    let detail = one.as_object_mut().unwrap();
    let evidence_events = detail.remove("evidence_events").unwrap();
    assert_eq!(detail.remove("actions"), Some(Value::Array(Vec::new())));
    assert_eq!(&Value::Object(detail.clone()), alert);
    let logged: Vec<&str> = evidence_events.as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(logged, last_twenty);
    assert_eq!(evidence_events[0]["username"], "user10");
}

#[tokio::test]
async fn the_api_filters_and_answers_errors_with_problem_json() {
    let h = start(WatchConfig::default()).await;
    // A brute force on one account from one IP, fast enough to double the IP threshold: both keys alert.
    for i in 0..45 {
        h.bus.publish(failure(i * 10, "alice"));
    }
    eventually(|| async {
        let alerts = get(&h, "/api/alerts").await.2;
        let done = alerts.as_array().unwrap().iter().any(|a| a["key_type"] == "ip" && a["count"] == 25);
        done.then_some(())
    })
    .await;

    let (_, _, by_account) = get(&h, "/api/alerts?key_type=account&attack=brute_force&status=open").await;
    let by_account = by_account.as_array().unwrap();
    assert_eq!(by_account.len(), 1);
    assert_eq!((by_account[0]["key"].as_str(), by_account[0]["severity"].as_str()), (Some("alice"), Some("high")));
    let (_, _, by_ip) = get(&h, &format!("/api/alerts?key={ATTACKER}&attack=&limit=5")).await;
    assert_eq!(by_ip.as_array().unwrap().len(), 1);
    assert_eq!(by_ip[0]["severity"], "high", "escalated past twice the threshold");
    let (_, _, none) = get(&h, "/api/alerts?attack=credential_stuffing").await;
    assert_eq!(none, Value::Array(Vec::new()));

    // A page at a time: a full page names the next in an RFC 8288 `Link`, with the same filters and a cursor.
    let mut path = "/api/alerts?attack=brute_force&limit=1".to_owned();
    let mut walked = Vec::new();
    loop {
        let (status, headers, page) = support::request_full(&h.base, "GET", &path, Some(&h.token)).await;
        assert_eq!(status, 200, "{path}: {page}");
        walked.extend(page.as_array().unwrap().iter().map(|a| a["key"].as_str().unwrap().to_owned()));
        let Some(link) = headers.get("link").map(|v| v.to_str().unwrap().to_owned()) else { break };
        assert!(link.starts_with("</api/alerts?attack=brute_force&limit=1&before="), "{link}");
        assert!(link.ends_with(">; rel=\"next\""), "{link}");
        path = link[1..link.find('>').unwrap()].to_owned();
        assert!(walked.len() <= 2, "the walk does not end: {walked:?}");
    }
    walked.sort();
    assert_eq!(walked, [ATTACKER, "alice"]);
    let (_, headers, _) = support::request_full(&h.base, "GET", "/api/alerts?limit=3", Some(&h.token)).await;
    assert!(headers.get("link").is_none(), "no Link on a page that is not full");
    // Two announcements per key: opened (medium), then escalated (high).
    assert_eq!(h.watch.stats().alerts_announced, 4);

    for (path, status, slug) in [
        ("/api/alerts/0190-unknown", 404, "not-found"),
        ("/api/alerts?limit=0", 400, "invalid-request"),
        ("/api/alerts?limit=1001", 400, "invalid-request"),
        ("/api/alerts?before=12.not%20an%20id", 400, "invalid-request"),
        ("/api/alerts?severity=high", 400, "invalid-request"),
        ("/api/alerts?key_type=planet", 400, "invalid-request"),
        ("/nowhere", 404, "not-found"),
    ] {
        let (got, content_type, body) = get(&h, path).await;
        assert_eq!((got, content_type.as_str()), (status, "application/problem+json"), "{path}");
        assert_eq!(body["type"], format!("urn:argus:problem:{slug}"), "{path}");
        assert_eq!(body["status"], status, "{path}");
    }
    let (status, content_type, body) = request(&h.base, "DELETE", "/api/alerts", Some(&h.token)).await;
    assert_eq!((status, content_type.as_str()), (405, "application/problem+json"));
    assert_eq!(body["type"], "urn:argus:problem:method-not-allowed");
    let (_, _, bad) = get(&h, "/api/alerts?key_type=planet").await;
    assert_eq!(bad["detail"], "unknown key_type value");
}

#[tokio::test]
async fn healthz_reports_the_consumer_and_stop_ends_it() {
    let h = start(WatchConfig::default()).await;
    // Open: no token needed.
    let (status, _, body) = request(&h.base, "GET", "/healthz", None).await;
    assert_eq!((status, body["status"].as_str(), body["consumer"]["running"].as_bool()), (200, Some("ok"), Some(true)));

    // The router outlives the consumer: after stop, health says so.
    let router_base = h.base.clone();
    h.watch.stop().await;
    let (status, content_type, body) = request(&router_base, "GET", "/healthz", None).await;
    assert_eq!((status, content_type.as_str()), (503, "application/problem+json"));
    assert_eq!(body["type"], "urn:argus:problem:unavailable");
}

#[tokio::test]
async fn start_refuses_an_unusable_configuration() {
    for (text, needle) in [
        ("[detectors.failed_login]\nstuffing_accounts = 99", "stuffing_accounts"),
        ("[[responses]]\nname = \"x\"\nwhen = \"oops ==\"\naction = \"record\"", "watch.responses[0].when"),
        ("allow = [\"user\"]", "watch.allow[0]"),
    ] {
        let config: WatchConfig = toml::from_str(text).unwrap();
        let Err(err) = try_start_with(config, 8, |store| store).await else { panic!("{text}: started") };
        assert!(err.to_string().contains(needle), "{err}");
    }
}

fn api_call(ms_after: i64, n: usize) -> Event {
    Event::new(
        Timestamp::from_millis(T0 + ms_after),
        "gate",
        Principal { ip: Some("198.51.100.20".into()), sub: Some("alice".into()), ..Default::default() },
        EventKind::ApiCall(ApiCall {
            request_id: format!("req-{n}"),
            method: "GET".into(),
            path: format!("/orders/{n}"),
            route: Some("orders".into()),
            operation_id: Some("getOrder".into()),
            status: 200,
            decision: Decision::Allowed,
            reason: None,
            bytes_in: 0,
            bytes_out: 512,
            latency_us: 800,
            path_template: None,
            object_ids: Vec::new(),
            records: None,
            decoy: false,
            response_check: None,
        }),
    )
}

/// Waits until watch has consumed `n` events and finished the batch they came in.
async fn drained(h: &Harness, n: u64) -> argus_watch::WatchStats {
    eventually(|| async {
        let stats = h.watch.stats();
        (stats.events + stats.events_lost >= n
            && stats.audited + stats.audit_failures + stats.audit_duplicates >= stats.events)
            .then_some(stats)
    })
    .await
}

#[tokio::test]
async fn a_burst_is_audited_in_batches_in_bus_order_and_the_chain_verifies() {
    let h = start(WatchConfig::default()).await;
    let events: Vec<Event> = (0..1000).map(|i| api_call(i, i as usize)).collect();
    for e in &events {
        h.bus.publish(e.clone());
    }
    let stats = drained(&h, 1000).await;
    assert_eq!((stats.events, stats.audited, stats.events_lost, stats.audit_failures), (1000, 1000, 0, 0));
    assert!(stats.batches < 100, "a burst is appended in batches, not one by one: {stats:?}");
    let records = h.store.records_after(0, 2000).await.unwrap();
    let logged: Vec<&str> = records.iter().map(|r| r.event_id.as_str()).collect();
    let published: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(logged, published);
    assert_eq!(
        h.store.verify_chain().await.unwrap(),
        ChainVerdict::Intact { records: 1000, head: h.store.head().await.unwrap() }
    );
}

#[tokio::test]
async fn an_event_delivered_twice_is_audited_once_and_the_chain_verifies() {
    let h = start(WatchConfig::default()).await;
    let (a, b) = (api_call(0, 1), api_call(1, 2));
    for e in [&a, &b, &a] {
        h.bus.publish(e.clone());
    }
    let stats = drained(&h, 3).await;
    assert_eq!((stats.audited, stats.audit_duplicates, stats.audit_failures), (2, 1, 0));
    // Delivered again in a later batch: skipped as well.
    h.bus.publish(b.clone());
    let stats = drained(&h, 4).await;
    assert_eq!((stats.audited, stats.audit_duplicates), (2, 2));
    let records = h.store.records_after(0, 10).await.unwrap();
    assert_eq!(records.iter().map(|r| r.event_id.as_str()).collect::<Vec<_>>(), [a.id.as_str(), b.id.as_str()]);
    assert!(h.store.verify_chain().await.unwrap().is_intact());
}

#[tokio::test]
async fn the_writer_reloads_the_head_after_another_writer_appended() {
    let h = start(WatchConfig::default()).await;
    h.bus.publish(api_call(0, 1));
    drained(&h, 1).await;
    // The command line appends directly (argus keys rotate): watch's cached head is now stale.
    h.store.append(&api_call(1, 2)).await.unwrap();
    h.bus.publish(api_call(2, 3));
    let stats = drained(&h, 2).await;
    assert_eq!((stats.audited, stats.audit_failures), (2, 0));
    let ChainVerdict::Intact { records, .. } = h.store.verify_chain().await.unwrap() else { panic!("chain broken") };
    assert_eq!(records, 3);
}

/// A store whose audit appends are slow, or fail: what watch meets when the database falls behind or goes away.
struct Troubled {
    inner: Arc<Store>,
    append_delay: Duration,
    appends_fail: bool,
}

#[async_trait::async_trait]
impl AuditLog for Troubled {
    async fn append(&self, event: &Event) -> Result<AuditRecord, WatchStoreError> {
        self.inner.append(event).await
    }

    async fn head(&self) -> Result<Option<(u64, String)>, WatchStoreError> {
        self.inner.head().await
    }

    async fn append_batch(&self, records: &[AuditRecord]) -> Result<BatchAppended, WatchStoreError> {
        tokio::time::sleep(self.append_delay).await;
        if self.appends_fail {
            return Err(WatchStoreError::Backend("disk I/O error".into()));
        }
        self.inner.append_batch(records).await
    }

    async fn records_after(&self, after: u64, limit: u32) -> Result<Vec<AuditRecord>, WatchStoreError> {
        self.inner.records_after(after, limit).await
    }

    async fn verify_chain(&self) -> Result<ChainVerdict, WatchStoreError> {
        self.inner.verify_chain().await
    }
}

#[async_trait::async_trait]
impl AlertStore for Troubled {
    async fn record_alert(&self, draft: AlertDraft) -> Result<AlertChange, WatchStoreError> {
        self.inner.record_alert(draft).await
    }

    async fn record_alerts(&self, drafts: Vec<AlertDraft>) -> Result<Vec<AlertChange>, WatchStoreError> {
        self.inner.record_alerts(drafts).await
    }

    async fn alerts(&self, filter: &AlertFilter) -> Result<Vec<Alert>, WatchStoreError> {
        self.inner.alerts(filter).await
    }

    async fn alert(&self, id: &str) -> Result<Option<Alert>, WatchStoreError> {
        self.inner.alert(id).await
    }
}

#[tokio::test]
async fn a_burst_beyond_the_bus_capacity_with_a_slow_store_raises_an_audit_gap_alert() {
    let slow = |inner| Arc::new(Troubled { inner, append_delay: Duration::from_millis(200), appends_fail: false }) as _;
    let h = start_with(WatchConfig::default(), 16, slow).await;
    let first: Vec<Event> = (0..10).map(|i| api_call(i, i as usize)).collect();
    for e in &first {
        h.bus.publish(e.clone());
    }
    // Watch takes these ten and is held up by the store while a burst of 100 arrives on a bus of 16.
    eventually(|| async { (h.watch.stats().events == 10).then_some(()) }).await;
    for i in 10..110 {
        h.bus.publish(api_call(i, i as usize));
    }

    // Every event published is either audited or counted lost, and an alert says how many were lost. Each
    // further loss (here the alert's own announcement can push one more event out of a bus this small) merges into
    // the one open alert of the node.
    let (stats, gap) = eventually(|| async {
        let s = h.watch.stats();
        let consistent = s.events + s.events_lost == h.bus.published() && s.audited == s.events;
        let alerts = get(&h, "/api/alerts?attack=audit_gap").await.2;
        let gap = alerts.as_array().unwrap().first().cloned()?;
        let total = format!("({} lost since start)", s.events_lost);
        (consistent && gap["feature"]["explanation"].as_str()?.ends_with(&total)).then_some((s, gap))
    })
    .await;
    assert!(stats.events_lost >= 84, "at least the burst beyond capacity: {stats:?}");
    assert_eq!(stats.audit_failures, 0);
    assert_eq!(get(&h, "/api/alerts?attack=audit_gap").await.2.as_array().unwrap().len(), 1);
    assert_eq!((gap["key_type"].as_str(), gap["key"].as_str()), (Some("node"), Some("watch")));
    assert_eq!((gap["severity"].as_str(), gap["detector"].as_str()), (Some("high"), Some("event_loss")));
    assert_eq!(gap["evidence"][0], first[9].id, "the first gap follows the last event received before it");
    let (status, _, health) = get(&h, "/healthz").await;
    assert_eq!((status, health["consumer"]["events_lost"].as_u64()), (200, Some(stats.events_lost)));
    assert!(stats.alerts_announced >= 1);
    assert!(h.store.verify_chain().await.unwrap().is_intact());
}

#[tokio::test]
async fn detection_goes_on_while_the_audit_log_cannot_be_written() {
    let failing = |inner| Arc::new(Troubled { inner, append_delay: Duration::ZERO, appends_fail: true }) as _;
    let h = start_with(WatchConfig::default(), 1024, failing).await;
    for i in 0..25 {
        h.bus.publish(failure(i * 10, "alice"));
    }
    eventually(|| async {
        let alerts = get(&h, "/api/alerts?key_type=ip").await.2;
        (alerts.as_array().unwrap().first().is_some_and(|a| a["count"] == 5)).then_some(())
    })
    .await;
    // Watch's own Alert announcements come back as events too: wait until the batch in hand is done.
    let stats = eventually(|| async {
        let stats = h.watch.stats();
        (stats.audit_failures == stats.events).then_some(stats)
    })
    .await;
    assert_eq!(stats.audited, 0, "each failed event counted once, as a failure: {stats:?}");
    assert!(stats.events >= 25);
}

#[tokio::test]
async fn stop_audits_every_event_the_bus_had_queued() {
    // Batches of 64: a burst of 1,000 (within the harness bus's 1,024) is mostly still queued when stop comes.
    let config: WatchConfig = toml::from_str("max_batch = 64").unwrap();
    let h = start(config).await;
    let events: Vec<Event> = (0..1000).map(|i| api_call(i, i as usize)).collect();
    for e in &events {
        h.bus.publish(e.clone());
    }
    h.watch.stop().await;
    let records = h.store.records_after(0, 10_000).await.unwrap();
    let logged: std::collections::HashSet<&str> = records.iter().map(|r| r.event_id.as_str()).collect();
    let missing = events.iter().filter(|e| !logged.contains(e.id.as_str())).count();
    assert_eq!(missing, 0, "{missing} of 1000 events not audited after a clean stop");
    assert!(h.store.verify_chain().await.unwrap().is_intact());
}
