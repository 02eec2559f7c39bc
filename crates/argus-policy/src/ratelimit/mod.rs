//! Rate limits: GCRA per token, user, client and address, with per-route and per-operation overrides.
//!
//! At load, the gate resolves each operation's [`LimitSet`] from [`RateLimitConfig`] and the operation's
//! `x-argus-rate-limit`. Per call it builds the [`RateKeys`] and calls [`RateLimiter::check`] with the injected
//! clock's `now`; the [`RateDecision`] gives the answer and its headers. Time is passed in, never read, so the
//! math is tested with a fake clock.

mod config;
mod gcra;
mod headers;
mod quota;
mod store;

use std::net::{IpAddr, Ipv6Addr};

use argus_model::Timestamp;

pub use config::{LimitOverrides, LimitSet, Policy, RateLimitConfig, RouteRateLimits, UnknownRoute};
pub use gcra::Cell;
pub use quota::{Limit, Quota, QuotaError};
pub use store::{BucketKey, KeyKind, KeyValue, MemoryStore, RateLimitStore};

/// The principals of one call; absent ones are not limited (a public route has only an address).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateKeys<'a> {
    /// The access token's `jti`.
    pub token: Option<&'a str>,
    /// The token's `sub`.
    pub user: Option<&'a str>,
    /// The token's `client_id`.
    pub client: Option<&'a str>,
    /// The client address.
    pub ip: Option<IpAddr>,
}

impl RateKeys<'_> {
    fn value(&self, kind: KeyKind) -> Option<KeyValue<'_>> {
        match kind {
            KeyKind::Token => self.token.map(KeyValue::Claim),
            KeyKind::User => self.user.map(KeyValue::Claim),
            KeyKind::Client => self.client.map(KeyValue::Claim),
            KeyKind::Ip => self.ip.map(|ip| KeyValue::Ip(limited_part(ip))),
        }
    }
}

/// The part of an address that is limited: an IPv4 address (also when written IPv4-mapped), or the /64 of an IPv6
/// address, since one subscriber usually holds a whole /64 and could otherwise rotate through it.
pub fn limited_part(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(bits))
            }
        },
    }
}

/// The rate-limit answer for one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateDecision<'l> {
    /// No limit applies to the call.
    Unlimited,
    /// Every applicable limit had room; `policy` is the one with the least left, whose state the headers show.
    Allowed { remaining: u64, reset_secs: u64, policy: &'l Policy },
    /// `policy` is exhausted: answer 429 with `Retry-After`. No bucket was charged.
    Limited { retry_after_secs: u64, policy: &'l Policy },
}

impl RateDecision<'_> {
    /// The `RateLimit` field value, e.g. `"ip";r=5999;t=1` (`r=0` when limited).
    pub fn rate_limit_header(&self) -> Option<String> {
        match *self {
            RateDecision::Unlimited => None,
            RateDecision::Allowed { remaining, reset_secs, policy } => {
                Some(headers::state_member(policy.name(), remaining, reset_secs))
            }
            RateDecision::Limited { retry_after_secs, policy } => {
                Some(headers::state_member(policy.name(), 0, retry_after_secs))
            }
        }
    }

    /// The `RateLimit-Policy` field value, e.g. `"ip";q=6000;w=60`.
    pub fn policy_header(&self) -> Option<&str> {
        match self {
            RateDecision::Unlimited => None,
            RateDecision::Allowed { policy, .. } | RateDecision::Limited { policy, .. } => Some(policy.header()),
        }
    }

    /// The `Retry-After` field value (RFC 9110 §10.2.3, delay-seconds), only when limited.
    pub fn retry_after_header(&self) -> Option<String> {
        match self {
            RateDecision::Limited { retry_after_secs, .. } => Some(retry_after_secs.to_string()),
            _ => None,
        }
    }
}

/// Applies [`LimitSet`]s to calls, over a [`RateLimitStore`].
#[derive(Debug)]
pub struct RateLimiter<S = MemoryStore> {
    store: S,
}

impl RateLimiter<MemoryStore> {
    /// A limiter over an in-memory store of at most about `max_keys` buckets.
    pub fn in_memory(max_keys: usize) -> Self {
        Self { store: MemoryStore::new(max_keys) }
    }
}

impl<S: RateLimitStore> RateLimiter<S> {
    /// A limiter over `store`.
    pub fn new(store: S) -> Self {
        Self { store }
    }

    /// The store, e.g. to prune it.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Charge one call to every bucket of `limits` that `keys` names, or to none if any of them is exhausted.
    pub async fn check<'l>(&self, limits: &'l LimitSet, keys: &RateKeys<'_>, now: Timestamp) -> RateDecision<'l> {
        let mut charged: [Option<(&'l Policy, KeyValue<'_>)>; 4] = [None; 4];
        let mut tightest: Option<(u64, u64, &'l Policy)> = None;
        for (slot, kind) in KeyKind::ALL.into_iter().enumerate() {
            let (Some(policy), Some(value)) = (limits.get(kind), keys.value(kind)) else { continue };
            let key = BucketKey { policy: policy.name(), kind, value };
            match self.store.acquire(key, policy.quota(), now).await {
                Cell::Allowed { remaining, reset_ns, .. } => {
                    charged[slot] = Some((policy, value));
                    if tightest.is_none_or(|(r, _, _)| remaining < r) {
                        tightest = Some((remaining, gcra::ceil_secs(reset_ns), policy));
                    }
                }
                Cell::Limited { retry_after_ns } => {
                    self.refund(&charged, now).await;
                    return RateDecision::Limited { retry_after_secs: gcra::ceil_secs(retry_after_ns).max(1), policy };
                }
            }
        }
        match tightest {
            Some((remaining, reset_secs, policy)) => RateDecision::Allowed { remaining, reset_secs, policy },
            None => RateDecision::Unlimited,
        }
    }

    async fn refund(&self, charged: &[Option<(&Policy, KeyValue<'_>)>; 4], now: Timestamp) {
        for (policy, value) in charged.iter().flatten() {
            let key = BucketKey { policy: policy.name(), kind: policy.kind(), value: *value };
            self.store.release(key, policy.quota(), now).await;
        }
    }
}

#[cfg(test)]
mod tests;
