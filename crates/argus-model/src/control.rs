//! The control channel's messages: what the issuer and watch tell every gate, within milliseconds.

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;

/// One message on the control channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum ControlMessage {
    Revoke(Revocation),
    Block(Block),
    /// A session must sign in again before its next call (a configured trigger asked for step-up).
    StepUp(StepUpDemand),
}

/// "The user of session `sid` must authenticate again": until `until`, a gate answers every access token of the
/// session whose `auth_time` is before `not_before` with the RFC 9470 `insufficient_user_authentication`
/// challenge. A token from a sign-in at or after `not_before` passes, so a fresh sign-in (`max_age`) meets it.
/// `until` outlives every token the session can still mint with an older `auth_time` (refreshes keep it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepUpDemand {
    pub id: String,
    pub sid: String,
    /// Sign-ins before this instant no longer count; a whole second, since `auth_time` is one.
    pub not_before: Timestamp,
    /// After this instant the demand may be forgotten.
    pub until: Timestamp,
}

impl StepUpDemand {
    /// Whether a token of session `sid` authenticated at `auth_time` (seconds; `None` when the token has none)
    /// must step up at `now`.
    pub fn demands(&self, sid: Option<&str>, auth_time: Option<i64>, now: Timestamp) -> bool {
        now <= self.until && sid == Some(self.sid.as_str()) && auth_time.is_none_or(|t| t < self.not_before.as_secs())
    }

    /// The `max_age` (seconds) a new authorization request needs so that its sign-in is after `not_before`.
    pub fn max_age(&self, now: Timestamp) -> u64 {
        now.as_secs().saturating_sub(self.not_before.as_secs()).max(0).unsigned_abs()
    }
}

/// A revocation as gates apply it.
///
/// A [`RevocationScope::Token`] covers exactly one access token. The wider scopes cover every access token that
/// matches the key and was issued at or before `at`, so a user who signs in again after "revoke all my tokens" is
/// not locked out. A gate may forget the entry after `until`: no covered token can outlive it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    pub id: String,
    pub scope: RevocationScope,
    /// When the revocation was made; tokens issued later are not covered.
    pub at: Timestamp,
    /// After this instant every covered token has expired anyway.
    pub until: Timestamp,
}

impl Revocation {
    /// Whether this revocation covers an access token with these claims.
    pub fn covers(&self, token: &TokenKeys<'_>) -> bool {
        let issued_before = token.iat_secs <= self.at.as_secs();
        match &self.scope {
            RevocationScope::Token { jti } => token.jti == jti,
            RevocationScope::Session { sid } => issued_before && token.sid == Some(sid.as_str()),
            RevocationScope::User { sub } => issued_before && token.sub == sub,
            RevocationScope::Client { client_id } => issued_before && token.client_id == client_id,
            RevocationScope::Grant { sub, client_id } => {
                issued_before && token.sub == sub && token.client_id == client_id
            }
            RevocationScope::Family { family } => issued_before && token.family == Some(family.as_str()),
            RevocationScope::Device { device } => issued_before && token.device == Some(device.as_str()),
        }
    }
}

/// The claims of an access token that revocations key on.
#[derive(Clone, Copy, Debug)]
pub struct TokenKeys<'a> {
    pub jti: &'a str,
    pub sub: &'a str,
    pub client_id: &'a str,
    pub sid: Option<&'a str>,
    /// `iat`, in seconds.
    pub iat_secs: i64,
    /// The refresh-token family the token was issued in (claim `fid`), if any.
    pub family: Option<&'a str>,
    /// The device the sign-in happened on (claim `did`), if any.
    pub device: Option<&'a str>,
}

/// What a revocation covers.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RevocationScope {
    /// One access token, by `jti`.
    Token { jti: String },
    /// Every token of one sign-in session (`sid`).
    Session { sid: String },
    /// Every token of one user.
    User { sub: String },
    /// Every token of one app.
    Client { client_id: String },
    /// One user's grant to one app.
    Grant { sub: String, client_id: String },
    /// Every token of one refresh-token family (one sign-in of one app, across rotations).
    Family { family: String },
    /// Every token obtained through sign-ins on one device (the `argus_device` browser cookie).
    Device { device: String },
}

