//! Phase 4, DPoP (RFC 9449 §7): a token bound to a key (`cnf.jkt`) is only good with a fresh proof of that key,
//! made for this very request, used once, and — when nonces are on — carrying a nonce this gate handed out.

use std::sync::Arc;

use argus_cache::ReplayCache;
use argus_jose::{AccessClaims, DpopCheck, DpopProof, NonceIssuer, verify_dpop_proof};
use argus_model::Timestamp;
use http::{HeaderMap, HeaderName, Method};

use crate::refusal::{Refusal, TokenScheme};

/// The request header carrying the proof.
pub(crate) const DPOP: HeaderName = HeaderName::from_static("dpop");
/// The response header carrying a server nonce (RFC 9449 §8.1).
pub(crate) const DPOP_NONCE: HeaderName = HeaderName::from_static("dpop-nonce");

/// What the DPoP phase needs, built once at start.
pub(crate) struct DpopGuard {
    /// The gate's public base URL, no trailing slash: `htu` must be this plus the request path.
    htu_base: String,
    max_age_secs: i64,
    /// `None` when server nonces are off.
    nonces: Option<NonceIssuer>,
    replay: Arc<dyn ReplayCache>,
}

/// The parts of a call the phase looks at.
pub(crate) struct DpopRequest<'a> {
    pub(crate) headers: &'a HeaderMap,
    pub(crate) method: &'a Method,
    /// The path as the caller sent it; `htu` normalisation takes care of case and percent-encoding.
    pub(crate) path: &'a str,
    pub(crate) scheme: TokenScheme,
    pub(crate) token: &'a str,
}

impl DpopGuard {
    pub(crate) fn new(
        htu_base: &str,
        max_age_secs: u64,
        nonces: Option<NonceIssuer>,
        replay: Arc<dyn ReplayCache>,
    ) -> Self {
        Self {
            htu_base: htu_base.trim_end_matches('/').to_owned(),
            max_age_secs: i64::try_from(max_age_secs).unwrap_or(i64::MAX),
            nonces,
            replay,
        }
    }

    /// The nonce a caller should use from now on, when nonces are on.
    pub(crate) fn current_nonce(&self, now_secs: i64) -> Option<String> {
        self.nonces.as_ref().map(|n| n.current(now_secs))
    }
}

/// Phase 4: check the token's binding and its proof.
///
/// `Ok(Some(nonce))` when the call may go on and the caller should switch to a newer nonce (the window rolled);
/// `Ok(None)` when there is nothing to tell it.
pub(crate) async fn dpop_phase(
    guard: &DpopGuard,
    request: &DpopRequest<'_>,
    claims: &AccessClaims,
    now: Timestamp,
) -> Result<Option<String>, Refusal> {
    let Some(bound_jkt) = bound_key(claims, request.scheme)? else { return Ok(None) };
    let proof = verified_proof(guard, request, now.as_secs())?;
    if proof.jkt != bound_jkt {
        tracing::debug!("DPoP proof signed by another key than the token is bound to");
        return Err(Refusal::InvalidDpopProof);
    }
    let current_nonce = check_nonce(guard, &proof, now.as_secs())?;
    check_first_use(guard, &proof, now).await?;
    Ok(current_nonce.filter(|current| proof.nonce.as_deref() != Some(current.as_str())))
}

/// The key the token is bound to, if any, after checking that the scheme fits the binding (RFC 9449 §7.2: a
/// DPoP-bound token sent as Bearer would make the binding worthless).
fn bound_key(claims: &AccessClaims, scheme: TokenScheme) -> Result<Option<&str>, Refusal> {
    match (claims.cnf.as_ref(), scheme) {
        (None, TokenScheme::Bearer) => Ok(None),
        (Some(cnf), TokenScheme::Dpop) => Ok(Some(&cnf.jkt)),
        (None, TokenScheme::Dpop) | (Some(_), TokenScheme::Bearer) => Err(Refusal::TokenSchemeMismatch),
    }
}

/// The one `DPoP` header's proof, verified against this request and token (RFC 9449 §4.3).
fn verified_proof(guard: &DpopGuard, request: &DpopRequest<'_>, now_secs: i64) -> Result<DpopProof, Refusal> {
    let mut values = request.headers.get_all(&DPOP).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        tracing::debug!("DPoP header missing or repeated");
        return Err(Refusal::InvalidDpopProof);
    };
    let proof = value.to_str().map_err(|_| Refusal::InvalidDpopProof)?;
    let url = format!("{}{}", guard.htu_base, request.path);
    let check = DpopCheck {
        method: request.method.as_str(),
        url: &url,
        now_secs,
        max_age_secs: guard.max_age_secs,
        access_token: Some(request.token),
    };
    verify_dpop_proof(proof, &check).map_err(|error| {
        tracing::debug!(reason = error.code(), "DPoP proof refused");
        Refusal::InvalidDpopProof
    })
}

/// With nonces on, the proof must carry one of this or the previous window. Returns the current nonce.
fn check_nonce(guard: &DpopGuard, proof: &DpopProof, now_secs: i64) -> Result<Option<String>, Refusal> {
    let Some(nonces) = &guard.nonces else { return Ok(None) };
    if proof.nonce.as_deref().is_some_and(|n| nonces.is_valid(n, now_secs)) {
        Ok(Some(nonces.current(now_secs)))
    } else {
        Err(Refusal::UseDpopNonce)
    }
}

