//! Black-box: response rules acting on alerts (control channel, issuer store, notifications), the action API and
//! its undo, and who may call the API.

mod support;

use std::time::Duration;

use argus_bus::{Received, Subscriber};
use argus_model::Activity;
use argus_model::{
    ApiCall, BlockTarget, Clock, ControlMessage, Decision, Event, EventKind, Principal, RevocationScope, Timestamp,
};
use argus_oauth::admin::AdminStore;
use argus_oauth::notice::{Channel, NoticeStore};
use argus_oauth::step_up_demand::StepUpDemandStore;
use argus_oauth::{IssuerStore, UserRecord};
use argus_testkit::{access_claims, mint_access_token, test_key};
use argus_watch::WatchConfig;
use serde_json::json;
use support::*;

/// A call to a decoy operation by `principal`.
fn decoy_hit(ms_after: i64, principal: Principal) -> Event {
    Event::new(
        Timestamp::from_millis(T0 + ms_after),
        "gate",
        principal,
        EventKind::ApiCall(ApiCall {
            request_id: format!("req-{ms_after}"),
            method: "GET".into(),
            path: "/admin/export".into(),
            route: Some("demo".into()),
            operation_id: Some("exportAll".into()),
            status: 404,
            decision: Decision::Refused,
            reason: None,
            bytes_in: 0,
            bytes_out: 0,
            latency_us: 100,
            path_template: None,
            object_ids: Vec::new(),
            records: None,
            decoy: true,
            response_check: None,
        }),
    )
}

fn anonymous() -> Principal {
    Principal { ip: Some(ATTACKER.into()), ..Principal::default() }
}

fn signed_in() -> Principal {
    Principal {
        ip: Some(ATTACKER.into()),
        sub: Some("sub-mallory".into()),
        sid: Some("sid-1".into()),
        jti: Some("jti-1".into()),
        client_id: Some("demo-app".into()),
        ..Principal::default()
    }
}

/// A user of the issuer: notices are only kept for users it has.
async fn add_user(h: &Harness, sub: &str) {
    let user = UserRecord { sub: sub.into(), username: sub.into(), password_hash: "unused".into(), disabled: false };
    assert!(h.store.insert_user(&user, FixedClock.now()).await.unwrap());
}

fn config(text: &str) -> WatchConfig {
    let config: WatchConfig = toml::from_str(text).unwrap();
    config.validate().unwrap();
    config
}

const BLOCK_DECOYS: &str = r#"
    [[responses]]
    name = "decoy-block"
    when = "alert.attack == 'decoy_hit' && alert.key_type == 'ip'"
    action = "block"
    ttl_secs = 3600
"#;

