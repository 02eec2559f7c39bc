//! Progressive sign-in throttling, decided from failure counters.
//!
//! Two counters answer each attempt: one per (user name, client address) and one per client address across every
//! user name. Each counter allows a few free failures; every further failure locks its key for a window that
//! doubles with each failure (1 s, 2 s, 4 s ... up to a cap). While a key is locked, attempts on it are refused
//! without looking at the password, so a locked guesser learns nothing. There is no lock per account alone: an
//! attacker failing on purpose locks out only their own address, and the real user signs in from theirs.
//!
//! User names are keyed by their hash, so the store never holds the names people typed (which are often
//! passwords typed into the wrong field). IPv6 clients are keyed by their /64, the smallest block a host gets,
//! or one machine could rotate through addresses for free.

use std::net::IpAddr;
use std::time::Duration;

use argus_model::Timestamp;
use serde::{Deserialize, Serialize};

use crate::store::StorageError;
use crate::token::hash_secret;

/// The throttle of sign-ins: the `[issuer.login_throttle]` table. Every field has a safe default.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginThrottle {
    /// Failed sign-ins of one user name from one client address before each further failure locks that pair.
    /// Default 5. A success (the whole sign-in, second factor included) forgets the pair's failures.
    pub free_failures_per_account: u32,
    /// Failed sign-ins from one client address, all user names together, before each further failure locks the
    /// address (credential stuffing). Default 20. Successes do not forget them: one good account must not buy an
    /// attacker more guesses at the others.
    pub free_failures_per_ip: u32,
    /// The first lock, in seconds; each further failure doubles it. Default 1.
    pub first_lockout_secs: u64,
    /// The longest lock, in seconds. Default 900 (15 minutes).
    pub max_lockout_secs: u64,
    /// How long failures are remembered after the last one (or after the lock it caused ends), in seconds.
    /// Default 3,600.
    pub memory_secs: u64,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self {
            free_failures_per_account: 5,
            free_failures_per_ip: 20,
            first_lockout_secs: 1,
            max_lockout_secs: 900,
            memory_secs: 3600,
        }
    }
}

impl LoginThrottle {
    /// Check the values: locks between 1 second and a day, the first no longer than the cap, a memory of at least
    /// the cap (else a capped lock would be forgotten and start over at the first) and at most a week.
    pub fn validate(&self) -> Result<(), String> {
        const DAY: u64 = 24 * 3600;
        if !(1..=DAY).contains(&self.first_lockout_secs)
            || !(self.first_lockout_secs..=DAY).contains(&self.max_lockout_secs)
        {
            return Err(format!(
                "issuer.login_throttle: first_lockout_secs ({}) and max_lockout_secs ({}) must be between 1 and {DAY}, \
                 the first not above the max",
                self.first_lockout_secs, self.max_lockout_secs
            ));
        }
        if !(self.max_lockout_secs..=7 * DAY).contains(&self.memory_secs) {
            return Err(format!(
                "issuer.login_throttle.memory_secs ({}) must be between max_lockout_secs ({}) and {}",
                self.memory_secs,
                self.max_lockout_secs,
                7 * DAY
            ));
        }
        Ok(())
    }

    /// The rule of the (user name, address) counter.
    pub fn account_rule(&self) -> ThrottleRule {
        self.rule(self.free_failures_per_account)
    }

    /// The rule of the per-address counter.
    pub fn ip_rule(&self) -> ThrottleRule {
        self.rule(self.free_failures_per_ip)
    }

    fn rule(&self, free_failures: u32) -> ThrottleRule {
        ThrottleRule {
            free_failures,
            first_lockout: Duration::from_secs(self.first_lockout_secs),
            max_lockout: Duration::from_secs(self.max_lockout_secs),
            memory: Duration::from_secs(self.memory_secs),
        }
    }
}

/// How one counter turns failures into locks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThrottleRule {
    pub free_failures: u32,
    pub first_lockout: Duration,
    pub max_lockout: Duration,
    /// Failures are forgotten this long after the last one, or after the lock it caused ends.
    pub memory: Duration,
}

