//! The event schema: one envelope, many kinds, versioned.
//!
//! Every part emits events onto the bus; watch consumes them all and the store keeps them as a hash-chained audit
//! log. The JSON form is the contract (it crosses processes once the bus is NATS): the kind is the `type` tag, the
//! envelope carries `v` (schema version), `id`, `time`, `node` and the principal keys. Fields are added, never
//! renamed or re-typed, within one version; optional fields are omitted when empty.

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::control::RevocationScope;
use crate::id::new_id;

/// The version of the event schema this build writes.
pub const EVENT_SCHEMA_VERSION: u16 = 1;

/// One thing that happened, with who it happened to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Schema version.
    pub v: u16,
    /// Unique, time-ordered event id (UUIDv7).
    pub id: String,
    /// When it happened, by the emitter's clock.
    pub time: Timestamp,
    /// Which node emitted it (`issuer`, `gate`, `watch`, or a configured node name).
    pub node: String,
    /// The keys that tie the event to an actor.
    #[serde(default, skip_serializing_if = "Principal::is_empty")]
    pub principal: Principal,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

impl Event {
    pub fn new(time: Timestamp, node: impl Into<String>, principal: Principal, kind: EventKind) -> Self {
        Self { v: EVENT_SCHEMA_VERSION, id: new_id(), time, node: node.into(), principal, kind }
    }

    /// The kind's tag as it appears in JSON (`ApiCall`, `Login`, ...).
    pub fn type_name(&self) -> &'static str {
        self.kind.type_name()
    }
}

/// The principal keys of an event: any of them may be unknown.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// The end user (`sub`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// The OAuth client (app).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The sign-in session at the issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The access token's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// The RFC 7638 thumbprint of the key a token is bound to (DPoP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jkt: Option<String>,
    /// The client's IP address as the part saw it (after trusted-proxy handling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// The device (browser) the session was signed in on: the access token's `did` claim at the gate, the
    /// session's device at the issuer.
    #[serde(rename = "did", default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
}

impl Principal {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// What happened. The variant name is the event's `type`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum EventKind {
    /// One call through the gate, allowed or refused.
    ApiCall(ApiCall),
    /// A sign-in attempt at the issuer's login form.
    Login(Login),
    /// Tokens issued at the token endpoint.
    TokenIssued(TokenIssued),
    /// A refresh token that had already been rotated was presented again.
    RefreshReuse(RefreshReuse),
    /// Something was revoked; the same revocation travels the control channel.
    Revoked(Revoked),
    /// Watch raised (or escalated) an alert.
    Alert(AlertRaised),
    /// An administrator changed a client, a user or the signing keys (admin API, CLI).
    AdminChange(AdminChange),
    /// Watch responded to an alert (or, observe-only, would have), or an operator undid a response.
    Action(ActionTaken),
    /// Something happened to an end user's account that the user should hear about (a new device, a changed
    /// password or factor, a first grant to an app ...). The principal names the user (`sub`).
    Account(AccountActivity),
}

impl EventKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::ApiCall(_) => "ApiCall",
            Self::Login(_) => "Login",
            Self::TokenIssued(_) => "TokenIssued",
            Self::RefreshReuse(_) => "RefreshReuse",
            Self::Revoked(_) => "Revoked",
            Self::Alert(_) => "Alert",
            Self::AdminChange(_) => "AdminChange",
            Self::Action(_) => "Action",
            Self::Account(_) => "Account",
        }
    }
}

/// The gate's verdict on a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Allowed,
    Refused,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiCall {
    /// The request id the gate assigned (also sent upstream and back as `x-request-id`).
    pub request_id: String,
    pub method: String,
    /// The path as requested, without the query string.
    pub path: String,
    /// The configured route that matched, by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// The OpenAPI operation id, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_id: Option<String>,
    /// The HTTP status returned to the caller.
    pub status: u16,
    pub decision: Decision,
    /// Why the call was refused: the last segment of the problem `type` (e.g. `invalid-token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Total time spent in the gate, including the upstream, in microseconds.
    pub latency_us: u64,
    /// The OpenAPI path template of the operation (e.g. `/accounts/{id}`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_template: Option<String>,
    /// The object ids the call names: its path parameters, `(name, value)` in template order, values cut short.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub object_ids: Vec<(String, String)>,
    /// How many records an `x-argus-sensitive` operation returned, when the gate could count them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<u64>,
    /// The call hit an `x-argus-decoy` operation, which no legitimate client calls: high severity.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub decoy: bool,
    /// Present when the upstream's answer did not match the responses the OpenAPI spec declares: the
    /// excessive-data-exposure flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_check: Option<ResponseCheck>,
}

