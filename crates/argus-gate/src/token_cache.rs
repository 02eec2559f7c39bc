//! The verified-token cache: a token whose signature, issuer and audience checked out is remembered (by the
//! SHA-256 of the token) until it expires, so the signature is verified once, not on every call.
//!
//! Only tokens that verified go in, so a flood of made-up tokens costs the caller a signature check each and
//! cannot push anything out. Eviction is quick_cache's (CLOCK-Pro style, O(1) amortised, scan-resistant): tokens
//! used once do not displace the ones in steady use. A hit stands for a fresh verification: it is refused at
//! exactly the times a verification would be (`exp`, `iat` with the same leeway), and only while the key that
//! signed the token is still in the gate's key set. Revocation, DPoP and the rules are later phases and run on
//! every call, cached or not.

use std::sync::Arc;

use argus_jose::{AccessClaims, LEEWAY_SECS};
use quick_cache::sync::Cache;
use sha2::{Digest, Sha256};

use crate::metrics;

/// What the cache is keyed on: the token's SHA-256, so the memory per entry does not grow with the token and no
/// bearer token is kept in memory longer than its call.
pub(crate) type TokenKey = [u8; 32];

/// A token that verified.
#[derive(Clone, Debug)]
pub(crate) struct Verified {
    pub(crate) claims: Arc<AccessClaims>,
    /// The `kid` of the key that signed it: a hit needs that key still in the key set.
    pub(crate) kid: Arc<str>,
}

/// The bounded map of verified tokens; `None` inside when `[gate] token_cache_entries = 0`.
pub(crate) struct VerifiedTokens {
    cache: Option<Cache<TokenKey, Verified>>,
    hits: ::metrics::Counter,
    misses: ::metrics::Counter,
}

impl VerifiedTokens {
    pub(crate) fn new(entries: usize) -> Self {
        Self {
            cache: (entries > 0).then(|| Cache::new(entries)),
            hits: ::metrics::counter!(metrics::TOKEN_CACHE_HITS),
            misses: ::metrics::counter!(metrics::TOKEN_CACHE_MISSES),
        }
    }

    /// The key of `token`, or `None` when the cache is off (no hashing then).
    pub(crate) fn key(&self, token: &str) -> Option<TokenKey> {
        self.cache.as_ref().map(|_| Sha256::digest(token.as_bytes()).into())
    }

    /// The claims of a cached token that still stands at `now_secs` with its key in the key set. An entry that no
    /// longer stands is dropped, and the token goes through a full verification again.
    pub(crate) fn get(
        &self,
        key: Option<&TokenKey>,
        now_secs: i64,
        key_known: impl FnOnce(&str) -> bool,
    ) -> Option<Arc<AccessClaims>> {
        let (cache, key) = (self.cache.as_ref()?, key?);
        let Some(entry) = cache.get(key) else {
            self.misses.increment(1);
            return None;
        };
        if still_valid(&entry.claims, now_secs) && key_known(&entry.kid) {
            self.hits.increment(1);
            return Some(entry.claims);
        }
        cache.remove(key);
        self.misses.increment(1);
        None
    }

    /// Remember a token that just verified.
    pub(crate) fn insert(&self, key: Option<TokenKey>, claims: &AccessClaims, kid: Option<String>) {
        if let (Some(cache), Some(key), Some(kid)) = (self.cache.as_ref(), key, kid) {
            cache.insert(key, Verified { claims: Arc::new(claims.clone()), kid: kid.into() });
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.cache.as_ref().map_or(0, Cache::len)
    }
}

/// Whether a verification of `claims` made earlier still holds at `now_secs`: the time checks of
/// [`argus_jose::verify_access_token`], with the same leeway.
pub(crate) fn still_valid(claims: &AccessClaims, now_secs: i64) -> bool {
    claims.exp.saturating_add(LEEWAY_SECS) > now_secs && claims.iat.saturating_sub(LEEWAY_SECS) <= now_secs
}

#[cfg(test)]
mod tests {
    use argus_testkit::{TEST_AUDIENCE, TEST_EPOCH, TEST_ISSUER, access_claims};

    use super::*;

    fn now() -> i64 {
        TEST_EPOCH.as_secs()
    }

    #[test]
    fn validity_matches_the_verifier_time_checks() {
        let claims = access_claims(TEST_ISSUER, TEST_AUDIENCE, TEST_EPOCH);
        assert!(still_valid(&claims, now()));
        assert!(still_valid(&claims, claims.exp + LEEWAY_SECS - 1));
        assert!(!still_valid(&claims, claims.exp + LEEWAY_SECS), "expired, as verify_access_token says");
        assert!(!still_valid(&claims, claims.iat - LEEWAY_SECS - 1), "a clock set back: not yet valid");
        let mut extreme = claims.clone();
        extreme.exp = i64::MAX;
        assert!(still_valid(&extreme, now()), "no overflow");
    }

    #[test]
    fn hits_until_expiry_or_key_removal() {
        let cache = VerifiedTokens::new(10);
        let claims = access_claims(TEST_ISSUER, TEST_AUDIENCE, TEST_EPOCH);
        let key = cache.key("a.b.c");
        assert_eq!(key, cache.key("a.b.c"));
        assert_ne!(key, cache.key("a.b.d"));
        assert!(cache.get(key.as_ref(), now(), |_| true).is_none(), "empty");
        cache.insert(key, &claims, Some("k1".into()));
        assert_eq!(cache.get(key.as_ref(), now(), |kid| kid == "k1").as_deref(), Some(&claims));
        assert!(cache.get(cache.key("a.b.d").as_ref(), now(), |_| true).is_none(), "another token");

        // The signing key left the key set: the entry goes, and stays gone when the key comes back.
        assert!(cache.get(key.as_ref(), now(), |_| false).is_none());
        assert!(cache.get(key.as_ref(), now(), |_| true).is_none());
        assert_eq!(cache.len(), 0);

        cache.insert(key, &claims, Some("k1".into()));
        assert!(cache.get(key.as_ref(), claims.exp + LEEWAY_SECS, |_| true).is_none(), "expired");
        assert_eq!(cache.len(), 0, "an expired entry is dropped when met");
    }

    #[test]
    fn a_zero_capacity_turns_the_cache_off() {
        let cache = VerifiedTokens::new(0);
        let claims = access_claims(TEST_ISSUER, TEST_AUDIENCE, TEST_EPOCH);
        assert!(cache.key("a.b.c").is_none(), "nothing is hashed");
        cache.insert(Some([0; 32]), &claims, Some("k1".into()));
        assert!(cache.get(Some(&[0; 32]), now(), |_| true).is_none());
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = VerifiedTokens::new(100);
        let claims = access_claims(TEST_ISSUER, TEST_AUDIENCE, TEST_EPOCH);
        for i in 0..1_000 {
            cache.insert(cache.key(&format!("token-{i}")), &claims, Some("k1".into()));
        }
        assert!(cache.len() <= 110, "{} entries", cache.len());
    }
}