impl ThrottleRule {
    /// The lock after the `failures`-th failure: none while they are free, then the first lockout, doubled for each
    /// failure beyond, capped.
    pub fn lockout(&self, failures: u32) -> Option<Duration> {
        let beyond = failures.checked_sub(self.free_failures)?.checked_sub(1)?;
        // 2^20 x the first lockout is past any cap validation allows; stop doubling before it can overflow.
        let factor = 1u32 << beyond.min(20);
        Some(self.first_lockout.saturating_mul(factor).min(self.max_lockout))
    }

    /// The counter after its `failures`-th failure at `now`: the lock it causes and when it is forgotten.
    pub fn after_failure(&self, failures: u32, now: Timestamp) -> ThrottleState {
        let locked_until = self.lockout(failures).map(|d| now.plus(d));
        let forget_at = locked_until.unwrap_or(now).plus(self.memory);
        ThrottleState { failures, locked_until, forget_at }
    }
}

/// A counter as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThrottleState {
    /// Failures on record (since the last success, for a pair).
    pub failures: u32,
    /// Until when attempts on the key are refused.
    pub locked_until: Option<Timestamp>,
    /// When the record may be deleted: the failures are forgotten then.
    pub forget_at: Timestamp,
}

/// The storage keys of an attempt's two counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThrottleKeys {
    /// The user name's hash and the client's address (or /64).
    pub account: String,
    /// The client's address (or /64).
    pub ip: String,
}

/// The counters an attempt with `username` from `ip` answers to. An unknown address (no peer information) shares
/// one counter, which only a misconfigured server would ever use.
pub fn throttle_keys(username: &str, ip: Option<IpAddr>) -> ThrottleKeys {
    let ip = ip.map_or_else(|| "unknown".to_owned(), address_key);
    ThrottleKeys { account: format!("acct:{}@{ip}", hash_secret(username)), ip: format!("ip:{ip}") }
}

/// An IPv4 address as itself, an IPv6 address as its /64 (an IPv4-mapped one as the IPv4 address).
fn address_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// Whether an attempt may be checked at `now`, given its counters' states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThrottleDecision {
    Allow,
    /// Refused without checking anything; `retry_after` is when the longest lock ends, in whole seconds (at least 1).
    Refuse {
        retry_after: Duration,
    },
}

/// Refuse while any counter is locked.
pub fn throttle_decision(now: Timestamp, states: &[Option<ThrottleState>]) -> ThrottleDecision {
    let until = states.iter().flatten().filter_map(|s| s.locked_until).filter(|u| *u > now).max();
    match until {
        None => ThrottleDecision::Allow,
        Some(until) => {
            let millis = u64::try_from(until.as_millis().saturating_sub(now.as_millis())).unwrap_or(u64::MAX);
            ThrottleDecision::Refuse { retry_after: Duration::from_secs(millis.div_ceil(1000).max(1)) }
        }
    }
}

/// The storage of the counters. Implemented by `argus_store::Store`, so every issuer process over one store agrees.
#[async_trait::async_trait]
pub trait ThrottleStore: Send + Sync {
    /// The counter `key` at `now`; `None` if it has no failures on record or they are forgotten.
    async fn throttle_state(&self, key: &str, now: Timestamp) -> Result<Option<ThrottleState>, StorageError>;
    /// Count one failure of `key` at `now`, atomically: a forgotten record starts over at one, and the new count's
    /// lock under `rule` ([`ThrottleRule::after_failure`]) is recorded (never shortening a longer one). Returns the
    /// new state. Forgotten records of any key may be deleted on the way.
    async fn record_failure(
        &self,
        key: &str,
        now: Timestamp,
        rule: &ThrottleRule,
    ) -> Result<ThrottleState, StorageError>;
    /// Forget the failures of `key` (a successful sign-in of that pair).
    async fn clear_failures(&self, key: &str) -> Result<(), StorageError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Option<Duration> {
        Some(Duration::from_secs(s))
    }

