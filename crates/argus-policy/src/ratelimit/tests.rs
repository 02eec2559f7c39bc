use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use super::*;

/// Run a future that completes without waiting, as everything over the in-memory store does.
fn now_or_never<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the in-memory store never waits"),
    }
}

const T0: i64 = 1_700_000_000_000;

fn at(ms: i64) -> Timestamp {
    Timestamp::from_millis(T0 + ms)
}

fn quota(s: &str) -> Quota {
    s.parse().unwrap()
}

fn config(toml_text: &str) -> RateLimitConfig {
    toml::from_str(toml_text).unwrap()
}

/// Only the token kind limited, at `q`.
fn token_only(q: &str) -> LimitSet {
    config(&format!("per_ip = \"off\"\nper_user = \"off\"\nper_client = \"off\"\nper_token = \"{q}\""))
        .resolve_route("r")
}

const JTI: RateKeys<'static> = RateKeys { token: Some("jti-1"), user: None, client: None, ip: None };

fn check<'l>(limiter: &RateLimiter, limits: &'l LimitSet, keys: &RateKeys<'_>, ms: i64) -> RateDecision<'l> {
    now_or_never(limiter.check(limits, keys, at(ms)))
}

fn remaining(d: RateDecision<'_>) -> u64 {
    match d {
        RateDecision::Allowed { remaining, .. } => remaining,
        other => panic!("expected allowed, got {other:?}"),
    }
}

fn retry_after(d: RateDecision<'_>) -> u64 {
    match d {
        RateDecision::Limited { retry_after_secs, .. } => retry_after_secs,
        other => panic!("expected limited, got {other:?}"),
    }
}

#[test]
fn quotas_parse_and_print() {
    let q = quota("600/min");
    assert_eq!((q.count(), q.period_ms(), q.burst(), q.window_secs()), (600, 60_000, 600, 60));
    assert_eq!(q.to_string(), "600/min");
    let q = quota("20/s burst 40");
    assert_eq!((q.count(), q.period_ms(), q.burst()), (20, 1_000, 40));
    assert_eq!(q.to_string(), "20/s burst 40");
    assert_eq!(quota("1/day").to_string(), "1/day");
    assert_eq!(quota("5/hour").window_secs(), 3_600);
    assert_eq!("off".parse::<Limit>(), Ok(Limit::Off));
    for bad in [
        "",
        "600",
        "0/min",
        "10/fortnight",
        "10/min burst",
        "10/min burst 0",
        "x/min",
        "10/min 5",
        "-1/s",
        "10/s burst 2 3",
    ] {
        assert!(bad.parse::<Limit>().is_err(), "{bad:?}");
    }
    assert!("2000000000/s".parse::<Quota>().is_err());
}

#[test]
fn gcra_burst_then_steady_rate_with_exact_boundaries() {
    // 10/s, burst 10: emission interval 100 ms.
    let limiter = RateLimiter::in_memory(1_000);
    let limits = token_only("10/s");
    for i in 0..10 {
        assert_eq!(remaining(check(&limiter, &limits, &JTI, 0)), 9 - i);
    }
    // The 11th call at the same instant waits exactly one interval: 100 ms, shown as 1 s.
    assert_eq!(retry_after(check(&limiter, &limits, &JTI, 0)), 1);
    assert_eq!(retry_after(check(&limiter, &limits, &JTI, 99)), 1);
    // At +100 ms one cell has drained: exactly one call conforms.
    assert_eq!(remaining(check(&limiter, &limits, &JTI, 100)), 0);
    assert!(matches!(check(&limiter, &limits, &JTI, 100), RateDecision::Limited { .. }));
    // Steady state: one call every 100 ms, never two.
    for step in 2..20 {
        assert_eq!(remaining(check(&limiter, &limits, &JTI, step * 100)), 0);
        assert!(matches!(check(&limiter, &limits, &JTI, step * 100 + 99), RateDecision::Limited { .. }));
    }
    // After a full quiet second the whole burst is back.
    assert_eq!(remaining(check(&limiter, &limits, &JTI, 1_900 + 1_000)), 9);
}

