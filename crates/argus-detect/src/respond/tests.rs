use argus_model::{EventKind, Principal, Timestamp, TokenIssued};

use super::*;
use crate::alert::{AlertStatus, Attack, Feature, KeyType, Severity};
use crate::testing::{anonymous, call, user};

fn alert(attack: Attack, key_type: KeyType, key: &str, severity: Severity) -> Alert {
    Alert {
        id: "a1".into(),
        detector: "test".into(),
        attack,
        key_type,
        key: key.into(),
        severity,
        status: AlertStatus::Open,
        first_seen: Timestamp::from_secs(1_000),
        last_seen: Timestamp::from_secs(1_090),
        count: 7,
        feature: Feature {
            name: "records_returned".into(),
            observed: 900.0,
            threshold: 100.0,
            leak: "window 10 min".into(),
            baseline: Some(20.0),
            deviation: Some(8.5),
            explanation: "e".into(),
        },
        evidence: vec!["e1".into()],
    }
}

fn rule(name: &str, when: &str, action: ActionKind) -> ResponseRuleConfig {
    ResponseRuleConfig {
        name: name.into(),
        when: when.into(),
        action,
        scope: None,
        ttl_secs: None,
        prefix_len: None,
        observe_only: false,
    }
}

fn block(name: &str, when: &str, ttl: u64) -> ResponseRuleConfig {
    ResponseRuleConfig { ttl_secs: Some(ttl), ..rule(name, when, ActionKind::Block) }
}

fn revoke(name: &str, when: &str, scope: RevokeScope) -> ResponseRuleConfig {
    ResponseRuleConfig { scope: Some(scope), ..rule(name, when, ActionKind::Revoke) }
}

fn compile(rules: &[ResponseRuleConfig], allow: &[&str]) -> Responses {
    let allow: Vec<String> = allow.iter().map(|s| s.to_string()).collect();
    Responses::compile(rules, &allow).unwrap()
}

fn compile_err(rules: &[ResponseRuleConfig], allow: &[&str]) -> ConfigError {
    let allow: Vec<String> = allow.iter().map(|s| s.to_string()).collect();
    Responses::compile(rules, &allow).unwrap_err()
}

/// A call by `sub` in session `sid` with token `jti`, from `ip`.
fn session_call(sub: &str, sid: &str, jti: &str, ip: &str) -> Event {
    let mut p = user(sub, ip);
    p.sid = Some(sid.into());
    p.jti = Some(jti.into());
    call(0, p, "GET", "/accounts", 200)
}

#[test]
fn the_alert_fields_rules_read() {
    let a = alert(Attack::Exfiltration, KeyType::User, "u1", Severity::High);
    let r = compile(
        &[
            rule(
                "attack",
                "alert.attack == 'exfiltration' && alert.key_type == 'user' && alert.key == 'u1'",
                ActionKind::Record,
            ),
            rule("severity", "alert.severity == 'high' && alert.severity_level >= 3", ActionKind::Record),
            rule("numbers", "alert.count > 5 && alert.count == 7 && alert.duration_secs == 90", ActionKind::Record),
            rule(
                "feature",
                "alert.feature.deviation > 8.0 && alert.feature.baseline < alert.feature.observed",
                ActionKind::Record,
            ),
            rule(
                "text",
                "alert.feature.name.startsWith('records') && alert.detector in ['test', 'x']",
                ActionKind::Record,
            ),
            rule(
                "times",
                "alert.last_seen - alert.first_seen == 90 && alert.evidence_count == 1 && alert.status == 'open'",
                ActionKind::Record,
            ),
            rule("low", "alert.severity_level < 3", ActionKind::Record),
        ],
        &[],
    );
    assert_eq!(r.matching(&a), ["attack", "severity", "numbers", "feature", "text", "times"]);
}

#[test]
fn errors_and_non_booleans_do_not_match() {
    let mut a = alert(Attack::BruteForce, KeyType::Ip, "203.0.113.7", Severity::Medium);
    a.feature.deviation = None;
    let r = compile(
        &[
            rule("null-compare", "alert.feature.deviation > 3.0", ActionKind::Record),
            rule("missing", "alert.nothing == 1", ActionKind::Record),
            rule("not-bool", "alert.count", ActionKind::Record),
            rule("div", "alert.count / 0 == 1", ActionKind::Record),
            rule("has", "!has(alert.nothing) && alert.feature.deviation == null", ActionKind::Record),
        ],
        &[],
    );
    assert_eq!(r.matching(&a), ["has"]);
}

