//! The block list: addresses, address ranges, apps, users, sessions and tokens that watch or an admin ordered
//! blocked (`ControlMessage::Block`), each until its `until`.
//!
//! Lookups are one hash probe per key a call carries, plus one per distinct prefix length among the blocked
//! ranges (a handful in practice). The list is plain data: the gate keeps it behind a lock, applies blocks as they
//! arrive on the control channel, checks each call, and prunes now and then.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use argus_model::{Block, BlockTarget, Timestamp};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// A block whose target cannot be understood. Nothing was changed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("block {id}: {value:?} is not an IP address or CIDR range")]
    BadAddress { id: String, value: String },
    #[error("block {id}: the target is empty")]
    EmptyTarget { id: String },
}

/// What kind of target matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BlockKind {
    Ip,
    IpRange,
    Client,
    User,
    Session,
    Token,
}

impl BlockKind {
    /// Lower-case name for events: `ip`, `ip_range`, `client`, `user`, `session`, `token`.
    pub fn as_str(self) -> &'static str {
        match self {
            BlockKind::Ip => "ip",
            BlockKind::IpRange => "ip_range",
            BlockKind::Client => "client",
            BlockKind::User => "user",
            BlockKind::Session => "session",
            BlockKind::Token => "token",
        }
    }
}

/// The keys of one call that blocks can target; absent ones match nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockKeys<'a> {
    pub ip: Option<IpAddr>,
    /// `client_id`.
    pub client: Option<&'a str>,
    /// `sub`.
    pub user: Option<&'a str>,
    /// `sid`.
    pub session: Option<&'a str>,
    /// `jti`.
    pub token: Option<&'a str>,
}

/// The block a call matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockHit<'b> {
    pub kind: BlockKind,
    /// The block's id, for the event.
    pub id: &'b str,
    /// Why it was blocked (for the event and the operator, never for the caller).
    pub reason: &'b str,
    pub until: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    id: String,
    reason: String,
    until: Timestamp,
}

/// Blocked keys, by kind.
#[derive(Clone, Debug, Default)]
pub struct BlockList {
    ips: HashMap<IpAddr, Entry>,
    /// Ranges by prefix length, each keyed by its network address.
    v4_ranges: BTreeMap<u8, HashMap<Ipv4Net, Entry>>,
    v6_ranges: BTreeMap<u8, HashMap<Ipv6Net, Entry>>,
    clients: HashMap<String, Entry>,
    users: HashMap<String, Entry>,
    sessions: HashMap<String, Entry>,
    tokens: HashMap<String, Entry>,
}

impl BlockList {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a block. A block already expired at `now` is ignored (`Ok(false)`). When a key is blocked twice, the
    /// later `until` wins. A malformed address changes nothing.
    ///
    /// A block with the id of the block held for its key is that block again, changed: its `until` replaces the
    /// held one, so an `until` at or before `now` lifts the block (watch's undo). Returns whether the key is blocked
    /// by it now.
    pub fn apply(&mut self, block: &Block, now: Timestamp) -> Result<bool, BlockError> {
        let entry = Entry { id: block.id.clone(), reason: block.reason.clone(), until: block.until };
        let empty = || BlockError::EmptyTarget { id: block.id.clone() };
        let target = match &block.target {
            BlockTarget::Ip(v) | BlockTarget::IpRange(v) | BlockTarget::Client(v) | BlockTarget::User(v) => v,
            BlockTarget::Session(v) | BlockTarget::Token(v) => v,
        };
        if target.trim().is_empty() {
            return Err(empty());
        }
        // Parse before the expiry check so that a malformed block is reported even when stale.
        let address = match &block.target {
            BlockTarget::Ip(v) | BlockTarget::IpRange(v) => Some(
                parse_address(v).ok_or_else(|| BlockError::BadAddress { id: block.id.clone(), value: v.clone() })?,
            ),
            _ => None,
        };
        Ok(match (&block.target, address) {
            (_, Some(Address::Host(ip))) => keep_latest(self.ips.entry(ip), entry, now),
            (_, Some(Address::Net(IpNet::V4(net)))) => {
                keep_latest(self.v4_ranges.entry(net.prefix_len()).or_default().entry(net), entry, now)
            }
            (_, Some(Address::Net(IpNet::V6(net)))) => {
                keep_latest(self.v6_ranges.entry(net.prefix_len()).or_default().entry(net), entry, now)
            }
            (BlockTarget::Client(v), None) => keep_latest(self.clients.entry(v.clone()), entry, now),
            (BlockTarget::User(v), None) => keep_latest(self.users.entry(v.clone()), entry, now),
            (BlockTarget::Session(v), None) => keep_latest(self.sessions.entry(v.clone()), entry, now),
            (BlockTarget::Token(v), None) => keep_latest(self.tokens.entry(v.clone()), entry, now),
            (BlockTarget::Ip(_) | BlockTarget::IpRange(_), None) => return Err(empty()),
        })
    }

