use argus_model::{Principal, RefreshReuse, TokenIssued};

use super::*;
use crate::testing::{FIREFOX, at, call, drafts_for};

const HOME: &str = "192.0.2.10";
const MOBILE: &str = "100.64.7.1";
const ELSEWHERE: &str = "203.0.113.50";
const MIN: i64 = 60_000;
const DAY: i64 = 86_400_000;

fn detector() -> TokenUse {
    TokenUse::new(&TokenUseConfig::default()).unwrap()
}

fn with_token(sub: &str, jti: &str, sid: &str, ip: &str, ua: &str) -> Principal {
    Principal {
        sub: Some(sub.into()),
        client_id: Some("web".into()),
        sid: Some(sid.into()),
        jti: Some(jti.into()),
        ip: Some(ip.into()),
        user_agent: Some(ua.into()),
        ..Principal::default()
    }
}

fn use_at(ms: i64, jti: &str, ip: &str, ua: &str) -> Event {
    call(ms, with_token("alice", jti, "s1", ip, ua), "GET", "/accounts", 200)
}

/// Four days of alice at home and on her phone, a token every hour, learning her habits.
fn learned(d: &mut TokenUse) -> i64 {
    for h in 0..96 {
        let ip = if h % 3 == 0 { MOBILE } else { HOME };
        for m in 0..5 {
            assert!(d.observe(&use_at(h * 60 * MIN + m * MIN, &format!("old{h}"), ip, FIREFOX)).is_empty());
        }
    }
    4 * DAY
}

#[test]
fn a_token_replayed_by_another_program_is_high_on_the_token_and_medium_on_the_session() {
    let mut d = detector();
    assert!(d.observe(&use_at(0, "t1", HOME, FIREFOX)).is_empty());
    assert!(d.observe(&use_at(MIN, "t1", HOME, FIREFOX)).is_empty());
    let drafts = d.observe(&use_at(2 * MIN, "t1", ELSEWHERE, "python-requests/2.32.3"));
    let token = drafts_for(&drafts, Attack::StolenToken, KeyType::Token, "t1");
    let session = drafts_for(&drafts, Attack::StolenToken, KeyType::Session, "s1");
    assert_eq!((token.len(), session.len()), (1, 1));
    assert_eq!((token[0].severity, session[0].severity), (Severity::High, Severity::Medium));
    assert_eq!(token[0].feature.name, "new_user_agent");
    assert_eq!(
        token[0].feature.explanation,
        "token t1 used from a second program (user agent): first from 192.0.2.10 (192.0.0.0/16), now from \
         203.0.113.50 (203.0.0.0/16)"
    );
    assert_eq!(token[0].first_seen, Some(at(0)));
    assert_eq!(token[0].evidence.len(), 2);
    // The same foreign context again is not news; the store already has the alert.
    assert!(d.observe(&use_at(3 * MIN, "t1", ELSEWHERE, "python-requests/2.32.3")).is_empty());
}

#[test]
fn a_browser_update_is_not_a_new_program() {
    let mut d = detector();
    assert!(d.observe(&use_at(0, "t1", HOME, FIREFOX)).is_empty());
    let newer = FIREFOX.replace("128.0", "131.0");
    assert!(d.observe(&use_at(MIN, "t1", HOME, &newer)).is_empty());
}

#[test]
fn moving_between_the_users_own_networks_is_normal_a_network_new_to_the_user_is_not() {
    let mut d = detector();
    let t = learned(&mut d);
    assert!(d.observe(&use_at(t, "t2", HOME, FIREFOX)).is_empty());
    assert!(d.observe(&use_at(t + MIN, "t2", MOBILE, FIREFOX)).is_empty(), "her phone's network is known");
    let drafts = d.observe(&use_at(t + 2 * MIN, "t2", ELSEWHERE, FIREFOX));
    assert_eq!(drafts.len(), 1, "{drafts:?}");
    assert_eq!(drafts[0].alert_key(), (Attack::StolenToken, KeyType::Token, "t2"));
    assert_eq!((drafts[0].severity, drafts[0].feature.name.as_str()), (Severity::Medium, "new_network"));
}

#[test]
fn before_habits_are_learned_a_new_network_is_no_alert() {
    let mut d = detector();
    assert!(d.observe(&use_at(0, "t1", HOME, FIREFOX)).is_empty());
    assert!(d.observe(&use_at(MIN, "t1", ELSEWHERE, FIREFOX)).is_empty());
}

