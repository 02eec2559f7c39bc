//! Who the client is (for the gate and the issuer alike): the peer address, unless the peer is a proxy the operator trusts, in which case the
//! forwarding chain it passes on (`X-Forwarded-For`, else RFC 7239 `Forwarded`) is walked back to the first
//! address no trusted proxy owns.
//!
//! Only the right end of a chain is worth anything: each trusted proxy appends the address it saw, so the entries
//! a trusted hop wrote are the rightmost ones, and everything left of the first untrusted entry was written by
//! the caller (and may be anything). Rate limits, blocks and events key on this address, so it must never be
//! something a caller can choose.

use std::net::{IpAddr, SocketAddr};

use http::{HeaderMap, HeaderName};
use ipnet::IpNet;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const FORWARDED: HeaderName = HeaderName::from_static("forwarded");

/// At most this many hops are read from the right of a chain: a longer chain is cut, never a reason to do more
/// work per call.
const MAX_HOPS: usize = 32;

/// The `[gate] trusted_proxies` networks.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

impl TrustedProxies {
    /// Parse CIDRs (`10.0.0.0/8`, `::1/128`) or single addresses; the error is the entry that is neither.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        let nets = entries
            .iter()
            .map(|entry| {
                let text = entry.trim();
                text.parse::<IpNet>()
                    .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
                    .map(|net| net.trunc())
                    .map_err(|_| entry.clone())
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { nets })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|net| net.contains(&ip))
    }
}

/// The client address of a call that arrived from `peer`.
///
/// An untrusted peer is the client, whatever its headers say. A trusted peer passes on a chain: walked right to
/// left, trusted hops are skipped and the first untrusted one is the client; if every hop is trusted, the
/// leftmost is. An entry that is not an address (`unknown`, an obfuscated id, garbage) ends the walk at the last
/// address read, since nothing left of it can be attributed.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let peer = peer.to_canonical();
    if trusted.nets.is_empty() || !trusted.contains(peer) {
        return peer;
    }
    let chain = forwarding_chain(headers);
    let mut client = peer;
    for hop in chain.iter().rev().take(MAX_HOPS) {
        let Some(ip) = hop.map(|ip| ip.to_canonical()) else { return client };
        client = ip;
        if !trusted.contains(ip) {
            return ip;
        }
    }
    client
}

/// The hops of the chain, left to right, `None` for an entry that is not an address. `X-Forwarded-For` when
/// present (every field line, in order), else the `for=` of each `Forwarded` element.
fn forwarding_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let xff: Vec<&[u8]> = headers.get_all(&X_FORWARDED_FOR).iter().map(|v| v.as_bytes()).collect();
    if !xff.is_empty() {
        return xff.iter().flat_map(|line| line.split(|&b| b == b',')).map(node_address).collect();
    }
    headers
        .get_all(&FORWARDED)
        .iter()
        .flat_map(|line| line.as_bytes().split(|&b| b == b','))
        .map(forwarded_for)
        .collect()
}

