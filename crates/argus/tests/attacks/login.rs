//! Attacks on the login form: password guessing fast and slow, credential stuffing from one address and spread
//! over many.

use http::StatusCode;
use serde_json::json;

use crate::harness::{CROWD, Demo, Person, assert_explained, benign, keys_of, rule};

/// Guessing, one address: blocked for 15 minutes (the demo's rule, here in force).
fn block_guessers() -> String {
    rule(
        "guessing-block-ip",
        "alert.attack in ['brute_force', 'credential_stuffing'] && alert.key_type == 'ip'",
        "block",
        "ttl_secs = 900",
    )
}

/// Whether a sign-in attempt got through; wrong passwords and refusals alike are not.
async fn guess(demo: &Demo, attacker: &Person, username: &str, password: &str) -> bool {
    demo.try_sign_in(attacker, username, password).await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_password_guessing_is_detected_and_the_address_blocked_at_the_form_and_the_gate() {
    let demo = Demo::start(&block_guessers()).await;
    let people = benign(&demo, &CROWD).await;
    let attacker = Person { user_agent: "Mozilla/4.0 (Hydra)".into(), ..Person::new("attacker", "203.0.113.10") };

    // Thirty guesses at alice's password, one a second, while the others work.
    for i in 0..30 {
        assert!(!guess(&demo, &attacker, "alice", &format!("hunter{i}")).await);
        if i % 5 == 0 {
            demo.benign_round(&people, i).await;
        }
        demo.advance(1);
    }

    let alert = demo.alert("brute_force", &attacker.ip).await;
    assert_explained(&alert, "brute_force", "ip", &attacker.ip, "failed_logins_per_ip");
    let explanation = alert["feature"]["explanation"].as_str().unwrap();
    assert!(explanation.contains("failed sign-ins from 203.0.113.10 on 1 account"), "{alert:#}");
    assert!(alert["feature"]["observed"].as_f64().unwrap() >= 20.0, "{alert:#}");
    demo.action("block", json!({"type": "ip", "value": attacker.ip})).await;

    // Blocked: even the right password is not checked at the form, and the gate refuses the address.
    let refused = demo.try_sign_in(&attacker, "alice", crate::harness::PASSWORD).await.unwrap_err();
    assert!(refused.starts_with("403"), "{refused}");
    let gate = demo.call_with(None, (&attacker.ip, &attacker.user_agent), "GET", "/health").await;
    assert_eq!(gate.status, StatusCode::FORBIDDEN, "{}", gate.body);
    assert!(gate.body.contains("urn:argus:problem:blocked"), "{}", gate.body);

    // alice herself is not locked out (no per-account lock), and the others carry on.
    let mut alice = Person::new("alice", "198.51.100.1");
    demo.sign_in(&mut alice).await;
    demo.benign_round(&people, 0).await;
    let mut innocent = keys_of(&people);
    innocent.push(alice.ip.clone());
    demo.assert_no_alert_on(&innocent).await;
    demo.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_guessing_over_hours_from_rotating_addresses_is_detected_and_the_user_notified() {
    let notify =
        rule("slow-guessing-notify", "alert.attack == 'brute_force' && alert.key_type == 'account'", "notify", "");
    let demo = Demo::start(&notify).await;
    let mut people = benign(&demo, &CROWD).await;

    // One guess every ten minutes for six hours, each from one of eight addresses: under every per-address
    // threshold and under the per-account burst detector (which forgets 6 an hour).
    let mut detected_after = None;
    for i in 0..36usize {
        let attacker = Person::new("attacker", &format!("203.0.113.{}", 20 + i % 8));
        assert!(!guess(&demo, &attacker, "alice", &format!("summer{i}")).await);
        demo.benign_round(&people, i).await;
        if i % 12 == 11 {
            // People sign in again now and then.
            for p in &mut people {
                demo.sign_in(p).await;
            }
        }
        demo.advance(600);
        if detected_after.is_none() && i >= 20 {
            demo.settle().await;
            let alerts = demo.watch("/api/alerts?attack=brute_force&key_type=account&key=alice").await;
            if !alerts.as_array().unwrap().is_empty() {
                detected_after = Some(i + 1);
            }
        }
    }
    let detected_after = detected_after.expect("the slow guessing was never detected");
    assert!((24..=34).contains(&detected_after), "detected after {detected_after} guesses");

    let alert = demo.alert("brute_force", "alice").await;
    assert_explained(&alert, "brute_force", "account", "alice", "failed_logins_per_account_slow");
    assert_eq!(alert["detector"], "slow_brute_force", "{alert:#}");
    assert_eq!(alert["severity"], "high", "guessing spread over 8 addresses: {alert:#}");
    // The fast per-account bucket never filled: this was only seen as slow guessing.
    let fast = demo.watch("/api/alerts?attack=brute_force&key_type=account").await;
    assert!(fast.as_array().unwrap().iter().all(|a| a["detector"] == "slow_brute_force"), "{fast:#}");

    // The response: alice is told (a notification for her user).
    let alice_sub = demo.up.demo.as_ref().unwrap().users.iter().find(|(n, _)| n == "alice").unwrap().1.clone();
    demo.action("notify", json!({"type": "user", "value": alice_sub})).await;
    let notes = demo.watch("/api/notifications").await;
    assert!(notes.to_string().contains(&alice_sub), "{notes:#}");

    demo.assert_no_alert_on(&keys_of(&people)).await;
    demo.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_stuffing_from_one_address_is_detected_and_the_address_blocked() {
    let demo = Demo::start(&block_guessers()).await;
    let people = benign(&demo, &CROWD).await;
    let attacker = Person { user_agent: "python-requests/2.32.3".into(), ..Person::new("x", "203.0.113.30") };

    // A leaked list: one try per account, most of them not even users here, carol's with an old password.
    for i in 0..25 {
        let username = if i == 7 { "carol".to_owned() } else { format!("leaked{i}@example.com") };
        assert!(!guess(&demo, &attacker, &username, &format!("Passw0rd{i}")).await);
        if i % 5 == 0 {
            demo.benign_round(&people, i).await;
        }
        demo.advance(1);
    }

    let alert = demo.alert("credential_stuffing", &attacker.ip).await;
    assert_explained(&alert, "credential_stuffing", "ip", &attacker.ip, "failed_logins_per_ip");
    assert!(alert["feature"]["explanation"].as_str().unwrap().contains("accounts"), "{alert:#}");
    demo.action("block", json!({"type": "ip", "value": attacker.ip})).await;
    let gate = demo.call_with(None, (&attacker.ip, &attacker.user_agent), "GET", "/health").await;
    assert_eq!(gate.status, StatusCode::FORBIDDEN, "{}", gate.body);

    // carol was tried once with a wrong password: no alert on her, and she signs in as usual.
    let mut carol = Person::new("carol", "192.0.2.44");
    demo.sign_in(&mut carol).await;
    let mut innocent = keys_of(&people);
    innocent.push("carol".into());
    demo.assert_no_alert_on(&innocent).await;
    demo.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_stuffing_spread_over_many_addresses_is_detected_and_recorded() {
    let config = format!(
        "[watch.detectors.stuffing_spread]\nwindow_secs = 600\nmin_failures = 30\nmin_accounts = 20\nmin_ips = 10\n\
         baseline_min_logins = 5\n{}",
        rule(
            "spread-stuffing-record",
            "alert.attack == 'credential_stuffing' && alert.key_type == 'node'",
            "record",
            ""
        )
    );
    let demo = Demo::start(&config).await;
    let mut people = benign(&demo, &CROWD).await;

    // A normal morning first: people sign in on their devices, now and then one mistypes.
    for round in 0..3 {
        for (i, p) in people.iter_mut().enumerate() {
            if round == 1 && i == 0 {
                assert!(demo.try_sign_in(p, &p.name.clone(), "typo").await.is_err());
            }
            demo.sign_in(p).await;
            demo.sign_in(p).await;
        }
        demo.benign_round(&people, round).await;
        demo.advance(600);
    }
    demo.align(600);

    // Then a botnet: 40 leaked accounts, each tried once from its own address, over four minutes.
    for i in 0..40u32 {
        let bot = Person::new("bot", &format!("198.18.{}.{}", i / 200, 1 + i % 200));
        assert!(!guess(&demo, &bot, &format!("victim{i}@example.com"), "Winter2025!").await);
        if i % 10 == 0 {
            demo.benign_round(&people, i as usize).await;
        }
        demo.advance(6);
    }

    let alert = demo.alert("credential_stuffing", "issuer").await;
    assert_explained(&alert, "credential_stuffing", "node", "issuer", "failed_login_ratio");
    assert!(alert["feature"]["baseline"].is_number(), "the normal failure ratio: {alert:#}");
    assert!(alert["feature"]["deviation"].is_number(), "{alert:#}");
    let recorded = demo.action("record", json!({"type": "node", "value": "issuer"})).await;
    assert_eq!(recorded["status"], "applied", "{recorded:#}");
    // No single bot address tried often enough to be called out, and no benign person was.
    let alerts = demo.alerts().await;
    assert!(alerts.iter().all(|a| !a["key"].as_str().unwrap().starts_with("198.18.")), "{alerts:#?}");
    demo.assert_no_alert_on(&keys_of(&people)).await;
    demo.shutdown().await;
}
