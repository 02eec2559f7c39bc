//! What an action applies to, and how it is told from an alert and its evidence.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

use argus_model::{BlockTarget, Event, EventKind, Principal, RevocationScope};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::{ActionKind, ResponseRuleConfig, RevokeScope};
use crate::alert::{Alert, KeyType};

/// The thing an action applies to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum Target {
    /// A client address.
    Ip(String),
    /// A range of client addresses, CIDR.
    IpRange(String),
    /// A user, by `sub`.
    User(String),
    /// An app, by `client_id`.
    Client(String),
    /// A sign-in session, by `sid`.
    Session(String),
    /// An access token, by `jti`.
    Token(String),
    /// A refresh-token family.
    Family(String),
    /// A user name as typed at the login form (not verified to exist).
    Account(String),
    /// A part of Argus.
    Node(String),
}

impl Target {
    /// The target naming an alert's key.
    pub fn of_key(key_type: KeyType, key: &str) -> Self {
        let key = key.to_owned();
        match key_type {
            KeyType::Ip => Self::Ip(key),
            KeyType::Account => Self::Account(key),
            KeyType::Node => Self::Node(key),
            KeyType::User => Self::User(key),
            KeyType::Client => Self::Client(key),
            KeyType::Session => Self::Session(key),
            KeyType::Token => Self::Token(key),
            KeyType::Family => Self::Family(key),
        }
    }

    /// The kind's name: `ip`, `ip_range`, `user`, ...
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Ip(_) => "ip",
            Self::IpRange(_) => "ip_range",
            Self::User(_) => "user",
            Self::Client(_) => "client",
            Self::Session(_) => "session",
            Self::Token(_) => "token",
            Self::Family(_) => "family",
            Self::Account(_) => "account",
            Self::Node(_) => "node",
        }
    }

    /// The value: an address, an id, a name.
    pub fn value(&self) -> &str {
        match self {
            Self::Ip(v) | Self::IpRange(v) | Self::User(v) | Self::Client(v) | Self::Session(v) => v,
            Self::Token(v) | Self::Family(v) | Self::Account(v) | Self::Node(v) => v,
        }
    }

    /// What the gates block for it, if it can be blocked.
    pub fn block_target(&self) -> Option<BlockTarget> {
        let v = self.value().to_owned();
        Some(match self {
            Self::Ip(_) => BlockTarget::Ip(v),
            Self::IpRange(_) => BlockTarget::IpRange(v),
            Self::User(_) => BlockTarget::User(v),
            Self::Client(_) => BlockTarget::Client(v),
            Self::Session(_) => BlockTarget::Session(v),
            Self::Token(_) => BlockTarget::Token(v),
            Self::Family(_) | Self::Account(_) | Self::Node(_) => return None,
        })
    }

    /// What the issuer and gates revoke for it, if it can be revoked.
    pub fn revocation_scope(&self) -> Option<RevocationScope> {
        let v = self.value().to_owned();
        Some(match self {
            Self::User(_) => RevocationScope::User { sub: v },
            Self::Client(_) => RevocationScope::Client { client_id: v },
            Self::Session(_) => RevocationScope::Session { sid: v },
            Self::Token(_) => RevocationScope::Token { jti: v },
            Self::Family(_) => RevocationScope::Family { family: v },
            Self::Ip(_) | Self::IpRange(_) | Self::Account(_) | Self::Node(_) => return None,
        })
    }

    /// The principal of events about the target (an IP, a user, an app, a session or a token; else nobody).
    pub fn principal(&self) -> Principal {
        let v = Some(self.value().to_owned());
        match self {
            Self::Ip(_) => Principal { ip: v, ..Principal::default() },
            Self::User(_) => Principal { sub: v, ..Principal::default() },
            Self::Client(_) => Principal { client_id: v, ..Principal::default() },
            Self::Session(_) => Principal { sid: v, ..Principal::default() },
            Self::Token(_) => Principal { jti: v, ..Principal::default() },
            Self::IpRange(_) | Self::Family(_) | Self::Account(_) | Self::Node(_) => Principal::default(),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind(), self.value())
    }
}

