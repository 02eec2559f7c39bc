//! What the API detectors read from an event: the call, who made it, from which network and program.

use std::net::IpAddr;

use argus_model::{ApiCall, Event, EventKind, Principal, truncate_utf8};

use crate::alert::KeyType;
use crate::distinct::hash64;

/// The event `reason` of a call the gate refused because watch had blocked the caller. Such refusals are watch's
/// own doing: fed back, a block would raise new alerts (an error spike, probing) that justify more blocking.
pub const WATCH_BLOCK_REASON: &str = "blocked";

/// Longest key kept, in bytes: keys come from callers and must not inflate memory or alerts.
pub const MAX_KEY_BYTES: usize = 256;

/// The call of an `ApiCall` event.
pub fn api_call(event: &Event) -> Option<&ApiCall> {
    match &event.kind {
        EventKind::ApiCall(call) => Some(call),
        _ => None,
    }
}

/// Whether the event is a refusal caused by one of watch's blocks.
pub fn caused_by_watch(event: &Event) -> bool {
    api_call(event).is_some_and(|c| c.reason.as_deref() == Some(WATCH_BLOCK_REASON))
}

/// Who made a call, as one key: the user if the token named one, else the client, else the IP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Actor<'a> {
    /// What the key is.
    pub key_type: KeyType,
    /// The key, cut to [`MAX_KEY_BYTES`].
    pub key: &'a str,
}

impl<'a> Actor<'a> {
    /// The actor of `principal`, or `None` when it names nobody at all.
    pub fn of(principal: &'a Principal) -> Option<Self> {
        let (key_type, key) = if let Some(sub) = &principal.sub {
            (KeyType::User, sub)
        } else if let Some(client) = &principal.client_id {
            (KeyType::Client, client)
        } else {
            (KeyType::Ip, principal.ip.as_ref()?)
        };
        Some(Self { key_type, key: bounded(key) })
    }

    /// The key as stored in tables shared by several key types: the type's name, a separator, the key.
    pub fn table_key(&self, buf: &mut String) {
        buf.clear();
        buf.push_str(self.key_type.as_str());
        buf.push('\u{1f}');
        buf.push_str(self.key);
    }
}

/// `s` cut to [`MAX_KEY_BYTES`].
pub fn bounded(s: &str) -> &str {
    truncate_utf8(s, MAX_KEY_BYTES)
}

/// The network an IP address belongs to, as a hash: its /16 for IPv4, its /48 for IPv6 (what one site or mobile
/// carrier typically holds, without a geo database). An address that does not parse is its own network.
pub fn network(ip: &str) -> u64 {
    match ip.trim().parse::<IpAddr>().map(|a| a.to_canonical()) {
        Ok(IpAddr::V4(v4)) => {
            let o = v4.octets();
            (4 << 32) | (u64::from(o[0]) << 8) | u64::from(o[1])
        }
        Ok(IpAddr::V6(v6)) => {
            let s = v6.segments();
            (6 << 56) | (u64::from(s[0]) << 32) | (u64::from(s[1]) << 16) | u64::from(s[2])
        }
        Err(_) => hash64(ip),
    }
}

