//! DPoP at the token and PAR endpoints (RFC 9449 §5, §8, §10.1): verify the proof a request carries, demand the
//! server nonce, refuse a replayed proof, and hand out the next nonce.

use argus_jose::{DpopCheck, DpopProof, verify_dpop_proof};
use argus_model::Timestamp;
use argus_oauth::{ErrorCode, OAuthError};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::Response;

use crate::state::Issuer;
use crate::token::Fail;

/// The request header that carries a proof.
pub(crate) const DPOP: HeaderName = HeaderName::from_static("dpop");
/// The response header that carries the next server nonce.
pub(crate) const DPOP_NONCE: HeaderName = HeaderName::from_static("dpop-nonce");

const INVALID: OAuthError = OAuthError::invalid_dpop_proof("the DPoP proof is invalid");

/// The DPoP proof sent with a `POST` to `path`, if any, checked without touching any state: signature, `typ`,
/// `htm`, `htu`, `iat` window (argus-jose), then the server nonce when required (`use_dpop_nonce`). The caller
/// then authenticates the client and calls [`record_proof`]: a client told to fetch a nonce has spent nothing, not
/// even a client assertion. A request with a bad proof is refused even where no proof is needed: a client that
/// sends one means to bind.
pub(crate) fn checked_proof(s: &Issuer, headers: &HeaderMap, path: &str) -> Result<Option<DpopProof>, Fail> {
    let mut values = headers.get_all(DPOP).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(OAuthError::invalid_dpop_proof("exactly one DPoP header is allowed").into());
    }
    let proof = value.to_str().map_err(|_| INVALID)?;
    let now = s.now().as_secs();
    let url = s.endpoint(path);
    let check = DpopCheck { method: "POST", url: &url, now_secs: now, max_age_secs: max_age(s), access_token: None };
    let proof = verify_dpop_proof(proof, &check).map_err(|e| {
        tracing::debug!(reason = e.code(), "DPoP proof refused");
        INVALID
    })?;
    if s.config.dpop_nonce_required && !proof.nonce.as_deref().is_some_and(|n| s.nonces.is_valid(n, now)) {
        return Err(OAuthError::new(ErrorCode::UseDpopNonce, "the DPoP proof must carry the server's nonce").into());
    }
    Ok(Some(proof))
}

/// Refuse a proof whose `jti` was seen before (RFC 9449 §11.1), and remember this one for as long as it could
/// pass [`checked_proof`]. Keyed by key and `jti`: a `jti` is only unique per key.
pub(crate) async fn record_proof(s: &Issuer, proof: Option<&DpopProof>) -> Result<(), Fail> {
    match proof {
        Some(proof) if !first_use(s, proof).await => {
            Err(OAuthError::invalid_dpop_proof("the DPoP proof was used before").into())
        }
        _ => Ok(()),
    }
}

/// Whether this is the first time the proof's `jti` is seen for its key (and remember it while the proof lives).
pub(crate) async fn first_use(s: &Issuer, proof: &DpopProof) -> bool {
    let key = format!("dpop:{}:{}", proof.jkt, proof.jti);
    let until = Timestamp::from_secs(proof.replayable_until(max_age(s)));
    s.replay.first_use(&key, until, s.now()).await
}

/// How far a proof's `iat` may be from now, in seconds.
pub(crate) fn max_age(s: &Issuer) -> i64 {
    i64::try_from(s.config.dpop_proof_max_age_secs).unwrap_or(i64::MAX)
}

/// Give the client the nonce for its next proof, on every answer to a request that carried one (RFC 9449 §8.2).
pub(crate) fn add_nonce(s: &Issuer, request: &HeaderMap, response: &mut Response) {
    if !s.config.dpop_nonce_required || !request.contains_key(DPOP) {
        return;
    }
    if let Ok(v) = HeaderValue::from_str(&s.nonces.current(s.now().as_secs())) {
        response.headers_mut().insert(DPOP_NONCE, v);
    }
}
