use argus_testkit::FakeClock;

use super::*;

fn keys<'a>(jti: &'a str, sub: &'a str, client_id: &'a str, sid: Option<&'a str>, iat_secs: i64) -> TokenKeys<'a> {
    TokenKeys { jti, sub, client_id, sid, iat_secs, family: None, device: None }
}

fn revocation(scope: RevocationScope, at: i64, until: i64) -> Revocation {
    Revocation { id: format!("r{at}"), scope, at: Timestamp::from_secs(at), until: Timestamp::from_secs(until) }
}

const NOW: Timestamp = Timestamp::from_secs(100);

#[test]
fn each_scope_is_indexed_by_its_key() {
    let mut set = RevocationSet::default();
    let alice = keys("j1", "alice", "app", Some("s1"), 50);
    assert!(!set.covers(&alice));

    set.insert(revocation(RevocationScope::Token { jti: "j1".into() }, 100, 400), NOW);
    assert!(set.covers(&alice));
    assert!(!set.covers(&keys("j2", "alice", "app", Some("s1"), 50)));

    let cases = [
        (RevocationScope::Session { sid: "s1".into() }, keys("j3", "alice", "app", Some("s1"), 50), true),
        (RevocationScope::Session { sid: "s1".into() }, keys("j3", "alice", "app", None, 50), false),
        (RevocationScope::User { sub: "alice".into() }, keys("j3", "alice", "other", None, 50), true),
        (RevocationScope::Client { client_id: "app".into() }, keys("j3", "bob", "app", None, 50), true),
        (
            RevocationScope::Grant { sub: "alice".into(), client_id: "app".into() },
            keys("j3", "alice", "app", None, 50),
            true,
        ),
        (
            RevocationScope::Grant { sub: "alice".into(), client_id: "app".into() },
            keys("j3", "alice", "x", None, 50),
            false,
        ),
        (RevocationScope::User { sub: "alice".into() }, keys("j3", "bob", "app", Some("s1"), 50), false),
    ];
    for (scope, token, covered) in cases {
        let mut set = RevocationSet::default();
        set.insert(revocation(scope.clone(), 100, 400), NOW);
        assert_eq!(set.covers(&token), covered, "{scope:?} {token:?}");
        // Tokens issued after the revocation (a new sign-in) are not covered.
        let later = TokenKeys { iat_secs: 101, ..token };
        assert!(!set.covers(&later), "{scope:?}");
    }
}

#[test]
fn family_and_device_scopes_are_indexed() {
    let bound = TokenKeys { family: Some("f1"), device: Some("d1"), ..keys("j1", "alice", "app", Some("s1"), 50) };
    let other = TokenKeys { family: Some("f2"), device: Some("d2"), ..bound };
    let unbound = keys("j1", "alice", "app", Some("s1"), 50);
    for scope in [RevocationScope::Family { family: "f1".into() }, RevocationScope::Device { device: "d1".into() }] {
        let mut set = RevocationSet::default();
        set.insert(revocation(scope.clone(), 100, 400), NOW);
        assert!(set.covers(&bound), "{scope:?}");
        assert!(!set.covers(&other), "{scope:?}");
        assert!(!set.covers(&unbound), "{scope:?}");
        assert!(!set.covers(&TokenKeys { iat_secs: 101, ..bound }), "{scope:?}");
        set.prune(Timestamp::from_secs(401));
        assert!(set.is_empty(), "{scope:?}");
    }
}

#[test]
fn repeated_revocations_merge_to_the_widest() {
    let mut set = RevocationSet::default();
    let user = |at, until| revocation(RevocationScope::User { sub: "alice".into() }, at, until);
    set.insert(user(200, 500), NOW);
    set.insert(user(100, 700), NOW);
    assert_eq!(set.len(), 1);
    assert!(set.covers(&keys("j", "alice", "app", None, 200)), "the later `at` is kept");
    set.prune(Timestamp::from_secs(600));
    assert_eq!(set.len(), 1, "the later `until` is kept");
    set.prune(Timestamp::from_secs(701));
    assert!(set.is_empty());
}

#[test]
fn expired_entries_are_pruned_and_never_stored() {
    let mut set = RevocationSet::default();
    set.insert(revocation(RevocationScope::Token { jti: "old".into() }, 10, 99), NOW);
    assert!(set.is_empty(), "every covered token expired already");
    set.insert(revocation(RevocationScope::Token { jti: "a".into() }, 100, 150), NOW);
    set.insert(revocation(RevocationScope::Grant { sub: "u".into(), client_id: "c".into() }, 100, 300), NOW);
    set.insert(revocation(RevocationScope::Grant { sub: "u".into(), client_id: "d".into() }, 100, 120), NOW);
    assert_eq!(set.len(), 3);
    set.prune(Timestamp::from_secs(200));
    assert_eq!(set.len(), 1);
    assert!(set.covers(&keys("x", "u", "c", None, 1)));
    set.prune(Timestamp::from_secs(301));
    assert!(set.is_empty() && set.grants.is_empty());
}

