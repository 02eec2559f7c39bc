//! Every attack type of issue 6, each hidden in the same simulated days of ordinary traffic, is found by the
//! default detectors, with the right attack name on the right key; and the ordinary traffic around them stays
//! within the false-alarm budget.

mod sim;

use std::collections::BTreeMap;

use argus_detect::forest::SplitMix64;
use argus_detect::{Alert, AlertChange, Attack, Detectors, DetectorsConfig, KeyType};
use argus_model::{Decision, Event, EventKind, LoginFailure, LoginOutcome, Principal};
use sim::{DAY, HOUR, MIN, SEC, api, login, with_call};

const ATTACKER_UA: &str = "python-requests/2.31.0";

fn attacker(ip: &str) -> Principal {
    Principal { ip: Some(ip.into()), user_agent: Some(ATTACKER_UA.into()), ..Principal::default() }
}

fn signed_in(sub: &str, sid: &str, jti: &str, ip: &str) -> Principal {
    Principal {
        sub: Some(sub.into()),
        client_id: Some("web".into()),
        sid: Some(sid.into()),
        jti: Some(jti.into()),
        ip: Some(ip.into()),
        user_agent: Some(ATTACKER_UA.into()),
        ..Principal::default()
    }
}

/// Slow brute force: one guess a minute for three hours, on one account, from one address.
fn slow_brute_force(start: i64) -> Vec<Event> {
    (0..180)
        .map(|i| {
            let failure = LoginOutcome::Failure(LoginFailure::BadPassword);
            login(start + i * MIN, "198.51.100.77", ATTACKER_UA, "customer7@example.com", failure)
        })
        .collect()
}

/// Credential stuffing from a botnet: 1,500 leaked pairs in 15 minutes from 600 addresses, 2-3 each.
fn stuffing(start: i64) -> Vec<Event> {
    (0..1500)
        .map(|i| {
            let ip = format!("45.{}.{}.{}", 10 + i % 600 / 250, i % 600 % 250, 7);
            let reason = if i % 5 == 0 { LoginFailure::BadPassword } else { LoginFailure::UnknownUser };
            login(start + i * 600, &ip, ATTACKER_UA, &format!("leaked{i}@mail.example"), LoginOutcome::Failure(reason))
        })
        .collect()
}

/// A stolen token: a live access token and session of a user, replayed from another network by a script.
fn stolen_token(events: &[Event], after: i64) -> (Vec<Event>, String) {
    let victim = events
        .iter()
        .find(|e| {
            e.time >= sim::at(after)
                && e.principal.jti.is_some()
                && e.principal.sub.is_some()
                && matches!(e.kind, EventKind::ApiCall(_))
        })
        .expect("a user is active");
    let mut p = victim.principal.clone();
    p.ip = Some("203.0.113.99".into());
    p.user_agent = Some(ATTACKER_UA.into());
    let t = victim.time.as_millis() - sim::T0;
    let jti = p.jti.clone().unwrap_or_default();
    let calls = (0..3).map(|i| api(t + 10 * SEC + i * 5 * SEC, p.clone(), "listAccounts", &[], 200)).collect();
    (calls, jti)
}

/// A BOLA walk: a signed-in user asks for accounts in sequence, the gate's ownership rule refuses each.
fn bola(start: i64) -> Vec<Event> {
    (0..150)
        .map(|i| {
            let p = signed_in("user-0005", "sid-5-evil", "jti-5-evil", "203.0.113.5");
            let mut e = api(start + i * 2 * SEC, p, "getAccount", &[(20_000 + i).to_string()], 403);
            with_call(&mut e, |c| {
                c.decision = Decision::Refused;
                c.reason = Some("not-owner".into());
            });
            e
        })
        .collect()
}

/// Scraping: a partner client reads a different transaction every second for 45 minutes.
fn scraping(start: i64) -> Vec<Event> {
    let p = Principal {
        client_id: Some("partner-x".into()),
        jti: Some("partner-token".into()),
        ip: Some("198.51.100.140".into()),
        user_agent: Some("partner-sync/1.0".into()),
        ..Principal::default()
    };
    (0..2700)
        .map(|i| {
            let ids = [format!("{}", 50_000 + i % 40 * 17), format!("tx-{i:08x}")];
            let mut e = api(start + i * SEC, p.clone(), "getTransaction", &ids, 200);
            with_call(&mut e, |c| c.bytes_out = 900);
            e
        })
        .collect()
}

