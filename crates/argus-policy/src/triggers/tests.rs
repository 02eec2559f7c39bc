use argus_model::{
    AccountActivity, ActionTaken, Activity, Event, EventKind, Login, LoginOutcome, Principal, RevocationScope, Revoked,
    Timestamp,
};

use super::*;

fn rule(name: &str, when: &str, actions: &[TriggerAction]) -> TriggerConfig {
    TriggerConfig {
        name: name.into(),
        events: Vec::new(),
        when: when.into(),
        actions: actions.to_vec(),
        message: None,
        enabled: true,
        observe_only: false,
    }
}

fn account(activity: Activity) -> Event {
    let principal = Principal {
        sub: Some("alice-sub".into()),
        sid: Some("s1".into()),
        ip: Some("203.0.113.7".into()),
        ..Default::default()
    };
    let kind = EventKind::Account(AccountActivity {
        activity,
        device_id: Some("d1".into()),
        client_id: None,
        detail: Some("new_device".into()),
    });
    Event::new(Timestamp::from_secs(1_700_000_000), "issuer", principal, kind)
}

fn login(success: bool) -> Event {
    let outcome =
        if success { LoginOutcome::Success } else { LoginOutcome::Failure(argus_model::LoginFailure::BadPassword) };
    let kind = EventKind::Login(Login { username: "alice".into(), outcome });
    Event::new(Timestamp::from_secs(1), "issuer", Principal { sid: Some("s1".into()), ..Default::default() }, kind)
}

fn actions(t: &Triggers, e: &Event) -> Vec<(String, TriggerAction)> {
    t.evaluate(e).into_iter().map(|p| (p.rule, p.action)).collect()
}

#[test]
fn defaults_notify_what_the_issue_names() {
    let t = Triggers::compile(&[], true).unwrap();
    for (activity, notifies) in [
        (Activity::NewDevice, true),
        (Activity::PasswordChanged, true),
        (Activity::FactorAdded, true),
        (Activity::FactorRemoved, true),
        (Activity::FirstGrant, true),
        (Activity::NotMe, false),
        (Activity::GrantRevoked, false),
        (Activity::DeviceRevoked, false),
    ] {
        let planned = actions(&t, &account(activity));
        assert_eq!(!planned.is_empty(), notifies, "{activity:?}: {planned:?}");
        assert!(planned.iter().all(|(_, a)| *a == TriggerAction::NotifyUser));
    }
    assert!(actions(&t, &login(true)).is_empty());
    assert!(Triggers::compile(&[], false).unwrap().is_empty(), "default_triggers = false drops them");
}

#[test]
fn a_rule_named_like_a_default_replaces_it() {
    let off = TriggerConfig { enabled: false, ..rule("new-device", "true", &[TriggerAction::NotifyUser]) };
    let t = Triggers::compile(&[off], true).unwrap();
    assert!(actions(&t, &account(Activity::NewDevice)).is_empty());
    assert_eq!(actions(&t, &account(Activity::FirstGrant)).len(), 1, "the other defaults stay");
    let step_up = rule(
        "new-device",
        "event.type == 'Account' && event.activity == 'new_device'",
        &[TriggerAction::RequireStepUp, TriggerAction::NotifyUser],
    );
    let t = Triggers::compile(&[step_up], true).unwrap();
    assert_eq!(
        actions(&t, &account(Activity::NewDevice)),
        vec![("new-device".into(), TriggerAction::RequireStepUp), ("new-device".into(), TriggerAction::NotifyUser)]
    );
}

#[test]
fn rules_read_the_events_json_form() {
    let failed = rule(
        "failed-login",
        "event.type == 'Login' && event.outcome.result == 'failure' && event.outcome.reason == 'bad_password'",
        &[TriggerAction::AdminWebhook],
    );
    let from_net = rule(
        "from-net",
        "has(event.principal.ip) && event.principal.ip.startsWith('203.0.113.') && event.node == 'issuer'",
        &[TriggerAction::RevokeSession, TriggerAction::AdminWebhook],
    );
    let t = Triggers::compile(&[failed, from_net], false).unwrap();
    assert_eq!(actions(&t, &login(false)), vec![("failed-login".into(), TriggerAction::AdminWebhook)]);
    assert!(actions(&t, &login(true)).is_empty());
    // Each action once per event, named by the first rule that asks for it.
    assert_eq!(
        actions(&t, &account(Activity::NewDevice)),
        vec![("from-net".into(), TriggerAction::RevokeSession), ("from-net".into(), TriggerAction::AdminWebhook)]
    );
}

