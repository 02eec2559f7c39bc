use argus_model::{Event, EventKind, Login, LoginFailure, LoginOutcome, Principal, Timestamp};

use super::*;
use crate::alert::Alert;

/// A base time far from zero, so "since" arithmetic is not accidentally flattered by the epoch.
const T0: i64 = 1_764_000_000_000;

fn login(ms_after: i64, ip: Option<&str>, user: &str, outcome: LoginOutcome) -> Event {
    Event::new(
        Timestamp::from_millis(T0 + ms_after),
        "issuer",
        Principal { ip: ip.map(str::to_owned), ..Default::default() },
        EventKind::Login(Login { username: user.to_owned(), outcome }),
    )
}

fn failure(ms_after: i64, ip: &str, user: &str) -> Event {
    login(ms_after, Some(ip), user, LoginOutcome::Failure(LoginFailure::BadPassword))
}

fn detector() -> FailedLogin {
    FailedLogin::new(&FailedLoginConfig::default()).unwrap()
}

fn of(drafts: &[AlertDraft], key_type: KeyType) -> Vec<&AlertDraft> {
    drafts.iter().filter(|d| d.key_type == key_type).collect()
}

#[test]
fn a_burst_from_one_ip_alerts_once_then_deduplicates() {
    let mut d = detector();
    let mut ip_drafts = Vec::new();
    let mut first_at = None;
    // 25 failures in 12 seconds, each on a different account so only the IP bucket can fire.
    for i in 0..25 {
        let drafts = d.observe(&failure(i * 500, "203.0.113.7", &format!("user{i}")));
        assert!(of(&drafts, KeyType::Account).is_empty());
        for draft in of(&drafts, KeyType::Ip) {
            first_at.get_or_insert(i);
            ip_drafts.push(draft.clone());
        }
    }
    // The level crosses 20 on the 22nd failure: over 10.5 s the first 21 leaked 1.75.
    assert_eq!(first_at, Some(21));
    assert!(ip_drafts.iter().all(|x| (x.attack, x.key.as_str()) == (Attack::CredentialStuffing, "203.0.113.7")));
    let first = &ip_drafts[0];
    assert_eq!(first.severity, Severity::Medium);
    assert_eq!(first.feature.threshold, 20.0);
    assert_eq!(
        first.feature.explanation,
        "22 failed sign-ins from 203.0.113.7 on 22 accounts within ~11 s (threshold 20, leaks 10/min)"
    );
    assert_eq!(first.evidence.len(), 20);

    // The store folds the repeats into one alert per (attack, key type, key).
    let mut drafts = ip_drafts.into_iter();
    let mut alert = Alert::open("a1".into(), drafts.next().unwrap());
    let mut escalations = 0;
    for draft in drafts {
        assert_eq!(
            (draft.attack, draft.key_type, draft.key.as_str()),
            (alert.attack, alert.key_type, alert.key.as_str())
        );
        escalations += usize::from(alert.absorb(draft).is_some());
    }
    assert_eq!((alert.count, escalations), (4, 0));
    assert_eq!(alert.last_seen, Timestamp::from_millis(T0 + 24 * 500));
    assert!(alert.feature.explanation.starts_with("25 failed sign-ins"), "{}", alert.feature.explanation);
}

#[test]
fn a_burst_on_one_account_from_one_ip_is_brute_force_on_both_keys() {
    let mut d = detector();
    let mut all = Vec::new();
    for i in 0..45 {
        all.extend(d.observe(&failure(i * 100, "198.51.100.1", "Alice")));
    }
    let ip = of(&all, KeyType::Ip);
    let account = of(&all, KeyType::Account);
    assert!(ip.iter().all(|x| x.attack == Attack::BruteForce));
    assert!(account.iter().all(|x| x.attack == Attack::BruteForce && x.key == "alice"));
    assert_eq!(
        account[0].feature.explanation,
        "11 failed sign-ins for account \"alice\" from 1 IP within ~1 s (threshold 10, leaks 6/h)"
    );
    // Doubling the threshold escalates.
    assert_eq!(ip.first().map(|x| x.severity), Some(Severity::Medium));
    assert_eq!(ip.last().map(|x| x.severity), Some(Severity::High));
    assert_eq!(account.last().map(|x| x.severity), Some(Severity::High));
}