/// The target of `rule`'s action for `alert`, or why there is none.
pub(super) fn resolve(rule: &ResponseRuleConfig, alert: &Alert, evidence: &[Event]) -> Result<Target, String> {
    match rule.action {
        ActionKind::Revoke => {
            let wanted = match rule.scope {
                Some(RevokeScope::Token) => KeyType::Token,
                Some(RevokeScope::Session) => KeyType::Session,
                Some(RevokeScope::Family) => KeyType::Family,
                Some(RevokeScope::User) => KeyType::User,
                // Checked at load: a revoke rule has a scope. `client` is the fallback, never reached.
                Some(RevokeScope::Client) | None => KeyType::Client,
            };
            key_or_evidence(alert, evidence, wanted)
        }
        ActionKind::StepUp => key_or_evidence(alert, evidence, KeyType::Session),
        ActionKind::Notify => key_or_evidence(alert, evidence, KeyType::User),
        ActionKind::Block => block_target(alert, rule.prefix_len),
        ActionKind::Record => Ok(Target::of_key(alert.key_type, &alert.key)),
    }
}

/// A block keys on what the alert is about: its address (or the address's range), user, app, session or token.
fn block_target(alert: &Alert, prefix_len: Option<u8>) -> Result<Target, String> {
    match alert.key_type {
        KeyType::Ip => {
            let ip: IpAddr = alert.key.parse().map_err(|_| format!("{:?} is not an IP address", alert.key))?;
            let ip = ip.to_canonical();
            let bits = if ip.is_ipv4() { 32 } else { 128 };
            match prefix_len.filter(|p| *p < bits) {
                None => Ok(Target::Ip(ip.to_string())),
                Some(p) => {
                    let net = IpNet::new(ip, p).map_err(|_| format!("no /{p} range around {ip}"))?.trunc();
                    Ok(Target::IpRange(net.to_string()))
                }
            }
        }
        KeyType::User | KeyType::Client | KeyType::Session | KeyType::Token => {
            Ok(Target::of_key(alert.key_type, &alert.key))
        }
        other => Err(format!("an alert keyed by {} cannot be blocked at the gates", other.as_str())),
    }
}

/// The alert's key if it is of the type `wanted`, else the one value of that type its evidence names.
fn key_or_evidence(alert: &Alert, evidence: &[Event], wanted: KeyType) -> Result<Target, String> {
    if alert.key_type == wanted {
        return Ok(Target::of_key(wanted, &alert.key));
    }
    let found: BTreeSet<&str> = evidence.iter().filter_map(|e| evidence_value(e, wanted)).collect();
    let mut values = found.into_iter();
    match (values.next(), values.next()) {
        (Some(one), None) => Ok(Target::of_key(wanted, one)),
        // An automatic response must not fan out: several candidates are for a person to look at.
        (Some(_), Some(_)) => Err(format!("its evidence names more than one {}", wanted.as_str())),
        (None, _) => Err(format!("neither its key nor its evidence names a {}", wanted.as_str())),
    }
}

fn evidence_value(event: &Event, wanted: KeyType) -> Option<&str> {
    let p = &event.principal;
    match wanted {
        KeyType::Token => p.jti.as_deref(),
        KeyType::Session => p.sid.as_deref(),
        KeyType::User => p.sub.as_deref(),
        KeyType::Client => p.client_id.as_deref(),
        KeyType::Ip => p.ip.as_deref(),
        KeyType::Family => match &event.kind {
            EventKind::TokenIssued(issued) => issued.family.as_deref(),
            EventKind::RefreshReuse(reuse) => Some(reuse.family.as_str()),
            _ => None,
        },
        KeyType::Account => match &event.kind {
            EventKind::Login(login) => Some(login.username.as_str()),
            _ => None,
        },
        KeyType::Node => Some(event.node.as_str()),
    }
    .filter(|v| !v.is_empty())
}