/// The `for=` node of one `Forwarded` element (RFC 7239 §4): `for=192.0.2.60`, `for="[2001:db8::1]:4711"`.
/// An element without `for` is not an address.
fn forwarded_for(element: &[u8]) -> Option<IpAddr> {
    element.split(|&b| b == b';').find_map(|pair| {
        let text = std::str::from_utf8(pair).ok()?.trim();
        let (name, value) = text.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("for") {
            return None;
        }
        let value = value.trim();
        let value = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value);
        node_address(value.as_bytes())
    })
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:80`, `2001:db8::1`, `[2001:db8::1]`,
/// `[2001:db8::1]:80`.
fn node_address(entry: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(entry).ok()?.trim();
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    text.strip_prefix('[')?.strip_suffix(']')?.parse::<IpAddr>().ok().filter(IpAddr::is_ipv6)
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn trusted(nets: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(&nets.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()).unwrap()
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let spoofed = headers(&[("x-forwarded-for", "1.2.3.4"), ("forwarded", "for=5.6.7.8")]);
        assert_eq!(client_address(ip("203.0.113.9"), &spoofed, &TrustedProxies::default()), ip("203.0.113.9"));
        let some = trusted(&["10.0.0.0/8"]);
        assert_eq!(client_address(ip("203.0.113.9"), &spoofed, &some), ip("203.0.113.9"));
    }

    #[test]
    fn a_chain_of_trusted_proxies_is_walked_to_the_first_untrusted_hop() {
        let nets = trusted(&["10.0.0.0/8", "127.0.0.1"]);
        // The caller wrote 6.6.6.6 itself; 198.51.100.7 is what the first trusted proxy saw.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7"), ("x-forwarded-for", "10.1.2.3")]);
        assert_eq!(client_address(ip("127.0.0.1"), &h, &nets), ip("198.51.100.7"));
        // Every hop trusted: the leftmost one.
        let h = headers(&[("x-forwarded-for", "10.0.0.5, 10.0.0.6")]);
        assert_eq!(client_address(ip("10.0.0.7"), &h, &nets), ip("10.0.0.5"));
        // No header at all: the trusted peer itself.
        assert_eq!(client_address(ip("10.0.0.7"), &HeaderMap::new(), &nets), ip("10.0.0.7"));
        // Ports and IPv6 forms; an IPv4-mapped peer counts as its IPv4 address.
        let h = headers(&[("x-forwarded-for", "[2001:db8::1]:443, 10.0.0.1:8080")]);
        assert_eq!(client_address(ip("::ffff:10.0.0.2"), &h, &nets), ip("2001:db8::1"));
    }

    #[test]
    fn garbage_ends_the_walk_at_the_last_address_read() {
        let nets = trusted(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "1.2.3.4, unknown, 10.0.0.3")]);
        assert_eq!(client_address(ip("10.0.0.9"), &h, &nets), ip("10.0.0.3"));
        let h = headers(&[("x-forwarded-for", "1.2.3.4, not-an-ip")]);
        assert_eq!(client_address(ip("10.0.0.9"), &h, &nets), ip("10.0.0.9"));
        let h = headers(&[("x-forwarded-for", "1.2.3.4,,")]);
        assert_eq!(client_address(ip("10.0.0.9"), &h, &nets), ip("10.0.0.9"));
    }

    #[test]
    fn forwarded_is_read_when_there_is_no_x_forwarded_for() {
        let nets = trusted(&["10.0.0.0/8"]);
        let h = headers(&[("forwarded", r#"for=192.0.2.43, for="[2001:db8:cafe::17]:4711";proto=https"#)]);
        assert_eq!(client_address(ip("10.0.0.1"), &h, &nets), ip("2001:db8:cafe::17"));
        let h = headers(&[("forwarded", "for=192.0.2.60;proto=http;by=203.0.113.43"), ("forwarded", "For=10.9.9.9")]);
        assert_eq!(client_address(ip("10.0.0.1"), &h, &nets), ip("192.0.2.60"));
        let h = headers(&[("forwarded", "for=_hidden, for=10.0.0.4")]);
        assert_eq!(client_address(ip("10.0.0.1"), &h, &nets), ip("10.0.0.4"), "an obfuscated node stops the walk");
        // X-Forwarded-For wins when both are present.
        let h = headers(&[("forwarded", "for=192.0.2.60"), ("x-forwarded-for", "198.51.100.1")]);
        assert_eq!(client_address(ip("10.0.0.1"), &h, &nets), ip("198.51.100.1"));
    }

    #[test]
    fn long_chains_are_cut() {
        let nets = trusted(&["10.0.0.0/8"]);
        let chain: Vec<String> =
            std::iter::once("1.2.3.4".to_owned()).chain((0..40).map(|i| format!("10.0.0.{i}"))).collect();
        let mut h = HeaderMap::new();
        h.insert(X_FORWARDED_FOR, HeaderValue::from_str(&chain.join(", ")).unwrap());
        // 32 trusted hops read from the right, then the walk stops at the last one read.
        assert_eq!(client_address(ip("10.0.0.1"), &h, &nets), ip("10.0.0.8"));
    }

    #[test]
    fn trusted_proxies_parse_cidrs_and_addresses() {
        let nets = trusted(&["10.0.0.0/8", "192.168.1.1", " ::1/128 ", "172.16.5.4/12"]);
        assert!(nets.contains(ip("10.255.0.1")) && nets.contains(ip("192.168.1.1")) && nets.contains(ip("::1")));
        assert!(nets.contains(ip("172.31.0.1")), "host bits of a CIDR are ignored");
        assert!(!nets.contains(ip("192.168.1.2")));
        assert_eq!(TrustedProxies::parse(&["10.0.0.0/33".to_owned()]).unwrap_err(), "10.0.0.0/33");
        assert_eq!(TrustedProxies::parse(&["proxy.internal".to_owned()]).unwrap_err(), "proxy.internal");
    }
}