#[test]
fn config_check_names_the_bad_key() {
    let cases: Vec<(ResponseRuleConfig, &str, &str)> = vec![
        (rule("x", "alert.attack ==", ActionKind::Record), "watch.responses[0].when", "does not parse"),
        (rule("x", "event.kind == 'x'", ActionKind::Record), "watch.responses[0].when", "unknown variable \"event\""),
        (rule("x", " ", ActionKind::Record), "watch.responses[0].when", "empty"),
        (rule("x", &"a".repeat(5000), ActionKind::Record), "watch.responses[0].when", "at most 4096"),
        (rule("Bad Name", "true", ActionKind::Record), "watch.responses[0].name", "a-z"),
        (rule("", "true", ActionKind::Record), "watch.responses[0].name", "a-z"),
        (rule("x", "true", ActionKind::Revoke), "watch.responses[0].scope", "needs one"),
        (rule("x", "true", ActionKind::Block), "watch.responses[0].ttl_secs", "needs one"),
        (block("x", "true", 0), "watch.responses[0].ttl_secs", "from 1"),
        (block("x", "true", MAX_BLOCK_SECS + 1), "watch.responses[0].ttl_secs", "from 1"),
        (
            ResponseRuleConfig { prefix_len: Some(0), ..block("x", "true", 60) },
            "watch.responses[0].prefix_len",
            "1 to 128",
        ),
        (
            ResponseRuleConfig { ttl_secs: Some(5), ..rule("x", "true", ActionKind::Notify) },
            "watch.responses[0].ttl_secs",
            "only a block",
        ),
        (
            ResponseRuleConfig { scope: Some(RevokeScope::User), ..block("x", "true", 5) },
            "watch.responses[0].scope",
            "only a revoke",
        ),
        (
            ResponseRuleConfig { prefix_len: Some(24), ..rule("x", "true", ActionKind::StepUp) },
            "watch.responses[0].prefix_len",
            "only a block",
        ),
    ];
    for (bad, key, needle) in cases {
        let err = compile_err(std::slice::from_ref(&bad), &[]);
        assert_eq!(err.key, key, "{bad:?}");
        assert!(err.reason.contains(needle), "{bad:?}: {}", err.reason);
    }
    let twice = compile_err(&[rule("same", "true", ActionKind::Record), rule("same", "true", ActionKind::Record)], &[]);
    assert_eq!((twice.key.as_str(), twice.reason.contains("another rule")), ("watch.responses[1].name", true));
    for (entry, i) in [("10.0.0.0/33", 1), ("nobody:x", 1), ("user:", 1), ("client: x", 1), ("300.1.1.1", 1)] {
        let err = compile_err(&[], &["10.0.0.0/8", entry]);
        assert_eq!(err.key, format!("watch.allow[{i}]"), "{entry}");
    }
}

#[test]
fn config_parses_from_toml_shapes_and_refuses_unknown_keys() {
    let ok: ResponseRuleConfig = serde_json::from_value(serde_json::json!({
        "name": "stolen", "when": "alert.attack == 'stolen_token'", "action": "revoke", "scope": "family",
        "observe_only": true
    }))
    .unwrap();
    assert_eq!((ok.action, ok.scope, ok.observe_only), (ActionKind::Revoke, Some(RevokeScope::Family), true));
    let typo = serde_json::from_value::<ResponseRuleConfig>(serde_json::json!({
        "name": "x", "when": "true", "action": "block", "ttl": 60
    }));
    assert!(typo.unwrap_err().to_string().contains("ttl"));
    let bad_action = serde_json::from_value::<ResponseRuleConfig>(serde_json::json!({
        "name": "x", "when": "true", "action": "ban"
    }));
    assert!(bad_action.is_err());
    assert_eq!("step_up".parse::<ActionKind>().unwrap(), ActionKind::StepUp);
    assert!("ban".parse::<ActionKind>().is_err());
}