#[test]
fn events_narrow_what_a_rule_sees() {
    let logins = TriggerConfig { events: vec!["Login".into()], ..rule("l", "true", &[TriggerAction::AdminWebhook]) };
    let t = Triggers::compile(&[logins], false).unwrap();
    assert_eq!(t.evaluate(&login(true)).len(), 1);
    assert!(t.evaluate(&account(Activity::NewDevice)).is_empty());
    assert!(t.wants("Login") && !t.wants("ApiCall") && t.wants_other_than_account());
    let defaults = Triggers::compile(&[], true).unwrap();
    assert!(!defaults.wants_other_than_account(), "the defaults need no bus subscription");
    let any = Triggers::compile(&[rule("any", "true", &[TriggerAction::AdminWebhook])], true).unwrap();
    assert!(any.wants("ApiCall") && any.wants_other_than_account());
    let bad = TriggerConfig { events: vec!["Logins".into()], ..rule("b", "true", &[TriggerAction::AdminWebhook]) };
    let err = Triggers::compile(&[bad], true).unwrap_err();
    assert_eq!(err.problem, Problem::UnknownEventType("Logins".into()));
}

#[test]
fn evaluation_errors_and_non_booleans_do_not_match() {
    let t = Triggers::compile(
        &[
            rule("missing", "event.no_such_field == 1", &[TriggerAction::AdminWebhook]),
            rule("string", "event.type", &[TriggerAction::AdminWebhook]),
            rule("types", "event.time > 3", &[TriggerAction::AdminWebhook]),
        ],
        false,
    )
    .unwrap();
    assert!(actions(&t, &login(true)).is_empty());
}

#[test]
fn observe_only_and_disabled() {
    let watch = TriggerConfig { observe_only: true, ..rule("watch", "true", &[TriggerAction::RevokeSession]) };
    let off = TriggerConfig { enabled: false, ..rule("off", "true", &[TriggerAction::AdminWebhook]) };
    let t = Triggers::compile(&[watch, off], false).unwrap();
    let planned = t.evaluate(&login(true));
    assert_eq!(planned.len(), 1);
    assert!(planned[0].observe_only);
}

#[test]
fn events_caused_by_triggers_are_not_evaluated() {
    let t = Triggers::compile(&[rule("all", "true", &[TriggerAction::RevokeSession])], false).unwrap();
    let revoked = |by: &str| {
        let kind = EventKind::Revoked(Revoked { scope: RevocationScope::Session { sid: "s1".into() }, by: by.into() });
        Event::new(Timestamp::from_secs(1), "issuer", Principal::default(), kind)
    };
    assert!(t.evaluate(&revoked(TRIGGER_ACTOR)).is_empty());
    assert_eq!(t.evaluate(&revoked("admin")).len(), 1);
    let action = EventKind::Action(ActionTaken {
        action_id: "a".into(),
        alert_id: "x".into(),
        rule: "r".into(),
        action: "revoke".into(),
        target: "session:s1".into(),
        status: "applied".into(),
    });
    assert!(t.evaluate(&Event::new(Timestamp::from_secs(1), "watch", Principal::default(), action)).is_empty());
}