    /// The block that applies to a call at `now`, if any. The narrowest key is reported first (token, session,
    /// user, client, address, range).
    pub fn check(&self, keys: &BlockKeys<'_>, now: Timestamp) -> Option<BlockHit<'_>> {
        keys.token
            .and_then(|k| live_hit(BlockKind::Token, self.tokens.get(k), now))
            .or_else(|| keys.session.and_then(|k| live_hit(BlockKind::Session, self.sessions.get(k), now)))
            .or_else(|| keys.user.and_then(|k| live_hit(BlockKind::User, self.users.get(k), now)))
            .or_else(|| keys.client.and_then(|k| live_hit(BlockKind::Client, self.clients.get(k), now)))
            .or_else(|| {
                let ip = keys.ip?.to_canonical();
                live_hit(BlockKind::Ip, self.ips.get(&ip), now).or_else(|| self.check_ranges(ip, now))
            })
    }

    fn check_ranges(&self, ip: IpAddr, now: Timestamp) -> Option<BlockHit<'_>> {
        let live = |e: &Entry| e.until > now;
        let entry = match ip {
            IpAddr::V4(v4) => self
                .v4_ranges
                .iter()
                .find_map(|(&len, nets)| nets.get(&Ipv4Net::new(v4, len).ok()?.trunc()).filter(|e| live(e))),
            IpAddr::V6(v6) => self
                .v6_ranges
                .iter()
                .find_map(|(&len, nets)| nets.get(&Ipv6Net::new(v6, len).ok()?.trunc()).filter(|e| live(e))),
        };
        entry.map(|e| hit(BlockKind::IpRange, e))
    }

    /// Forget the blocks expired at `now`; returns how many.
    pub fn prune(&mut self, now: Timestamp) -> usize {
        let before = self.len();
        self.ips.retain(unexpired(now));
        self.clients.retain(unexpired(now));
        self.users.retain(unexpired(now));
        self.sessions.retain(unexpired(now));
        self.tokens.retain(unexpired(now));
        self.v4_ranges.values_mut().for_each(|nets| nets.retain(unexpired(now)));
        self.v4_ranges.retain(|_, nets| !nets.is_empty());
        self.v6_ranges.values_mut().for_each(|nets| nets.retain(unexpired(now)));
        self.v6_ranges.retain(|_, nets| !nets.is_empty());
        before - self.len()
    }

    /// Blocks held, expired ones not yet pruned included.
    pub fn len(&self) -> usize {
        let ranges: usize = self.v4_ranges.values().map(HashMap::len).sum::<usize>()
            + self.v6_ranges.values().map(HashMap::len).sum::<usize>();
        self.ips.len() + ranges + self.clients.len() + self.users.len() + self.sessions.len() + self.tokens.len()
    }

    /// Whether no block is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn live_hit(kind: BlockKind, entry: Option<&Entry>, now: Timestamp) -> Option<BlockHit<'_>> {
    entry.filter(|e| e.until > now).map(|e| hit(kind, e))
}