/// The network as people read it: `203.0/16`, `2001:db8:1::/48`, or the text itself.
pub fn network_label(ip: &str) -> String {
    match ip.trim().parse::<IpAddr>().map(|a| a.to_canonical()) {
        Ok(IpAddr::V4(v4)) => {
            let o = v4.octets();
            format!("{}.{}.0.0/16", o[0], o[1])
        }
        Ok(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
        Err(_) => bounded(ip).to_owned(),
    }
}

/// The program a user agent names, as a hash that ignores version numbers: a browser that updates itself keeps
/// its hash, a token replayed with curl or a script gets another. `None` without a user agent.
pub fn agent(principal: &Principal) -> Option<u64> {
    let ua = principal.user_agent.as_deref()?;
    let mut h = std::hash::DefaultHasher::new();
    for b in bounded(ua).bytes().filter(|b| !b.is_ascii_digit() && *b != b'.' && *b != b'_') {
        std::hash::Hasher::write_u8(&mut h, b);
    }
    Some(std::hash::Hasher::finish(&h))
}

/// The operation a call matched: its OpenAPI operation id, else its path template.
pub fn operation(call: &ApiCall) -> Option<&str> {
    call.operation_id.as_deref().or(call.path_template.as_deref()).map(bounded)
}

/// Whether the call was refused or answered with an error status.
pub fn is_error(call: &ApiCall) -> bool {
    call.status >= 400
}

/// The object a call names: a hash of all its path parameter values, and the last value if it is a number (for
/// spotting ids walked in sequence). `None` for a call that names no object.
pub fn object(call: &ApiCall) -> Option<(u64, Option<u64>)> {
    let (_, last) = call.object_ids.last()?;
    let hash = if call.object_ids.len() == 1 {
        hash64(last)
    } else {
        let mut h = std::hash::DefaultHasher::new();
        for (_, v) in &call.object_ids {
            std::hash::Hasher::write(&mut h, v.as_bytes());
            std::hash::Hasher::write_u8(&mut h, 0);
        }
        std::hash::Hasher::finish(&h)
    };
    Some((hash, last.parse::<u64>().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actor_prefers_user_then_client_then_ip() {
        let mut p = Principal { ip: Some("192.0.2.1".into()), ..Principal::default() };
        assert_eq!(Actor::of(&p), Some(Actor { key_type: KeyType::Ip, key: "192.0.2.1" }));
        p.client_id = Some("app".into());
        assert_eq!(Actor::of(&p).map(|a| a.key_type), Some(KeyType::Client));
        p.sub = Some("u1".into());
        assert_eq!(Actor::of(&p), Some(Actor { key_type: KeyType::User, key: "u1" }));
        assert_eq!(Actor::of(&Principal::default()), None);
        let long = Principal { sub: Some("x".repeat(1000)), ..Principal::default() };
        assert_eq!(Actor::of(&long).map(|a| a.key.len()), Some(MAX_KEY_BYTES));
        let mut buf = String::new();
        Actor { key_type: KeyType::User, key: "u1" }.table_key(&mut buf);
        assert_eq!(buf, "user\u{1f}u1");
    }

    #[test]
    fn networks_are_slash_16_and_slash_48() {
        assert_eq!(network("203.0.113.7"), network("203.0.200.1"));
        assert_ne!(network("203.0.113.7"), network("203.1.113.7"));
        assert_eq!(network("::ffff:203.0.113.7"), network("203.0.1.1"));
        assert_eq!(network("2001:db8:1:2::1"), network("2001:db8:1:ffff::9"));
        assert_ne!(network("2001:db8:1::1"), network("2001:db8:2::1"));
        assert_ne!(network("not an ip"), network("203.0.113.7"));
        assert_eq!(network_label("203.0.113.7"), "203.0.0.0/16");
        assert_eq!(network_label("2001:db8:1:2::1"), "2001:db8:1::/48");
    }

    #[test]
    fn agents_ignore_versions() {
        let ua = |s: &str| Principal { user_agent: Some(s.into()), ..Principal::default() };
        let firefox = agent(&ua("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"));
        let updated = agent(&ua("Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0"));
        assert_eq!(firefox, updated);
        assert_ne!(firefox, agent(&ua("curl/8.5.0")));
        assert_eq!(agent(&Principal::default()), None);
    }

    #[test]
    fn objects_hash_all_ids_and_read_numeric_last_ids() {
        let call = |ids: &[(&str, &str)]| -> ApiCall {
            let mut c: ApiCall = serde_json::from_str(
                r#"{"request_id":"r","method":"GET","path":"/","status":200,"decision":"allowed","bytes_in":0,
                "bytes_out":0,"latency_us":1}"#,
            )
            .unwrap();
            c.object_ids = ids.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
            c
        };
        assert_eq!(object(&call(&[])), None);
        let (h1, n1) = object(&call(&[("id", "42")])).unwrap();
        assert_eq!(n1, Some(42));
        assert_eq!(h1, hash64("42"));
        let (h2, n2) = object(&call(&[("a", "1"), ("t", "x9")])).unwrap();
        assert_eq!(n2, None);
        assert_ne!(h2, object(&call(&[("a", "2"), ("t", "x9")])).unwrap().0);
    }
}