async fn next_control(sub: &mut Subscriber<ControlMessage>) -> ControlMessage {
    let wait = async {
        match sub.recv().await {
            Some(Received::Message(m)) => (*m).clone(),
            other => panic!("control channel: {other:?}"),
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait).await.expect("no control message")
}

/// The actions of the API, once there are `n`.
async fn actions(h: &Harness, n: usize) -> Vec<serde_json::Value> {
    eventually(|| async {
        let (status, _, body) = get(h, "/api/actions").await;
        assert_eq!(status, 200);
        let actions = body["actions"].as_array().unwrap().clone();
        (actions.len() >= n).then_some(actions)
    })
    .await
}

#[tokio::test]
async fn a_decoy_hit_blocks_the_ip_at_every_gate_once_and_undo_lifts_it() {
    let h = start(config(BLOCK_DECOYS)).await;
    let mut control = h.control.subscribe();
    let mut bus = h.bus.subscribe();
    let hit = decoy_hit(0, anonymous());
    h.bus.publish(hit.clone());

    let ControlMessage::Block(block) = next_control(&mut control).await else { panic!("not a block") };
    let now = FixedClock.now();
    assert_eq!(
        (block.target.clone(), block.until),
        (BlockTarget::Ip(ATTACKER.into()), now.plus(Duration::from_secs(3600)))
    );
    let action = &actions(&h, 1).await[0];
    assert_eq!(action["id"], block.id.as_str(), "the block carries the action's id");
    assert_eq!(
        (action["kind"].as_str(), action["status"].as_str(), action["rule"].as_str()),
        (Some("block"), Some("applied"), Some("decoy-block"))
    );
    assert_eq!(action["target"], serde_json::json!({"type": "ip", "value": ATTACKER}));
    let taken = next_event(&mut bus, |e| match &e.kind {
        EventKind::Action(a) => Some((a.clone(), e.principal.clone())),
        _ => None,
    })
    .await;
    assert_eq!(
        (taken.0.action_id.as_str(), taken.0.status.as_str(), taken.0.target.as_str()),
        (block.id.as_str(), "applied", "ip:203.0.113.7")
    );
    assert_eq!(taken.1.ip.as_deref(), Some(ATTACKER));

    // The alert names its evidence events and the action.
    let alert_id = action["alert_id"].as_str().unwrap();
    let (_, _, alert) = get(&h, &format!("/api/alerts/{alert_id}")).await;
    assert_eq!((alert["attack"].as_str(), alert["key"].as_str()), (Some("decoy_hit"), Some(ATTACKER)));
    assert_eq!(alert["evidence_events"][0]["id"], hit.id.as_str());
    assert_eq!(alert["actions"][0]["id"], block.id.as_str());

    // The attacker tries again: the open alert grows, the block stands, nothing new is sent.
    h.bus.publish(decoy_hit(1_000, anonymous()));
    eventually(|| async { (get(&h, &format!("/api/alerts/{alert_id}")).await.2["count"] == 2).then_some(()) }).await;
    assert_eq!(actions(&h, 1).await.len(), 1);

    // Undo lifts exactly that block (the same id, ending now), once.
    let (status, _, undone) = post(&h, &format!("/api/actions/{}/undo", block.id)).await;
    assert_eq!((status, undone["status"].as_str()), (200, Some("undone")));
    let ControlMessage::Block(lift) = next_control(&mut control).await else { panic!("not a block") };
    assert_eq!((lift.id.as_str(), lift.target, lift.until), (block.id.as_str(), block.target, now));
    let (status, content_type, again) = post(&h, &format!("/api/actions/{}/undo", block.id)).await;
    assert_eq!((status, content_type.as_str()), (409, "application/problem+json"));
    assert_eq!(
        (again["type"].as_str(), again["detail"].as_str()),
        (Some("urn:argus:problem:cannot-undo"), Some("the action was undone already"))
    );
    assert_eq!(post(&h, "/api/actions/nope/undo").await.0, 404);
    let (_, _, one) = get(&h, &format!("/api/actions/{}", block.id)).await;
    assert_eq!(one["status"], "undone");
    assert!(control.try_recv().is_none(), "nothing else went to the gates");
}

#[tokio::test]
async fn observe_only_records_what_it_would_have_done_and_sends_nothing() {
    let h = start(config(&format!("{BLOCK_DECOYS}observe_only = true\n"))).await;
    let mut control = h.control.subscribe();
    h.bus.publish(decoy_hit(0, anonymous()));
    let action = &actions(&h, 1).await[0];
    assert_eq!(action["status"], "observed");
    assert!(action["detail"].as_str().unwrap().starts_with("would block ip:203.0.113.7 until"), "{action}");
    assert_eq!(h.watch.stats().actions_observed, 1);
    assert!(control.try_recv().is_none(), "observe-only sends nothing to the gates");
    let (status, _, body) = post(&h, &format!("/api/actions/{}/undo", action["id"].as_str().unwrap())).await;
    assert_eq!((status, body["detail"].as_str()), (409, Some("this action changed nothing that could be undone")));
}

#[tokio::test]
async fn a_signed_in_decoy_caller_loses_the_session_and_is_notified() {
    let rules = r#"
        [[responses]]
        name = "decoy-session"
        when = "alert.attack == 'decoy_hit' && alert.key_type == 'user'"
        action = "revoke"
        scope = "session"
        [[responses]]
        name = "tell-them"
        when = "alert.key_type == 'user'"
        action = "notify"
    "#;
    let h = start(config(rules)).await;
    add_user(&h, "sub-mallory").await;
    let mut control = h.control.subscribe();
    let mut bus = h.bus.subscribe();
    h.bus.publish(decoy_hit(0, signed_in()));

    let ControlMessage::Revoke(revocation) = next_control(&mut control).await else { panic!("not a revocation") };
    assert_eq!(revocation.scope, RevocationScope::Session { sid: "sid-1".into() });
    assert_eq!(revocation.at, FixedClock.now());
    assert!(revocation.until > FixedClock.now().plus(Duration::from_secs(300)), "kept while covered tokens live");
    // Stored for gates that start later, and announced for the audit log.
    let stored = h.store.active_revocations(FixedClock.now()).await.unwrap();
    assert!(stored.iter().any(|r| r.id == revocation.id));
    let revoked = next_event(&mut bus, |e| match &e.kind {
        EventKind::Revoked(r) => Some(r.clone()),
        _ => None,
    })
    .await;
    assert_eq!((revoked.scope, revoked.by.as_str()), (revocation.scope.clone(), "watch"));

    let all = actions(&h, 2).await;
    let revoke = all.iter().find(|a| a["kind"] == "revoke").unwrap();
    assert_eq!(revoke["target"], serde_json::json!({"type": "session", "value": "sid-1"}));
    let (status, _, refused) = post(&h, &format!("/api/actions/{}/undo", revoke["id"].as_str().unwrap())).await;
    assert_eq!(status, 409);
    assert!(refused["detail"].as_str().unwrap().contains("cannot be undone"), "{refused}");

    // The user is told as the issuer tells them: a notice on the account page, delivered as `[notify]` says.
    let notices = h.store.notices("sub-mallory", 10).await.unwrap();
    assert_eq!(notices.len(), 1, "{notices:?}");
    let notice = &notices[0];
    assert_eq!((notice.kind, notice.body.ip.as_deref()), (Activity::SecurityAlert, Some(ATTACKER)));
    let summary = &notice.body.summary;
    assert!(summary.contains("a request no app of ours makes") && summary.contains("2025-11-24T"), "{summary}");
    assert!(!summary.contains("decoy") && !summary.contains("export"), "no detector jargon: {summary}");
    let now = FixedClock.now();
    let queued = h.store.claim_deliveries(now, now.plus(Duration::from_secs(60)), 10).await.unwrap();
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert_eq!((queued[0].channel, queued[0].target.as_str()), (Channel::Webhook, NOTICE_WEBHOOK));
    let payload: serde_json::Value = serde_json::from_str(&queued[0].payload).unwrap();
    assert_eq!(
        (&payload["type"], &payload["data"]["notice_id"]),
        (&json!("account.security_alert"), &json!(notice.id))
    );
    // And the watch API still lists it, with the alert it came from.
    let (_, _, notes) = get(&h, "/api/notifications?user=sub-mallory").await;
    let notes = notes["notifications"].as_array().unwrap();
    assert_eq!(notes.len(), 1);
    assert!(notes[0]["message"].as_str().unwrap().starts_with(summary.as_str()), "{notes:?}");
    assert!(get(&h, "/api/notifications?user=someone-else").await.2["notifications"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn step_up_demands_a_fresh_sign_in_of_the_session_at_every_gate_instead_of_ending_it() {
    let rules = r#"
        [[responses]]
        name = "decoy-step-up"
        when = "alert.attack == 'decoy_hit' && alert.key_type == 'user'"
        action = "step_up"
    "#;
    let h = start(config(rules)).await;
    let mut control = h.control.subscribe();
    h.bus.publish(decoy_hit(1_500, signed_in()));

    let ControlMessage::StepUp(demand) = next_control(&mut control).await else { panic!("not a step-up demand") };
    assert_eq!(demand.sid, "sid-1");
    // The sign-in behind the alert (at or before its events) does not meet it; one after it does.
    assert_eq!(demand.not_before, Timestamp::from_secs((T0 + 1_500) / 1000 + 1));
    assert!(demand.demands(Some("sid-1"), Some((T0 + 1_500) / 1000), FixedClock.now()));
    assert!(!demand.demands(Some("sid-1"), Some(demand.not_before.as_secs()), FixedClock.now()));
    // Kept while the session can mint tokens of the old sign-in (refresh lifetime + access lifetime).
    assert!(demand.until >= FixedClock.now().plus(Duration::from_secs(3600 + 300)), "{demand:?}");
    let stored = h.store.active_step_up_demands(FixedClock.now()).await.unwrap();
    assert_eq!(stored, vec![demand.clone()], "stored for gates that start later");
    // Nothing was revoked.
    assert!(h.store.active_revocations(FixedClock.now()).await.unwrap().is_empty());
    assert!(control.try_recv().is_none(), "only the demand went to the gates");

    let all = actions(&h, 1).await;
    assert_eq!((&all[0]["kind"], &all[0]["status"]), (&json!("step_up"), &json!("applied")));
    assert_eq!(all[0]["target"], json!({"type": "session", "value": "sid-1"}));
    let (status, _, refused) = post(&h, &format!("/api/actions/{}/undo", all[0]["id"].as_str().unwrap())).await;
    assert_eq!(status, 409, "a demand stands until it ends or the user signs in again: {refused}");
}

#[tokio::test]
async fn allow_listed_callers_are_alerted_on_but_not_acted_on() {
    let h = start(config(&format!("allow = [\"203.0.113.0/24\"]\n{BLOCK_DECOYS}"))).await;
    h.bus.publish(decoy_hit(0, anonymous()));
    eventually(|| async { (get(&h, "/api/alerts?attack=decoy_hit").await.2.as_array()?.len() == 1).then_some(()) })
        .await;
    // The batch that stored the alert also ran the responder: no action then, none later.
    let stats = h.watch.stats();
    assert_eq!((stats.actions_taken, stats.actions_observed, stats.actions_failed), (0, 0, 0));
    assert!(get(&h, "/api/actions").await.2["actions"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn a_keys_timeline_pages_newest_first() {
    let h = start(WatchConfig::default()).await;
    for i in 0..5 {
        h.bus.publish(failure(i * 1_000, &format!("user{i}")));
    }
    let page = eventually(|| async {
        let (status, _, page) = get(&h, &format!("/api/keys/ip/{ATTACKER}/timeline?limit=3")).await;
        assert_eq!(status, 200);
        (page["events"].as_array()?.len() == 3).then_some(page)
    })
    .await;
    let users: Vec<&str> =
        page["events"].as_array().unwrap().iter().map(|e| e["event"]["username"].as_str().unwrap()).collect();
    assert_eq!(users, ["user4", "user3", "user2"]);
    let next = page["next"].as_u64().unwrap();
    let (_, _, rest) = get(&h, &format!("/api/keys/ip/{ATTACKER}/timeline?before={next}")).await;
    assert_eq!(rest["events"].as_array().unwrap().len(), 2);
    assert!(rest.get("next").is_none());
    let (_, _, account) = get(&h, "/api/keys/account/user1/timeline").await;
    assert_eq!(account["events"].as_array().unwrap().len(), 1);
    for path in
        ["/api/keys/planet/x/timeline", "/api/keys/ip/x/timeline?before=soon", "/api/keys/ip/x/timeline?limit=0"]
    {
        let (status, content_type, _) = get(&h, path).await;
        assert_eq!((status, content_type.as_str()), (400, "application/problem+json"), "{path}");
    }
}

#[tokio::test]
async fn the_api_answers_admin_tokens_only() {
    let h = start(WatchConfig::default()).await;
    let check = |token: Option<String>| {
        let base = h.base.clone();
        async move { request_full(&base, "GET", "/api/alerts", token.as_deref()).await }
    };
    // No token: the bare challenge.
    let (status, headers, body) = check(None).await;
    assert_eq!((status, headers["www-authenticate"].to_str().unwrap()), (401, "Bearer realm=\"argus-watch\""));
    assert_eq!(body["type"], "urn:argus:problem:missing-token");
    // Garbage, a token of another key, a user's token, an expired one: invalid_token.
    let mut user_claims = access_claims(h.issuer.issuer(), AUDIENCE, FixedClock.now());
    user_claims.scope = "argus:admin".into();
    let mut expired = access_claims(h.issuer.issuer(), AUDIENCE, FixedClock.now().minus(Duration::from_secs(3600)));
    (expired.sub, expired.client_id, expired.sid, expired.scope) =
        (ADMIN_CLIENT.into(), ADMIN_CLIENT.into(), None, "argus:admin".into());
    for token in [
        "not-a-token".to_owned(),
        admin_token(&test_key(), h.issuer.issuer(), ADMIN_CLIENT, "argus:admin"),
        mint_access_token(&h.key, &user_claims),
        mint_access_token(&h.key, &expired),
        admin_token(&h.key, h.issuer.issuer(), "nobody", "argus:admin"),
    ] {
        let (status, headers, body) = check(Some(token)).await;
        assert_eq!(status, 401, "{body}");
        assert!(headers["www-authenticate"].to_str().unwrap().contains("error=\"invalid_token\""));
    }
    // A client token without the scope, or of a client no longer allowed it: 403.
    add_client(&h.store, "reporting", &["accounts:read"]).await;
    for token in [
        admin_token(&h.key, h.issuer.issuer(), ADMIN_CLIENT, "accounts:read"),
        admin_token(&h.key, h.issuer.issuer(), "reporting", "argus:admin"),
    ] {
        let (status, headers, body) = check(Some(token)).await;
        assert_eq!((status, body["type"].as_str()), (403, Some("urn:argus:problem:insufficient-scope")));
        assert!(headers["www-authenticate"].to_str().unwrap().contains("scope=\"argus:admin\""));
    }
    // The admin token works, also with the issuer as its audience, until it is revoked.
    assert_eq!(check(Some(h.token.clone())).await.0, 200);
    let mut to_issuer = access_claims(h.issuer.issuer(), h.issuer.issuer(), FixedClock.now());
    (to_issuer.sub, to_issuer.client_id, to_issuer.sid, to_issuer.scope) =
        (ADMIN_CLIENT.into(), ADMIN_CLIENT.into(), None, "argus:admin".into());
    assert_eq!(check(Some(mint_access_token(&h.key, &to_issuer))).await.0, 200);
    let revocation = argus_model::Revocation {
        id: "r1".into(),
        scope: RevocationScope::Client { client_id: ADMIN_CLIENT.into() },
        at: FixedClock.now(),
        until: FixedClock.now().plus(Duration::from_secs(600)),
    };
    h.store.add_revocation(&revocation).await.unwrap();
    assert_eq!(check(Some(h.token.clone())).await.0, 401);
    // Health stays open.
    assert_eq!(request(&h.base, "GET", "/healthz", None).await.0, 200);
}