/// How an upstream answer differed from the spec. Names and counts only, never values.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseCheck {
    /// The spec declares no answer with this status and content type.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub undocumented: bool,
    /// JSON pointers (RFC 6901) of fields the spec does not declare, e.g. `/0/password_hash`; a bounded list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub undeclared_fields: Vec<String>,
    /// Other differences: wrong types, missing required fields, a body that is not the JSON it claims to be.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub other_violations: u64,
    /// The body could not be checked (compressed, or too large to read whole).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unchecked: bool,
    /// The gate withheld the answer (`responses = "block"`): the caller got 502 instead.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub blocked: bool,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Login {
    /// The user name as typed. Never the password.
    pub username: String,
    pub outcome: LoginOutcome,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "result", content = "reason")]
pub enum LoginOutcome {
    Success,
    Failure(LoginFailure),
}

/// Why a sign-in failed. The user sees one answer for all of these (no account enumeration); the event keeps
/// the distinction for watch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginFailure {
    UnknownUser,
    BadPassword,
    Disabled,
    /// Refused by sign-in throttling before anything was checked: too many recent failures of this user name from
    /// this address, or from this address at all.
    Throttled,
    /// The password was right and the second factor (a TOTP or recovery code, a passkey) was not.
    SecondFactor,
    /// The password was right, but the user reported a sign-in as not theirs since: that password is no longer
    /// accepted until a new one is set (the user, by the confirmation's ticket, or an admin).
    PasswordResetRequired,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenIssued {
    /// `authorization_code`, `refresh_token`, ...
    pub grant_type: String,
    pub scope: String,
    /// The refresh-token family, when a refresh token was issued or rotated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// When the access token expires.
    pub expires_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshReuse {
    /// The family that was revoked because one of its rotated tokens came back.
    pub family: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revoked {
    pub scope: RevocationScope,
    /// Who asked: `client` (RFC 7009), `admin`, `user`, `watch`, `issuer` (e.g. refresh reuse).
    pub by: String,
}

/// A change made through the admin API or the CLI. The event's principal names the admin client (`client_id`);
/// no secret or password is ever part of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminChange {
    /// What was done, `<object>.<verb>`: `client.create`, `client.update`, `client.disable`, `client.rotate_secret`,
    /// `user.create`, `user.update`, `user.disable`, `key.rotate`.
    pub action: String,
    /// The id of the object changed: a `client_id`, a user's `sub`, a key's `kid`.
    pub target: String,
    /// The fields that changed, by name (values are not recorded: they may be secrets).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
}

/// Account activity an end user is told about ([`EventKind::Account`]). Names and ids only, never a secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountActivity {
    pub activity: Activity,
    /// The device it happened on or to, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// The app concerned (a grant), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// A short machine-readable detail, e.g. `first_sign_in` or `browser_changed` for a new device, `totp` for a
    /// factor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// What happened to the account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activity {
    /// A complete sign-in from a device this user had not signed in from (or a known device cookie arriving from a
    /// different browser or operating system than recorded).
    NewDevice,
    PasswordChanged,
    FactorAdded,
    FactorRemoved,
    /// The user consented to an app for the first time.
    FirstGrant,
    GrantRevoked,
    DeviceRevoked,
    /// The user followed a "this wasn't me" link.
    NotMe,
    /// Something on the account looked like an attack: an alert watch responded to by telling the user, or a
    /// configured trigger telling the user of an event that is not account activity (a failed sign-in, an API call).
    SecurityAlert,
}

impl Activity {
    /// The JSON name (`new_device`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NewDevice => "new_device",
            Self::PasswordChanged => "password_changed",
            Self::FactorAdded => "factor_added",
            Self::FactorRemoved => "factor_removed",
            Self::FirstGrant => "first_grant",
            Self::GrantRevoked => "grant_revoked",
            Self::DeviceRevoked => "device_revoked",
            Self::NotMe => "not_me",
            Self::SecurityAlert => "security_alert",
        }
    }
}

/// An alert as it travels the bus; the full alert, with its evidence, is in watch's store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertRaised {
    pub alert_id: String,
    /// The detector that fired (`failed_login`, ...).
    pub detector: String,
    /// The attack type (`brute_force`, ...).
    pub attack: String,
    /// The kind of key the alert is about (`ip`, `account`, `sub`, `client_id`, ...).
    pub key_type: String,
    pub key: String,
    /// `low`, `medium`, `high`, `critical`.
    pub severity: String,
    /// One line a person can read.
    pub summary: String,
}