#[test]
fn block_targets_come_from_the_key() {
    let r = compile(
        &[
            block("ip", "alert.key_type == 'ip'", 3600),
            ResponseRuleConfig { prefix_len: Some(24), ..block("range", "alert.key_type == 'ip'", 600) },
            block("user", "alert.key_type == 'user'", 60),
            block("account", "alert.key_type == 'account'", 60),
        ],
        &[],
    );
    let ip = r.plan(&alert(Attack::DecoyHit, KeyType::Ip, "203.0.113.77", Severity::High), &[]);
    assert_eq!(ip.actions.len(), 2);
    assert_eq!(
        (ip.actions[0].target.to_string(), ip.actions[0].ttl),
        ("ip:203.0.113.77".into(), Some(Duration::from_secs(3600)))
    );
    assert_eq!(ip.actions[1].target, Target::IpRange("203.0.113.0/24".into()));
    let v6 = r.plan(&alert(Attack::DecoyHit, KeyType::Ip, "::ffff:198.51.100.9", Severity::High), &[]);
    assert_eq!(v6.actions[0].target, Target::Ip("198.51.100.9".into()), "IPv4-mapped is IPv4");
    let user = r.plan(&alert(Attack::Scraping, KeyType::User, "u1", Severity::High), &[]);
    assert_eq!(user.actions[0].target.block_target(), Some(argus_model::BlockTarget::User("u1".into())));
    let account = r.plan(&alert(Attack::BruteForce, KeyType::Account, "alice", Severity::High), &[]);
    assert!(account.actions.is_empty());
    assert!(account.passed[0].reason.contains("keyed by account cannot be blocked"), "{:?}", account.passed);
}

#[test]
fn revoke_targets_come_from_the_key_or_unambiguous_evidence() {
    let r = compile(
        &[
            revoke("family", "true", RevokeScope::Family),
            revoke("session", "true", RevokeScope::Session),
            rule("step-up", "true", ActionKind::StepUp),
            rule("notify", "true", ActionKind::Notify),
        ],
        &[],
    );
    let stolen = alert(Attack::StolenToken, KeyType::Token, "jti-1", Severity::High);
    let mut issued = session_call("u1", "s1", "jti-1", "198.51.100.1");
    issued.kind = EventKind::TokenIssued(TokenIssued {
        grant_type: "refresh_token".into(),
        scope: "openid".into(),
        family: Some("f1".into()),
        expires_at: Timestamp::from_secs(2_000),
    });
    let evidence =
        [session_call("u1", "s1", "jti-1", "198.51.100.1"), session_call("u1", "s1", "jti-1", "203.0.113.5"), issued];
    let plan = r.plan(&stolen, &evidence);
    let targets: Vec<String> = plan.actions.iter().map(|a| a.target.to_string()).collect();
    assert_eq!(targets, ["family:f1", "session:s1", "session:s1", "user:u1"]);
    assert_eq!(
        plan.actions[0].target.revocation_scope(),
        Some(argus_model::RevocationScope::Family { family: "f1".into() })
    );

    // Two sessions in the evidence: no automatic fan-out; none at all: said so.
    let two = [session_call("u1", "s1", "j1", "198.51.100.1"), session_call("u1", "s2", "j2", "198.51.100.1")];
    let exfil = alert(Attack::Exfiltration, KeyType::User, "u1", Severity::High);
    let plan = r.plan(&exfil, &two);
    let kinds: Vec<ActionKind> = plan.actions.iter().map(|a| a.kind).collect();
    assert_eq!(kinds, [ActionKind::Notify]);
    assert!(plan.passed.iter().any(|p| p.rule == "session" && p.reason.contains("more than one session")));
    let plan = r.plan(&exfil, &[]);
    assert!(plan.passed.iter().any(|p| p.rule == "family" && p.reason.contains("nor its evidence names a family")));
}

#[test]
fn allow_lists_stop_actions_but_not_alerts() {
    let rules = [block("block", "true", 600), rule("record", "true", ActionKind::Record)];
    let r = compile(&rules, &["10.0.0.0/8", "client:partner-app", "user:u-vip", "account:Alice", "2001:db8::/32"]);
    // The key is allowed: nothing is done, and each matching rule says why.
    let nat = r.plan(&alert(Attack::BruteForce, KeyType::Ip, "10.1.2.3", Severity::High), &[]);
    assert!(nat.actions.is_empty());
    assert_eq!(nat.passed.len(), 2);
    assert!(nat.passed[0].reason.contains("ip:10.1.2.3 is allow-listed (10.0.0.0/8)"), "{:?}", nat.passed);
    for (key_type, key) in [
        (KeyType::User, "u-vip"),
        (KeyType::Client, "partner-app"),
        (KeyType::Account, "alice"),
        (KeyType::Ip, "2001:db8::1"),
    ] {
        assert!(r.plan(&alert(Attack::Scraping, key_type, key, Severity::High), &[]).actions.is_empty(), "{key}");
    }
    // Every evidence event from allowed callers: nothing either.
    let partner =
        call(0, Principal { client_id: Some("partner-app".into()), ..anonymous("198.51.100.4") }, "GET", "/x", 200);
    let by_partner =
        r.plan(&alert(Attack::Scraping, KeyType::Ip, "198.51.100.4", Severity::High), std::slice::from_ref(&partner));
    assert!(by_partner.actions.is_empty());
    assert!(by_partner.passed[0].reason.contains("every evidence event"));
    let mixed = [partner, call(0, anonymous("198.51.100.4"), "GET", "/x", 200)];
    assert_eq!(r.plan(&alert(Attack::Scraping, KeyType::Ip, "198.51.100.4", Severity::High), &mixed).actions.len(), 2);
    // A range that would cover an allowed address is not blocked; the record still is.
    let wide = compile(
        &[
            ResponseRuleConfig { prefix_len: Some(8), ..block("wide", "true", 60) },
            rule("record", "true", ActionKind::Record),
        ],
        &["10.9.9.9"],
    );
    let plan = wide.plan(&alert(Attack::Probing, KeyType::Ip, "10.1.1.1", Severity::High), &[]);
    assert_eq!(plan.actions.iter().map(|a| a.kind).collect::<Vec<_>>(), [ActionKind::Record]);
    assert!(plan.passed[0].reason.contains("ip_range:10.0.0.0/8 is allow-listed (10.9.9.9)"), "{:?}", plan.passed);
}