#[test]
fn a_slow_drip_below_the_leak_rate_never_alerts() {
    let mut d = detector();
    // Per IP: one failure every 7 s (about 8.6 a minute, under the 10/min leak) for a whole day, on rotating
    // accounts so the account buckets see the drip only every 100 events.
    for i in 0..(24 * 3600 / 7) {
        let drafts = d.observe(&failure(i * 7_000, "203.0.113.9", &format!("user{}", i % 100)));
        assert!(drafts.is_empty(), "event {i}: {drafts:?}");
    }
    // Per account: one failure every 11 minutes (under 6/h) from many IPs, for a week.
    for i in 0..(7 * 24 * 60 / 11) {
        let ip = format!("192.0.2.{}", i % 250);
        let drafts = d.observe(&failure(i * 11 * 60_000, &ip, "bob"));
        assert!(drafts.is_empty(), "event {i}: {drafts:?}");
    }
}

#[test]
fn a_user_who_mistypes_a_few_times_never_alerts() {
    let mut d = detector();
    for day in 0..30 {
        for attempt in 0..4 {
            let at = day * 86_400_000 + attempt * 5_000;
            assert!(d.observe(&failure(at, "192.0.2.10", "carol")).is_empty());
        }
        assert!(
            d.observe(&login(day * 86_400_000 + 30_000, Some("192.0.2.10"), "carol", LoginOutcome::Success)).is_empty()
        );
    }
}

#[test]
fn one_account_tried_from_many_ips_alerts_on_the_account() {
    let mut d = detector();
    let mut all = Vec::new();
    for i in 0..12 {
        all.extend(d.observe(&failure(i * 60_000, &format!("198.51.100.{i}"), "dave")));
    }
    assert!(of(&all, KeyType::Ip).is_empty());
    let account = of(&all, KeyType::Account);
    // Ten failures in nine minutes leaked 0.9, so the 11th crosses the threshold.
    assert_eq!(account.len(), 2);
    assert_eq!((account[0].attack, account[0].key.as_str()), (Attack::BruteForce, "dave"));
    assert_eq!(
        account[0].feature.explanation,
        "11 failed sign-ins for account \"dave\" from 11 IPs within ~10 min (threshold 10, leaks 6/h)"
    );
}

#[test]
fn many_accounts_from_one_ip_is_credential_stuffing_few_is_brute_force() {
    let mut d = detector();
    let mut stuffing = Vec::new();
    for i in 0..21 {
        stuffing.extend(d.observe(&failure(i * 200, "203.0.113.50", &format!("victim{i}"))));
    }
    assert_eq!(of(&stuffing, KeyType::Ip)[0].attack, Attack::CredentialStuffing);
    assert!(of(&stuffing, KeyType::Account).is_empty());

    let mut brute = Vec::new();
    for i in 0..21 {
        brute.extend(d.observe(&failure(i * 200, "203.0.113.51", &format!("target{}", i % 4))));
    }
    let ip = of(&brute, KeyType::Ip);
    assert_eq!(ip[0].attack, Attack::BruteForce);
    assert!(ip[0].feature.explanation.contains("on 4 accounts"), "{}", ip[0].feature.explanation);
}

#[test]
fn a_success_does_not_reset_the_ip_bucket() {
    let mut d = detector();
    let mut all = Vec::new();
    for i in 0..25 {
        if i % 5 == 0 {
            d.observe(&login(i * 100, Some("203.0.113.60"), "lucky", LoginOutcome::Success));
        }
        all.extend(d.observe(&failure(i * 100, "203.0.113.60", &format!("u{i}"))));
    }
    assert!(!of(&all, KeyType::Ip).is_empty());
}