#[tokio::test]
async fn published_revocations_apply_to_the_next_check() {
    let control = ControlChannel::new(16);
    let clock = Arc::new(FakeClock::new(NOW));
    let revocations = Revocations::start(control.clone(), clock, Vec::new(), Vec::new(), Vec::new());
    let alice = keys("j1", "alice", "app", Some("s1"), 50);
    assert!(!revocations.covers(&alice).await);
    for i in 0..5 {
        control.publish(ControlMessage::Revoke(revocation(
            RevocationScope::Token { jti: format!("other{i}") },
            100,
            400,
        )));
    }
    control.publish(ControlMessage::Revoke(revocation(RevocationScope::Session { sid: "s1".into() }, 100, 400)));
    // No yield between publish and check: the check itself waits for the control task.
    assert!(revocations.covers(&alice).await);
    assert!(!revocations.covers(&keys("j2", "bob", "app", Some("s2"), 50)).await);
}

#[tokio::test]
async fn lag_is_survived() {
    let control = ControlChannel::new(2);
    let revocations =
        Revocations::start(control.clone(), Arc::new(FakeClock::new(NOW)), Vec::new(), Vec::new(), Vec::new());
    for i in 0..10 {
        control.publish(ControlMessage::Revoke(revocation(RevocationScope::Token { jti: format!("j{i}") }, 100, 400)));
    }
    // Eight were lost to lag, the last two apply; the check does not wait for the lost ones.
    let started = std::time::Instant::now();
    assert!(revocations.covers(&keys("j9", "alice", "app", None, 50)).await);
    assert!(started.elapsed() < CATCH_UP_WAIT);
    assert!(!revocations.covers(&keys("j0", "alice", "app", None, 50)).await);
}

#[tokio::test]
async fn the_initial_set_applies_before_any_message_and_expired_entries_are_skipped() {
    let control = ControlChannel::new(4);
    let initial = vec![
        revocation(RevocationScope::User { sub: "alice".into() }, 90, 400),
        revocation(RevocationScope::Token { jti: "old".into() }, 10, 20),
    ];
    let revocations =
        Revocations::start(control.clone(), Arc::new(FakeClock::new(NOW)), initial, Vec::new(), Vec::new());
    assert!(revocations.covers(&keys("j1", "alice", "app", None, 50)).await);
    assert!(!revocations.covers(&keys("j1", "bob", "app", None, 50)).await);
    assert_eq!(revocations.set.read().unwrap().len(), 1, "the expired one was not kept");
}

#[tokio::test]
async fn standing_blocks_apply_before_any_message_and_ended_ones_are_skipped() {
    use argus_model::{Block, BlockTarget};
    use argus_policy::blocklist::{BlockKeys, BlockKind};
    let control = ControlChannel::new(4);
    let block = |id: &str, ip: &str, until: i64| Block {
        id: id.into(),
        target: BlockTarget::Ip(ip.into()),
        until: Timestamp::from_secs(until),
        reason: "watch rule r on alert a".into(),
    };
    let blocks = vec![block("b1", "203.0.113.7", NOW.as_secs() + 60), block("b2", "203.0.113.8", NOW.as_secs() - 1)];
    let revocations =
        Revocations::start(control.clone(), Arc::new(FakeClock::new(NOW)), Vec::new(), blocks, Vec::new());
    let keys = |ip: &str| BlockKeys { ip: Some(ip.parse().unwrap()), ..Default::default() };
    assert_eq!(revocations.blocked(&keys("203.0.113.7")).await, Some(BlockKind::Ip));
    assert_eq!(revocations.blocked(&keys("203.0.113.8")).await, None, "an ended block is not applied");
}

#[tokio::test]
async fn step_up_demands_cover_older_sign_ins_of_their_session_until_they_end() {
    use argus_model::StepUpDemand;
    let control = ControlChannel::new(4);
    let clock = Arc::new(FakeClock::new(NOW));
    let demand = |id: &str, sid: &str, not_before: i64, until: i64| StepUpDemand {
        id: id.into(),
        sid: sid.into(),
        not_before: Timestamp::from_secs(not_before),
        until: Timestamp::from_secs(until),
    };
    let now = NOW.as_secs();
    // Loaded at start (a late gate), the ended one skipped.
    let initial = vec![demand("d1", "s1", now - 10, now + 100), demand("d0", "s0", now - 10, now - 1)];
    let revocations = Revocations::start(control.clone(), clock.clone(), Vec::new(), Vec::new(), initial);
    assert!(revocations.step_up_demanded(Some("s1"), Some(now - 11)).await.is_some());
    assert!(revocations.step_up_demanded(Some("s1"), Some(now - 10)).await.is_none(), "a fresh sign-in passes");
    assert!(revocations.step_up_demanded(Some("s0"), Some(now - 11)).await.is_none());
    assert!(revocations.step_up_demanded(None, Some(now - 11)).await.is_none());
    // Published: applies to the next check; a second demand on the session moves not_before on.
    control.publish(ControlMessage::StepUp(demand("d2", "s2", now, now + 100)));
    control.publish(ControlMessage::StepUp(demand("d3", "s1", now - 5, now + 50)));
    assert!(revocations.step_up_demanded(Some("s2"), Some(now - 1)).await.is_some());
    assert!(revocations.step_up_demanded(Some("s1"), Some(now - 6)).await.is_some());
    clock.advance(std::time::Duration::from_secs(101));
    revocations.prune();
    assert!(revocations.step_up_demanded(Some("s1"), Some(now - 6)).await.is_none(), "ended");
    assert!(revocations.step_ups.read().unwrap().is_empty(), "pruned");
}