#[test]
fn alternating_between_two_places_is_two_holders_at_once() {
    let mut d = detector();
    let t = learned(&mut d);
    // The thief copies the user agent too, and works from alice's mobile carrier: only the switching shows.
    let mut drafts = Vec::new();
    for (i, ip) in [HOME, MOBILE, HOME, MOBILE, HOME, MOBILE].iter().enumerate() {
        drafts.extend(d.observe(&use_at(t + i as i64 * 20_000, "t3", ip, FIREFOX)));
    }
    let token = drafts_for(&drafts, Attack::StolenToken, KeyType::Token, "t3");
    let session = drafts_for(&drafts, Attack::StolenToken, KeyType::Session, "s1");
    // Switches 4 and 5 are each within 5 minutes of the three before.
    assert_eq!((token.len(), session.len()), (2, 2));
    assert_eq!(token[0].severity, Severity::High);
    assert_eq!(token[0].feature.name, "context_switches");
    assert_eq!(
        token[0].feature.explanation,
        "token t3 switched 4 times within ~60 s between 2 places (192.0.2.10, 100.64.7.1): used by two holders at \
         once (fires at 4 switches within 5 min)"
    );
}

#[test]
fn a_phone_whose_wifi_flaps_a_little_is_fine() {
    let mut d = detector();
    let t = learned(&mut d);
    // Three switches within two minutes: one fewer than fires.
    for (i, ip) in [HOME, HOME, MOBILE, MOBILE, HOME, MOBILE, MOBILE].iter().enumerate() {
        assert!(d.observe(&use_at(t + i as i64 * 30_000, "t4", ip, FIREFOX)).is_empty());
    }
    // Switching every ten minutes, slower than the window: never "at once".
    for (i, ip) in [HOME, MOBILE, HOME, MOBILE, HOME, MOBILE].iter().enumerate() {
        assert!(d.observe(&use_at(t + DAY + i as i64 * 10 * MIN, "t5", ip, FIREFOX)).is_empty());
    }
}

fn refresh(ms: i64, family: &str, ip: &str, ua: &str) -> Event {
    Event::new(
        at(ms),
        "issuer",
        Principal {
            sub: Some("alice".into()),
            ip: Some(ip.into()),
            user_agent: Some(ua.into()),
            ..Principal::default()
        },
        EventKind::TokenIssued(TokenIssued {
            grant_type: "refresh_token".into(),
            scope: "accounts:read".into(),
            family: Some(family.into()),
            expires_at: at(ms + 300_000),
        }),
    )
}

#[test]
fn a_refresh_family_used_by_another_program_and_a_reuse_are_high_on_the_family() {
    let mut d = detector();
    assert!(d.observe(&refresh(0, "f1", HOME, FIREFOX)).is_empty());
    assert!(d.observe(&refresh(5 * MIN, "f1", HOME, FIREFOX)).is_empty());
    // A laptop taken to another network days later is no news for a family.
    assert!(d.observe(&refresh(4 * DAY, "f1", MOBILE, FIREFOX)).is_empty());
    assert!(d.observe(&refresh(4 * DAY + 5 * MIN, "f1", HOME, FIREFOX)).is_empty());
    let drafts = d.observe(&refresh(4 * DAY + 6 * MIN, "f1", ELSEWHERE, "curl/8.5.0"));
    assert_eq!(drafts.len(), 1);
    assert_eq!(
        (drafts[0].alert_key(), drafts[0].severity),
        ((Attack::StolenToken, KeyType::Family, "f1"), Severity::High)
    );

    let reuse = Event::new(
        at(4 * DAY + 7 * MIN),
        "issuer",
        Principal { ip: Some(ELSEWHERE.into()), ..Principal::default() },
        EventKind::RefreshReuse(RefreshReuse { family: "f1".into() }),
    );
    let drafts = d.observe(&reuse);
    assert_eq!(drafts.len(), 1);
    assert_eq!(
        (drafts[0].alert_key(), drafts[0].severity),
        ((Attack::StolenToken, KeyType::Family, "f1"), Severity::High)
    );
    assert_eq!(drafts[0].feature.name, "refresh_token_reuse");
    assert!(drafts[0].feature.explanation.contains("presented again from 203.0.113.50"));
}

#[test]
fn memory_stays_bounded_under_a_flood_of_forged_token_ids() {
    let config = TokenUseConfig { max_keys: NonZeroUsize::new(1000).unwrap(), ..TokenUseConfig::default() };
    let mut d = TokenUse::new(&config).unwrap();
    for i in 0..20_000 {
        let p = Principal { jti: Some(format!("forged{i}")), ip: Some("203.0.113.9".into()), ..Principal::default() };
        d.observe(&call(i, p, "GET", "/accounts", 200));
    }
    let m = d.memory();
    assert_eq!(m.keys, 1000);
    assert!(m.bytes / m.keys < 400, "{m:?}");
}

#[test]
fn flips_are_bounded_in_config() {
    let c = TokenUseConfig { flips: NonZeroU32::new(17).unwrap(), ..TokenUseConfig::default() };
    assert_eq!(c.validate().unwrap_err().key, "watch.detectors.token_use.flips");
}