#[test]
fn a_bad_expression_is_refused_with_its_position() {
    let err = Triggers::compile(
        &[
            rule("ok", "true", &[TriggerAction::NotifyUser]),
            rule("bad", "event.type == ", &[TriggerAction::NotifyUser]),
        ],
        true,
    )
    .unwrap_err();
    assert_eq!((err.index, err.name.as_str()), (1, "bad"));
    let Problem::When(e) = &err.problem else { panic!("{err}") };
    assert_eq!(e.position, Some((1, 15)), "where the operand is missing: {err}");
    assert!(err.to_string().starts_with("triggers[1] (\"bad\"): when: 1:15: Syntax error"), "{err}");

    // Second line, and the column of the offending token.
    let err = Triggers::compile(&[rule("two", "event.type == 'Login' &&\n  event.x ===", &[])], false).unwrap_err();
    assert_eq!(err.problem, Problem::NoActions, "actions are checked first");
    let err = Triggers::compile(
        &[rule("two", "event.type == 'Login' &&\n  event.x === 1", &[TriggerAction::NotifyUser])],
        false,
    )
    .unwrap_err();
    let Problem::When(e) = &err.problem else { panic!("{err}") };
    let (line, column) = e.position.expect("a position");
    assert_eq!(line, 2, "{err}");
    assert_eq!(column, 13, "the third '=': {err}");

    let err =
        Triggers::compile(&[rule("var", "event.type == 'Login' && alert.x", &[TriggerAction::NotifyUser])], false)
            .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"triggers[0] ("var"): when: 1:26: unknown variable "alert"; a trigger reads only `event`"#
    );
}

#[test]
fn rule_shapes_are_checked() {
    let n = |r: TriggerConfig| Triggers::compile(&[r], true).unwrap_err().problem;
    assert_eq!(n(rule("Bad Name", "true", &[TriggerAction::NotifyUser])), Problem::BadName);
    assert_eq!(
        n(rule("x", "true", &[TriggerAction::NotifyUser, TriggerAction::NotifyUser])),
        Problem::DuplicateAction("notify_user")
    );
    assert!(matches!(n(rule("x", "", &[TriggerAction::NotifyUser])), Problem::When(_)));
    assert!(matches!(n(rule("x", &"1".repeat(MAX_WHEN_BYTES + 1), &[TriggerAction::NotifyUser])), Problem::When(_)));
    let twice = [rule("x", "true", &[TriggerAction::NotifyUser]), rule("x", "false", &[TriggerAction::NotifyUser])];
    assert_eq!(Triggers::compile(&twice, true).unwrap_err().problem, Problem::DuplicateName);
    for bad in ["{", "{}", "{a..b}", "{a b}", "}", "{principal.ip"] {
        let r = TriggerConfig { message: Some(bad.into()), ..rule("x", "true", &[TriggerAction::NotifyUser]) };
        assert!(matches!(n(r), Problem::Message(_)), "{bad}");
    }
}

#[test]
fn messages_render_event_fields() {
    let r = TriggerConfig {
        message: Some("{{ {activity} }} from {principal.ip} at {time}, {principal.jti}, v{v}".into()),
        ..rule("m", "true", &[TriggerAction::NotifyUser])
    };
    let t = Triggers::compile(&[r], false).unwrap();
    let planned = t.evaluate(&account(Activity::NewDevice));
    assert_eq!(
        planned[0].message.as_deref(),
        Some("{ new_device } from 203.0.113.7 at 2023-11-14T22:13:20Z, unknown, v1")
    );
    let mut e = account(Activity::NewDevice);
    e.principal.ip = Some(format!("evil\r\n{}", "x".repeat(500)));
    let shown = t.evaluate(&e)[0].message.clone().unwrap();
    assert!(!shown.contains('\n') && shown.len() < 300, "{shown}");
}

#[test]
fn config_reads_from_toml() {
    #[derive(serde::Deserialize)]
    struct File {
        triggers: Vec<TriggerConfig>,
    }
    let f: File = toml::from_str(
        "[[triggers]]\nname = \"a\"\nwhen = \"true\"\nactions = [\"require_step_up\", \"revoke_session\"]\n\
         observe_only = true\n",
    )
    .unwrap();
    assert_eq!(f.triggers[0].actions, vec![TriggerAction::RequireStepUp, TriggerAction::RevokeSession]);
    assert!(f.triggers[0].enabled && f.triggers[0].observe_only);
    assert!(toml::from_str::<File>("[[triggers]]\nname = \"a\"\nwhen = \"true\"\nactions = [\"nuke\"]\n").is_err());
    assert!(toml::from_str::<File>("[[triggers]]\nname = \"a\"\nwhen = \"true\"\nactions = []\nwhn = 1\n").is_err());
}
