//! Event builders for the detectors' unit tests.
//!
//! `ApiCall` is built from its minimal JSON and then changed field by field, so that optional fields added to the
//! schema later do not break every test here.

use argus_model::{ApiCall, Decision, Event, EventKind, Login, LoginFailure, LoginOutcome, Principal, Timestamp};

use crate::alert::{AlertDraft, Attack, KeyType};

/// A base time far from zero, so "since" arithmetic is not flattered by the epoch.
pub const T0: i64 = 1_764_000_000_000;

/// The user agent of most test users.
pub const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

/// An event at `ms` after [`T0`].
pub fn at(ms: i64) -> Timestamp {
    Timestamp::from_millis(T0 + ms)
}

/// A signed-in user of app `web` at `ip`, with Firefox.
pub fn user(sub: &str, ip: &str) -> Principal {
    Principal {
        sub: Some(sub.into()),
        client_id: Some("web".into()),
        ip: Some(ip.into()),
        user_agent: Some(FIREFOX.into()),
        ..Principal::default()
    }
}

/// A caller without a token.
pub fn anonymous(ip: &str) -> Principal {
    Principal { ip: Some(ip.into()), user_agent: Some("curl/8.5.0".into()), ..Principal::default() }
}

/// The smallest valid call, allowed with 200.
pub fn base_call() -> ApiCall {
    serde_json::from_str(
        r#"{"request_id":"r","method":"GET","path":"/","status":200,"decision":"allowed","bytes_in":0,
            "bytes_out":0,"latency_us":1}"#,
    )
    .expect("the minimal ApiCall JSON parses")
}

/// A call by `principal` at `ms`: allowed below status 400, refused from 400 on.
pub fn call(ms: i64, principal: Principal, method: &str, path: &str, status: u16) -> Event {
    let mut c = base_call();
    c.method = method.into();
    c.path = path.into();
    c.status = status;
    c.decision = if status < 400 { Decision::Allowed } else { Decision::Refused };
    Event::new(at(ms), "gate", principal, EventKind::ApiCall(c))
}

/// A call of operation `op` on object `id` (path `/things/{id}`), or a list call when `id` is `None`.
pub fn op_call(ms: i64, principal: Principal, op: &str, id: Option<&str>, status: u16) -> Event {
    let path = id.map_or_else(|| format!("/{op}"), |id| format!("/{op}/{id}"));
    let mut e = call(ms, principal, "GET", &path, status);
    with_call(&mut e, |c| {
        c.operation_id = Some(op.into());
        c.path_template = Some(if id.is_some() { format!("/{op}/{{id}}") } else { format!("/{op}") });
        c.object_ids = id.map(|id| vec![("id".to_owned(), id.to_owned())]).unwrap_or_default();
    });
    e
}

/// Changes the call of an `ApiCall` event.
pub fn with_call(event: &mut Event, f: impl FnOnce(&mut ApiCall)) {
    if let EventKind::ApiCall(c) = &mut event.kind {
        f(c);
    }
}

/// A sign-in attempt.
pub fn login(ms: i64, ip: &str, username: &str, ok: bool) -> Event {
    let outcome = if ok { LoginOutcome::Success } else { LoginOutcome::Failure(LoginFailure::BadPassword) };
    Event::new(
        at(ms),
        "issuer",
        Principal { ip: Some(ip.into()), ..Principal::default() },
        EventKind::Login(Login { username: username.into(), outcome }),
    )
}

/// The drafts for `(attack, key_type, key)`.
pub fn drafts_for<'a>(drafts: &'a [AlertDraft], attack: Attack, key_type: KeyType, key: &str) -> Vec<&'a AlertDraft> {
    drafts.iter().filter(|d| d.alert_key() == (attack, key_type, key)).collect()
}
