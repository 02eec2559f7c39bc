use super::*;
use crate::forest::SplitMix64;
use crate::testing::{op_call, user, with_call};

const WINDOW: i64 = 600_000;

/// An ordinary call of `sub`: one of a few operations on one of its few objects, a few KB back.
fn ordinary(rng: &mut SplitMix64, ms: i64, sub: &str) -> Event {
    let op = ["getAccount", "listAccounts", "getTransactions", "getProfile", "listCards"][rng.below(5)];
    let id = (op.starts_with("get")).then(|| format!("{}-{}", sub, rng.below(6)));
    let status = if rng.below(100) == 0 { 404 } else { 200 };
    let mut e = op_call(ms, user(sub, "192.0.2.30"), op, id.as_deref(), status);
    let bytes = 1000 + rng.below(4000) as u64;
    with_call(&mut e, |c| {
        c.bytes_out = bytes;
        c.records = c.object_ids.is_empty().then(|| 5 + rng.below(20) as u64);
    });
    e
}

/// `users` users, each making 20..60 ordinary calls in each of `windows` windows.
fn ordinary_traffic(d: &mut Multivariate, rng: &mut SplitMix64, users: usize, windows: i64) -> Vec<AlertDraft> {
    let mut drafts = Vec::new();
    for w in 0..windows {
        let mut calls: Vec<(i64, usize)> = Vec::new();
        for u in 0..users {
            let n = 20 + rng.below(40);
            for _ in 0..n {
                calls.push((w * WINDOW + rng.below(WINDOW as usize) as i64, u));
            }
        }
        calls.sort();
        for (ms, u) in calls {
            drafts.extend(d.observe(&ordinary(rng, ms, &format!("user{u}"))));
        }
    }
    drafts
}

fn detector() -> Multivariate {
    Multivariate::new(&MultivariateConfig::default()).unwrap()
}

#[test]
fn an_actor_walking_many_objects_at_an_ordinary_rate_scores_high_and_the_attribution_says_why() {
    let mut d = detector();
    let mut rng = SplitMix64::new(7);
    let benign = ordinary_traffic(&mut d, &mut rng, 60, 12);
    assert!(d.is_trained());
    assert!(benign.is_empty(), "{benign:?}");
    // In window 12, mallory makes 40 calls at an ordinary rate, each on another account: no list call, no other
    // operation. Each measure alone is under every other detector's threshold.
    let start = 12 * WINDOW;
    for i in 0..40 {
        let id = format!("acc-{i}");
        let mut e = op_call(start + i * 10_000, user("mallory", "203.0.113.30"), "getAccount", Some(&id), 200);
        with_call(&mut e, |c| c.bytes_out = 2000);
        assert!(d.observe(&e).is_empty(), "scored when the window closes");
    }
    // Window 13 begins: the sweep closes mallory's window.
    let drafts = d.observe(&ordinary(&mut rng, 13 * WINDOW + 1, "user0"));
    let mallory: Vec<_> = drafts.iter().filter(|x| x.key == "mallory").collect();
    assert_eq!(mallory.len(), 1, "{drafts:?}");
    let a = mallory[0];
    assert_eq!((a.attack, a.key_type), (Attack::Anomaly, KeyType::User));
    assert_eq!(a.feature.name, "object_ids_per_call", "{}", a.feature.explanation);
    assert_eq!(a.feature.observed, 1.0, "a new object on every call");
    assert!(a.feature.threshold >= 0.7);
    assert!(a.feature.deviation.unwrap() >= 8.0);
    assert_eq!(a.first_seen, Some(crate::testing::at(start)));
    assert!(a.feature.explanation.starts_with("user mallory's 10 min window scored"), "{}", a.feature.explanation);
}

#[test]
fn the_same_events_give_the_same_model_and_verdicts() {
    let run = || {
        let mut d = detector();
        let mut rng = SplitMix64::new(11);
        ordinary_traffic(&mut d, &mut rng, 40, 16);
        let probe = Window { calls: 30, errors: 10, refused: 10, bytes: 90_000, records: 0, ..Window::default() };
        // Scored as per-call measures.
        assert_eq!(probe.raw()[4], 3000.0);
        let forest = d.model.forest.as_ref().unwrap();
        forest.score(&point(&probe.raw())).to_bits()
    };
    assert_eq!(run(), run());
}

#[test]
fn small_windows_are_neither_scored_nor_learned() {
    let mut d = detector();
    for i in 0..5000 {
        d.observe(&op_call(i * 1000, user(&format!("u{}", i % 500), "192.0.2.1"), "getAccount", Some("1"), 200));
    }
    assert_eq!(d.model.seen, 0);
    assert!(!d.is_trained());
}

#[test]
fn config_is_checked() {
    let bad = MultivariateConfig { threshold: 0.4, ..MultivariateConfig::default() };
    assert_eq!(bad.validate().unwrap_err().key, "watch.detectors.multivariate.threshold");
    let bad = MultivariateConfig { min_train: NonZeroUsize::new(10_000).unwrap(), ..MultivariateConfig::default() };
    assert_eq!(bad.validate().unwrap_err().key, "watch.detectors.multivariate.min_train");
}