/// A proof is good once (RFC 9449 §11.1): its `jti` is remembered, per key, for as long as its `iat` is in the
/// window. A cache that cannot remember refuses (fail closed).
async fn check_first_use(guard: &DpopGuard, proof: &DpopProof, now: Timestamp) -> Result<(), Refusal> {
    let key = format!("dpop:{}:{}", proof.jkt, proof.jti);
    let expires_at = Timestamp::from_secs(proof.replayable_until(guard.max_age_secs));
    if guard.replay.first_use(&key, expires_at, now).await {
        Ok(())
    } else {
        tracing::debug!("DPoP proof replayed (or the replay cache is full)");
        Err(Refusal::InvalidDpopProof)
    }
}

#[cfg(test)]
mod tests {
    use argus_cache::MemoryReplayCache;
    use argus_jose::Confirmation;
    use argus_testkit::{DpopKey, TEST_AUDIENCE, TEST_EPOCH, TEST_ISSUER, access_claims};
    use http::HeaderValue;

    use super::*;

    const BASE: &str = "https://api.example";

    fn guard(nonces: bool) -> DpopGuard {
        let nonces = nonces.then(|| NonceIssuer::new(b"0123456789abcdef", 300));
        DpopGuard::new(&format!("{BASE}/"), 60, nonces, Arc::new(MemoryReplayCache::new(100)))
    }

    fn bound(key: &DpopKey) -> AccessClaims {
        let mut claims = access_claims(TEST_ISSUER, TEST_AUDIENCE, TEST_EPOCH);
        claims.cnf = Some(Confirmation { jkt: key.jkt() });
        claims
    }

    fn headers(proofs: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for p in proofs {
            h.append(DPOP, HeaderValue::from_str(p).unwrap());
        }
        h
    }

    async fn run(
        guard: &DpopGuard,
        h: &HeaderMap,
        scheme: TokenScheme,
        claims: &AccessClaims,
    ) -> Result<Option<String>, Refusal> {
        let request = DpopRequest { headers: h, method: &Method::GET, path: "/a", scheme, token: "tok" };
        dpop_phase(guard, &request, claims, TEST_EPOCH).await
    }

    #[tokio::test]
    async fn binding_and_scheme_must_agree() {
        let g = guard(false);
        let key = DpopKey::es256();
        let unbound = access_claims(TEST_ISSUER, TEST_AUDIENCE, TEST_EPOCH);
        let none = HeaderMap::new();
        assert_eq!(run(&g, &none, TokenScheme::Bearer, &unbound).await, Ok(None));
        assert_eq!(run(&g, &none, TokenScheme::Dpop, &unbound).await, Err(Refusal::TokenSchemeMismatch));
        assert_eq!(run(&g, &none, TokenScheme::Bearer, &bound(&key)).await, Err(Refusal::TokenSchemeMismatch));
        assert_eq!(run(&g, &none, TokenScheme::Dpop, &bound(&key)).await, Err(Refusal::InvalidDpopProof));
    }

    #[tokio::test]
    async fn one_good_proof_once() {
        let g = guard(false);
        let key = DpopKey::es256();
        let now = TEST_EPOCH.as_secs();
        let proof = key.proof("GET", &format!("{BASE}/a"), now).ath_for("tok").build();
        assert_eq!(run(&g, &headers(&[&proof]), TokenScheme::Dpop, &bound(&key)).await, Ok(None));
        assert_eq!(
            run(&g, &headers(&[&proof]), TokenScheme::Dpop, &bound(&key)).await,
            Err(Refusal::InvalidDpopProof),
            "replayed"
        );
        let other = key.proof("GET", &format!("{BASE}/a"), now).ath_for("tok").build();
        assert_eq!(
            run(&g, &headers(&[&other, &other]), TokenScheme::Dpop, &bound(&key)).await,
            Err(Refusal::InvalidDpopProof),
            "two DPoP headers"
        );
        let stranger = DpopKey::es256();
        let foreign = stranger.proof("GET", &format!("{BASE}/a"), now).ath_for("tok").build();
        assert_eq!(
            run(&g, &headers(&[&foreign]), TokenScheme::Dpop, &bound(&key)).await,
            Err(Refusal::InvalidDpopProof),
            "a proof of another key"
        );
    }

    #[tokio::test]
    async fn nonces_are_required_and_refreshed() {
        let g = guard(true);
        let key = DpopKey::es256();
        let now = TEST_EPOCH.as_secs();
        let url = format!("{BASE}/a");
        let without = key.proof("GET", &url, now).ath_for("tok").build();
        assert_eq!(run(&g, &headers(&[&without]), TokenScheme::Dpop, &bound(&key)).await, Err(Refusal::UseDpopNonce));
        let current = g.current_nonce(now).unwrap();
        let with = key.proof("GET", &url, now).ath_for("tok").nonce(&current).build();
        assert_eq!(run(&g, &headers(&[&with]), TokenScheme::Dpop, &bound(&key)).await, Ok(None));
        // A nonce of the previous window still works, and the answer hands out the new one.
        let previous = g.current_nonce(now - 300).unwrap();
        let older = key.proof("GET", &url, now).ath_for("tok").nonce(&previous).build();
        assert_eq!(run(&g, &headers(&[&older]), TokenScheme::Dpop, &bound(&key)).await, Ok(Some(current)));
        let made_up = key.proof("GET", &url, now).ath_for("tok").nonce("made-up").build();
        assert_eq!(run(&g, &headers(&[&made_up]), TokenScheme::Dpop, &bound(&key)).await, Err(Refusal::UseDpopNonce));
    }
}
