//! Attacks through the gate: a stolen token, an object-id walk, scraping, exfiltration, a client acting up,
//! probing, a decoy hit.

use argus_model::Activity;
use argus_oauth::notice::NoticeStore;
use http::StatusCode;
use serde_json::json;

use crate::harness::{CROWD, Demo, Person, Reply, assert_explained, benign, keys_of, rule};

/// Each person's user key (`sub`).
fn sub_of(p: &Person) -> String {
    p.claim("sub")
}

/// The `error` of a `WWW-Authenticate` challenge.
fn challenge_error(r: &Reply) -> Option<String> {
    let challenge = r.www_authenticate.as_deref()?;
    challenge.split(", ").find_map(|p| p.split_once("error=")).map(|(_, v)| v.trim_matches('"').to_owned())
}

/// The tokens a refresh of `p`'s refresh token gets from the issuer, from `p`'s address.
async fn refreshed(demo: &Demo, p: &Person) -> Person {
    let form = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("grant_type", "refresh_token"),
            ("refresh_token", p.refresh.as_deref().unwrap()),
            ("client_id", &p.client_id),
        ])
        .finish();
    let url = format!("{}/token", demo.up.issuer_url);
    let r = demo.send("POST", &url, (&p.ip, &p.user_agent), None, &[], Some(form)).await;
    assert_eq!(r.status, StatusCode::OK, "refresh: {}", r.body);
    let tokens = r.json();
    Person {
        access: tokens["access_token"].as_str().map(str::to_owned),
        refresh: tokens["refresh_token"].as_str().map(str::to_owned),
        ..p.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stolen_token_must_step_up_at_the_gate_while_the_owners_other_session_works() {
    let step_up =
        rule("stolen-session-step-up", "alert.attack == 'stolen_token' && alert.key_type != 'family'", "step_up", "");
    let demo = Demo::start(&step_up).await;
    let people = benign(&demo, &CROWD).await;
    // alice on her laptop, and on her phone (another device, another sign-in).
    let mut laptop = Person::new("alice", "198.51.100.1");
    demo.sign_in(&mut laptop).await;
    let mut phone = Person {
        user_agent: "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) Mobile/15E148 Safari/604.1".into(),
        ..Person::new("alice", "100.64.20.5")
    };
    demo.sign_in(&mut phone).await;
    assert_ne!(laptop.claim("sid"), phone.claim("sid"));

    // The laptop's token is copied by malware and replayed from the thief's machine while alice keeps working.
    let thief = Person { user_agent: "curl/8.5.0".into(), ..Person { ip: "203.0.113.40".into(), ..laptop.clone() } };
    let mut stolen_used = 0;
    for round in 0..6 {
        demo.benign_round(&people, round).await;
        // alice's own calls stop working once the session is revoked; that is checked below.
        demo.call(&laptop, "GET", "/accounts").await;
        if demo.call(&thief, "GET", "/accounts").await.status == StatusCode::OK {
            stolen_used += 1;
        }
        demo.advance(20);
    }
    assert!(stolen_used >= 1, "the thief never got in");

    let jti = laptop.claim("jti");
    let alert = demo.alert("stolen_token", &jti).await;
    assert_explained(&alert, "stolen_token", "token", &jti, "new_user_agent|context_switches");
    let explanation = alert["feature"]["explanation"].as_str().unwrap();
    assert!(explanation.contains("198.51.100.1") && explanation.contains("203.0.113.40"), "{alert:#}");
    // The evidence names the device the stolen token was issued to (its `did`), as the gate saw it.
    let device = laptop.claim("did");
    assert!(!device.is_empty() && device != "null", "the demo app's tokens carry a device id");
    let calls: Vec<&serde_json::Value> =
        alert["evidence_events"].as_array().unwrap().iter().filter(|e| e["type"] == "ApiCall").collect();
    assert!(!calls.is_empty() && calls.iter().all(|e| e["principal"]["did"] == device.as_str()), "{alert:#}");
    demo.action("step_up", json!({"type": "session", "value": laptop.claim("sid")})).await;

    // From then on the session's sign-in no longer counts at the gate, from anywhere: the RFC 9470 challenge asks
    // for a fresh one, which the thief cannot give. A refresh keeps the old sign-in's auth_time: no way round it.
    let refused = demo.call(&thief, "GET", "/accounts").await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.body);
    assert_eq!(
        challenge_error(&refused).as_deref(),
        Some("insufficient_user_authentication"),
        "{:?}",
        refused.www_authenticate
    );
    assert!(refused.www_authenticate.as_deref().unwrap().contains("max_age="), "{:?}", refused.www_authenticate);
    let challenged = demo.call(&laptop, "GET", "/accounts").await;
    assert_eq!(challenge_error(&challenged).as_deref(), Some("insufficient_user_authentication"));
    let thief_refreshed = refreshed(&demo, &thief).await;
    let refused = demo.call(&thief_refreshed, "GET", "/accounts").await;
    assert_eq!(challenge_error(&refused).as_deref(), Some("insufficient_user_authentication"), "{}", refused.body);
    assert_eq!(demo.call(&phone, "GET", "/accounts").await.status, StatusCode::OK);
    // alice signs in again on her laptop (auth_time is whole seconds: past the demand's second) and works on.
    demo.advance(2);
    demo.sign_in(&mut laptop).await;
    assert_eq!(demo.call(&laptop, "GET", "/accounts").await.status, StatusCode::OK);
    demo.benign_round(&people, 0).await;

    let mut innocent = keys_of(&people);
    innocent.extend([phone.claim("sid"), phone.claim("jti"), phone.ip.clone(), laptop.ip.clone()]);
    demo.assert_no_alert_on(&innocent).await;
    demo.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walking_account_ids_is_detected_as_bola_and_the_user_blocked() {
    let block = rule("walk-block-user", "alert.attack in ['bola', 'enumeration']", "block", "ttl_secs = 3600");
    let demo = Demo::start(&block).await;
    let people = benign(&demo, &CROWD).await;
    demo.add_user("mallory").await;
    let mut mallory = Person { user_agent: "python-requests/2.32.3".into(), ..Person::new("mallory", "203.0.113.50") };
    demo.sign_in(&mut mallory).await;

    // Account ids are sequential: mallory asks for one after another. The first five are other people's, served
    // (the demo's BOLA hole); the rest do not exist.
    let mut served = 0;
    for (i, id) in (1001..1041).enumerate() {
        if demo.call(&mallory, "GET", &format!("/accounts/{id}")).await.status == StatusCode::OK {
            served += 1;
        }
        if i % 8 == 0 {
            demo.benign_round(&people, i).await;
        }
        demo.advance(2);
    }
    assert_eq!(served, 5, "the demo's BOLA hole serves every existing account");

    let sub = sub_of(&mallory);
    let alert = demo.alert("bola", &sub).await;
    assert_explained(&alert, "bola", "user", &sub, "refused_object_ids");
    assert!(alert["feature"]["observed"].as_f64().unwrap() >= 10.0, "{alert:#}");
    demo.action("block", json!({"type": "user", "value": sub})).await;
    let refused = demo.call(&mallory, "GET", "/accounts").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(refused.body.contains("urn:argus:problem:blocked"), "{}", refused.body);
    demo.benign_round(&people, 0).await;
    demo.assert_no_alert_on(&keys_of(&people)).await;
    demo.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scraping_everything_readable_for_minutes_is_detected_and_the_scraper_blocked() {
    let config = format!(
        "[watch.detectors.scraping]\nwindow_secs = 60\nmin_calls = 20\nsustain_windows = 3\n\
         distinct_path_ratio = 0.4\n{}",
        rule("scraping-block", "alert.attack == 'scraping'", "block", "ttl_secs = 3600")
    );
    let demo = Demo::start(&config).await;
    let people = benign(&demo, &CROWD).await;
    demo.add_user("scraper").await;
    let mut bot = Person { user_agent: "Scrapy/2.11".into(), ..Person::new("scraper", "203.0.113.60") };
    demo.sign_in(&mut bot).await;

    // Everything the API lets it read, each page twice a minute, for four minutes.
    let mut pages = vec!["/accounts".to_owned(), "/health".to_owned(), "/openapi.yaml".to_owned()];
    pages.extend((1001..=1005).map(|id| format!("/accounts/{id}")));
    pages.extend((5001..=5004).map(|id| format!("/transfers/{id}")));
    demo.align(60);
    for _ in 0..4 {
        for (i, page) in pages.iter().chain(pages.iter()).enumerate() {
            let r = demo.call(&bot, "GET", page).await;
            if r.status == StatusCode::FORBIDDEN {
                break;
            }
            assert_eq!(r.status, StatusCode::OK, "{page}: {}", r.body);
            if i % 6 == 0 {
                demo.benign_round(&people, i).await;
            }
            demo.advance(2);
        }
        demo.advance(60 - (2 * 2 * pages.len() as u64) % 60);
    }

    let sub = sub_of(&bot);
    let alert = demo.alert("scraping", &sub).await;
    assert_explained(&alert, "scraping", "user", &sub, "sustained_reads");
    demo.action("block", json!({"type": "user", "value": sub})).await;
    assert_eq!(demo.call(&bot, "GET", "/accounts").await.status, StatusCode::FORBIDDEN);
    demo.benign_round(&people, 0).await;
    demo.assert_no_alert_on(&keys_of(&people)).await;
    demo.shutdown().await;
}

/// The demo's spec with the marks an operator adds: reads of accounts and transfers return sensitive records,
/// and `/admin/export` is a decoy no legitimate client knows.
fn annotated_demo_spec() -> String {
    let mut spec = argus_demo::OPENAPI_YAML.to_owned();
    for op in ["listAccounts", "getAccount", "listAccountTransfers"] {
        let at = format!("      operationId: {op}\n");
        assert!(spec.contains(&at), "{op}");
        spec = spec.replace(&at, &format!("{at}      x-argus-sensitive: true\n"));
    }
    let decoy = "  /admin/export:\n    get:\n      operationId: exportEverything\n      security: []\n      \
                 x-argus-decoy: true\n      responses:\n        \"200\": {description: never answered}\n";
    spec.replace("paths:\n", &format!("paths:\n{decoy}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_pulling_far_more_records_than_usual_loses_the_session_and_is_told() {
    let config = format!(
        "[watch.detectors.exfiltration]\nwindow_secs = 60\nmin_records = 60\nown_min_windows = 3\n\
         peer_min_windows = 6\n{}{}",
        rule("exfiltration-end-session", "alert.attack == 'exfiltration'", "revoke", "scope = \"session\""),
        rule("exfiltration-notify", "alert.attack == 'exfiltration'", "notify", "")
    );
    let demo = Demo::start(&config).await;
    demo.reload_with_spec(&annotated_demo_spec());
    let crowd = [("alice", "198.51.100.1"), ("carol", "192.0.2.44"), ("dave", "100.64.3.9")];
    let people = benign(&demo, &crowd).await;
    let mut bob = Person::new("bob", "198.51.100.7");
    demo.sign_in(&mut bob).await;

    // Ten ordinary minutes: everyone, bob included, looks at their accounts a few times a minute.
    for _ in 0..10 {
        for round in 0..3 {
            demo.benign_round(&people, round).await;
            demo.benign_round(std::slice::from_ref(&bob), round).await;
            demo.advance(20);
        }
    }
    // Then bob's session pulls every account there is, over and over, within one minute.
    let mut pulled = 0;
    for i in 0..150u64 {
        let r = demo.call(&bob, "GET", &format!("/accounts/{}", 1001 + i % 5)).await;
        if r.status != StatusCode::OK {
            break;
        }
        pulled += 1;
        if i % 30 == 0 {
            demo.benign_round(&people, i as usize).await;
        }
    }
    assert!(pulled >= 60, "{pulled}");

    let sub = sub_of(&bob);
    let alert = demo.alert("exfiltration", &sub).await;
    assert_explained(&alert, "exfiltration", "user", &sub, "records_per_window");
    let f = &alert["feature"];
    assert!(f["baseline"].as_f64().unwrap() < f["observed"].as_f64().unwrap() / 5.0, "{alert:#}");
    assert!(f["deviation"].as_f64().unwrap() > 0.0, "{alert:#}");
    demo.action("revoke", json!({"type": "session", "value": bob.claim("sid")})).await;
    demo.action("notify", json!({"type": "user", "value": sub})).await;
    assert_eq!(demo.call(&bob, "GET", "/accounts").await.status, StatusCode::UNAUTHORIZED);
    // bob is told as the issuer tells him anything: a notice on his account page (and by `[notify]`), in plain
    // words, saying when and from where.
    let notices = NoticeStore::notices(&demo.up.store, &sub, 10).await.unwrap();
    let told: Vec<_> = notices.iter().filter(|n| n.kind == Activity::SecurityAlert).collect();
    assert_eq!(told.len(), 1, "{notices:?}");
    let summary = &told[0].body.summary;
    assert!(summary.contains("far more of your data read than usual"), "{summary}");
    assert!(!summary.contains("exfiltration") && !summary.contains("records_per_window"), "{summary}");
    assert_eq!(told[0].body.ip.as_deref(), Some(bob.ip.as_str()));
    demo.benign_round(&people, 0).await;
    demo.assert_no_alert_on(&keys_of(&people)).await;
    demo.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_suddenly_calling_far_more_than_usual_is_detected_and_blocked_alone() {
    let config = format!(
        "[watch.detectors.client_spike]\nwindow_secs = 60\nmin_calls = 40\nmin_windows = 5\n{}",
        rule("client-block", "alert.attack == 'client_anomaly'", "block", "ttl_secs = 600")
    );
    let demo = Demo::start(&config).await;
    demo.add_app("budget-app").await;
    let people = benign(&demo, &CROWD).await;
    // alice also uses a budgeting app that reads her accounts now and then.
    let mut alice = Person { client_id: "budget-app".into(), ..Person::new("alice", "198.51.100.1") };
    demo.sign_in(&mut alice).await;
    for minute in 0..8 {
        demo.benign_round(&people, minute).await;
        demo.benign_round(std::slice::from_ref(&alice), minute).await;
        demo.advance(30);
        demo.benign_round(&people, minute).await;
        demo.advance(30);
    }
    // A bad release: the app's sync loop hammers the API.
    let mut sent = 0;
    for i in 0..150 {
        if demo.call(&alice, "GET", "/accounts").await.status != StatusCode::OK {
            break;
        }
        sent += 1;
        if i % 30 == 0 {
            demo.benign_round(&people, i).await;
        }
    }
    assert!(sent >= 40, "{sent}");

    let alert = demo.alert("client_anomaly", "budget-app").await;
    assert_explained(&alert, "client_anomaly", "client", "budget-app", "calls_per_window");
    assert!(alert["feature"]["baseline"].is_number() && alert["feature"]["deviation"].is_number(), "{alert:#}");
    demo.action("block", json!({"type": "client", "value": "budget-app"})).await;
    assert_eq!(demo.call(&alice, "GET", "/accounts").await.status, StatusCode::FORBIDDEN);
    // The demo app, used by everyone else, is untouched.
    demo.benign_round(&people, 0).await;
    let mut innocent = keys_of(&people);
    innocent.push("demo-app".into());
    demo.assert_no_alert_on(&innocent).await;
    demo.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzzing_the_api_is_detected_as_probing_and_the_address_blocked() {
    let block =
        rule("probing-block-ip", "alert.attack == 'probing' && alert.key_type == 'ip'", "block", "ttl_secs = 600");
    let demo = Demo::start(&block).await;
    let people = benign(&demo, &CROWD).await;
    demo.add_user("fuzz").await;
    let mut fuzzer = Person { user_agent: "Fuzz Faster U Fool v2.1.0".into(), ..Person::new("fuzz", "203.0.113.70") };
    demo.sign_in(&mut fuzzer).await;

    // Malformed ids, unknown parameters, wrong methods, paths that are not in the API.
    let probes = ["/accounts/abc", "/accounts/-1", "/accounts?debug=1", "/accounts/1001/transfers?limit=0", "/.env"];
    let mut refused = 0;
    for i in 0..40 {
        let (method, path) = if i % 6 == 5 { ("DELETE", "/accounts") } else { ("GET", probes[i % probes.len()]) };
        let r = demo.call(&fuzzer, method, path).await;
        if r.status == StatusCode::FORBIDDEN && r.body.contains("blocked") {
            break;
        }
        assert!(r.status.is_client_error(), "{path}: {}", r.status);
        refused += 1;
        if i % 8 == 0 {
            demo.benign_round(&people, i).await;
        }
        demo.advance(1);
    }
    assert!(refused >= 30, "{refused}");

    let alert = demo.alert("probing", &fuzzer.ip).await;
    assert_explained(&alert, "probing", "ip", &fuzzer.ip, "malformed_call_refusals");
    assert!(alert["feature"]["explanation"].as_str().unwrap().contains("refused as malformed"), "{alert:#}");
    demo.action("block", json!({"type": "ip", "value": fuzzer.ip})).await;
    let blocked = demo.call(&fuzzer, "GET", "/accounts").await;
    assert_eq!(blocked.status, StatusCode::FORBIDDEN, "{}", blocked.body);
    demo.benign_round(&people, 0).await;
    demo.assert_no_alert_on(&keys_of(&people)).await;
    demo.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decoy_hit_blocks_the_address_at_once() {
    let block =
        rule("decoy-block-ip", "alert.attack == 'decoy_hit' && alert.key_type == 'ip'", "block", "ttl_secs = 3600");
    let demo = Demo::start(&block).await;
    demo.reload_with_spec(&annotated_demo_spec());
    let people = benign(&demo, &CROWD).await;
    let intruder = Person { user_agent: "curl/8.5.0".into(), ..Person::new("intruder", "203.0.113.80") };

    demo.benign_round(&people, 0).await;
    let health = demo.call_with(None, (&intruder.ip, &intruder.user_agent), "GET", "/health").await;
    assert_eq!(health.status, StatusCode::OK);
    // The trap looks like nothing is there.
    let trap = demo.call_with(None, (&intruder.ip, &intruder.user_agent), "GET", "/admin/export").await;
    assert_eq!(trap.status, StatusCode::NOT_FOUND, "{}", trap.body);
    demo.advance(1);

    let alert = demo.alert("decoy_hit", &intruder.ip).await;
    assert_explained(&alert, "decoy_hit", "ip", &intruder.ip, "decoy_calls");
    assert!(alert["feature"]["explanation"].as_str().unwrap().contains("exportEverything"), "{alert:#}");
    demo.action("block", json!({"type": "ip", "value": intruder.ip})).await;
    let blocked = demo.call_with(None, (&intruder.ip, &intruder.user_agent), "GET", "/health").await;
    assert_eq!(blocked.status, StatusCode::FORBIDDEN, "{}", blocked.body);
    demo.benign_round(&people, 1).await;
    demo.assert_no_alert_on(&keys_of(&people)).await;
    demo.shutdown().await;
}