#[test]
fn small_burst_and_retry_after_rounds_up() {
    // 60/min burst 5: five at once, then one a second.
    let limiter = RateLimiter::in_memory(1_000);
    let limits = token_only("60/min burst 5");
    for _ in 0..5 {
        check(&limiter, &limits, &JTI, 0);
    }
    assert_eq!(retry_after(check(&limiter, &limits, &JTI, 0)), 1);
    assert_eq!(retry_after(check(&limiter, &limits, &JTI, 1)), 1);
    assert_eq!(remaining(check(&limiter, &limits, &JTI, 1_000)), 0);
    // 2/min: after the burst of 2, the next call waits 30 s.
    let slow = token_only("2/min");
    let other = RateKeys { token: Some("jti-2"), ..JTI };
    check(&limiter, &slow, &other, 0);
    check(&limiter, &slow, &other, 0);
    assert_eq!(retry_after(check(&limiter, &slow, &other, 0)), 30);
    assert_eq!(retry_after(check(&limiter, &slow, &other, 29_001)), 1);
    assert_eq!(retry_after(check(&limiter, &slow, &other, 28_999)), 2);
    assert_eq!(remaining(check(&limiter, &slow, &other, 30_000)), 0);
}

#[test]
fn reset_is_the_time_until_the_bucket_is_full() {
    let limiter = RateLimiter::in_memory(1_000);
    let limits = token_only("10/min");
    let RateDecision::Allowed { reset_secs, .. } = check(&limiter, &limits, &JTI, 0) else { panic!() };
    assert_eq!(reset_secs, 6);
    check(&limiter, &limits, &JTI, 0);
    let RateDecision::Allowed { remaining, reset_secs, .. } = check(&limiter, &limits, &JTI, 0) else { panic!() };
    assert_eq!((remaining, reset_secs), (7, 18));
}