    #[test]
    fn free_failures_then_doubling_locks_up_to_the_cap() {
        let rule = LoginThrottle::default().account_rule();
        let locks: Vec<_> = (0..=16).map(|n| rule.lockout(n)).collect();
        assert_eq!(&locks[..6], &[None; 6], "the first five failures are free");
        assert_eq!(&locks[6..12], &[secs(1), secs(2), secs(4), secs(8), secs(16), secs(32)]);
        assert_eq!((locks[14], locks[15]), (secs(256), secs(512)));
        assert_eq!(locks[16], secs(900), "capped at 15 minutes");
        assert_eq!(rule.lockout(u32::MAX), secs(900), "no overflow however many");
        assert_eq!(LoginThrottle::default().ip_rule().lockout(20), None);
        assert_eq!(LoginThrottle::default().ip_rule().lockout(21), secs(1));
    }

    #[test]
    fn a_lock_is_remembered_past_its_end() {
        let rule = LoginThrottle::default().account_rule();
        let now = Timestamp::from_millis(1_000_000);
        let free = rule.after_failure(3, now);
        assert_eq!((free.locked_until, free.forget_at), (None, now.plus(Duration::from_secs(3600))));
        let locked = rule.after_failure(8, now);
        assert_eq!(locked.locked_until, Some(now.plus(Duration::from_secs(4))));
        assert_eq!(locked.forget_at, now.plus(Duration::from_secs(3604)));
    }

    #[test]
    fn refused_while_any_counter_is_locked_with_the_longest_wait() {
        let now = Timestamp::from_millis(10_000);
        let state = |until_ms: i64| {
            Some(ThrottleState {
                failures: 9,
                locked_until: Some(Timestamp::from_millis(until_ms)),
                forget_at: Timestamp::from_millis(until_ms + 1),
            })
        };
        assert_eq!(throttle_decision(now, &[None, None]), ThrottleDecision::Allow);
        assert_eq!(throttle_decision(now, &[state(10_000), state(9_000)]), ThrottleDecision::Allow, "ended locks");
        let refuse = |s| ThrottleDecision::Refuse { retry_after: Duration::from_secs(s) };
        assert_eq!(throttle_decision(now, &[state(10_001), None]), refuse(1), "rounded up to a second");
        assert_eq!(throttle_decision(now, &[state(12_500), state(17_000)]), refuse(7));
    }

    #[test]
    fn keys_hash_the_name_and_group_ipv6_by_64() {
        let k = throttle_keys("alice", Some("203.0.113.9".parse().unwrap()));
        assert_eq!(k.ip, "ip:203.0.113.9");
        assert!(k.account.ends_with("@203.0.113.9") && !k.account.contains("alice"));
        assert_ne!(k.account, throttle_keys("Alice", Some("203.0.113.9".parse().unwrap())).account);
        let a = throttle_keys("alice", Some("2001:db8:1:2:aaaa::1".parse().unwrap()));
        let b = throttle_keys("alice", Some("2001:db8:1:2:ffff::9".parse().unwrap()));
        assert_eq!((a.ip.as_str(), &a.account), ("ip:2001:db8:1:2::/64", &b.account));
        assert_ne!(a.ip, throttle_keys("x", Some("2001:db8:1:3::1".parse().unwrap())).ip);
        let mapped = throttle_keys("x", Some("::ffff:198.51.100.7".parse().unwrap()));
        assert_eq!(mapped.ip, "ip:198.51.100.7");
        assert_eq!(throttle_keys("x", None).ip, "ip:unknown");
    }

    #[test]
    fn config_defaults_and_bounds() {
        let c: LoginThrottle = serde_json::from_str("{}").unwrap();
        assert_eq!((c.clone(), c.validate()), (LoginThrottle::default(), Ok(())));
        assert!(serde_json::from_str::<LoginThrottle>(r#"{"free_failures": 3}"#).is_err());
        for bad in [
            LoginThrottle { first_lockout_secs: 0, ..c.clone() },
            LoginThrottle { first_lockout_secs: 10, max_lockout_secs: 5, ..c.clone() },
            LoginThrottle { memory_secs: 10, ..c.clone() },
        ] {
            assert!(bad.validate().unwrap_err().contains("issuer.login_throttle"), "{bad:?}");
        }
    }
}