#[test]
fn observe_only_is_carried_into_the_plan() {
    let r = compile(
        &[ResponseRuleConfig { observe_only: true, ..block("watching", "alert.attack == 'probing'", 60) }],
        &[],
    );
    let plan = r.plan(&alert(Attack::Probing, KeyType::Ip, "203.0.113.7", Severity::Medium), &[]);
    assert_eq!(plan.actions.len(), 1);
    assert!(plan.actions[0].observe_only);
    assert!(r.plan(&alert(Attack::Scraping, KeyType::Ip, "203.0.113.7", Severity::Medium), &[]).actions.is_empty());
    assert!(
        Responses::none()
            .plan(&alert(Attack::Probing, KeyType::Ip, "1.2.3.4", Severity::Critical), &[])
            .actions
            .is_empty()
    );
}

fn record(kind: ActionKind, status: ActionStatus, until: Option<i64>) -> ActionRecord {
    ActionRecord {
        id: "x".into(),
        alert_id: "a".into(),
        rule: "r".into(),
        kind,
        target: Target::Ip("203.0.113.7".into()),
        status,
        time: Timestamp::from_secs(100),
        until: until.map(Timestamp::from_secs),
        detail: String::new(),
        undone_at: None,
    }
}

#[test]
fn only_blocks_in_force_can_be_undone() {
    let now = Timestamp::from_secs(200);
    assert_eq!(record(ActionKind::Block, ActionStatus::Applied, Some(300)).check_undo(now), Ok(()));
    assert_eq!(record(ActionKind::Block, ActionStatus::Applied, Some(200)).check_undo(now), Err(UndoRefusal::Expired));
    assert_eq!(
        record(ActionKind::Block, ActionStatus::Undone, Some(300)).check_undo(now),
        Err(UndoRefusal::AlreadyUndone)
    );
    assert_eq!(
        record(ActionKind::Block, ActionStatus::Observed, Some(300)).check_undo(now),
        Err(UndoRefusal::NothingToUndo)
    );
    assert_eq!(
        record(ActionKind::Revoke, ActionStatus::Applied, Some(300)).check_undo(now),
        Err(UndoRefusal::Irreversible(ActionKind::Revoke))
    );
    assert_eq!(
        record(ActionKind::StepUp, ActionStatus::Applied, None).check_undo(now),
        Err(UndoRefusal::Irreversible(ActionKind::StepUp))
    );
    assert_eq!(
        record(ActionKind::Notify, ActionStatus::Applied, None).check_undo(now),
        Err(UndoRefusal::NothingToUndo)
    );
}

#[test]
fn an_action_stands_while_in_force_or_once_undone() {
    let now = Timestamp::from_secs(200);
    assert!(record(ActionKind::Block, ActionStatus::Applied, Some(300)).stands(now));
    assert!(!record(ActionKind::Block, ActionStatus::Applied, Some(200)).stands(now), "expired: may act again");
    assert!(record(ActionKind::Block, ActionStatus::Undone, Some(300)).stands(now), "an operator's undo sticks");
    assert!(!record(ActionKind::Block, ActionStatus::Failed, Some(300)).stands(now));
    assert!(record(ActionKind::Notify, ActionStatus::Applied, None).stands(now));
    assert!(record(ActionKind::Record, ActionStatus::Observed, None).stands(now));
}