#[test]
fn headers_have_the_draft_syntax() {
    let limiter = RateLimiter::in_memory(1_000);
    let limits = config("per_ip = \"2/s\"").resolve_route("r");
    let keys = RateKeys { ip: Some("203.0.113.7".parse().unwrap()), ..Default::default() };
    let first = check(&limiter, &limits, &keys, 0);
    assert_eq!(first.policy_header(), Some(r#""ip";q=2;w=1"#));
    assert_eq!(first.rate_limit_header().as_deref(), Some(r#""ip";r=1;t=1"#));
    assert_eq!(first.retry_after_header(), None);
    check(&limiter, &limits, &keys, 0);
    let limited = check(&limiter, &limits, &keys, 0);
    assert_eq!(limited.rate_limit_header().as_deref(), Some(r#""ip";r=0;t=1"#));
    assert_eq!(limited.retry_after_header().as_deref(), Some("1"));
    assert_eq!(limited.policy_header(), Some(r#""ip";q=2;w=1"#));
    let none = RateDecision::Unlimited;
    assert_eq!((none.policy_header(), none.rate_limit_header(), none.retry_after_header()), (None, None, None));
    // Policy names from configuration are sanitized into a valid sf-string.
    let odd = config("[routes.'my \"api\"'.operations.'get item']\nper_user = \"1/s\"").resolve(
        "my \"api\"",
        Some("get item"),
        &LimitOverrides::default(),
    );
    assert_eq!(odd.get(KeyKind::User).unwrap().header(), r#""my__api_.get_item.user";q=1;w=1"#);
}

#[test]
fn a_refused_call_charges_no_bucket() {
    let limiter = RateLimiter::in_memory(1_000);
    let limits = config("per_token = \"5/min\"\nper_ip = \"2/min\"\nper_user = \"off\"\nper_client = \"off\"")
        .resolve_route("r");
    let ip = Some("198.51.100.1".parse().unwrap());
    let keys = RateKeys { token: Some("t"), ip, ..Default::default() };
    let first = check(&limiter, &limits, &keys, 0);
    // The tightest policy is reported: the address has 1 left, the token 4.
    assert!(matches!(first, RateDecision::Allowed { remaining: 1, policy, .. } if policy.name() == "ip"), "{first:?}");
    check(&limiter, &limits, &keys, 0);
    for _ in 0..5 {
        // The token is checked (and charged) first, then refunded when the address refuses.
        let d = check(&limiter, &limits, &keys, 0);
        assert!(matches!(d, RateDecision::Limited { policy, .. } if policy.name() == "ip"), "{d:?}");
    }
    // The token was charged for the two allowed calls only: this third one leaves 2.
    let token_only = RateKeys { token: Some("t"), ..Default::default() };
    assert_eq!(remaining(check(&limiter, &limits, &token_only, 0)), 2);
}

#[test]
fn keys_are_independent_and_ipv6_counts_by_slash_64() {
    let limiter = RateLimiter::in_memory(1_000);
    let limits = config("per_ip = \"1/min\"").resolve_route("r");
    let ip = |s: &str| RateKeys { ip: Some(s.parse().unwrap()), ..Default::default() };
    assert_eq!(remaining(check(&limiter, &limits, &ip("2001:db8:1:2::1"), 0)), 0);
    assert!(matches!(check(&limiter, &limits, &ip("2001:db8:1:2:ffff::9"), 0), RateDecision::Limited { .. }));
    assert_eq!(remaining(check(&limiter, &limits, &ip("2001:db8:1:3::1"), 0)), 0);
    assert_eq!(remaining(check(&limiter, &limits, &ip("192.0.2.1"), 0)), 0);
    assert!(matches!(check(&limiter, &limits, &ip("::ffff:192.0.2.1"), 0), RateDecision::Limited { .. }));
    // Same value, other kind: another bucket.
    let limits = config("per_user = \"1/min\"\nper_client = \"1/min\"").resolve_route("r");
    let user = RateKeys { user: Some("x"), ..Default::default() };
    let client = RateKeys { client: Some("x"), ..Default::default() };
    assert_eq!(remaining(check(&limiter, &limits, &user, 0)), 0);
    assert_eq!(remaining(check(&limiter, &limits, &client, 0)), 0);
}

#[test]
fn no_keys_or_no_limits_is_unlimited() {
    let limiter = RateLimiter::in_memory(10);
    let limits = RateLimitConfig::default().resolve_route("r");
    assert_eq!(check(&limiter, &limits, &RateKeys::default(), 0), RateDecision::Unlimited);
    let off =
        config("per_ip = \"off\"\nper_user = \"off\"\nper_client = \"off\"\nper_token = \"off\"").resolve_route("r");
    assert!(off.is_empty());
    assert_eq!(check(&limiter, &off, &JTI, 0), RateDecision::Unlimited);
    assert!(limiter.store().is_empty());
}

#[test]
fn idle_buckets_are_evicted_losslessly() {
    let store = MemoryStore::new(10_000);
    let q = quota("10/s");
    let key = |s| BucketKey { policy: "p", kind: KeyKind::Token, value: KeyValue::Claim(s) };
    for name in ["a", "b", "c"] {
        store.acquire_now(key(name), &q, at(0));
    }
    for _ in 0..9 {
        store.acquire_now(key("c"), &q, at(0));
    }
    assert_eq!(store.len(), 3);
    // At +100 ms, a and b (one call each) are full again; c is still draining.
    assert_eq!(store.prune(at(100)), 2);
    assert_eq!(store.len(), 1);
    // Forgetting a full bucket changes nothing: a starts again with the whole burst.
    assert_eq!(
        store.acquire_now(key("a"), &q, at(100)),
        Cell::Allowed { tat: (T0 + 200) * 1_000_000, remaining: 9, reset_ns: 100_000_000 }
    );
    assert_eq!(store.prune(at(1_000)), 2);
    assert!(store.is_empty());
}

#[test]
fn memory_is_bounded_under_a_flood_of_keys() {
    let store = MemoryStore::new(640);
    let q = quota("1/day");
    let names: Vec<String> = (0..20_000).map(|i| format!("ip-{i}")).collect();
    for name in &names {
        let key = BucketKey { policy: "p", kind: KeyKind::Ip, value: KeyValue::Claim(name) };
        assert!(matches!(store.acquire_now(key, &q, at(0)), Cell::Allowed { .. }));
    }
    assert!(store.len() <= 640, "{}", store.len());
    assert!(store.len() >= 320, "{}", store.len());
}

#[test]
fn config_defaults_reference_and_strictness() {
    let default = RateLimitConfig::default();
    assert_eq!(config(""), default);
    assert_eq!(default.per_ip.to_string(), "6000/min");
    assert_eq!(default.per_user.to_string(), "2400/min");
    assert_eq!(default.per_client.to_string(), "60000/min");
    assert_eq!(default.per_token.to_string(), "1200/min");
    // The documented example parses.
    let example = config(
        r#"
        per_ip = "6000/min"
        per_user = "2400/min"
        per_client = "60000/min"
        per_token = "1200/min"

        [routes.payments]
        per_user = "300/min burst 30"

        [routes.payments.operations.createTransfer]
        per_user = "10/min"
        "#,
    );
    assert_eq!(example.routes["payments"].per_user.unwrap().to_string(), "300/min burst 30");
    for bad in ["per_ipp = \"1/s\"", "per_ip = \"many\"", "per_ip = 5", "[routes.x]\nper_ip = \"1/s\"\nextra = 1"] {
        assert!(toml::from_str::<RateLimitConfig>(bad).is_err(), "{bad}");
    }
    assert_eq!(example.check_routes(["payments", "demo"]), Ok(()));
    assert_eq!(example.check_routes(["demo"]), Err(UnknownRoute("payments".into())));
    // Serializing gives back the same configuration.
    let json = serde_json::to_value(&example).unwrap();
    assert_eq!(json["routes"]["payments"]["per_user"], "300/min burst 30");
    assert_eq!(serde_json::from_value::<RateLimitConfig>(json).unwrap(), example);
}

#[test]
fn overrides_resolve_operation_then_spec_then_route_then_default() {
    let cfg = config(
        r#"
        per_user = "100/min"
        [routes.pay]
        per_user = "50/min"
        per_ip = "off"
        [routes.pay.operations.transfer]
        per_user = "5/min"
        "#,
    );
    let spec: LimitOverrides =
        LimitOverrides::deserialize_value(&serde_json::json!({"per_user": "7/min", "per_token": "3/min"})).unwrap();
    let name_quota = |set: &LimitSet, kind| set.get(kind).map(|p| (p.name().to_owned(), p.quota().to_string()));
    let transfer = cfg.resolve("pay", Some("transfer"), &spec);
    assert_eq!(name_quota(&transfer, KeyKind::User), Some(("pay.transfer.user".into(), "5/min".into())));
    assert_eq!(name_quota(&transfer, KeyKind::Token), Some(("pay.transfer.token".into(), "3/min".into())));
    assert_eq!(name_quota(&transfer, KeyKind::Ip), None);
    assert_eq!(name_quota(&transfer, KeyKind::Client), Some(("client".into(), "60000/min".into())));
    let other = cfg.resolve("pay", Some("list"), &spec);
    assert_eq!(name_quota(&other, KeyKind::User), Some(("pay.list.user".into(), "7/min".into())));
    let plain = cfg.resolve("pay", Some("list"), &LimitOverrides::default());
    assert_eq!(name_quota(&plain, KeyKind::User), Some(("pay.user".into(), "50/min".into())));
    let elsewhere = cfg.resolve("demo", Some("x"), &LimitOverrides::default());
    assert_eq!(name_quota(&elsewhere, KeyKind::User), Some(("user".into(), "100/min".into())));
    assert_eq!(name_quota(&elsewhere, KeyKind::Ip), Some(("ip".into(), "6000/min".into())));
}

#[test]
fn an_operation_limit_counts_in_its_own_buckets() {
    let cfg = config("per_user = \"2/min\"");
    let spec = LimitOverrides::deserialize_value(&serde_json::json!({"per_user": "1/min"})).unwrap();
    let transfer = cfg.resolve("r", Some("transfer"), &spec);
    let default = cfg.resolve("r", Some("list"), &LimitOverrides::default());
    let limiter = RateLimiter::in_memory(100);
    let alice = RateKeys { user: Some("alice"), ..Default::default() };
    assert_eq!(remaining(check(&limiter, &transfer, &alice, 0)), 0);
    assert!(matches!(check(&limiter, &transfer, &alice, 0), RateDecision::Limited { .. }));
    assert_eq!(remaining(check(&limiter, &default, &alice, 0)), 1);
}
