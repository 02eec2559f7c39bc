//! `[watch] allow`: callers watch never acts on, e.g. a NAT address shared by many users or a partner's app.
//! Their alerts are still recorded.

use std::collections::HashSet;
use std::net::IpAddr;

use argus_model::{Event, Principal};
use ipnet::IpNet;

use super::Target;
use crate::alert::Alert;
use crate::pipeline::ConfigError;

/// Most entries an allow-list may have (each IP range is checked per action).
pub const MAX_ALLOW_ENTRIES: usize = 1024;

/// The compiled allow-list.
#[derive(Clone, Debug, Default)]
pub struct AllowList {
    /// Addresses and ranges, with the entry as written.
    nets: Vec<(IpNet, String)>,
    /// `kind:value` of the other entries (`client:partner-app`, `user:<sub>`, `account:<name>`, ...).
    names: HashSet<String>,
}

/// The kinds of named entries, as in [`Target::kind`].
const NAMED_KINDS: [&str; 6] = ["user", "client", "session", "token", "family", "account"];

impl AllowList {
    /// Parses entries: an address or CIDR range (optionally `ip:`-prefixed), or `client:<client_id>`,
    /// `user:<sub>`, `account:<user name>`, `session:<sid>`, `token:<jti>`, `family:<id>`.
    pub fn parse(entries: &[String]) -> Result<Self, ConfigError> {
        if entries.len() > MAX_ALLOW_ENTRIES {
            return Err(ConfigError::new("watch.allow", format!("at most {MAX_ALLOW_ENTRIES} entries")));
        }
        let mut list = Self::default();
        for (i, entry) in entries.iter().enumerate() {
            let bad = |reason: &str| ConfigError::new(format!("watch.allow[{i}]"), format!("{entry:?}: {reason}"));
            let (kind, value) = match entry.split_once(':') {
                Some((kind, value)) if NAMED_KINDS.contains(&kind) || kind == "ip" => (kind, value),
                // Bare IPv6 addresses contain colons too.
                _ => ("ip", entry.as_str()),
            };
            if value.trim().is_empty() || value.trim() != value {
                return Err(bad("an empty value or surrounding spaces"));
            }
            if kind == "ip" {
                let net = parse_net(value).ok_or_else(|| {
                    bad("not an IP address or CIDR range, nor client:, user:, account:, session:, token:, family:")
                })?;
                list.nets.push((net, entry.clone()));
            } else {
                let value = if kind == "account" { value.to_lowercase() } else { value.to_owned() };
                list.names.insert(format!("{kind}:{value}"));
            }
        }
        Ok(list)
    }

    /// The entry that allows `target`, if any. A range is allowed if it overlaps an allowed range: blocking it
    /// would block an allowed address.
    pub fn allows(&self, target: &Target) -> Option<String> {
        match target {
            Target::Ip(v) => {
                let ip = v.parse::<IpAddr>().ok()?.to_canonical();
                self.nets.iter().find(|(net, _)| net.contains(&ip)).map(|(_, e)| e.clone())
            }
            Target::IpRange(v) => {
                let range = parse_net(v)?;
                let overlaps = |net: &IpNet| net.contains(&range) || range.contains(net);
                self.nets.iter().find(|(net, _)| overlaps(net)).map(|(_, e)| e.clone())
            }
            Target::Account(v) => self.named("account", &v.to_lowercase()),
            Target::Node(_) => None,
            other => self.named(other.kind(), other.value()),
        }
    }

    /// Why `alert` gets no action at all, if so: its key is allow-listed, or every one of its evidence events
    /// comes from an allow-listed caller.
    pub fn allows_alert(&self, alert: &Alert, evidence: &[Event]) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        let key = Target::of_key(alert.key_type, &alert.key);
        if let Some(entry) = self.allows(&key) {
            return Some(format!("the alert's key {key} is allow-listed ({entry})"));
        }
        let all_allowed = !evidence.is_empty() && evidence.iter().all(|e| self.allows_principal(&e.principal));
        all_allowed.then(|| "every evidence event comes from an allow-listed caller".to_owned())
    }

    /// Whether any key of `p` is allow-listed.
    fn allows_principal(&self, p: &Principal) -> bool {
        let candidates = [
            p.ip.clone().map(Target::Ip),
            p.sub.clone().map(Target::User),
            p.client_id.clone().map(Target::Client),
            p.sid.clone().map(Target::Session),
            p.jti.clone().map(Target::Token),
        ];
        candidates.into_iter().flatten().any(|t| self.allows(&t).is_some())
    }

    fn named(&self, kind: &str, value: &str) -> Option<String> {
        let entry = format!("{kind}:{value}");
        self.names.contains(&entry).then_some(entry)
    }

    /// Whether the list has no entry.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty() && self.names.is_empty()
    }
}

/// An address (a one-address range) or a CIDR range, host bits cleared, IPv4-mapped IPv6 as IPv4.
fn parse_net(value: &str) -> Option<IpNet> {
    match value.parse::<IpNet>() {
        Ok(net) => {
            let net = net.trunc();
            match net {
                IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.network().to_ipv4_mapped() {
                    Some(v4) => IpNet::new(IpAddr::V4(v4), v6.prefix_len() - 96).ok(),
                    None => Some(net),
                },
                _ => Some(net),
            }
        }
        Err(_) => value.parse::<IpAddr>().ok().map(|ip| IpNet::from(ip.to_canonical())),
    }
}