/// A response of watch to an alert, as it travels the bus; the full record is in watch's store. The event's
/// principal names the target where it is one (an IP, a user, a session ...).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionTaken {
    pub action_id: String,
    pub alert_id: String,
    /// The response rule that decided it.
    pub rule: String,
    /// `revoke`, `block`, `step_up`, `notify` or `record`.
    pub action: String,
    /// What it applies to, `<kind>:<value>`, e.g. `ip:203.0.113.7` or `session:<sid>`.
    pub target: String,
    /// `applied`; `observed` (the rule is observe-only: nothing was done); `failed`; `undone` (an operator lifted
    /// it).
    pub status: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_device_id_is_did_and_absent_when_unknown() {
        let p = Principal { device_id: Some("d1".into()), ..Principal::default() };
        assert_eq!(serde_json::to_value(&p).unwrap(), serde_json::json!({"did": "d1"}));
        assert_eq!(serde_json::from_str::<Principal>(r#"{"did": "d1"}"#).unwrap(), p);
        assert_eq!(serde_json::to_string(&Principal::default()).unwrap(), "{}");
    }

    #[test]
    fn api_call_json_shape_is_stable() {
        let ev = Event {
            v: 1,
            id: "0190".into(),
            time: Timestamp::from_millis(0),
            node: "gate".into(),
            principal: Principal { sub: Some("u1".into()), ip: Some("127.0.0.1".into()), ..Default::default() },
            kind: EventKind::ApiCall(ApiCall {
                request_id: "r1".into(),
                method: "GET".into(),
                path: "/accounts".into(),
                route: Some("demo".into()),
                operation_id: None,
                status: 200,
                decision: Decision::Allowed,
                reason: None,
                bytes_in: 0,
                bytes_out: 42,
                latency_us: 900,
                path_template: None,
                object_ids: Vec::new(),
                records: None,
                decoy: false,
                response_check: None,
            }),
        };
        let json = serde_json::to_value(&ev).unwrap();
        assert_eq!(json["type"], "ApiCall");
        assert_eq!(json["v"], 1);
        assert_eq!(json["time"], "1970-01-01T00:00:00Z");
        assert_eq!(json["principal"]["sub"], "u1");
        assert_eq!(json["decision"], "allowed");
        assert!(json.get("reason").is_none());
        assert!(json.get("response_check").is_none(), "optional fields are omitted when empty");
        let back: Event = serde_json::from_value(json).unwrap();
        assert_eq!(back, ev);
    }

    #[test]
    fn response_check_is_additive() {
        // An event written before the field existed still reads, and one with it carries only what is set.
        let old = r#"{"request_id":"r","method":"GET","path":"/","status":200,"decision":"allowed","bytes_in":0,
            "bytes_out":0,"latency_us":1}"#;
        let mut call: ApiCall = serde_json::from_str(old).unwrap();
        assert_eq!(call.response_check, None);
        call.response_check =
            Some(ResponseCheck { undeclared_fields: vec!["/0/ssn".into()], blocked: true, ..Default::default() });
        let json = serde_json::to_value(&call).unwrap();
        assert_eq!(json["response_check"], serde_json::json!({"undeclared_fields": ["/0/ssn"], "blocked": true}));
        assert_eq!(serde_json::from_value::<ApiCall>(json).unwrap(), call);
    }

    #[test]
    fn account_activity_json_shape() {
        let k = EventKind::Account(AccountActivity {
            activity: Activity::NewDevice,
            device_id: Some("d1".into()),
            client_id: None,
            detail: Some("first_sign_in".into()),
        });
        let json = serde_json::to_value(&k).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type": "Account", "activity": "new_device", "device_id": "d1",
            "detail": "first_sign_in"})
        );
        assert_eq!(serde_json::from_value::<EventKind>(json).unwrap(), k);
        assert_eq!(Activity::NotMe.as_str(), "not_me");
        assert_eq!(Activity::SecurityAlert.as_str(), "security_alert");
        assert_eq!(serde_json::to_value(Activity::SecurityAlert).unwrap(), "security_alert");
    }

    #[test]
    fn login_failure_json_shape() {
        let k = EventKind::Login(Login {
            username: "alice".into(),
            outcome: LoginOutcome::Failure(LoginFailure::BadPassword),
        });
        let json = serde_json::to_value(&k).unwrap();
        assert_eq!(json["outcome"]["result"], "failure");
        assert_eq!(json["outcome"]["reason"], "bad_password");
        assert_eq!(serde_json::from_value::<EventKind>(json).unwrap(), k);
    }
}