fn hit(kind: BlockKind, e: &Entry) -> BlockHit<'_> {
    BlockHit { kind, id: &e.id, reason: &e.reason, until: e.until }
}

fn unexpired<K>(now: Timestamp) -> impl FnMut(&K, &mut Entry) -> bool {
    move |_, e| e.until > now
}

/// Puts `entry` in `slot` (see [`BlockList::apply`]); returns whether it is the key's live block afterwards.
fn keep_latest<K>(slot: std::collections::hash_map::Entry<'_, K, Entry>, entry: Entry, now: Timestamp) -> bool {
    use std::collections::hash_map::Entry as Slot;
    let live = entry.until > now;
    match slot {
        // The same block, changed (shortened, or lifted by an `until` in the past).
        Slot::Occupied(o) if o.get().id == entry.id && !live => {
            o.remove();
        }
        Slot::Occupied(mut o) if o.get().id == entry.id || (live && entry.until > o.get().until) => {
            o.insert(entry);
        }
        Slot::Vacant(v) if live => {
            v.insert(entry);
        }
        Slot::Occupied(_) | Slot::Vacant(_) => return false,
    }
    live
}

enum Address {
    Host(IpAddr),
    Net(IpNet),
}

/// An address or a CIDR range (host bits are cleared: `10.1.2.3/8` blocks `10.0.0.0/8`). A full-length prefix is a
/// single address, and IPv4-mapped IPv6 addresses are their IPv4 address, as calls are looked up.
fn parse_address(value: &str) -> Option<Address> {
    let value = value.trim();
    if !value.contains('/') {
        return IpAddr::from_str(value).ok().map(|ip| Address::Host(ip.to_canonical()));
    }
    let net = IpNet::from_str(value).ok()?.trunc();
    let net = match net {
        IpNet::V6(v6) => match v6.network().to_ipv4_mapped() {
            Some(v4) if v6.prefix_len() >= 96 => IpNet::V4(Ipv4Net::new(v4, v6.prefix_len() - 96).ok()?),
            _ => net,
        },
        IpNet::V4(_) => net,
    };
    Some(match net {
        IpNet::V4(v4) if v4.prefix_len() == Ipv4Addr::BITS as u8 => Address::Host(IpAddr::V4(v4.network())),
        IpNet::V6(v6) if v6.prefix_len() == Ipv6Addr::BITS as u8 => Address::Host(IpAddr::V6(v6.network())),
        _ => Address::Net(net),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_secs(1_000);

    fn block(id: &str, target: BlockTarget, until_secs: i64) -> Block {
        Block { id: id.into(), target, until: Timestamp::from_secs(until_secs), reason: "test".into() }
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    fn list(blocks: &[Block]) -> BlockList {
        let mut list = BlockList::new();
        for b in blocks {
            assert_eq!(list.apply(b, NOW), Ok(true), "{b:?}");
        }
        list
    }

    #[test]
    fn each_target_kind_blocks_only_its_key() {
        let list = list(&[
            block("b1", BlockTarget::Ip("203.0.113.7".into()), 2_000),
            block("b2", BlockTarget::Client("evil-app".into()), 2_000),
            block("b3", BlockTarget::User("mallory".into()), 2_000),
            block("b4", BlockTarget::Session("s-9".into()), 2_000),
            block("b5", BlockTarget::Token("jti-1".into()), 2_000),
        ]);
        let cases: [(BlockKeys<'_>, BlockKind, &str); 5] = [
            (BlockKeys { ip: ip("203.0.113.7"), ..Default::default() }, BlockKind::Ip, "b1"),
            (BlockKeys { client: Some("evil-app"), ..Default::default() }, BlockKind::Client, "b2"),
            (BlockKeys { user: Some("mallory"), ..Default::default() }, BlockKind::User, "b3"),
            (BlockKeys { session: Some("s-9"), ..Default::default() }, BlockKind::Session, "b4"),
            (BlockKeys { token: Some("jti-1"), ..Default::default() }, BlockKind::Token, "b5"),
        ];
        for (keys, kind, id) in cases {
            let hit = list.check(&keys, NOW).unwrap();
            assert_eq!((hit.kind, hit.id, hit.reason), (kind, id, "test"));
        }
        // The same values under other kinds, and neighbours, are not blocked.
        let innocent = BlockKeys {
            ip: ip("203.0.113.8"),
            client: Some("mallory"),
            user: Some("evil-app"),
            session: Some("jti-1"),
            token: Some("s-9"),
        };
        assert_eq!(list.check(&innocent, NOW), None);
        assert_eq!(list.check(&BlockKeys::default(), NOW), None);
    }

    #[test]
    fn narrowest_key_is_reported_first() {
        let list = list(&[
            block("by-ip", BlockTarget::Ip("198.51.100.1".into()), 2_000),
            block("by-user", BlockTarget::User("u".into()), 2_000),
        ]);
        let keys = BlockKeys { ip: ip("198.51.100.1"), user: Some("u"), ..Default::default() };
        assert_eq!(list.check(&keys, NOW).unwrap().id, "by-user");
    }

    #[test]
    fn blocks_expire_at_until_and_prune() {
        let mut list = list(&[
            block("short", BlockTarget::User("u".into()), 1_010),
            block("long", BlockTarget::Token("t".into()), 5_000),
        ]);
        let keys = BlockKeys { user: Some("u"), ..Default::default() };
        assert!(list.check(&keys, Timestamp::from_millis(1_009_999)).is_some());
        assert_eq!(list.check(&keys, Timestamp::from_secs(1_010)), None, "until is exclusive");
        assert_eq!(list.len(), 2);
        assert_eq!(list.prune(Timestamp::from_secs(1_010)), 1);
        assert_eq!(list.len(), 1);
        // An already expired block is ignored.
        assert_eq!(list.apply(&block("old", BlockTarget::User("v".into()), 999), NOW), Ok(false));
        assert_eq!(list.len(), 1);
    }

    #[test]
    fn later_until_wins() {
        let mut list = list(&[block("a", BlockTarget::User("u".into()), 3_000)]);
        list.apply(&block("b", BlockTarget::User("u".into()), 2_000), NOW).unwrap();
        let keys = BlockKeys { user: Some("u"), ..Default::default() };
        assert_eq!(list.check(&keys, NOW).unwrap().id, "a");
        list.apply(&block("c", BlockTarget::User("u".into()), 4_000), NOW).unwrap();
        assert_eq!(list.check(&keys, Timestamp::from_secs(3_500)).unwrap().id, "c");
    }

    #[test]
    fn the_same_block_again_shortens_or_lifts_it() {
        let mut ips = list(&[block("a", BlockTarget::Ip("203.0.113.7".into()), 3_000)]);
        let keys = BlockKeys { ip: ip("203.0.113.7"), ..Default::default() };
        // Another block with an earlier end does not shorten it; the same block does.
        assert_eq!(ips.apply(&block("b", BlockTarget::Ip("203.0.113.7".into()), 2_000), NOW), Ok(false));
        assert_eq!(ips.check(&keys, Timestamp::from_secs(2_500)).unwrap().id, "a");
        assert_eq!(ips.apply(&block("a", BlockTarget::Ip("203.0.113.7".into()), 2_000), NOW), Ok(true));
        assert_eq!(ips.check(&keys, Timestamp::from_secs(2_500)), None);
        // Ended now: lifted at once and forgotten; another block's end in the past lifts nothing.
        let mut ranges = list(&[block("a", BlockTarget::IpRange("10.0.0.0/8".into()), 3_000)]);
        let keys = BlockKeys { ip: ip("10.1.2.3"), ..Default::default() };
        assert_eq!(ranges.apply(&block("x", BlockTarget::IpRange("10.0.0.0/8".into()), 900), NOW), Ok(false));
        assert!(ranges.check(&keys, NOW).is_some());
        assert_eq!(ranges.apply(&block("a", BlockTarget::IpRange("10.0.0.0/8".into()), 1_000), NOW), Ok(false));
        assert_eq!(ranges.check(&keys, NOW), None);
        assert!(ranges.is_empty());
    }

    #[test]
    fn cidr_ranges() {
        let list = list(&[
            block("v4", BlockTarget::IpRange("198.51.100.0/24".into()), 2_000),
            block("v4-host-bits", BlockTarget::IpRange("10.9.8.7/8".into()), 2_000),
            block("v6", BlockTarget::IpRange("2001:db8:abcd::/48".into()), 2_000),
            block("ip-with-prefix", BlockTarget::Ip("192.0.2.128/25".into()), 2_000),
            block("host-as-range", BlockTarget::IpRange("192.0.2.5/32".into()), 2_000),
        ]);
        let at = |s: &str| list.check(&BlockKeys { ip: ip(s), ..Default::default() }, NOW).map(|h| (h.kind, h.id));
        assert_eq!(at("198.51.100.0"), Some((BlockKind::IpRange, "v4")));
        assert_eq!(at("198.51.100.255"), Some((BlockKind::IpRange, "v4")));
        assert_eq!(at("198.51.101.0"), None);
        assert_eq!(at("10.255.0.1"), Some((BlockKind::IpRange, "v4-host-bits")));
        assert_eq!(at("11.0.0.1"), None);
        assert_eq!(at("2001:db8:abcd:ffff::1"), Some((BlockKind::IpRange, "v6")));
        assert_eq!(at("2001:db8:abce::1"), None);
        assert_eq!(at("192.0.2.200"), Some((BlockKind::IpRange, "ip-with-prefix")));
        assert_eq!(at("192.0.2.127"), None);
        assert_eq!(at("192.0.2.5"), Some((BlockKind::Ip, "host-as-range")));
        // An IPv4-mapped IPv6 address is its IPv4 address.
        assert_eq!(at("::ffff:198.51.100.9"), Some((BlockKind::IpRange, "v4")));
    }

    #[test]
    fn ranges_expire_too() {
        let mut list = list(&[block("r", BlockTarget::IpRange("198.51.100.0/24".into()), 1_500)]);
        let keys = BlockKeys { ip: ip("198.51.100.1"), ..Default::default() };
        assert!(list.check(&keys, NOW).is_some());
        assert_eq!(list.check(&keys, Timestamp::from_secs(1_500)), None);
        assert_eq!(list.prune(Timestamp::from_secs(1_500)), 1);
        assert!(list.is_empty());
    }

    #[test]
    fn malformed_blocks_change_nothing() {
        let mut list = BlockList::new();
        for target in [
            BlockTarget::Ip("not-an-ip".into()),
            BlockTarget::Ip("300.1.1.1".into()),
            BlockTarget::IpRange("10.0.0.0/33".into()),
            BlockTarget::IpRange("10.0.0.0/".into()),
            BlockTarget::User("  ".into()),
            BlockTarget::Token(String::new()),
        ] {
            assert!(list.apply(&block("bad", target.clone(), 2_000), NOW).is_err(), "{target:?}");
        }
        assert!(list.is_empty());
    }

    #[test]
    fn block_messages_round_trip_with_ip_range() {
        let b = block("b", BlockTarget::IpRange("10.0.0.0/8".into()), 2_000);
        let json = serde_json::to_value(argus_model::ControlMessage::Block(b.clone())).unwrap();
        assert_eq!(json["target"], serde_json::json!({"kind": "ip_range", "value": "10.0.0.0/8"}));
        let back: argus_model::ControlMessage = serde_json::from_value(json).unwrap();
        assert_eq!(back, argus_model::ControlMessage::Block(b));
    }
}