#[test]
fn events_without_ip_count_per_account_and_other_kinds_are_ignored() {
    let mut d = detector();
    let mut all = Vec::new();
    for _ in 0..10 {
        let e = login(0, None, "erin", LoginOutcome::Failure(LoginFailure::UnknownUser));
        all.extend(d.observe(&e));
    }
    assert_eq!(of(&all, KeyType::Account).len(), 1);
    assert!(all[0].feature.explanation.contains("from 0 IPs"), "{}", all[0].feature.explanation);
    let other = Event::new(
        Timestamp::from_millis(T0),
        "issuer",
        Principal::default(),
        EventKind::RefreshReuse(argus_model::RefreshReuse { family: "f".into() }),
    );
    assert!(d.observe(&other).is_empty());
}

#[test]
fn keys_are_normalised_and_bounded() {
    assert_eq!(account_key("  Alice "), "alice");
    assert_eq!(ip_key("::ffff:203.0.113.7"), "203.0.113.7");
    assert_eq!(ip_key("2001:DB8::1"), "2001:db8::1");
    let long = "é".repeat(1000);
    let key = account_key(&long);
    assert!(key.len() <= MAX_KEY_BYTES && key.chars().all(|c| c == 'é'));
}

#[test]
fn sweep_frees_drained_buckets() {
    let mut d = detector();
    for i in 0..100 {
        d.observe(&failure(0, &format!("192.0.2.{i}"), &format!("user{i}")));
    }
    assert_eq!(d.tracked(), (100, 100));
    // Six seconds of 10/min drain a 1-failure IP bucket; the account buckets (6/h) need ten minutes. Sweeps run
    // once a minute of event time.
    d.observe(&failure(61_000, "198.51.100.200", "zed"));
    assert_eq!(d.tracked(), (1, 101));
    d.observe(&failure(12 * 60_000, "198.51.100.201", "zoe"));
    assert_eq!(d.tracked(), (1, 1));
}

#[test]
fn the_key_cap_holds_under_a_flood_of_new_keys() {
    let config = FailedLoginConfig { max_keys: NonZeroUsize::new(50).unwrap(), ..FailedLoginConfig::default() };
    let mut d = FailedLogin::new(&config).unwrap();
    // An account under attack from one IP builds up...
    for i in 0..9 {
        d.observe(&failure(i, "203.0.113.77", "frank"));
    }
    // ...then a flood of one-off IPs and accounts tries to push it out.
    for i in 0..10_000 {
        d.observe(&failure(100 + i, &format!("10.0.{}.{}", i / 256, i % 256), &format!("spray{i}")));
        let (ips, accounts) = d.tracked();
        assert!(ips <= 50 && accounts <= 50);
    }
    // The emptiest buckets went, not the one close to alerting: its level (9, less a little leak) survived, so
    // the second failure after the flood alerts on frank.
    let drafts = d.observe(&failure(20_000, "203.0.113.77", "frank"));
    assert!(of(&drafts, KeyType::Account).is_empty());
    let drafts = d.observe(&failure(20_001, "203.0.113.77", "frank"));
    assert_eq!(of(&drafts, KeyType::Account).len(), 1);
    assert!(drafts[0].feature.explanation.starts_with("11 failed sign-ins"), "{}", drafts[0].feature.explanation);
}

#[test]
fn replaying_the_same_events_gives_the_same_drafts() {
    let events: Vec<Event> = (0..60).map(|i| failure(i * 250, "203.0.113.5", &format!("u{}", i % 7))).collect();
    let run = |events: &[Event]| {
        let mut d = detector();
        events.iter().flat_map(|e| d.observe(e)).collect::<Vec<_>>()
    };
    let first = run(&events);
    assert!(!first.is_empty());
    assert_eq!(first, run(&events));
}

#[test]
fn human_durations() {
    assert_eq!(human_duration(Duration::ZERO), "1 s");
    assert_eq!(human_duration(Duration::from_millis(10_200)), "11 s");
    assert_eq!(human_duration(Duration::from_secs(150)), "3 min");
    assert_eq!(human_duration(Duration::from_secs(3 * 3600)), "3 h");
    assert_eq!(human_duration(Duration::from_secs(5 * 86_400)), "5 d");
}