/// Exfiltration: an established user pulls 20 pages of 400 transactions in five minutes, from their own browser
/// at home (an insider, or a hijacked browser: nothing but the volume is unusual).
fn exfiltration(user: &sim::User, start: i64) -> Vec<Event> {
    let device = &user.devices[0];
    let ip = format!("{}.{}.1.1", device.networks[0][0], device.networks[0][1]);
    (0..20)
        .map(|i| {
            let mut p = signed_in(&user.sub, &user.session(0), "jti-exfil", &ip);
            p.user_agent = Some(device.agent.into());
            let mut e = api(start + i * 15 * SEC, p, "listTransactions", &[user.accounts[0].clone()], 200);
            with_call(&mut e, |c| {
                c.records = Some(400);
                c.bytes_out = 120_000;
            });
            e
        })
        .collect()
}

/// A client acting up: the reporting service suddenly calls 40 times a second, half failing.
fn client_acting_up(start: i64) -> Vec<Event> {
    (0..4800)
        .map(|i| {
            let p = Principal {
                client_id: Some("reporting".into()),
                jti: Some(format!("rep-{}", (start + i * 25) / HOUR)),
                ip: Some("10.0.5.20".into()),
                user_agent: Some("reporting-service/2.1".into()),
                ..Principal::default()
            };
            let status = if i % 2 == 0 { 200 } else { 500 };
            api(start + i * 25, p, "listTransactions", &["50017".into()], status)
        })
        .collect()
}

/// Fuzzing: 300 malformed requests in two minutes from one address.
fn fuzzing(start: i64) -> Vec<Event> {
    (0..300)
        .map(|i| {
            let mut e = api(start + i * 400, attacker("192.0.2.200"), "createTransfer", &[], 400);
            with_call(&mut e, |c| {
                c.decision = Decision::Refused;
                c.reason = Some(if i % 3 == 0 { "method-not-allowed" } else { "invalid-request" }.into());
                c.path = format!("/transfers?fuzz={i}");
            });
            e
        })
        .collect()
}

/// A decoy hit by a signed-in user.
fn decoy(start: i64) -> Vec<Event> {
    let mut e = api(start, signed_in("user-0020", "sid-20-0", "jti-20-decoy", "81.2.2.2"), "exportAll", &[], 404);
    with_call(&mut e, |c| {
        c.decoy = true;
        c.decision = Decision::Refused;
        c.reason = Some("decoy".into());
    });
    vec![e]
}

/// An unusual flow: a session that jumps between operations in an order the app never leads anyone.
fn odd_flow(start: i64) -> Vec<Event> {
    let ops = ["updateProfile", "createTransfer", "getCard", "updateProfile", "listCards", "createTransfer"];
    (0..24)
        .map(|i| {
            let p = signed_in("user-0030", "sid-30-odd", "jti-30-odd", "81.3.3.3");
            let op = ops[i as usize % ops.len()];
            let ids = if op == "getCard" { vec!["card-000001".to_owned()] } else { vec![] };
            api(start + i * 20 * SEC, p, op, &ids, 200)
        })
        .collect()
}

/// A quiet walk the single-measure detectors miss: 60 calls at an ordinary pace, each on an account that is not
/// the caller's; the API serves most (it does not check ownership) and answers 404 for ids that do not exist.
/// Under every single threshold: 60 ids (enumeration needs 100), no sequence, 30% refused (BOLA needs 50%).
fn quiet_walk(start: i64) -> Vec<Event> {
    let mut rng = SplitMix64::new(77);
    (0..60)
        .map(|i| {
            let p = signed_in("user-0040", "sid-40-walk", "jti-40-walk", "81.4.4.4");
            let id = (10_000 + rng.below(90_000)).to_string();
            let status = if rng.below(10) < 3 { 404 } else { 200 };
            let mut e = api(start + i * 9 * SEC, p, "getAccount", &[id], status);
            with_call(&mut e, |c| c.bytes_out = if status == 200 { 700 } else { 120 });
            e
        })
        .collect()
}

