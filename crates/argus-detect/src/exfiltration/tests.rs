use super::*;
use crate::testing::{drafts_for, op_call, user, with_call};

const WINDOW: i64 = 900_000;

fn detector() -> Exfiltration {
    Exfiltration::new(&ExfiltrationConfig::default()).unwrap()
}

fn read(ms: i64, sub: &str, records: u64, bytes: u64) -> Event {
    let mut e = op_call(ms, user(sub, "192.0.2.20"), "listAccounts", None, 200);
    with_call(&mut e, |c| {
        c.records = Some(records);
        c.bytes_out = bytes;
    });
    e
}

/// 20 users of app `web` reading ~50 records (5 calls of 8..12) in each of `windows` windows.
fn normal_days(d: &mut Exfiltration, windows: i64) {
    for w in 0..windows {
        for u in 0..20 {
            for i in 0..5 {
                let records = 8 + ((w + u + i) % 5) as u64;
                let e = read(w * WINDOW + u * 1000 + i * 60_000, &format!("user{u}"), records, records * 400);
                assert!(d.observe(&e).is_empty(), "window {w} user {u}");
            }
        }
    }
}

#[test]
fn a_user_taking_forty_times_their_normal_alerts_with_the_baselines() {
    let mut d = detector();
    normal_days(&mut d, 10);
    let start = 10 * WINDOW;
    let mut drafts = Vec::new();
    for i in 0..20 {
        drafts.extend(d.observe(&read(start + i * 10_000, "user3", 100, 40_000)));
    }
    let hits = drafts_for(&drafts, Attack::Exfiltration, KeyType::User, "user3");
    let first = hits.first().expect("alert");
    // user3's own normal is ~50 a window: 10x is 500, the floor too.
    assert_eq!(first.feature.name, "records_per_window");
    assert_eq!(first.feature.observed, 500.0);
    let baseline = first.feature.baseline.unwrap();
    assert!((45.0..55.0).contains(&baseline), "{baseline}");
    assert!(first.feature.deviation.unwrap() > 6.0);
    assert_eq!(first.first_seen, Some(crate::testing::at(start)));
    assert!(
        first.feature.explanation.starts_with("user user3 took 500 records in the current 15 min window"),
        "{}",
        first.feature.explanation
    );
    assert!(first.feature.explanation.contains("users of web: ~"), "{}", first.feature.explanation);
    assert_eq!(hits.last().unwrap().severity, Severity::High, "2000 records is 4x the threshold");
}

#[test]
fn a_heavy_users_normal_is_not_an_exfiltration() {
    let mut d = detector();
    // The reporting user takes ~1500 records every window, and always has: since before the peers' normal
    // (~50) was learned, and after.
    let reporter = |d: &mut Exfiltration, windows: std::ops::Range<i64>| {
        for w in windows {
            for i in 0..15 {
                let e = read(w * WINDOW + i * 30_000, "reporter", 100 + (w % 3) as u64, 40_000);
                assert!(d.observe(&e).is_empty(), "window {w}");
            }
        }
    };
    reporter(&mut d, 0..12);
    normal_days(&mut d, 10);
    reporter(&mut d, 12..20);
}

#[test]
fn a_new_user_is_judged_against_peers_at_twice_the_factor() {
    let mut d = detector();
    normal_days(&mut d, 10);
    let start = 10 * WINDOW;
    let mut drafts = Vec::new();
    for i in 0..8 {
        drafts.extend(d.observe(&read(start + i * 1000, "newcomer", 100, 40_000)));
    }
    assert!(drafts.is_empty(), "800 records: over 10x the peers' ~50 but under 20x");
    for i in 8..12 {
        drafts.extend(d.observe(&read(start + i * 1000, "newcomer", 100, 40_000)));
    }
    let first = drafts.first().expect("alert at 20x the peers");
    assert!(first.feature.explanation.contains("it has no normal of its own yet"), "{}", first.feature.explanation);
}

#[test]
fn bytes_alone_can_fire() {
    let mut d = detector();
    normal_days(&mut d, 10);
    let drafts = d.observe(&read(10 * WINDOW, "user5", 10, 30_000_000));
    assert_eq!(drafts.len(), 1);
    assert_eq!(drafts[0].feature.name, "bytes_per_window");
}

#[test]
fn nothing_fires_before_any_baseline_and_refused_calls_do_not_count() {
    let mut d = detector();
    for i in 0..100 {
        assert!(d.observe(&read(i * 1000, "early", 1000, 1000)).is_empty());
    }
    let mut refused = read(0, "x", 100_000, 1);
    with_call(&mut refused, |c| c.decision = argus_model::Decision::Refused);
    assert!(d.observe(&refused).is_empty());
    let bad = ExfiltrationConfig { factor: 0.5, ..ExfiltrationConfig::default() };
    assert_eq!(bad.validate().unwrap_err().key, "watch.detectors.exfiltration.factor");
}