/// A block ordered by watch or an admin: the gate refuses matching calls until `until`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    pub id: String,
    pub target: BlockTarget,
    pub until: Timestamp,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum BlockTarget {
    /// One client address, e.g. `203.0.113.7` or `2001:db8::1`.
    Ip(String),
    /// An app, by `client_id`.
    Client(String),
    /// A user, by `sub`.
    User(String),
    /// A sign-in session, by `sid`.
    Session(String),
    /// One access token, by `jti`.
    Token(String),
    /// A range of client addresses in CIDR notation, e.g. `198.51.100.0/24` or `2001:db8::/48`.
    IpRange(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(iat: i64) -> TokenKeys<'static> {
        TokenKeys {
            jti: "j1",
            sub: "alice",
            client_id: "app",
            sid: Some("s1"),
            iat_secs: iat,
            family: Some("f1"),
            device: Some("d1"),
        }
    }

    fn rev(scope: RevocationScope) -> Revocation {
        Revocation { id: "r".into(), scope, at: Timestamp::from_secs(100), until: Timestamp::from_secs(400) }
    }

    #[test]
    fn token_scope_covers_only_that_token() {
        assert!(rev(RevocationScope::Token { jti: "j1".into() }).covers(&keys(500)));
        assert!(!rev(RevocationScope::Token { jti: "j2".into() }).covers(&keys(50)));
    }

    #[test]
    fn wide_scopes_cover_tokens_issued_before_only() {
        for scope in [
            RevocationScope::Session { sid: "s1".into() },
            RevocationScope::User { sub: "alice".into() },
            RevocationScope::Client { client_id: "app".into() },
            RevocationScope::Grant { sub: "alice".into(), client_id: "app".into() },
            RevocationScope::Family { family: "f1".into() },
            RevocationScope::Device { device: "d1".into() },
        ] {
            let r = rev(scope.clone());
            assert!(r.covers(&keys(100)), "{scope:?}");
            assert!(!r.covers(&keys(101)), "{scope:?}");
        }
        assert!(!rev(RevocationScope::User { sub: "bob".into() }).covers(&keys(50)));
        assert!(!rev(RevocationScope::Grant { sub: "alice".into(), client_id: "x".into() }).covers(&keys(50)));
        assert!(!rev(RevocationScope::Family { family: "f2".into() }).covers(&keys(50)));
        assert!(!rev(RevocationScope::Device { device: "d2".into() }).covers(&keys(50)));
        let unbound = TokenKeys { family: None, device: None, ..keys(50) };
        assert!(!rev(RevocationScope::Family { family: "f1".into() }).covers(&unbound));
        assert!(!rev(RevocationScope::Device { device: "d1".into() }).covers(&unbound));
    }

    #[test]
    fn step_up_demand_covers_older_sign_ins_of_its_session_only() {
        let d = StepUpDemand {
            id: "d".into(),
            sid: "s1".into(),
            not_before: Timestamp::from_secs(100),
            until: Timestamp::from_secs(400),
        };
        let now = Timestamp::from_secs(150);
        assert!(d.demands(Some("s1"), Some(99), now));
        assert!(d.demands(Some("s1"), None, now), "no auth_time: no proof of a fresh sign-in");
        assert!(!d.demands(Some("s1"), Some(100), now), "a sign-in at not_before meets it");
        assert!(!d.demands(Some("s2"), Some(99), now));
        assert!(!d.demands(None, Some(99), now));
        assert!(!d.demands(Some("s1"), Some(99), Timestamp::from_secs(401)), "forgotten after until");
        assert_eq!(d.max_age(now), 50);
        assert_eq!(d.max_age(Timestamp::from_secs(90)), 0);
        let j = serde_json::to_value(ControlMessage::StepUp(d.clone())).unwrap();
        assert_eq!(j["type"], "StepUp");
        assert_eq!(serde_json::from_value::<ControlMessage>(j).unwrap(), ControlMessage::StepUp(d));
    }

    #[test]
    fn json_shape() {
        let m = ControlMessage::Revoke(rev(RevocationScope::Token { jti: "j1".into() }));
        let j = serde_json::to_value(&m).unwrap();
        assert_eq!(j["type"], "Revoke");
        assert_eq!(j["scope"]["kind"], "token");
        assert_eq!(serde_json::from_value::<ControlMessage>(j).unwrap(), m);
    }
}