#[test]
fn every_attack_is_found_in_ordinary_traffic() {
    let mut rng = SplitMix64::new(7);
    let world = sim::World::new(&mut rng, 200);
    let mut events = sim::benign(&mut rng, &world, 5);
    let ordinary = events.len();
    let busiest = world.users.iter().max_by(|a, b| a.visits.total_cmp(&b.visits)).unwrap();
    let d4 = 4 * DAY;
    let (stolen, stolen_jti) = stolen_token(&events, d4 + 13 * HOUR);
    let attacks = [
        slow_brute_force(d4 + HOUR),
        stuffing(d4 + 6 * HOUR),
        stolen,
        bola(d4 + 9 * HOUR),
        scraping(d4 + 12 * HOUR),
        exfiltration(busiest, d4 + 15 * HOUR),
        client_acting_up(d4 + 18 * HOUR),
        fuzzing(d4 + 20 * HOUR),
        decoy(d4 + 21 * HOUR),
        odd_flow(d4 + 22 * HOUR),
        quiet_walk(d4 + 23 * HOUR),
    ];
    for a in attacks {
        sim::merge(&mut events, a);
    }

    let mut detectors = Detectors::from_config(&DetectorsConfig::default()).unwrap();
    let mut open: BTreeMap<String, Option<Alert>> = BTreeMap::new();
    for e in &events {
        for draft in detectors.observe(e) {
            let (attack, key_type, key) = draft.alert_key();
            let slot = open.entry(format!("{attack}/{key_type}/{key}")).or_default();
            AlertChange::apply(slot, draft, || "a".into());
        }
    }
    let mut alerts: BTreeMap<String, Alert> = open.into_iter().filter_map(|(k, a)| a.map(|a| (k, a))).collect();

    let expected = [
        (Attack::BruteForce, KeyType::Account, "customer7@example.com".to_owned()),
        (Attack::CredentialStuffing, KeyType::Node, "issuer".to_owned()),
        (Attack::StolenToken, KeyType::Token, stolen_jti),
        (Attack::Bola, KeyType::User, "user-0005".to_owned()),
        (Attack::Scraping, KeyType::Client, "partner-x".to_owned()),
        (Attack::Exfiltration, KeyType::User, busiest.sub.clone()),
        (Attack::ClientAnomaly, KeyType::Client, "reporting".to_owned()),
        (Attack::Probing, KeyType::Ip, "192.0.2.200".to_owned()),
        (Attack::DecoyHit, KeyType::User, "user-0020".to_owned()),
        (Attack::UnusualFlow, KeyType::Session, "sid-30-odd".to_owned()),
        (Attack::Anomaly, KeyType::User, "user-0040".to_owned()),
    ];
    let expected: Vec<String> = expected.iter().map(|(a, t, k)| format!("{a}/{t}/{k}")).collect();
    let listing = |alerts: &BTreeMap<String, Alert>| {
        alerts
            .values()
            .map(|a| format!("{}/{}/{} {}: {}", a.attack, a.key_type, a.key, a.detector, a.feature.explanation))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut missing = Vec::new();
    for key in &expected {
        match alerts.get(key) {
            Some(a) => assert!(!a.evidence.is_empty() && a.first_seen <= a.last_seen, "{a:?}"),
            None => missing.push(key.clone()),
        }
    }
    assert!(missing.is_empty(), "missing: {missing:?}\nalerts:\n{}", listing(&alerts));
    // What else fired: the same attackers under other names (a BOLA walk is also an enumeration, a scraper walks
    // ids too), and false alarms on ordinary keys, which must stay within the budget.
    // The BOLA walker's refusals also make its app, `web`, fail 97% of its calls for a window: rightly reported.
    let attackers = [
        "web",
        "customer7@example.com",
        "user-0005",
        "partner-x",
        "reporting",
        "192.0.2.200",
        "user-0020",
        "sid-30-odd",
        "user-0040",
        "sid-5-evil",
        "jti-5-evil",
        "sid-40-walk",
    ];
    alerts.retain(|name, a| {
        !expected.contains(name) && !attackers.contains(&a.key.as_str()) && !a.key.starts_with("45.")
    });
    assert!(alerts.len() * 10_000 <= ordinary, "false alarms:\n{}", listing(&alerts));
}
